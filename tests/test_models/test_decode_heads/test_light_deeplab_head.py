"""LightDeepLabHead: shapes, structure (parameter count by formula), full EncoderDecoder forward."""
import copy

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import anomseg_plugins.models  # noqa: F401  (registers LightDeepLabHead)
from anomseg_plugins.models import LightDeepLabHead

init_default_scope('mmseg')

NORM = dict(type='BN', requires_grad=True)
# MobileNetV2 (widen 1.0) at output stride 16: layers 6-7 keep stride 16 and use dilation 2.
# out_indices (1, 2, 6): 24 ch at stride 4, 32 ch at stride 8, 320 ch at stride 16.
BACKBONE = dict(
    type='MobileNetV2',
    widen_factor=1.,
    strides=(1, 2, 2, 2, 1, 1, 1),
    dilations=(1, 1, 1, 1, 1, 2, 2),
    out_indices=(1, 2, 6),
    norm_cfg=NORM)


def head_cfg(num_classes: int = 21, **overrides) -> dict:
    cfg = dict(
        type='LightDeepLabHead',
        in_channels=(24, 32, 320),
        in_index=(0, 1, 2),
        channels=128,
        dilations=(6, 12, 18),
        low_channels=32,
        mid_channels=32,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=NORM,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))
    cfg.update(overrides)
    return cfg


def model_cfg(num_classes: int = 21) -> ConfigDict:
    return ConfigDict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            pad_val=0,
            seg_pad_val=255),
        backbone=copy.deepcopy(BACKBONE),
        decode_head=head_cfg(num_classes),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def expected_head_params(c_low, c_mid, c_high, num_classes, channels=128, skip=32, n_dil=3) -> int:
    """Parameters of the head written out from its description (convs without bias + BN weight/bias)."""

    def conv_bn(cin, cout, k=1):
        return cin * cout * k * k + 2 * cout

    def sep(cin, cout):  # depthwise 3x3 + BN, pointwise 1x1 + BN
        return cin * 9 + 2 * cin + conv_bn(cin, cout)

    aspp = conv_bn(c_high, channels) * 2 + n_dil * sep(c_high, channels)  # image pool, 1x1, dilated
    aspp += conv_bn((n_dil + 2) * channels, channels)  # projection
    skips = conv_bn(c_mid, skip) + conv_bn(c_low, skip)
    decoder = 2 * sep(channels + skip, channels)
    classifier = channels * num_classes + num_classes
    return aspp + skips + decoder + classifier


def test_head_output_shape():
    head = MODELS.build(head_cfg(num_classes=21))
    head.eval()
    feats = (torch.randn(2, 24, 32, 48), torch.randn(2, 32, 16, 24), torch.randn(2, 320, 8, 12))
    out = head(feats)
    assert out.shape == (2, 21, 32, 48)  # stride 4 of a 128x192 image


def test_in_index_selects_low_mid_high():
    """``in_index`` maps backbone outputs to (low, mid, high); unused outputs are ignored."""
    head = MODELS.build(head_cfg(num_classes=5, in_index=(1, 3, 4))).eval()
    feats = [
        torch.randn(1, 7, 64, 64),
        torch.randn(1, 24, 32, 32),
        torch.randn(1, 9, 16, 16),
        torch.randn(1, 32, 16, 16),
        torch.randn(1, 320, 8, 8)
    ]
    with torch.no_grad():
        out = head(feats)
        assert out.shape == (1, 5, 32, 32)
        feats[0], feats[2] = torch.zeros(1, 7, 3, 3), torch.zeros(1, 9, 2, 2)  # unused: no effect
        assert torch.equal(head(feats), out)
        feats[3] = torch.zeros(1, 32, 16, 16)  # the mid-level input is used
        assert not torch.equal(head(feats), out)


def test_head_structure_matches_description():
    head = LightDeepLabHead(in_channels=(24, 32, 320), channels=128, num_classes=21, norm_cfg=NORM)
    assert len(head.aspp_modules) == 4  # 1x1 + three dilated separable 3x3
    assert [m.depthwise_conv.conv.dilation for m in list(head.aspp_modules)[1:]] == [(6, 6), (12, 12), (18, 18)]
    assert head.mid_project.conv.out_channels == 32 and head.low_project.conv.out_channels == 32
    assert head.mid_fuse.depthwise_conv.conv.in_channels == 128 + 32
    assert head.low_fuse.pointwise_conv.conv.out_channels == 128
    assert isinstance(head.dropout, torch.nn.Dropout2d) and head.dropout.p == 0.1
    assert n_params(head) == expected_head_params(24, 32, 320, 21)


@pytest.mark.parametrize('num_classes', [21, 13])
def test_total_parameters_within_budget(num_classes):
    model = MODELS.build(model_cfg(num_classes))
    total, backbone, head = n_params(model), n_params(model.backbone), n_params(model.decode_head)
    print(f'\nMobileNetV2 (OS16) + LightDeepLabHead, {num_classes} classes: total {total:,} '
          f'(backbone {backbone:,}, head {head:,}) parameters')
    assert head == expected_head_params(24, 32, 320, num_classes)
    assert total == backbone + head
    assert total <= 2.6e6, f'{total:,} parameters > 2.6M budget'


def test_rejects_single_input_and_bad_dilations():
    with pytest.raises(ValueError, match=r'three inputs \(low, mid, high\)'):
        LightDeepLabHead(in_channels=320, channels=128, in_index=-1, num_classes=21)
    with pytest.raises(ValueError, match='three inputs'):
        LightDeepLabHead(in_channels=(32, 320), channels=128, in_index=(0, 1), num_classes=21)
    with pytest.raises(ValueError, match='dilations must be a list of rates > 1'):
        LightDeepLabHead(in_channels=(24, 32, 320), channels=128, dilations=(1, 6, 12), num_classes=21)


def _samples(n: int, h: int, w: int, num_classes: int):
    samples = []
    for i in range(n):
        gt = torch.randint(0, num_classes, (1, h, w), generator=torch.Generator().manual_seed(i))
        gt[:, :4, :] = 255
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        sample.gt_sem_seg = PixelData(data=gt)
        samples.append(sample)
    return samples


def test_encoder_decoder_loss_predict_tensor():
    num_classes = 13
    model = MODELS.build(model_cfg(num_classes))
    inputs = torch.randn(2, 3, 64, 96)

    model.train()
    losses = model(inputs, _samples(2, 64, 96, num_classes), mode='loss')
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg'}
    assert losses['decode.loss_ce'].ndim == 0 and torch.isfinite(losses['decode.loss_ce'])
    losses['decode.loss_ce'].backward()
    assert model.decode_head.low_project.conv.weight.grad is not None
    assert model.backbone.conv1.conv.weight.grad is not None

    model.eval()
    with torch.no_grad():
        logits = model(inputs, mode='tensor')
        assert logits.shape == (2, num_classes, 16, 24)  # H/4, W/4
        results = model(inputs, _samples(2, 64, 96, num_classes), mode='predict')
    assert len(results) == 2
    assert results[0].seg_logits.data.shape == (num_classes, 64, 96)
    assert results[0].pred_sem_seg.data.shape == (1, 64, 96)
    assert int(results[0].pred_sem_seg.data.max()) < num_classes
