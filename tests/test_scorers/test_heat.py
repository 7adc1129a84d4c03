import numpy as np
import pytest
import torch

from anomseg_plugins.scorers import HEAT


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
    g_map = torch.nn.functional.interpolate(-feat.norm(dim=1, keepdim=True), size=(8, 8), mode='bilinear',
                                            align_corners=False)[:, 0]
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
