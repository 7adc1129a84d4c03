import numpy as np
import pytest
import torch

from anomseg_plugins.scorers import HEAT

HEADLINE = 'configs/deeplabv3plus/deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py'


def numpy_smoothed_energy(logits):
    z = logits.numpy().astype(np.float64)
    m = z.max(1)
    e = -(m + np.log(np.exp(z - m[:, None]).sum(1)))
    n, h, w = e.shape
    out = np.zeros_like(e)
    for i in range(h):
        for j in range(w):
            out[:, i, j] = e[:, max(i - 1, 0):i + 2, max(j - 1, 0):j + 2].mean(axis=(1, 2))
    return out


def test_heat_matches_definition_over_a_sequence_of_images():
    g = torch.Generator().manual_seed(0)
    images = [torch.randn(1, 4, 5, 6, generator=g) * 2 for _ in range(3)]
    heat = HEAT(alpha=0.9)
    # the two first images in one batch, the third alone: the EMA runs image by image either way
    out = torch.cat([heat.score(torch.cat(images[:2])), heat.score(images[2])])
    assert out.shape == (3, 5, 6) and out.dtype == torch.float32
    s = numpy_smoothed_energy(torch.cat(images))
    M, D = s[0].mean(), s[0].std()
    for i in range(3):
        if i:
            M, D = 0.9 * M + 0.1 * s[i].mean(), 0.9 * D + 0.1 * s[i].std()
        np.testing.assert_allclose(out[i].numpy(), (s[i] - M) / D, rtol=1e-4, atol=1e-5)


def test_heat_reset_starts_over():
    x = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    y = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(2)) * 3
    heat = HEAT()
    first = heat.score(x)
    heat.score(y)
    assert not torch.allclose(heat.score(x), first)
    heat.reset()
    torch.testing.assert_close(heat.score(x), first)
    assert 'running' not in ''.join(heat.state_dict())  # running statistics are not saved


def test_heat_flat_region_scores_higher_than_peaked():
    logits = torch.zeros(1, 3, 9, 9)
    logits[0, 0] = 10.0  # confident everywhere ...
    logits[0, 0, 3:6, 3:6] = 0.0  # ... except a flat 3x3 patch
    out = HEAT().score(logits)[0]
    assert out[4, 4] > out[0, 0]
    assert out[4, 4] == out.max()


def test_heat_feature_term():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(1, 3, 8, 8, generator=g)
    feat = torch.rand(1, 5, 4, 4, generator=g) + 1.0
    feat[0, :, 0, 0] = 0.0  # a feature pixel with a tiny norm: unfamiliar
    feats = [None, None, feat]
    base = HEAT().score(logits)
    with_feat = HEAT(feature_stage=2, feature_weight=0.5)
    assert with_feat.feature_stages == (2, )
    out = with_feat.score(logits, feats)
    g_map = torch.nn.functional.interpolate(
        -feat.norm(dim=1, keepdim=True), size=(8, 8), mode='bilinear', align_corners=False)[:, 0]
    expected = base + 0.5 * (g_map - g_map.mean()) / g_map.std(correction=0)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    assert (out - base)[0, 0, 0] == (out - base).max()
    with pytest.raises(ValueError, match='HEAT needs the output of backbone stage 2'):
        HEAT(feature_stage=2).score(logits, None)


def test_heat_rejects_bad_arguments():
    with pytest.raises(ValueError, match='kernel_size must be a positive odd number'):
        HEAT(kernel_size=4)
    with pytest.raises(ValueError, match=r'alpha must be in \[0, 1\)'):
        HEAT(alpha=1.0)


def per_image_auroc(score: torch.Tensor, labels: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score
    return roc_auc_score(labels.reshape(-1), score.numpy().astype(np.float64).reshape(-1))


@pytest.mark.parametrize('feature_stage', [None, 2])
def test_per_image_metrics_depend_on_earlier_images_only_with_the_feature_term(feature_stage):
    """Without the feature term the running normalisation is an increasing affine map of the image's smoothed
    energy: the image's ranking, and so its per-image AUROC, is the same scored fresh or after other images.
    With it, the energy and feature terms are scaled by different running statistics, whose ratio the earlier
    images change: the same image gets another per-image AUROC."""
    g = torch.Generator().manual_seed(4)
    logits, feat = torch.randn(1, 5, 16, 16, generator=g), torch.rand(1, 8, 8, 8, generator=g) + 0.5
    labels = np.zeros((16, 16), np.int64)
    labels[4:10, 5:12] = 1
    # earlier images with a much wider energy spread and a much narrower feature-norm spread
    earlier = [(torch.randn(1, 5, 16, 16, generator=g) * 6, 2.0 + 0.01 * torch.rand(1, 8, 8, 8, generator=g))
               for _ in range(3)]
    fresh = HEAT(feature_stage=feature_stage)
    after = HEAT(feature_stage=feature_stage)
    for z, f in earlier:
        after.score(z, [None, None, f])
    a = fresh.score(logits, [None, None, feat])[0]
    b = after.score(logits, [None, None, feat])[0]
    auroc_fresh, auroc_after = per_image_auroc(a, labels), per_image_auroc(b, labels)
    if feature_stage is None:
        assert auroc_after == auroc_fresh
        assert torch.equal(torch.argsort(a.reshape(-1), stable=True), torch.argsort(b.reshape(-1), stable=True))
    else:
        assert abs(auroc_after - auroc_fresh) > 1e-3, (auroc_fresh, auroc_after)


@pytest.mark.slow  # a full test run
def test_study_scorer_set_runs_heat_with_the_layer3_feature_term(tmp_path):
    """configs/_base_/anomaly/study_scorers.py composed with the headline config: HEAT reads backbone stage
    index 2, which with mmseg's ResNet out_indices (0, 1, 2, 3) is the output of layer3 (1024 channels for R50,
    stride 8 with the dilated backbone), the aux head's input."""
    import os.path as osp

    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import METRICS, MODELS

    import anomseg_plugins  # noqa: F401
    init_default_scope('mmseg')
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    path = tmp_path / 'study.py'
    path.write_text(f"_base_ = [{osp.join(repo, HEADLINE)!r}, "
                    f"{osp.join(repo, 'configs', '_base_', 'anomaly', 'study_scorers.py')!r}]\n"
                    'test_cfg = _base_.anomaly_test_cfg\ntest_evaluator = _base_.anomaly_test_evaluator\n')
    cfg = Config.fromfile(str(path))
    metric = METRICS.build(cfg.test_evaluator[1])
    assert metric.scorer_names == ['MSP', 'MaxLogit', 'SML', 'HEAT']
    heat = metric.scorers[3]
    assert isinstance(heat, HEAT) and heat.feature_stage == 2 and heat.feature_stages == (2, )
    assert tuple(cfg.model.backbone.out_indices) == (0, 1, 2, 3) and cfg.model.auxiliary_head.in_index == 2
    backbone = MODELS.build(cfg.model.backbone)
    backbone.eval()  # (mmseg's ResNet.train() returns None: no chaining)
    seen = {}
    backbone.layer3.register_forward_hook(lambda module, inputs, output: seen.update(layer3=output))
    with torch.no_grad():
        outs = backbone(torch.randn(1, 3, 64, 64))
    assert outs[2].shape == (1, 1024, 8, 8)
    assert torch.equal(outs[2], seen['layer3'])
