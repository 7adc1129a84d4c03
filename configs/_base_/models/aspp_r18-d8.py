# The PSPNet study's R18 with the context module swapped for mmseg's ASPPHead, rates 1,2,3,6 (+ FCN aux 0.4).
_base_ = ['./pspnet_r18-d8.py']
model = dict(
    decode_head=dict(
        _delete_=True,
        type='ASPPHead',
        in_channels=512,
        in_index=3,
        channels=128,
        dilations=(1, 2, 3, 6),
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
