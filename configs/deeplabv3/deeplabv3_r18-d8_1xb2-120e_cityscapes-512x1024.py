# R18 + mmseg ASPPHead rates 1,2,3,6 + FCN aux (0.4) on Cityscapes as the PSPNet study trained it (19 classes,
# 512x1024, SGD 0.01 + poly).
_base_ = [
    '../_base_/models/aspp_r18-d8.py',
    '../_base_/datasets/cityscapes_epoch.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/sgd_poly_120e.py',
]
crop_size = (512, 1024)
model = dict(data_preprocessor=dict(size=crop_size))
