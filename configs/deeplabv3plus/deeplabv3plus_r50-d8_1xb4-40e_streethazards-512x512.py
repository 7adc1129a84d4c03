# Headline recipe (README "Configs"): DeepLabV3+ R50 (mmseg's DepthwiseSeparableASPPHead, i.e. a true
# V3+ decoder; the study's "DeepLabV3+" was torchvision's DeepLabV3 without decoder), aux FCN head on
# stage 3 with loss weight 0.4, 512x512 multi-scale crops, Adam 1e-4, batch 4, plateau LR on val mIoU.
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    '../_base_/datasets/street_hazards.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adam_plateau_40e.py',
]
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(num_classes=13),
    auxiliary_head=dict(num_classes=13, loss_decode=dict(loss_weight=0.4)))
