# Outlier exposure (anomaly-aware fine-tuning) pieces shared by configs/outlier_exposure/*: paste outlier objects
# into the training crops and train them away from the known classes with two losses next to cross-entropy.
#   - PasteOutliers (train pipeline, right after the crop): 1..5 instances per crop, procedural shapes x textures
#     and cut-paste regions of training crops, placed mostly on the road, perspective-sized, soft or hard edges;
#     pasted pixels get the label 254 (outlier_index).
#   - decode head: InlierLoss(CE) (254 -> ignore: never trained as a known class) + EnergyMarginLoss (Liu et al.,
#     NeurIPS 2020: inlier free energy below m_in, outlier energy above m_out) + OutlierEntropyLoss (Hendrycks et
#     al., ICLR 2019; Meta-OoD, Chan et al., ICCV 2021: uniform prediction on outliers).
#   - auxiliary head: InlierLoss(CE) at the usual 0.4 (every head that sees labels must ignore 254).
# The label path is documented once, in anomseg_plugins/models/losses/outlier_labels.py.
# mmengine refuses a key defined by two _base_ files, so the pieces carry an oe_ prefix and a leaf config assembles
# them (see configs/outlier_exposure/deeplab_r18_tiny_demo_oe.py):
#   model = dict(decode_head=dict(loss_decode=_base_.oe_decode_losses),
#                auxiliary_head=dict(loss_decode=_base_.oe_aux_losses))
#   train_pipeline = _base_.train_pipeline[:3] + [_base_.oe_paste_outliers] + _base_.train_pipeline[3:]
#   train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
oe_outlier_index = 254
oe_paste_outliers = dict(
    type='PasteOutliers',
    sources=dict(procedural=1.0, cutpaste=1.0),
    num_outliers=(1, 5),
    size_range=(0.1, 0.4),
    min_depth=0.4,
    road_prob=0.8,
    soft_prob=0.5,
    outlier_index=oe_outlier_index)
# Energy margins in logit units: the closed-set demo model's inlier energies have median -5.3 (5-95%: -6.8..-3.0)
# on its test frames; m_in sits below most of them, m_out well above.
# Weights: the OE terms at 0.05 (energy) and 0.3 (entropy) next to cross-entropy at 1. At 0.1 / 1.0 the demo
# fine-tune lost 2.6 mIoU points for the same AUPR (22.4 vs 22.7); see configs/outlier_exposure/.
oe_decode_losses = [
    dict(
        type='InlierLoss',
        loss=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        outlier_index=oe_outlier_index),
    dict(type='EnergyMarginLoss', m_in=-6.0, m_out=-1.0, loss_weight=0.05, outlier_index=oe_outlier_index),
    dict(type='OutlierEntropyLoss', loss_weight=0.3, outlier_index=oe_outlier_index),
]
oe_aux_losses = [
    dict(
        type='InlierLoss',
        loss=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4),
        outlier_index=oe_outlier_index),
]
