"""HEAT at the ends of its argument ranges (no memory, no smoothing, a wider kernel), its default feature weight, and
the precision of its running statistics."""
import numpy as np
import torch
import torch.nn.functional as F

from anomseg_plugins.scorers import HEAT


def numpy_box_mean(e, k):
    """Mean of ``e`` (N, H, W) over the k x k neighbourhood of every pixel, inside the image only."""
    n, h, w = e.shape
    r = k // 2
    out = np.zeros_like(e)
    for i in range(h):
        for j in range(w):
            out[:, i, j] = e[:, max(i - r, 0):i + r + 1, max(j - r, 0):j + r + 1].mean(axis=(1, 2))
    return out


def numpy_energy(logits):
    z = logits.numpy().astype(np.float64)
    m = z.max(1)
    return -(m + np.log(np.exp(z - m[:, None]).sum(1)))


def logits_of(seed, n=2, c=4, h=7, w=6):
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2


def standardised(s):
    return (s - s.mean()) / s.std()


def test_alpha_0_normalises_every_image_by_its_own_statistics():
    logits = logits_of(0)
    out = HEAT(alpha=0.0).score(logits)
    s = numpy_box_mean(numpy_energy(logits), 3)
    for i in range(2):
        np.testing.assert_allclose(out[i].numpy(), standardised(s[i]), rtol=1e-4, atol=1e-5)


def test_kernel_size_1_does_not_smooth():
    logits = logits_of(1, n=1)
    out = HEAT(kernel_size=1).score(logits)
    np.testing.assert_allclose(out[0].numpy(), standardised(numpy_energy(logits)[0]), rtol=1e-4, atol=1e-5)


def test_kernel_size_5_averages_the_5_x_5_neighbourhood_inside_the_image():
    logits = logits_of(2, n=1)
    out = HEAT(kernel_size=5).score(logits)
    assert out.shape == (1, 7, 6)
    s = numpy_box_mean(numpy_energy(logits), 5)
    np.testing.assert_allclose(out[0].numpy(), standardised(s[0]), rtol=1e-4, atol=1e-5)


def test_feature_term_has_weight_1_by_default():
    logits = logits_of(3, n=1, h=8, w=8)
    feat = torch.rand(1, 5, 4, 4, generator=torch.Generator().manual_seed(4)) + 0.5
    heat = HEAT(feature_stage=1)
    assert heat.feature_weight == 1.0
    out = heat.score(logits, [None, feat])
    g = F.interpolate(-feat.norm(dim=1, keepdim=True), size=(8, 8), mode='bilinear', align_corners=False)[0, 0]
    s = numpy_box_mean(numpy_energy(logits), 3)[0]
    np.testing.assert_allclose(out[0].numpy(), standardised(s) + standardised(g.double().numpy()), rtol=1e-4, atol=1e-4)


def test_running_statistics_are_kept_in_float64():
    """200 images, smoothed energy 0 +- 0.5 in the first and 1000 +- 0.5 in the others: M approaches 1000 by ever
    smaller steps (0.1 * (1000 - M)). In float32 those steps drop below half a unit in the last place of M (6e-5)
    about 4e-4 short of 1000, in float64 M reaches 1000 to float32 precision: the last image's scores are
    (1000 -+ 0.5 - 1000) / 0.5 = -+1."""
    logits = torch.full((200, 1, 1, 2), -1000.0)  # one class: energy = -logit
    logits[..., 0] += 0.5
    logits[..., 1] -= 0.5
    logits[0] += 1000.0
    out = HEAT(kernel_size=1).score(logits)
    m, d = 0.0, 0.5  # the exact running statistics
    for i in range(1, 200):
        m, d = 0.9 * m + 0.1 * 1000.0, 0.9 * d + 0.1 * 0.5
    assert abs(m - 1000.0) < 1e-5 and abs(d - 0.5) < 1e-12
    torch.testing.assert_close(out[-1], torch.tensor([[-1.0, 1.0]]), rtol=0, atol=1e-5)
