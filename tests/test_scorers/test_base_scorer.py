import pytest
import torch

from anomseg_plugins.scorers.base_scorer import BaseAnomalyScorer, all_reduce_sum_, check_gt, stage_feature


class LazyStats(BaseAnomalyScorer):
    requires_fit = True

    def __init__(self):
        super().__init__()
        self.register_buffer('stats', torch.empty(0))


def test_load_state_dict_takes_the_stored_shape_of_data_dependent_buffers():
    src = LazyStats()
    src.stats = torch.arange(6.0).view(2, 3)
    dst = LazyStats()
    dst.load_state_dict(src.state_dict())
    assert dst.stats.shape == (2, 3)
    torch.testing.assert_close(dst.stats, src.stats)


def test_defaults_and_helpers():
    scorer = BaseAnomalyScorer(name='mine', feature_stages=[3, 1])
    assert scorer.feature_stages == (3, 1) and scorer.is_fitted
    assert "name='mine'" in scorer.fit_signature()
    with pytest.raises(NotImplementedError):
        scorer(torch.zeros(1, 2, 2, 2))
    t = [torch.ones(2)]
    assert all_reduce_sum_(t)[0] is t[0]  # not distributed: unchanged
    with pytest.raises(
            ValueError, match='mine needs the output of backbone stage 1, but the features given hold '
            r'stages \[0\]'):
        stage_feature(scorer, [torch.zeros(1, 2, 2, 2)], 1)
    with pytest.raises(ValueError, match=r'gt_sem_seg of shape \(N, H, W\) = \(1, 2, 2\)'):
        check_gt(torch.zeros(1, 3, 3), torch.zeros(1, 4, 2, 2))


def test_logsumexp_classes_matches_torch_also_for_extreme_logits():
    from anomseg_plugins.scorers.base_scorer import logsumexp_classes
    logits = torch.randn(2, 7, 5, 4, generator=torch.Generator().manual_seed(0)) * 10
    logits[0, :, 0, 0] = torch.tensor([1e4, -1e4, 0, 0, 0, 0, 0])
    logits[1, :, 1, 1] = -3e3
    expected = logits.double().logsumexp(dim=1).float()
    torch.testing.assert_close(logsumexp_classes(logits), expected, rtol=1e-6, atol=1e-5)
