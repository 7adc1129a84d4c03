# PSPNet R18 (dilated ResNetV1c, stages 3/4 dilation 2/4, output stride 8, PPM bins 1,2,3,6) + FCN aux (0.4).
_base_ = ['mmseg::_base_/models/pspnet_r50-d8.py']
model = dict(
    pretrained='open-mmlab://resnet18_v1c',
    backbone=dict(depth=18),
    decode_head=dict(in_channels=512, channels=128, pool_scales=(1, 2, 3, 6)),
    auxiliary_head=dict(in_channels=256, channels=64))
