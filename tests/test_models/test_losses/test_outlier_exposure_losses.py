"""Outlier-exposure losses: each equals its formula by value, is zero where it should be, and the wrapper makes a
closed-set loss ignore outliers exactly. The label path is documented in
anomseg_plugins/models/losses/outlier_labels.py."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from anomseg_plugins.models.losses import OUTLIER_INDEX

O, IGN = OUTLIER_INDEX, 255


def _logits():
    # (N=1, C=2, H=1, W=4): four pixels with hand-checkable logits
    return torch.tensor([[[[0.0, 2.0, math.log(3.0), 1.0]], [[0.0, 0.0, 0.0, -1.0]]]])


def test_energy_margin_loss_equals_formula_by_hand():
    logits = _logits()
    # energies E = -logsumexp: px0 -log 2, px1 -log(e^2 + 1), px2 -log 4, px3 -log(e + 1/e)
    label = torch.tensor([[[0, 1, O, IGN]]])
    loss = MODELS.build(dict(type='EnergyMarginLoss', m_in=-3.0, m_out=-1.0, loss_weight=1.0))
    e0, e1, e2 = -math.log(2), -math.log(math.e**2 + 1), -math.log(4)
    inl = (max(0, e0 + 3)**2 + max(0, e1 + 3)**2) / 2  # inliers px0, px1 (px3 ignored)
    out = max(0, -1 - e2)**2  # outlier px2
    assert loss(logits, label, ignore_index=IGN).item() == pytest.approx(inl + out, rel=1e-6)
    assert e1 > -3  # the inlier hinge is active on px1, so this would catch a sign error
    weighted = MODELS.build(dict(type='EnergyMarginLoss', m_in=-3.0, m_out=-1.0, loss_weight=0.1))
    assert weighted(logits, label).item() == pytest.approx(0.1 * (inl + out), rel=1e-6)


def test_energy_margin_loss_temperature():
    logits = _logits()
    label = torch.tensor([[[O, O, O, O]]])
    loss = MODELS.build(dict(type='EnergyMarginLoss', m_in=-10.0, m_out=5.0, temperature=2.0, loss_weight=1.0))
    energy = -2.0 * torch.logsumexp(logits / 2.0, dim=1)
    assert loss(logits, label).item() == pytest.approx(((5.0 - energy)**2).mean().item(), rel=1e-6)


def test_energy_margin_loss_is_zero_within_margins_and_without_pixels():
    logits = _logits()
    loss = MODELS.build(dict(type='EnergyMarginLoss', m_in=-1.0, m_out=-0.8, loss_weight=1.0))
    # inliers px1 (E = -2.13) and px2 (E = -1.39) are below m_in; the outlier px0 (E = -0.69) is above m_out
    label = torch.tensor([[[O, 1, 0, IGN]]])
    assert loss(logits, label).item() == 0.0
    # no inlier and no outlier pixel at all: exactly 0 and still differentiable
    logits.requires_grad_(True)
    out = loss(logits, torch.full((1, 1, 4), IGN))
    assert out.item() == 0.0 and out.requires_grad


def test_energy_margin_loss_rejects_bad_margins_and_a_colliding_outlier_index():
    with pytest.raises(ValueError, match='m_in < m_out'):
        MODELS.build(dict(type='EnergyMarginLoss', m_in=1.0, m_out=0.0))
    loss = MODELS.build(dict(type='EnergyMarginLoss', outlier_index=1))
    with pytest.raises(ValueError, match='outlier_index=1'):
        loss(_logits(), torch.zeros(1, 1, 4, dtype=torch.long))


def test_outlier_entropy_loss_equals_cross_entropy_to_uniform():
    logits = _logits()
    label = torch.tensor([[[O, 0, O, IGN]]])
    loss = MODELS.build(dict(type='OutlierEntropyLoss', loss_weight=1.0))
    # px0: p = (1/2, 1/2) -> -(1/2)(log 1/2 + log 1/2) = log 2; px2: p = (3/4, 1/4)
    px2 = -0.5 * (math.log(0.75) + math.log(0.25))
    assert loss(logits, label).item() == pytest.approx((math.log(2) + px2) / 2, rel=1e-6)
    half = MODELS.build(dict(type='OutlierEntropyLoss', loss_weight=0.5))
    assert half(logits, label).item() == pytest.approx(0.5 * (math.log(2) + px2) / 2, rel=1e-6)


def test_outlier_entropy_loss_is_zero_without_outliers_whatever_the_logits():
    loss = MODELS.build(dict(type='OutlierEntropyLoss', loss_weight=1.0))
    logits = torch.randn(2, 5, 3, 3) * 10
    assert loss(logits, torch.randint(0, 5, (2, 3, 3))).item() == 0.0


def test_inlier_loss_equals_cross_entropy_with_outliers_ignored():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5, 6)
    label = torch.randint(0, 4, (2, 5, 6))
    label[0, :2] = O
    label[1, 3, :] = IGN
    for avg_non_ignore in (False, True):
        ce = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=avg_non_ignore)
        wrapped = MODELS.build(dict(type='InlierLoss', loss=ce))
        plain = MODELS.build(ce)
        replaced = torch.where(label == O, torch.full_like(label, IGN), label)
        got = wrapped(logits, label, weight=None, ignore_index=IGN)
        assert got.item() == pytest.approx(plain(logits, replaced, weight=None, ignore_index=IGN).item(), rel=1e-6)
        # and it differs from counting the outlier pixels as a known class (what a missing wrapper would train)
        as_class0 = torch.where(label == O, torch.zeros_like(label), label)
        assert abs(got.item() - plain(logits, as_class0, ignore_index=IGN).item()) > 1e-3
    assert wrapped.loss_name == 'loss_ce'
    # the bare mmseg loss cannot take the outlier label at all
    with pytest.raises((IndexError, RuntimeError)):
        plain(logits, label, ignore_index=IGN)


def test_inlier_loss_name_and_config_errors():
    named = MODELS.build(dict(type='InlierLoss', loss=dict(type='CrossEntropyLoss'), loss_name='loss_inlier_ce'))
    assert named.loss_name == 'loss_inlier_ce'
    with pytest.raises(ValueError, match="start with 'loss_'"):
        MODELS.build(dict(type='InlierLoss', loss=dict(type='CrossEntropyLoss'), loss_name='ce'))
    with pytest.raises(ValueError, match='type'):
        MODELS.build(dict(type='InlierLoss', loss='CrossEntropyLoss'))
    with pytest.raises(ValueError, match='outlier_index'):
        MODELS.build(dict(type='InlierLoss', loss=dict(type='CrossEntropyLoss'), outlier_index=255))


def test_decode_head_loss_by_feat_with_outlier_labels():
    """Through mmseg's unmodified BaseDecodeHead.loss_by_feat: every loss gets the same seg_label with 254."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    head = MODELS.build(
        dict(
            type='FCNHead',
            in_channels=4,
            channels=4,
            num_convs=1,
            num_classes=3,
            concat_input=False,
            loss_decode=[
                dict(type='InlierLoss', loss=dict(type='CrossEntropyLoss')),
                dict(type='EnergyMarginLoss', m_in=-20.0, m_out=20.0, loss_weight=1.0),
                dict(type='OutlierEntropyLoss', loss_weight=1.0)
            ]))
    label = torch.randint(0, 3, (1, 8, 8))
    label[0, :4, :4] = O
    sample = SegDataSample(gt_sem_seg=PixelData(data=label))
    logits = torch.randn(1, 3, 8, 8, requires_grad=True)
    losses = head.loss_by_feat(logits, [sample])
    assert {'loss_ce', 'loss_energy_margin', 'loss_outlier_entropy'} <= set(losses)
    energy = -torch.logsumexp(logits.detach(), 1)[0]
    # every outlier energy is below m_out = 20 and every inlier energy above m_in = -20: both hinges active
    expected = ((20.0 - energy[:4, :4])**2).mean() + (F.relu(energy + 20.0)[label[0] < 3]**2).mean()
    assert losses['loss_energy_margin'].item() == pytest.approx(expected.item(), rel=1e-5)
