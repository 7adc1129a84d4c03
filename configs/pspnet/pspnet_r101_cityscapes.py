# PSPNet R101 on Cityscapes as the PSPNet study trained it (71.07 mIoU there).
_base_ = ['./pspnet_r50_cityscapes.py']
model = dict(pretrained='open-mmlab://resnet101_v1c', backbone=dict(depth=101))
