# R18 (OS 8) + mmseg OCR head on Cityscapes as the PSPNet study trained it (61.86 mIoU there).
_base_ = [
    '../_base_/models/ocrnet_r18-d8.py',
    '../_base_/datasets/cityscapes_epoch.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/sgd_poly_120e.py',
]
crop_size = (512, 1024)
model = dict(data_preprocessor=dict(size=crop_size))
