# Outlier exposure fine-tuning of PSPNet R18 (configs/pspnet/pspnet_r18-d8_1xb4-40e_streethazards-512x512.py) from
# its closed-set checkpoint: the same pieces as the DeepLabV3+ configs, another model family. 4 epochs at Adam 2e-5.
# Point load_from at your closed-set checkpoint:
#   --cfg-options load_from=work_dirs/pspnet_r18-d8_1xb4-40e_streethazards-512x512/....pth
_base_ = [
    '../pspnet/pspnet_r18-d8_1xb4-40e_streethazards-512x512.py', '../_base_/outlier_exposure/paste_energy_entropy.py'
]
load_from = 'work_dirs/pspnet_r18-d8_1xb4-40e_streethazards-512x512/closed_set.pth'
model = dict(
    decode_head=dict(loss_decode=_base_.oe_decode_losses), auxiliary_head=dict(loss_decode=_base_.oe_aux_losses))
# PasteOutliers right after MultiScaleSquareCrop (index 2), before flip and the photometric transforms
train_pipeline = _base_.train_pipeline[:3] + [_base_.oe_paste_outliers] + _base_.train_pipeline[3:]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(lr=2e-5))
train_cfg = dict(max_epochs=4, val_interval=1)
