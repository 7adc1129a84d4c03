# PSPNet R50 (dilated, OS 8, PPM bins 1,2,3,6) + FCN aux (0.4) on StreetHazards, headline augmentation and schedule.
_base_ = [
    'mmseg::_base_/models/pspnet_r50-d8.py',
    '../_base_/datasets/street_hazards.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adam_plateau_40e.py',
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size), decode_head=dict(num_classes=13), auxiliary_head=dict(num_classes=13))
