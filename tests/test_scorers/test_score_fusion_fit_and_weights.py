"""ScoreFusion: its weights, its z-score fit in the corner cases (one pixel, a zero sum, no pixels, a refit, stray
fit calls), children that read backbone features, and the rank of a two-pixel image."""
import numpy as np
import pytest
import torch
from scipy.stats import rankdata

from anomseg_plugins.scorers import Energy, Mahalanobis, MaxLogit, ScoreFusion


def logits_of(seed, n=2, c=3, h=4, w=5):
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2


def ranks(s):
    """numpy average ranks of every image, scaled to [0, 1]."""
    s = s.numpy()
    flat = s.reshape(len(s), -1)
    return np.stack([(rankdata(f) - 1) / (flat.shape[1] - 1) for f in flat]).reshape(s.shape)


@pytest.mark.parametrize('weights', [[0.25, 0.75], [1.0, 0.0], [0.2, 0.3]])
def test_non_negative_weights_with_a_positive_sum_are_normalised(weights):
    logits = logits_of(0)
    fusion = ScoreFusion([MaxLogit(), Energy()], weights=weights)
    total = sum(weights)
    assert fusion.weights == pytest.approx([w / total for w in weights])
    expected = sum(w / total * ranks(c.score(logits)) for w, c in zip(weights, (MaxLogit(), Energy())))
    np.testing.assert_allclose(fusion.score(logits).numpy(), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('weights', [[-1.0, 2.0], [0.0, 0.0], [1.0, 1.0, 1.0]])
def test_weights_must_be_non_negative_one_per_child_with_a_positive_sum(weights):
    shown = str([float(w) for w in weights]).replace('[', r'\[').replace(']', r'\]')
    with pytest.raises(ValueError, match=rf'one non-negative weight per child \(2\) with a positive sum, got {shown}'):
        ScoreFusion([MaxLogit(), Energy()], weights=weights)


def test_two_pixel_image_ranks_are_0_and_1():
    torch.testing.assert_close(ScoreFusion.image_ranks(torch.tensor([[[3.0, -1.0]]])), torch.tensor([[[1.0, 0.0]]]))
    torch.testing.assert_close(ScoreFusion.image_ranks(torch.tensor([[[2.0]]])), torch.tensor([[[0.0]]]))


def zscore_fit(fusion, batches, passes=1):
    for _ in range(passes):
        fusion.fit_begin()
        for logits, feats, gt in batches:
            fusion.fit_step(logits, feats, gt)
        fusion.fit_end()
    return fusion


def test_zscore_fusion_of_logit_scorers_needs_fitting_and_saves_only_its_statistics():
    fusion = ScoreFusion([MaxLogit(), Energy()], mode='zscore')
    assert fusion.requires_fit and not fusion.is_fitted
    zscore_fit(fusion, [(logits_of(1), None, torch.zeros(2, 4, 5, dtype=torch.long))])
    assert fusion.is_fitted
    assert set(fusion.state_dict()) == {'mu', 'sigma'}


def test_zscore_fit_on_one_pixel_and_on_scores_summing_to_zero():
    """One labelled pixel: sigma is 0, floored at eps. MaxLogit scores -1 and +1: mean 0, sigma 1."""
    logits = torch.tensor([[5.0, 1.0], [0.0, -1.0]]).view(1, 2, 1, 2)  # pixel 0: logits (5, 0); pixel 1 ignored
    gt = torch.tensor([[[0, 255]]])
    one = zscore_fit(ScoreFusion([MaxLogit(), Energy()], mode='zscore', eps=1e-4), [(logits, None, gt)])
    energy = -np.log(np.exp(5.0) + np.exp(0.0))
    np.testing.assert_allclose(one.mu.numpy(), [-5.0, energy], rtol=1e-6)
    np.testing.assert_allclose(one.sigma.numpy(), [1e-4, 1e-4], rtol=1e-6)
    balanced = torch.tensor([[1.0, -1.0], [0.0, -3.0]]).view(1, 2, 1, 2)  # max logits 1 and -1
    gt = torch.zeros(1, 1, 2, dtype=torch.long)
    two = zscore_fit(ScoreFusion([MaxLogit(), Energy()], mode='zscore'), [(balanced, None, gt)])
    e = -np.log(np.exp([1.0, -1.0]) + np.exp([0.0, -3.0]))
    np.testing.assert_allclose(two.mu.numpy(), [0.0, e.mean()], atol=1e-7)
    np.testing.assert_allclose(two.sigma.numpy(), [1.0, e.std()], rtol=1e-6)


def test_zscore_fit_without_fit_pixels_names_the_fusion_and_the_ignore_index():
    for batches in ([], [(logits_of(2), None, torch.full((2, 4, 5), 7))]):
        fusion = ScoreFusion([MaxLogit(), Energy()], mode='zscore', ignore_index=7, name='fused')
        with pytest.raises(RuntimeError, match=r'fused: no fit pixels \(every label was ignore_index=7'):
            zscore_fit(fusion, batches)


def test_zscore_refit_replaces_the_statistics():
    fusion = ScoreFusion([MaxLogit(), Energy()], mode='zscore')
    gt = torch.zeros(2, 4, 5, dtype=torch.long)
    zscore_fit(fusion, [(logits_of(3), None, gt)])
    zscore_fit(fusion, [(logits_of(4) * 3 + 1, None, gt)])
    expected = zscore_fit(ScoreFusion([MaxLogit(), Energy()], mode='zscore'), [(logits_of(4) * 3 + 1, None, gt)])
    torch.testing.assert_close(fusion.mu, expected.mu)
    torch.testing.assert_close(fusion.sigma, expected.sigma)


def test_fit_calls_outside_a_fit_begin_pass_change_nothing():
    """AnomalyTestLoop opens every pass with fit_begin; a stray fit_step / fit_end before the first pass or after a
    finished one neither fits nor overwrites the statistics."""
    gt = torch.zeros(2, 4, 5, dtype=torch.long)
    fusion = ScoreFusion([MaxLogit(), Energy()], mode='zscore')
    fusion.fit_step(logits_of(5), None, gt)
    fusion.fit_end()
    assert not fusion.is_fitted and fusion.mu.numel() == 0
    zscore_fit(fusion, [(logits_of(6), None, gt)])
    mu, sigma = fusion.mu.clone(), fusion.sigma.clone()
    fusion.fit_step(logits_of(7) * 5, None, gt)
    fusion.fit_end()
    torch.testing.assert_close(fusion.mu, mu)
    torch.testing.assert_close(fusion.sigma, sigma)


def test_children_that_read_features_get_them_in_fit_and_score():
    """A Mahalanobis child: fitted by the fusion's first pass (features passed through), z-scored in the second."""
    g = torch.Generator().manual_seed(8)
    batches = [(logits_of(9 + i), [None, torch.randn(2, 3, 2, 3, generator=g) * 2 + 1],
                torch.randint(0, 3, (2, 4, 5), generator=g)) for i in range(2)]
    fusion = zscore_fit(ScoreFusion([Mahalanobis(feature_stage=1), MaxLogit()], mode='zscore'), batches, passes=2)
    assert fusion.is_fitted
    maha = Mahalanobis(feature_stage=1)
    maha.fit_begin()
    for logits, feats, gt in batches:
        maha.fit_step(logits, feats, gt)
    maha.fit_end()
    torch.testing.assert_close(fusion.children_scorers[0].precision, maha.precision)
    scores = [
        torch.cat([c.score(logits, feats).flatten() for logits, feats, _ in batches]).double()
        for c in (maha, MaxLogit())
    ]
    np.testing.assert_allclose(fusion.mu.numpy(), [s.mean() for s in scores], rtol=1e-5)
    np.testing.assert_allclose(fusion.sigma.numpy(), [s.std(correction=0) for s in scores], rtol=1e-5)
    logits, feats, _ = batches[0]
    expected = sum(0.5 * (c.score(logits, feats) - s.mean()) / s.std(correction=0)
                   for c, s in zip((maha, MaxLogit()), scores))
    torch.testing.assert_close(fusion.score(logits, feats), expected.float(), rtol=1e-5, atol=1e-5)


def test_fit_step_with_logits_missing_the_class_dimension():
    """fit_step hands its logits to the children unchecked: (N, H, W) logits are refused by the children's logits
    check, and a label map that does not match them names the (N, H, W) the logits imply."""
    fusion = ScoreFusion([MaxLogit(), Energy()], mode='zscore')
    fusion.fit_begin()
    with pytest.raises(ValueError, match=r'expect logits of shape \(N, C, H, W\), got \(2, 4, 5\)'):
        fusion.fit_step(torch.zeros(2, 4, 5), None, torch.zeros(2, 4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r'= \(2, 4, 5\) matching the logits \(2, 4, 5\), got \(2, 4, 6\)'):
        fusion.fit_step(torch.zeros(2, 4, 5), None, torch.zeros(2, 4, 6, dtype=torch.long))
