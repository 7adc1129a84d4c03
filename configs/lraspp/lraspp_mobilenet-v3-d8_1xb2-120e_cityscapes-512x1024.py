# MobileNetV3-large + LR-ASPP on Cityscapes as the PSPNet study trained it (56.82 mIoU there).
_base_ = [
    'mmseg::_base_/models/lraspp_m-v3-d8.py',
    '../_base_/datasets/cityscapes_epoch.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/sgd_poly_120e.py',
]
crop_size = (512, 1024)
model = dict(pretrained='open-mmlab://contrib/mobilenet_v3_large', data_preprocessor=dict(size=crop_size))
