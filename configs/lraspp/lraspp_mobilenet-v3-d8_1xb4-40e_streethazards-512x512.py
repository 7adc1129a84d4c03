# MobileNetV3-large + LR-ASPP as mmseg has it (this family has no aux head) on StreetHazards.
_base_ = [
    'mmseg::_base_/models/lraspp_m-v3-d8.py',
    '../_base_/datasets/street_hazards.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adam_plateau_40e.py',
]
crop_size = (512, 512)
model = dict(
    pretrained='open-mmlab://contrib/mobilenet_v3_large',
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=13))
