"""SML statistics by value in the corner cases: one fit pixel per class, one class, zero variance, large logits,
and the errors."""
import numpy as np
import pytest
import torch

from anomseg_plugins.scorers import SML


def fit(scorer, batches):
    scorer.fit_begin()
    for logits, gt in batches:
        scorer.fit_step(logits, None, gt)
    scorer.fit_end()
    return scorer


def image(max_logits, classes, num_classes, other=-100.0):
    """(1, C, 1, P) logits whose pixel p has max logit ``max_logits[p]`` on class ``classes[p]``; all labelled."""
    logits = torch.full((1, num_classes, 1, len(max_logits)), other)
    for p, (m, c) in enumerate(zip(max_logits, classes)):
        logits[0, c, 0, p] = m
    return logits, torch.zeros(1, 1, len(max_logits), dtype=torch.long)


def test_min_pixels_1_gives_every_predicted_class_its_own_statistics():
    """min_pixels = 1 is allowed: even a class predicted on a single pixel keeps its own mean (that pixel's max
    logit) and standard deviation (0, floored at eps)."""
    batches = [image([2.0, 4.0, 9.0], [0, 0, 1], 3), image([5.0], [1], 3)]
    sml = fit(SML(min_pixels=1), batches)
    # class 0: {2, 4}; class 1: {9, 5}; class 2 never predicted: the global statistics of {2, 4, 9, 5}
    torch.testing.assert_close(sml.mu, torch.tensor([3.0, 7.0, 5.0]))
    torch.testing.assert_close(sml.sigma, torch.tensor([1.0, 2.0, float(np.std([2.0, 4.0, 9.0, 5.0]))]))
    single = fit(SML(min_pixels=1), [image([2.0, 4.0, 9.0], [0, 0, 1], 2)])
    torch.testing.assert_close(single.mu, torch.tensor([3.0, 9.0]))
    torch.testing.assert_close(single.sigma, torch.tensor([1.0, 1e-6]))


def test_single_class_logits():
    logits = torch.randn(2, 1, 3, 4, generator=torch.Generator().manual_seed(0)) * 3
    gt = torch.zeros(2, 3, 4, dtype=torch.long)
    gt[0, 0] = 255
    sml = fit(SML(min_pixels=1), [(logits, gt)])
    m = logits[:, 0][gt != 255].double().numpy()
    np.testing.assert_allclose(sml.mu.numpy(), [m.mean()], rtol=1e-6)
    np.testing.assert_allclose(sml.sigma.numpy(), [m.std()], rtol=1e-5)


def test_zero_variance_is_floored_at_the_default_eps():
    """Every fit pixel has max logit 3: sigma (own, global or shrunk) is 0, floored at eps = 1e-6."""
    logits, gt = image([3.0] * 6, [0, 0, 1, 1, 1, 2], 3)
    sml = fit(SML(), [(logits, gt)])
    assert sml.eps == 1e-6
    torch.testing.assert_close(sml.mu, torch.full((3, ), 3.0))
    torch.testing.assert_close(sml.sigma, torch.full((3, ), 1e-6))
    probe = image([3.001], [1], 3)[0]
    torch.testing.assert_close(sml.score(probe), torch.tensor([[[-1000.0]]]), rtol=1e-3, atol=0)


def test_shrinking_towards_a_small_global_variance():
    """A global variance below 1 (0.05), class 1 with 2 of min_pixels = 4 pixels and variance 0.01: its variance
    is 0.5 * 0.01 + 0.5 * 0.05."""
    values = [1.0, 1.5, 1.0, 1.5, 1.0, 1.5, 1.2, 1.4]
    classes = [0, 0, 0, 0, 0, 0, 1, 1]
    sml = fit(SML(min_pixels=4), [image(values, classes, 2)])
    m = np.array(values)
    assert m.var() < 1
    w = 0.5
    mu1 = w * 1.3 + (1 - w) * m.mean()
    var1 = w * 0.01 + (1 - w) * m.var()
    np.testing.assert_allclose(sml.mu.numpy(), [m[:6].mean(), mu1], rtol=1e-6)
    np.testing.assert_allclose(sml.sigma.numpy(), [m[:6].std(), np.sqrt(var1)], rtol=1e-5)


def test_large_max_logits_keep_their_spread():
    """Max logits 1e4 +- 1: the running sums of squares (3e8) are kept in float64; float32 would round the spread
    (2 in 3e8) away."""
    logits, gt = image([10000.0, 10001.0, 9999.0], [0, 0, 0], 2)
    sml = fit(SML(min_pixels=1), [(logits, gt)])
    torch.testing.assert_close(sml.mu, torch.tensor([10000.0, 10000.0]))
    torch.testing.assert_close(sml.sigma, torch.full((2, ), np.sqrt(2 / 3), dtype=torch.float32), rtol=1e-5, atol=0)


def test_fit_batches_with_different_class_counts_are_refused():
    logits, gt = image([1.0, 2.0], [0, 1], 4)
    sml = SML(name='sml')
    sml.fit_begin()
    sml.fit_step(logits, None, gt)
    with pytest.raises(ValueError, match=r'sml: fit batches disagree on the number of classes \(4 then 5\)'):
        sml.fit_step(torch.zeros(1, 5, 1, 2), None, gt)
