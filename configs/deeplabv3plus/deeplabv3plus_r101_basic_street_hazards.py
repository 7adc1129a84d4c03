# The study's deeper variant (37.07 mIoU): DeepLabV3+ R101, basic augmentation.
_base_ = ['./deeplabv3plus_r50_basic_street_hazards.py']
model = dict(pretrained='open-mmlab://resnet101_v1c', backbone=dict(depth=101))
