# The study's baseline (37.57 mIoU): the headline model with resize 512x512 + flip + jitter(0.3), 30 epochs;
# trained, validated and tested on the frame resized to 512x512 (../_base_/datasets/street_hazards_basic.py).
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    '../_base_/datasets/street_hazards_basic.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adam_plateau_40e.py',
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=13),
    auxiliary_head=dict(num_classes=13, loss_decode=dict(loss_weight=0.4)))
train_cfg = dict(max_epochs=30)
