# R18 (OS 8) + mmseg OCR head (CascadeEncoderDecoder; FCN soft regions at loss 0.4) on StreetHazards.
# (decode_head is a list, and config lists are replaced, not merged: both stages are spelled out.)
_base_ = [
    '../_base_/models/ocrnet_r18-d8.py',
    '../_base_/datasets/street_hazards.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adam_plateau_40e.py',
]
crop_size = (512, 512)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=[
        dict(
            type='FCNHead',
            in_channels=256,
            in_index=2,
            channels=64,
            num_convs=1,
            concat_input=False,
            dropout_ratio=0.1,
            num_classes=13,
            norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
        dict(
            type='OCRHead',
            in_channels=512,
            in_index=3,
            channels=128,
            ocr_channels=64,
            dropout_ratio=0.1,
            num_classes=13,
            norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    ])
