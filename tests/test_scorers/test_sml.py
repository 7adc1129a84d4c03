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


def numpy_stats(logits, gt, num_classes, min_pixels=2):
    z = logits.numpy().astype(np.float64)
    m, k = z.max(1), z.argmax(1)
    valid = gt.numpy() != 255
    m, k = m[valid], k[valid]
    mu, sigma = np.full(num_classes, m.mean()), np.full(num_classes, m.std())
    for c in range(num_classes):
        if (k == c).sum() >= min_pixels:
            mu[c], sigma[c] = m[k == c].mean(), m[k == c].std()
    return mu, sigma


def fit(scorer, batches):
    scorer.fit_begin()
    for logits, gt in batches:
        scorer.fit_step(logits, None, gt)
    scorer.fit_end()
    return scorer


def test_sml_fit_matches_numpy_and_streams_over_batches():
    logits, gt = make_fit_data()
    whole = fit(SML(), [(logits, gt)])
    split = fit(SML(), [(logits[:1], gt[:1]), (logits[1:], gt[1:])])
    mu, sigma = numpy_stats(logits, gt, 4)
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


def test_sml_never_predicted_class_falls_back_to_global_stats():
    # class 2 is never the argmax and class 1 only once (< min_pixels=2): both get the global statistics
    logits = torch.zeros(1, 3, 2, 3)
    logits[0, 0] = torch.tensor([[5.0, 6.0, 7.0], [8.0, 9.0, 9.5]])
    logits[0, 1, 1, 2] = 20.0
    gt = torch.zeros(1, 2, 3, dtype=torch.long)
    sml = fit(SML(), [(logits, gt)])
    m = np.array([5.0, 6.0, 7.0, 8.0, 9.0, 20.0])
    assert sml.mu[0].item() == pytest.approx(np.mean(m[:5]))
    assert sml.sigma[0].item() == pytest.approx(np.std(m[:5]), rel=1e-5)
    for c in (1, 2):
        assert sml.mu[c].item() == pytest.approx(m.mean())
        assert sml.sigma[c].item() == pytest.approx(m.std(), rel=1e-5)


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
