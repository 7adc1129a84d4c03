# PSPNet R101 on Cityscapes as the PSPNet study trained it (71.07 mIoU there).
_base_ = ['./pspnet_r50-d8_1xb2-120e_cityscapes-512x1024.py']
model = dict(pretrained='open-mmlab://resnet101_v1c', backbone=dict(depth=101))
