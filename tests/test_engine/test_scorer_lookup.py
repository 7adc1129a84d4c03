"""The one scorer lookup of the loop, the panel hook and tools/infer.py: metric scorers, config scorers, by name."""
from types import SimpleNamespace

import pytest

from anomseg_plugins.engine.scorer_lookup import config_scorers, metric_scorers, resolve_scorer
from anomseg_plugins.scorers import SML, MaxLogit


def test_metric_scorers_in_order_without_duplicates():
    shared, sml = MaxLogit(), SML()
    evaluator = SimpleNamespace(metrics=[
        SimpleNamespace(scorers=[shared, sml]),
        SimpleNamespace(),  # e.g. IoUMetric: no scorers
        SimpleNamespace(scorers=[shared]),
    ])
    assert metric_scorers(evaluator) == [shared, sml]
    assert metric_scorers(None) == [] and metric_scorers(SimpleNamespace(metrics=None)) == []


def test_config_scorers_of_one_metric_or_a_list():
    iou = dict(type='IoUMetric')
    anomaly = dict(type='AnomalyMetric', scorers=[dict(type='MaxLogit'), dict(type='SML', name='SML5')])
    assert config_scorers([iou, anomaly]) == anomaly['scorers']
    assert config_scorers(anomaly) == anomaly['scorers'] and config_scorers([]) == []


def test_resolve_built_scorers_by_name_else_the_registry():
    fitted = SML(name='SML5')
    found = resolve_scorer('SML5', [MaxLogit(), fitted], 'Owner', 'fix it')
    assert found is fitted  # the metric's own instance, fitted state included
    assert resolve_scorer(dict(type='SML', name='SML5'), [fitted], 'Owner', 'fix it') is fitted
    built = resolve_scorer('SML', [fitted], 'Owner', 'fix it')  # a built scorer is matched by name only
    assert isinstance(built, SML) and built is not fitted and built.name == 'SML'
    other = resolve_scorer(dict(type='MaxLogit', name='ML'), [fitted], 'Owner', 'fix it')
    assert isinstance(other, MaxLogit) and other.name == 'ML'


def test_resolve_configs_by_name_or_type():
    cfgs = [dict(type='MaxLogit'), dict(type='SML', name='SML5', min_pixels=5)]
    by_type = resolve_scorer('SML', cfgs, 'Owner', 'fix it')
    assert isinstance(by_type, SML) and by_type.name == 'SML5'
    assert resolve_scorer('SML5', cfgs, 'Owner', 'fix it').name == 'SML5'


def test_unknown_names_are_refused_with_the_known_ones_and_the_fix():
    with pytest.raises(KeyError) as info:
        resolve_scorer('NoSuchScorer', [MaxLogit()], 'AnomalyPanelHook', 'set default_hooks.visualization.scorer')
    msg = str(info.value)
    assert msg.startswith('"AnomalyPanelHook: scorer \'NoSuchScorer\' is neither a scorer of the test AnomalyMetric '
                          "(['MaxLogit']) nor a type registered in ANOMALY_SCORERS")
    assert "'SML'" in msg and msg.endswith('; set default_hooks.visualization.scorer"')
