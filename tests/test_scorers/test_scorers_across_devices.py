"""Fitted statistics follow the inputs' device: a scorer whose buffers are on the CPU scores CUDA inputs and the
other way round, with the results of an all-CPU run. Needs a CUDA device (skipped without one)."""
import pytest
import torch

from anomseg_plugins.scorers import HEAT, SML, Mahalanobis, MaxLogit, ScoreFusion

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')


def zscore_fusion():
    return ScoreFusion([MaxLogit(), SML(min_pixels=4), Mahalanobis(feature_stage=1)], mode='zscore')


CASES = {
    'SML': lambda: SML(min_pixels=4),
    'Mahalanobis': lambda: Mahalanobis(feature_stage=1),
    'ZScoreFusion': zscore_fusion,
}


def batch(seed, device='cpu'):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 4, 4, generator=g) * 2
    feat = torch.randn(2, 5, 2, 2, generator=g)
    gt = torch.randint(0, 3, (2, 4, 4), generator=g)
    return logits.to(device), [None, feat.to(device)], gt.to(device)


def fitted(make):
    scorer = make()
    for _ in range(2):  # a z-score fusion of fitted children needs two passes
        if scorer.is_fitted:
            break
        scorer.fit_begin()
        for seed in (0, 1):
            scorer.fit_step(*batch(seed))
        scorer.fit_end()
    return scorer


@pytest.mark.parametrize('module_device, input_device', [('cpu', 'cuda'), ('cuda', 'cpu')])
@pytest.mark.parametrize('name', sorted(CASES))
def test_fitted_scorer_scores_inputs_on_another_device(name, module_device, input_device):
    logits, feats, _ = batch(2)
    expected = fitted(CASES[name]).score(logits, feats)
    scorer = fitted(CASES[name]).to(module_device)
    logits, feats, _ = batch(2, input_device)
    out = scorer.score(logits, feats)
    assert out.device.type == input_device
    torch.testing.assert_close(out.cpu(), expected, rtol=1e-4, atol=1e-4)


def test_heat_running_statistics_follow_the_images_to_another_device():
    images = [batch(seed)[0][:1] for seed in (3, 4, 5)]
    expected = [HEAT().score(torch.cat(images))[i] for i in range(3)]
    heat = HEAT()
    got = [heat.score(images[0])[0], heat.score(images[1].cuda())[0], heat.score(images[2])[0]]
    for out, want, device in zip(got, expected, ('cpu', 'cuda', 'cpu')):
        assert out.device.type == device
        torch.testing.assert_close(out.cpu(), want, rtol=1e-4, atol=1e-4)
