# Lightweight DeepLab (2.16M parameters) on StreetHazards with the headline augmentation and schedule.
_base_ = [
    '../_base_/models/light_deeplab_mobilenetv2.py',
    '../_base_/datasets/street_hazards.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adam_plateau_40e.py',
]
crop_size = (512, 512)
model = dict(data_preprocessor=dict(size=crop_size), decode_head=dict(num_classes=13))
