"""A tiny segmentor config shared by the tests that need a real mmseg model but not a trained one."""
from typing import Optional, Tuple

from mmengine.config import ConfigDict


def tiny_segmentor_cfg(num_classes: int,
                       mode: str = 'whole',
                       size_divisor: Optional[int] = None,
                       stride: Tuple[int, int] = (12, 12)) -> ConfigDict:
    """A tiny dilated ResNet-18 + FCN head (as a ConfigDict, like a config file gives it); ``mode='slide'`` uses
    16x16 windows at ``stride``; ``size_divisor`` pads test inputs in the data preprocessor."""
    norm_cfg = dict(type='BN', requires_grad=True)
    preprocessor = dict(
        type='SegDataPreProcessor',
        mean=[123.7, 116.3, 103.5],
        std=[58.4, 57.1, 57.4],
        bgr_to_rgb=False,
        pad_val=0,
        seg_pad_val=255)
    if size_divisor:
        preprocessor['test_cfg'] = dict(size_divisor=size_divisor)
    return ConfigDict(
        type='EncoderDecoder',
        data_preprocessor=preprocessor,
        backbone=dict(
            type='ResNetV1c',
            depth=18,
            stem_channels=8,
            base_channels=8,
            out_indices=(0, 1, 2, 3),
            dilations=(1, 1, 2, 4),
            strides=(1, 2, 1, 1),
            norm_cfg=norm_cfg,
            contract_dilation=True),
        decode_head=dict(
            type='FCNHead',
            in_channels=64,
            in_index=3,
            channels=16,
            num_convs=1,
            concat_input=False,
            num_classes=num_classes,
            norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss')),
        train_cfg=dict(),
        test_cfg=dict(mode=mode, crop_size=(16, 16), stride=stride))
