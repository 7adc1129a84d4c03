# Lightweight DeepLab on Pascal VOC 2012 (21 classes, 512x512) as its study trained it: Adam 1e-4 + plateau.
_base_ = [
    '../_base_/models/light_deeplab_mobilenetv2.py',
    '../_base_/datasets/pascal_voc12_epoch.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adam_plateau_40e.py',
]
crop_size = (512, 512)
model = dict(data_preprocessor=dict(size=crop_size))
