"""The one backbone feature-capture path: unwrapping, the forward hook, per-sample slicing and its errors."""
import pytest
import torch
from mmseg.structures import SegDataSample
from torch import nn

from anomseg_plugins.engine.feature_capture import (BackboneFeatureCapture, batched_features, feature_stages,
                                                    find_tta_model, unwrap_model)
from anomseg_plugins.models.segmentors.logit_seg_tta_model import LogitSegTTAModel
from anomseg_plugins.scorers import HEAT, Mahalanobis, MaxLogit


class ToyBackbone(nn.Module):
    """Three 'stages': the input pooled by 1, 2 and 4."""

    def forward(self, x):
        return tuple(nn.functional.avg_pool2d(x, k) for k in (1, 2, 4))


class ToySegmentor(nn.Module):

    def __init__(self, test_cfg=None):
        super().__init__()
        self.backbone = ToyBackbone()
        self.test_cfg = test_cfg or dict(mode='whole')

    def test_step(self, inputs, calls=1):
        for _ in range(calls):
            self.backbone(inputs)
        return [SegDataSample(metainfo=dict(img_shape=inputs.shape[-2:])) for _ in range(inputs.shape[0])]


class Wrapper(nn.Module):

    def __init__(self, module):
        super().__init__()
        self.module = module


def test_unwrap_and_tta_lookup():
    segmentor = ToySegmentor()
    assert unwrap_model(segmentor) is segmentor and unwrap_model(Wrapper(Wrapper(segmentor))) is segmentor
    assert find_tta_model(Wrapper(segmentor)) is None
    tta = LogitSegTTAModel(module=segmentor)
    assert find_tta_model(Wrapper(tta)) is tta and unwrap_model(Wrapper(tta)) is segmentor


def test_capture_slices_each_sample_and_keeps_only_the_requested_stages():
    segmentor = ToySegmentor()
    scorers = [MaxLogit(), Mahalanobis(feature_stage=2), HEAT(feature_stage=1)]
    assert feature_stages(scorers) == (1, 2)
    capture = BackboneFeatureCapture.for_model(Wrapper(segmentor), scorers, 'Tester')
    x = torch.randn(2, 3, 8, 12)
    with capture:
        samples = segmentor.test_step(x)
        feats = capture.per_sample(samples)
    assert len(feats) == 2 and feats[0][0] is None
    torch.testing.assert_close(feats[1][1], nn.functional.avg_pool2d(x, 2)[1])
    torch.testing.assert_close(feats[0][2], nn.functional.avg_pool2d(x, 4)[0])
    assert [f.shape for f in batched_features(feats[0])[1:]] == [(1, 3, 4, 6), (1, 3, 2, 3)]
    segmentor.backbone(x)  # outside the context: not captured
    assert capture.pop() == []


def test_capture_without_stages_needs_no_backbone():
    capture = BackboneFeatureCapture.for_model(nn.Identity(), [MaxLogit()], 'Tester')
    with capture:
        assert capture.per_sample([SegDataSample()]) is None


def test_capture_errors_name_the_owner_and_the_fix():
    with pytest.raises(
            AttributeError,
            match=r"Tester: scorers \['HEAT'\] need backbone stages \[1\], but the model "
            r'\(Identity\) has no `backbone` module'):
        BackboneFeatureCapture.for_model(Wrapper(nn.Identity()), [HEAT(feature_stage=1)], 'Tester')
    segmentor = ToySegmentor(test_cfg=dict(mode='slide'))
    capture = BackboneFeatureCapture.for_model(segmentor, [HEAT(feature_stage=1)], 'Tester')
    with capture, pytest.raises(RuntimeError) as info:
        capture.per_sample(segmentor.test_step(torch.randn(1, 3, 8, 8), calls=3))
    assert str(info.value) == ("Tester: the backbone ran 3 times for one batch (model test_cfg {'mode': 'slide'}); "
                               'scorers using backbone features (HEAT) need whole-image inference: set '
                               "model.test_cfg.mode='whole' (test-time augmentation with LogitSegTTAModel is fine)")
    capture = BackboneFeatureCapture.for_model(segmentor, [HEAT(feature_stage=5)], 'Tester')
    with capture, pytest.raises(
            IndexError,
            match=r'Tester: scorers ask for backbone stage\(s\) \[5\], but '
            r'ToyBackbone returns 3 stage outputs'):
        segmentor.backbone(torch.randn(1, 3, 8, 8))


def test_entering_twice_registers_one_hook():
    segmentor = ToySegmentor()
    capture = BackboneFeatureCapture.for_model(segmentor, [HEAT(feature_stage=0)], 'Tester')
    capture.__enter__()
    capture.__enter__()
    segmentor.backbone(torch.randn(1, 3, 4, 4))
    assert len(capture.pop()) == 1
    capture.__exit__()
    segmentor.backbone(torch.randn(1, 3, 4, 4))
    assert capture.pop() == [] and not segmentor.backbone._forward_hooks
