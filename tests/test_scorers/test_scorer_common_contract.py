"""What every scorer promises (``base_scorer`` module docstring): its display name, empty data-dependent buffers
before fitting, fresh running sums."""
import pytest
import torch

from anomseg_plugins.registry import ANOMALY_SCORERS
from anomseg_plugins.scorers import HEAT, MSP, SML, Energy, Entropy, Mahalanobis, MaxLogit, ScoreFusion

ALL = [
    dict(type='MSP'),
    dict(type='MaxLogit'),
    dict(type='Energy', temperature=2.0),
    dict(type='Entropy'),
    dict(type='SML'),
    dict(type='HEAT', feature_stage=1),
    dict(type='Mahalanobis', feature_stage=1),
]


@pytest.mark.parametrize('cfg', ALL, ids=[c['type'] for c in ALL])
def test_name_is_the_given_one_or_the_class_name(cfg):
    named = ANOMALY_SCORERS.build(dict(cfg, name='mine'))
    assert named.name == 'mine'
    assert "name='mine'" in named.fit_signature()
    assert ANOMALY_SCORERS.build(cfg).name == cfg['type']


def test_name_from_positional_free_constructors():
    """The scorers built directly (not from a config) keep the name too."""
    for cls in (MSP, MaxLogit, Energy, Entropy, SML, HEAT, Mahalanobis):
        assert cls(name=f'my{cls.__name__}').name == f'my{cls.__name__}'


def test_data_dependent_buffers_are_empty_before_fitting():
    scorers = [Mahalanobis(), SML(), ScoreFusion([MaxLogit(), Energy()], mode='zscore')]
    for scorer in scorers:
        assert not scorer.is_fitted
        state = scorer.state_dict()
        assert state, scorer.name
        for key, value in state.items():
            assert value.shape == (0, ), f'{scorer.name}.{key}: {tuple(value.shape)}'


def fit_data(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 4, 4, generator=g) * 2
    feat = torch.randn(2, 5, 2, 2, generator=g)
    gt = torch.randint(0, 3, (2, 4, 4), generator=g)
    return logits, [None, feat], gt


@pytest.mark.parametrize(
    'make', [lambda: SML(min_pixels=2), lambda: Mahalanobis(feature_stage=1)], ids=['SML', 'Mahalanobis'])
def test_fresh_scorer_starts_with_empty_running_sums(make):
    """A scorer just built has nothing accumulated: fitting it without the (resetting) fit_begin gives the same
    statistics as with it."""
    batches = [fit_data(0), fit_data(1)]
    with_begin, without = make(), make()
    with_begin.fit_begin()
    for scorer in (with_begin, without):
        for logits, feats, gt in batches:
            scorer.fit_step(logits, feats, gt)
        scorer.fit_end()
    for key, value in with_begin.state_dict().items():
        assert value.numel() > 0
        torch.testing.assert_close(without.state_dict()[key], value)


def zscore_fusion():
    return ScoreFusion([MaxLogit(), SML(min_pixels=4), Mahalanobis(feature_stage=1)], mode='zscore')


DEVICE_CASES = {
    'SML': lambda: SML(min_pixels=4),
    'HEAT': lambda: HEAT(feature_stage=1),
    'Mahalanobis': lambda: Mahalanobis(feature_stage=1),
    'RankFusion': lambda: ScoreFusion([MaxLogit(), HEAT(feature_stage=1)]),
    'ZScoreFusion': zscore_fusion,
}


def fit_and_score(make, batches):
    scorer = make()
    for _ in range(2):  # passes until fitted (a z-score fusion of fitted children needs two)
        if scorer.is_fitted:
            break
        scorer.fit_begin()
        for logits, feats, gt in batches:
            scorer.fit_step(logits, feats, gt)
        scorer.fit_end()
    return [scorer.score(logits, feats) for logits, feats, _ in batches]


@pytest.mark.parametrize('name', sorted(DEVICE_CASES))
def test_tensors_are_created_on_the_inputs_device_not_the_default_device(name):
    """Inside ``with torch.device('meta')`` (PyTorch's default-device context, used e.g. to build a model without
    allocating it) scorers still fit on and score CPU inputs on the CPU: the tensors they create take the device of
    their inputs (on a GPU machine the same holds with a CUDA default device)."""
    batches = [fit_data(0), fit_data(1)]
    expected = fit_and_score(DEVICE_CASES[name], batches)
    with torch.device('meta'):
        got = fit_and_score(DEVICE_CASES[name], batches)
    for out, want in zip(got, expected):
        assert out.device == torch.device('cpu')
        torch.testing.assert_close(out, want, rtol=0, atol=0)
