# PSPNet R50 (dilated, OS 8, PPM bins 1,2,3,6) + FCN aux (0.4) on Cityscapes as the PSPNet study trained it (68.97
# mIoU there).
_base_ = [
    'mmseg::_base_/models/pspnet_r50-d8.py',
    '../_base_/datasets/cityscapes_epoch.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/sgd_poly_120e.py',
]
crop_size = (512, 1024)
model = dict(data_preprocessor=dict(size=crop_size))
