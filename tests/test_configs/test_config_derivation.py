"""Each ablation changes one thing: its train pipeline is derived from its base config's, never restated.

A restated pipeline drifts silently when the headline changes (the old ``aug_all.py`` was a full copy of the
headline's). These tests resolve every ablation and the config it inherits from, and compare the two train
pipelines step by step: the difference must be exactly the one the ablation's name promises.
"""
import ast
import os.path as osp
from typing import List, Set

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# ablation -> the pipeline difference to its base config: '-T' step T removed, '+T' step T added,
# 'T.key' argument `key` of step T changed. Empty: the reference row (identical to its base).
EXPECTED_DIFF = {
    'aug_all': set(),
    'aug_multiscale': {'-RandomFlip', '-PhotoMetricDistortion', '-RandomGaussianBlur'},
    'aug_none': {'-RandomFlip', '-PhotoMetricDistortionNoHue'},
    'aug_flip': {'-PhotoMetricDistortionNoHue'},
    'aug_jitter': {'-RandomFlip', '-PhotoMetricDistortionNoHue', '+PhotoMetricDistortion'},
    'aug_blur': {'-RandomFlip', '-PhotoMetricDistortionNoHue', '+RandomGaussianBlur'},
    'crop_size_384': {'MultiScaleSquareCrop.output_size', 'MultiScaleSquareCrop.base_size'},
    'crop_size_512': set(),
    'crop_size_640': {'MultiScaleSquareCrop.output_size', 'MultiScaleSquareCrop.base_size'},
    'scale_0p25_1p41': {'MultiScaleSquareCrop.scale_range'},
    'scale_0p5_1p0': {'MultiScaleSquareCrop.scale_range'},
    'scale_0p75_1p41': {'MultiScaleSquareCrop.scale_range'},
    'scale_1p0_1p41': {'MultiScaleSquareCrop.scale_range'},
    'loss_dice': set(),
    'loss_focal': set(),
    'loss_focal_dice': set(),
}


def _base_file(path: str) -> str:
    """The single `_base_` file a config names, resolved relative to it."""
    tree = ast.parse(open(path).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', None) == '_base_':
            bases = ast.literal_eval(node.value)
            bases = [bases] if isinstance(bases, str) else bases
            assert len(bases) == 1, f'{path}: expected one _base_ file, got {bases}'
            return osp.normpath(osp.join(osp.dirname(path), bases[0]))
    raise AssertionError(f'{path} has no _base_')


def pipeline_diff(base: List[dict], derived: List[dict]) -> Set[str]:
    """Steps removed / added (by type, in order) and arguments changed in the steps both have."""
    base_types = [t['type'] for t in base]
    derived_types = [t['type'] for t in derived]
    diff = {f'-{t}' for t in base_types if t not in derived_types}
    diff |= {f'+{t}' for t in derived_types if t not in base_types}
    common = [t for t in derived_types if t in base_types]
    assert common == [t for t in base_types if t in derived_types], f'steps reordered: {base_types} -> {derived_types}'
    for step_type in common:
        a = dict(base[base_types.index(step_type)])
        b = dict(derived[derived_types.index(step_type)])
        diff |= {f'{step_type}.{k}' for k in set(a) | set(b) if a.get(k) != b.get(k)}
    return diff


def test_pipeline_diff_sees_changes():
    base = [dict(type='A', x=1), dict(type='B'), dict(type='C')]
    assert pipeline_diff(base, base) == set()
    assert pipeline_diff(base, [dict(type='A', x=2), dict(type='C'), dict(type='D')]) == {'A.x', '-B', '+D'}


@pytest.mark.parametrize('name', sorted(EXPECTED_DIFF))
def test_ablation_changes_one_thing(name):
    path = osp.join(ROOT, 'configs', 'ablations', f'{name}.py')
    derived = Config.fromfile(path)
    base = Config.fromfile(_base_file(path))
    assert pipeline_diff(base.train_pipeline, derived.train_pipeline) == EXPECTED_DIFF[name]
    # the dataloader trains on the derived pipeline, not the base's
    assert derived.train_dataloader.dataset.pipeline == derived.train_pipeline
    # derived, not restated: the loading steps are never spelled out again
    assert 'LoadStreetHazardsAnnotations' not in open(path).read()


def test_every_ablation_is_listed():
    import glob
    found = {osp.splitext(osp.basename(p))[0] for p in glob.glob(osp.join(ROOT, 'configs', 'ablations', '*.py'))}
    assert found == set(EXPECTED_DIFF)


def test_demo_train_pipeline_is_the_headlines_at_its_crop_size():
    path = osp.join(ROOT, 'configs', 'demo', 'deeplab_r18_tiny_demo.py')
    demo = Config.fromfile(path)
    headline = Config.fromfile(_base_file(path))
    assert pipeline_diff(headline.train_pipeline, demo.train_pipeline) == {'MultiScaleSquareCrop.output_size'}
    assert 'LoadStreetHazardsAnnotations' not in open(path).read().split('test_pipeline')[0]


def test_all_scorers_extends_logit_scorers():
    logit = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'anomaly', 'logit_scorers.py'))
    full = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'anomaly', 'all_scorers.py'))
    logit_types = [s['type'] for s in logit.anomaly_test_evaluator[1].scorers]
    full_types = [s['type'] for s in full.anomaly_test_evaluator[1].scorers]
    assert full_types[:len(logit_types)] == logit_types
    assert full_types[len(logit_types):] == ['SML', 'HEAT', 'Mahalanobis']
    assert full.anomaly_test_evaluator[0] == logit.anomaly_test_evaluator[0]
