import numpy as np
import pytest
import torch

from anomseg_plugins.scorers import SML


def make_fit_data(seed=0, n=3, c=4, h=6, w=5):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, h, w, generator=g) * 3
    gt = torch.randint(0, c, (n, h, w), generator=g)
    gt[:, 0, :] = 255  # ignored row
    return logits, gt


def numpy_stats(logits, gt, num_classes, min_pixels=4096, fallback='shrink'):
    """The documented estimator in numpy: w = min(1, n_k / min_pixels) ('global': 0 below min_pixels),
    mu_k = w m_k + (1 - w) m, sigma_k^2 = w v_k + (1 - w) v."""
    z = logits.numpy().astype(np.float64)
    m, k = z.max(1), z.argmax(1)
    valid = gt.numpy() != 255
    m, k = m[valid], k[valid]
    mu, sigma = np.full(num_classes, m.mean()), np.full(num_classes, m.std())
    for c in range(num_classes):
        n = (k == c).sum()
        if n == 0:
            continue
        w = min(1.0, n / min_pixels) if fallback == 'shrink' else float(n >= min_pixels)
        mu[c] = w * m[k == c].mean() + (1 - w) * m.mean()
        sigma[c] = np.sqrt(w * m[k == c].var() + (1 - w) * m.var())
    return mu, sigma


def fit(scorer, batches):
    scorer.fit_begin()
    for logits, gt in batches:
        scorer.fit_step(logits, None, gt)
    scorer.fit_end()
    return scorer


def test_sml_fit_matches_numpy_and_streams_over_batches():
    logits, gt = make_fit_data()
    whole = fit(SML(min_pixels=2), [(logits, gt)])
    split = fit(SML(min_pixels=2), [(logits[:1], gt[:1]), (logits[1:], gt[1:])])
    mu, sigma = numpy_stats(logits, gt, 4, min_pixels=2)
    np.testing.assert_allclose(whole.mu.numpy(), mu, rtol=1e-5)
    np.testing.assert_allclose(whole.sigma.numpy(), sigma, rtol=1e-5)
    np.testing.assert_allclose(split.mu.numpy(), whole.mu.numpy(), rtol=1e-6)
    np.testing.assert_allclose(split.sigma.numpy(), whole.sigma.numpy(), rtol=1e-6)


def test_sml_score_formula_and_direction():
    logits, gt = make_fit_data(seed=1)
    sml = fit(SML(), [(logits, gt)])
    test = torch.randn(2, 4, 3, 3, generator=torch.Generator().manual_seed(5))
    m, k = test.max(1)
    expected = -(m - sml.mu[k]) / sml.sigma[k]
    out = sml.score(test)
    assert out.shape == (2, 3, 3) and out.dtype == torch.float32
    torch.testing.assert_close(out, expected)
    # for the same predicted class a weaker max logit is more anomalous
    weak, strong = torch.zeros(1, 4, 1, 2), torch.zeros(1, 4, 1, 2)
    weak[0, 2, 0, 0], strong[0, 2, 0, 0] = 1.0, 9.0
    both = weak.clone()
    both[..., 1] = strong[..., 0]
    s = sml.score(both)[0, 0]
    assert s[0] > s[1]


def test_sml_global_fallback_below_min_pixels():
    # fallback='global': class 2 is never the argmax and class 1 only once (< min_pixels=2): both get the
    # global statistics, class 0 (5 pixels) its own
    logits = torch.zeros(1, 3, 2, 3)
    logits[0, 0] = torch.tensor([[5.0, 6.0, 7.0], [8.0, 9.0, 9.5]])
    logits[0, 1, 1, 2] = 20.0
    gt = torch.zeros(1, 2, 3, dtype=torch.long)
    sml = fit(SML(min_pixels=2, fallback='global'), [(logits, gt)])
    m = np.array([5.0, 6.0, 7.0, 8.0, 9.0, 20.0])
    assert sml.mu[0].item() == pytest.approx(np.mean(m[:5]))
    assert sml.sigma[0].item() == pytest.approx(np.std(m[:5]), rel=1e-5)
    for c in (1, 2):
        assert sml.mu[c].item() == pytest.approx(m.mean())
        assert sml.sigma[c].item() == pytest.approx(m.std(), rel=1e-5)


def rare_class_data(seed=0):
    """Fit data where class 0 is predicted almost everywhere (~12k pixels), class 1 on exactly 3 pixels with
    far larger max logits, class 2 on 1000 pixels (a 20 x 50 block), class 3 never."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 4, 80, 100, generator=g)
    logits[:, 0] += 10.0  # class 0 wins ...
    logits[:, 3] -= 10.0
    logits[0, 2, 10:30, 10:60] += 20.0  # ... except a 1000-pixel block of class 2
    logits[1, 1, 40, 40:43] = 40.0 + torch.arange(3.0) * 5  # and 3 pixels of class 1: max logits 40, 45, 50
    gt = torch.zeros(2, 80, 100, dtype=torch.long)
    gt[:, :2] = 255
    return logits, gt


def test_sml_rare_class_is_shrunk_to_the_global_statistics():
    """3 pixels (max logits 40, 45, 50: own mu 45, sigma 4.1) are no basis for a class's statistics: the
    class gets the global mu / sigma up to the weight 3 / 4096 of its own ones; a class with 1000 pixels is
    pulled a quarter of the way; a class with >= min_pixels pixels keeps exactly its own statistics."""
    logits, gt = rare_class_data()
    sml = fit(SML(), [(logits[:1], gt[:1]), (logits[1:], gt[1:])])
    z = logits.numpy().astype(np.float64)
    m, k = z.max(1)[gt.numpy() != 255], z.argmax(1)[gt.numpy() != 255]
    assert [(k == c).sum() for c in range(4)] == [(k == 0).sum(), 3, 1000, 0] and (k == 0).sum() > 4096
    # the numbers by hand
    w = 3 / 4096
    assert sml.mu[1].item() == pytest.approx(w * 45.0 + (1 - w) * m.mean(), rel=1e-5)
    assert abs(sml.mu[1].item() - m.mean()) < 0.05 * m.std()  # not 45: close to the global mean
    assert sml.sigma[1].item() == pytest.approx(np.sqrt(w * np.var([40, 45, 50]) + (1 - w) * m.var()), rel=1e-5)
    # the frequent class: its own statistics, by value
    assert sml.mu[0].item() == pytest.approx(m[k == 0].mean(), rel=1e-6)
    assert sml.sigma[0].item() == pytest.approx(m[k == 0].std(), rel=1e-5)
    # never predicted: the global statistics
    assert sml.mu[3].item() == pytest.approx(m.mean(), rel=1e-6)
    assert sml.sigma[3].item() == pytest.approx(m.std(), rel=1e-5)
    mu, sigma = numpy_stats(logits, gt, 4)
    np.testing.assert_allclose(sml.mu.numpy(), mu, rtol=1e-5)
    np.testing.assert_allclose(sml.sigma.numpy(), sigma, rtol=1e-5)
    w = 1000 / 4096
    assert sml.mu[2].item() == pytest.approx(w * m[k == 2].mean() + (1 - w) * m.mean(), rel=1e-5)
    # with fallback='global' the 3- and 1000-pixel classes take the global statistics outright
    hard = fit(SML(fallback='global'), [(logits, gt)])
    mu, sigma = numpy_stats(logits, gt, 4, fallback='global')
    np.testing.assert_allclose(hard.mu.numpy(), mu, rtol=1e-5)
    assert hard.mu[1].item() == pytest.approx(m.mean(), rel=1e-6) and hard.mu[0].item() == sml.mu[0].item()


def test_sml_fit_signature_names_the_fallback():
    """The stats cache is keyed on fit_signature(): statistics fitted under another minimum or rule are refit."""
    signatures = {SML().fit_signature(), SML(min_pixels=2).fit_signature(), SML(fallback='global').fit_signature()}
    assert len(signatures) == 3
    assert "min_pixels=4096, fallback='shrink'" in SML().fit_signature()
    with pytest.raises(ValueError, match="fallback must be one of"):
        SML(fallback='mean')
    with pytest.raises(ValueError, match='min_pixels must be >= 1'):
        SML(min_pixels=0)


def test_sml_ignores_ignore_pixels():
    logits, gt = make_fit_data(seed=2)
    gt_all = gt.clone()
    gt_all[gt_all == 255] = 0
    a = fit(SML(), [(logits, gt)])
    b = fit(SML(), [(logits, gt_all)])
    assert not torch.allclose(a.mu, b.mu)


def test_sml_state_dict_round_trip():
    logits, gt = make_fit_data(seed=3)
    sml = fit(SML(), [(logits, gt)])
    state = sml.state_dict()
    assert set(state) == {'mu', 'sigma'}  # running sums are not saved
    fresh = SML()
    assert not fresh.is_fitted
    fresh.load_state_dict(state)
    assert fresh.is_fitted
    test = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(fresh.score(test), sml.score(test))


def test_sml_errors():
    with pytest.raises(RuntimeError, match='SML is not fitted'):
        SML().score(torch.zeros(1, 3, 2, 2))
    logits, gt = make_fit_data(seed=4, c=4)
    sml = fit(SML(), [(logits, gt)])
    with pytest.raises(ValueError, match='fitted for 4 classes but the logits have 5'):
        sml.score(torch.zeros(1, 5, 2, 2))
    with pytest.raises(ValueError, match='gt_sem_seg of shape'):
        SML().fit_step(logits, None, gt[:, :2])
    empty = SML()
    empty.fit_begin()
    empty.fit_step(logits, None, torch.full_like(gt, 255))
    with pytest.raises(RuntimeError, match='no fit pixels'):
        empty.fit_end()
