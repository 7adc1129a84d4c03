# Lightweight DeepLab (README "Configs"; 6.83M -> 2.52M parameters in the study, 2.16M here: mmseg's MobileNetV2 has no
# 1280-ch last layer): MobileNetV2 (widen 1.0, output stride 16) + LightDeepLabHead: ASPP 128 ch x 3 rates + pooling,
# dropout 0.1, mid (stride 8) and low (stride 4) skips projected to 32 ch, two depthwise-separable decoder stages.
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained='mmcls://mobilenet_v2',
    backbone=dict(
        type='MobileNetV2',
        widen_factor=1.,
        strides=(1, 2, 2, 2, 1, 1, 1),
        dilations=(1, 1, 1, 1, 1, 2, 2),
        out_indices=(1, 2, 6),
        norm_cfg=norm_cfg),
    decode_head=dict(
        type='LightDeepLabHead',
        in_channels=(24, 32, 320),
        in_index=(0, 1, 2),
        channels=128,
        dilations=(6, 12, 18),
        low_channels=32,
        mid_channels=32,
        dropout_ratio=0.1,
        num_classes=21,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
