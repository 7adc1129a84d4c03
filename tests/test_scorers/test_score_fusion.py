import numpy as np
import pytest
import torch
from scipy.stats import rankdata

from anomseg_plugins.scorers import SML, Energy, MaxLogit, ScoreFusion


def test_rank_fusion_matches_scipy_average_ranks():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 5, 6, generator=g)
    logits[0, :, 0, :3] = 1.0  # ties
    fusion = ScoreFusion([dict(type='MaxLogit'), dict(type='Energy')], mode='rank', weights=[3, 1])
    assert fusion.name == 'RankFusion(MaxLogit+Energy)'
    assert not fusion.requires_fit and fusion.is_fitted
    out = fusion.score(logits)
    assert out.shape == (2, 5, 6) and out.dtype == torch.float32
    expected = np.zeros((2, 5, 6))
    for child, w in ((MaxLogit(), 0.75), (Energy(), 0.25)):
        s = child.score(logits).numpy()
        for i in range(2):
            expected[i] += w * ((rankdata(s[i].ravel()) - 1) / (30 - 1)).reshape(5, 6)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6, atol=1e-6)
    assert out.min() >= 0 and out.max() <= 1


def test_zscore_fusion_fits_children_first_then_its_own_statistics():
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(2, 3, 4, 4, generator=g) * 2, torch.randint(0, 3, (2, 4, 4), generator=g))
               for _ in range(3)]
    batches[0][1][0, 0] = 255
    fusion = ScoreFusion([dict(type='MaxLogit'), dict(type='SML')], mode='zscore', name='fused')
    assert fusion.requires_fit and not fusion.is_fitted
    passes = 0
    while not fusion.is_fitted:
        passes += 1
        fusion.fit_begin()
        for logits, gt in batches:
            fusion.fit_step(logits, None, gt)
        fusion.fit_end()
    assert passes == 2  # SML first, then the z-score statistics on the fitted SML scores

    sml = SML()
    sml.fit_begin()
    for logits, gt in batches:
        sml.fit_step(logits, None, gt)
    sml.fit_end()
    torch.testing.assert_close(fusion.children_scorers[1].mu, sml.mu)
    scores = [[], []]
    for logits, gt in batches:
        valid = gt != 255
        scores[0].append(MaxLogit().score(logits)[valid])
        scores[1].append(sml.score(logits)[valid])
    mu = [torch.cat(s).double().mean().item() for s in scores]
    sigma = [torch.cat(s).double().std(correction=0).item() for s in scores]
    np.testing.assert_allclose(fusion.mu.numpy(), mu, rtol=1e-5)
    np.testing.assert_allclose(fusion.sigma.numpy(), sigma, rtol=1e-5)

    test = torch.randn(1, 3, 4, 4, generator=g)
    expected = 0.5 * (MaxLogit().score(test) - mu[0]) / sigma[0] + 0.5 * (sml.score(test) - mu[1]) / sigma[1]
    torch.testing.assert_close(fusion.score(test), expected.float(), rtol=1e-5, atol=1e-5)

    fresh = ScoreFusion([dict(type='MaxLogit'), dict(type='SML')], mode='zscore', name='fused')
    fresh.load_state_dict(fusion.state_dict())
    assert fresh.is_fitted
    torch.testing.assert_close(fresh.score(test), fusion.score(test))


def test_zscore_fusion_of_logit_scorers_needs_one_pass():
    fusion = ScoreFusion([MaxLogit(), Energy()], mode='zscore')
    assert fusion.name == 'ZScoreFusion(MaxLogit+Energy)'
    fusion.fit_begin()
    fusion.fit_step(torch.randn(1, 3, 4, 4), None, torch.zeros(1, 4, 4, dtype=torch.long))
    fusion.fit_end()
    assert fusion.is_fitted


def test_fusion_collects_feature_stages_and_validates_arguments():
    fusion = ScoreFusion([dict(type='Mahalanobis', feature_stage=2), dict(type='HEAT', feature_stage=1)])
    assert fusion.feature_stages == (1, 2)
    assert fusion.requires_fit
    with pytest.raises(ValueError, match="mode must be 'rank' or 'zscore', got 'mean'"):
        ScoreFusion([MaxLogit(), Energy()], mode='mean')
    with pytest.raises(ValueError, match='at least two child scorers'):
        ScoreFusion([MaxLogit()])
    with pytest.raises(ValueError, match='one non-negative weight per child'):
        ScoreFusion([MaxLogit(), Energy()], weights=[1.0])
