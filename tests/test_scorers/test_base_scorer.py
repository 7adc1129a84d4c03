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


class FeatureNorm(BaseAnomalyScorer):
    """Minimal feature scorer: the L2 norm of the stage-0 feature vector at each pixel."""

    def score(self, logits, feats=None):
        return stage_feature(self, feats, 0).norm(dim=1)


def test_calling_a_scorer_passes_the_features_to_score():
    feat = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(1))
    out = FeatureNorm()(torch.zeros(2, 2, 4, 5), [feat])
    torch.testing.assert_close(out, feat.pow(2).sum(dim=1).sqrt())


def test_stage_feature_names_the_scorer_stage_and_shape_of_malformed_features():
    with pytest.raises(ValueError, match=r'^mine: backbone stage 0 features must be \(N, C, h, w\), got \(2, 3, 4\)$'):
        stage_feature(BaseAnomalyScorer(name='mine'), [torch.zeros(2, 3, 4)], 0)


def test_check_gt_rejects_labels_with_a_channel_dimension():
    """(N, 1, H, W) labels (mmseg's per-sample gt_sem_seg.data stacked) have the right N and (H, W) but four dims."""
    with pytest.raises(ValueError, match=r'= \(2, 4, 5\) matching the logits \(2, 3, 4, 5\), got \(2, 1, 4, 5\)'):
        check_gt(torch.zeros(2, 1, 4, 5, dtype=torch.long), torch.zeros(2, 3, 4, 5))


class Weighted(LazyStats):
    """A scorer with a learnt parameter next to its data-dependent buffer."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(3))


def test_load_state_dict_still_reports_missing_unexpected_and_mismatched_keys():
    src = Weighted()
    src.stats = torch.arange(4.0)
    state = src.state_dict()
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "stats"'):
        Weighted().load_state_dict({'weight': state['weight']})
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "extra"'):
        Weighted().load_state_dict(dict(state, extra=torch.zeros(1)))
    with pytest.raises(RuntimeError, match='size mismatch for weight'):
        Weighted().load_state_dict(dict(state, weight=torch.ones(5)))
    dst = Weighted()
    dst.load_state_dict({'stats': state['stats']}, strict=False)  # not strict: a missing key is fine
    torch.testing.assert_close(dst.stats, torch.arange(4.0))
    torch.testing.assert_close(dst.weight.data, torch.ones(3))
