# The study's deeper variant (37.07 mIoU): DeepLabV3+ R101, basic augmentation.
_base_ = ['./deeplabv3plus_r50-d8_1xb4-basic-30e_streethazards-512x512.py']
model = dict(pretrained='open-mmlab://resnet101_v1c', backbone=dict(depth=101))
