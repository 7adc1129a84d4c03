"""End to end: the demo model x the scorer-set configs on a generated StreetHazards copy, one runner.test().

Every number ``runner.test()`` returns is checked by value: mIoU / aAcc / mAcc against mmseg's definition written
out with numpy on the annotation files, and each scorer's anomaly metrics (both protocols, percent) against
scikit-learn on that scorer's maps, computed here from the logits of the same test pass (``Recorder``): the
logit scorers by their formulas, SML / HEAT / the fusions from their definitions with the fitted statistics of the
stats file, Mahalanobis with the fitted scorer on the recorded backbone features. A metric keyed to the wrong
scorer or protocol, an mIoU over other classes, or fractions instead of percent fail.
"""
import copy
import importlib.util
import json
import math
import os.path as osp
import uuid

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from reference_metrics import (heat_scores, image_ranks, iou_reference, logit_scores, protocol_reference, sml_scores,
                               street_hazards_labels)

from anomseg_plugins.engine import AnomalyTestLoop

pytestmark = pytest.mark.slow  # full test runs with every scorer set

SCORERS = ['MSP', 'MaxLogit', 'Energy', 'Entropy', 'SML', 'HEAT', 'Mahalanobis']
LOGIT_SCORERS = ('MSP', 'MaxLogit', 'Energy', 'Entropy')
NUM_CLASSES = 13
HEADLINE = 'deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py'  # the recipe the demo config shrinks
METRICS = ('AUROC', 'AUPR', 'FPR95', 'F1', 'F1_threshold')
#: points: the product scores in float32, the references in float64, so a pixel may swap places with a neighbour
PER_IMAGE_TOL = dict(AUROC=1e-3, AUPR=1e-3, FPR95=1e-2, F1=1e-3)
#: points on top of the reported tie bound of the pooled (histogram) protocol
POOLED_TOL = dict(AUROC=2e-3, AUPR=2e-3, FPR95=5e-3, F1=1e-2)
#: IoUMetric rounds to 2 decimals
IOU_TOL = 0.006


def compose(tmp_path, repo_root, data_root, scorer_set, work_dir):
    """A user's test config: the demo model x a scorer set, pointed at ``data_root``."""
    path = tmp_path / f'demo_{scorer_set}_{uuid.uuid4().hex[:6]}.py'
    path.write_text(f"_base_ = [{osp.join(repo_root, 'configs', 'demo', 'deeplab_r18_tiny_demo.py')!r}, "
                    f"{osp.join(repo_root, 'configs', '_base_', 'anomaly', scorer_set + '.py')!r}]\n"
                    'test_cfg = _base_.anomaly_test_cfg\n'
                    'test_evaluator = _base_.anomaly_test_evaluator\n')
    cfg = Config.fromfile(str(path))
    for split in ('val_dataloader', 'test_dataloader'):
        cfg[split].dataset.data_root = data_root
        resize = [t for t in cfg[split].dataset.pipeline if t.type == 'Resize'][0]
        resize.scale = (160, 96)  # the generated images' own size: keeps the test fast
        cfg[split].num_workers = 0
        cfg[split].persistent_workers = False
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = uuid.uuid4().hex
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook', draw=False)
    cfg.test_evaluator[1].save_figures = False
    return cfg


def segmentor(runner):
    """The runner's model without its TTA wrapper."""
    model = runner.model
    while not hasattr(model, 'decode_head'):
        model = model.module
    return model


def spread_logits(runner):
    """Re-draw the untrained decode head's classifier (seeded, bias 0) so that its logits differ between pixels and
    classes by several units. With the default init they stay within 1e-3 of the bias: one class wins everywhere
    and the softmax scores (MSP, Entropy, Energy) fall into a few histogram bins, where a wrong metric could hide
    inside the tie bound and scorers that differ only by a per-class offset (MaxLogit, SML) rank alike."""
    conv = segmentor(runner).decode_head.conv_seg
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * 1000.0)
        conv.bias.zero_()


class Recorder(Hook):
    """What each test iteration produced, in test order: every sample's logits (at ground-truth resolution), its
    annotation file and, under TTA, the metainfo of its views; with ``stage``, that backbone stage's output at each
    backbone call of the iteration (one per view; the hook is registered at the first test iteration, after the
    fit pass)."""

    def __init__(self, stage=None):
        self.samples, self.stage, self._calls, self._handle = [], stage, [], None

    def before_test_iter(self, runner, batch_idx, data_batch=None):
        if self.stage is not None and self._handle is None:
            self._handle = segmentor(runner).backbone.register_forward_hook(
                lambda module, inputs, outputs: self._calls.append(outputs[self.stage].detach().clone()))

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        assert len(outputs) == 1  # batch size 1: the calls of this iteration are this sample's
        for sample in outputs:
            self.samples.append(
                dict(
                    logits=sample.seg_logits.data.float().cpu().numpy(),
                    seg_map_path=sample.seg_map_path,
                    view_metas=sample.metainfo.get('tta_view_metas'),
                    calls=self._calls))
        self._calls = []

    def after_test_epoch(self, runner, metrics=None):
        if self._handle is not None:
            self._handle.remove()


def sample_features(sample):
    """The stage features the scorers see with one recorded sample: its backbone call's output, or under TTA each
    view's output flipped back and resized bilinearly to the largest view's size, averaged (as the logits are)."""
    metas = sample['view_metas'] or [{}]
    assert len(sample['calls']) == len(metas), (len(sample['calls']), len(metas))
    views = []
    for feat, meta in zip(sample['calls'], metas):
        assert not any(meta.get('img_padding_size', meta.get('padding_size', None)) or ())  # nothing to cut off
        feat = feat[0]
        if meta.get('flip', False):
            feat = feat.flip(-1 if meta.get('flip_direction') == 'horizontal' else -2)
        views.append(feat)
    size = max((tuple(v.shape[-2:]) for v in views), key=lambda hw: hw[0] * hw[1])
    return torch.stack([F.interpolate(v[None], size=size, mode='bilinear', align_corners=False)[0]
                        for v in views]).mean(0)


def run_test(cfg, stage=None):
    runner = Runner.from_cfg(cfg)
    spread_logits(runner)
    recorder = Recorder(stage)
    runner.register_hook(recorder)
    metrics = runner.test()
    assert len(recorder.samples) == 6  # the generated test split
    return runner, metrics, recorder


def fitted_state(cfg, name):
    """The state dict of scorer ``name`` in the stats file the test loop wrote (numpy arrays)."""
    stats = torch.load(osp.join(cfg.work_dir, 'anomaly_scorer_stats.pth'), weights_only=True)
    return {k: v.numpy() for k, v in stats['scorers'][name]['state_dict'].items()}


def mahalanobis_maps(runner, recorder, name='Mahalanobis'):
    """The fitted Mahalanobis scorer of the test metric (a copy) on the recorded logits and stage features."""
    scorer = copy.deepcopy(next(s for s in runner.test_loop.scorers if s.name == name))
    maps = []
    with torch.no_grad():
        for sample in recorder.samples:
            feats = [None] * scorer.feature_stages[0] + [sample_features(sample)[None]]
            maps.append(scorer(torch.from_numpy(sample['logits'])[None], feats)[0].double().numpy())
    return maps


def assert_metrics_by_value(runner, metrics, recorder, maps):
    """mIoU / aAcc / mAcc and, for every scorer in ``maps`` (name -> one score map per test image), both protocols'
    AUROC, AUPR, FPR95, F1 (percent) and F1_threshold, against the references on the same pixels.

    The pooled protocol comes from 22-bit histograms: its AUROC / AUPR / FPR95 may differ from an exact ranking by
    the tie bound the metric reports (``anomaly_metrics.json``), its F1 threshold is a bin edge (relative width
    2^-13). The per-image protocol is exact."""
    labels = [street_hazards_labels(s['seg_map_path']) for s in recorder.samples]
    iou = iou_reference([s['logits'].argmax(0) for s in recorder.samples], [gt for gt, _ in labels], NUM_CLASSES)
    for key in ('mIoU', 'aAcc', 'mAcc'):
        assert abs(metrics[key] - iou[key]) <= IOU_TOL, (key, metrics[key], iou[key])
    summary = json.load(open(osp.join(runner.log_dir, 'anomaly', 'anomaly_metrics.json')))
    assert set(summary['pooled']) == set(summary['per_image']) == set(maps)
    anomaly = [a for _, a in labels]
    for name, score_maps in maps.items():
        ref = protocol_reference(score_maps, anomaly)
        assert summary['per_image'][name]['num_images'] == ref['per_image']['num_images']
        for protocol in ('pooled', 'per_image'):
            for key in METRICS:
                got = metrics[f'anomaly/{protocol}/{name}/{key}']
                if key == 'F1_threshold':
                    want = ref[protocol][key]
                    tol = abs(want) * (2.5e-4 if protocol == 'pooled' else 1e-5) + 1e-6
                else:
                    want = 100 * ref[protocol][key]
                    tol = PER_IMAGE_TOL[key] if protocol == 'per_image' else \
                        POOLED_TOL[key] + (summary[protocol][name].get(f'{key}_tie_bound') or 0.0)
                assert math.isfinite(got) and abs(got - want) <= tol, (protocol, name, key, got, want, tol)


def all_scorer_maps(cfg, runner, recorder):
    """The maps of the seven scorers of ``all_scorers.py`` (see the module docstring)."""
    logits = [s['logits'] for s in recorder.samples]
    maps = {name: [logit_scores(z)[name] for z in logits] for name in LOGIT_SCORERS}
    sml = fitted_state(cfg, 'SML')
    maps['SML'] = [sml_scores(z, sml['mu'], sml['sigma']) for z in logits]
    maps['HEAT'] = heat_scores(logits, alpha=0.9, kernel_size=3)
    maps['Mahalanobis'] = mahalanobis_maps(runner, recorder)
    assert list(maps) == SCORERS
    return maps


def test_all_scorers_from_one_pass(tmp_path, repo_root, tiny_street_hazards):
    """Seven scorers and mIoU from one pass, each metric by value (see the module docstring)."""
    cfg = compose(tmp_path, repo_root, tiny_street_hazards, 'all_scorers', tmp_path / 'work')
    runner, metrics, recorder = run_test(cfg, stage=2)
    assert isinstance(runner.test_loop, AnomalyTestLoop)
    assert runner.test_loop.feature_stages == (2, )
    stats = torch.load(osp.join(cfg.work_dir, 'anomaly_scorer_stats.pth'), weights_only=True)
    assert set(stats['scorers']) == {'SML', 'Mahalanobis'}
    assert stats['meta']['fit_data'].startswith('StreetHazardsDataset(len=4')
    assert all(len(s['calls']) == 1 for s in recorder.samples)
    assert_metrics_by_value(runner, metrics, recorder, all_scorer_maps(cfg, runner, recorder))


def test_fusion_scorer_set(tmp_path, repo_root, tiny_street_hazards):
    """MaxLogit, Mahalanobis and their rank / z-score fusions by value: the fusions written out from the two maps
    (mean of per-image average ranks scaled to [0, 1]; mean of the z-scores with the fitted mu / sigma)."""
    cfg = compose(tmp_path, repo_root, tiny_street_hazards, 'fusion_scorers', tmp_path / 'work')
    runner, metrics, recorder = run_test(cfg, stage=2)
    max_logit = [logit_scores(s['logits'])['MaxLogit'] for s in recorder.samples]
    mahalanobis = mahalanobis_maps(runner, recorder)
    zscore = fitted_state(cfg, 'ZScoreFusion(MaxLogit+Mahalanobis)')
    mu, sigma = zscore['mu'].astype(np.float64), zscore['sigma'].astype(np.float64)
    maps = dict(MaxLogit=max_logit, Mahalanobis=mahalanobis)
    maps['RankFusion(MaxLogit+Mahalanobis)'] = [(image_ranks(a) + image_ranks(b)) / 2
                                                for a, b in zip(max_logit, mahalanobis)]
    maps['ZScoreFusion(MaxLogit+Mahalanobis)'] = [((a - mu[0]) / sigma[0] + (b - mu[1]) / sigma[1]) / 2
                                                  for a, b in zip(max_logit, mahalanobis)]
    assert_metrics_by_value(runner, metrics, recorder, maps)


def test_scorer_sets_compose_with_the_headline_config(tmp_path, repo_root):
    from mmengine.registry import init_default_scope
    from mmseg.registry import METRICS
    init_default_scope('mmseg')
    for scorer_set in ('logit_scorers', 'all_scorers', 'fusion_scorers', 'study_scorers'):
        path = tmp_path / f'{scorer_set}.py'
        path.write_text(f"_base_ = [{osp.join(repo_root, 'configs', 'deeplabv3plus', HEADLINE)!r}, "
                        f"{osp.join(repo_root, 'configs', '_base_', 'anomaly', scorer_set + '.py')!r}]\n"
                        'test_cfg = _base_.anomaly_test_cfg\ntest_evaluator = _base_.anomaly_test_evaluator\n')
        cfg = Config.fromfile(str(path))
        assert cfg.test_cfg.type == 'AnomalyTestLoop'
        assert [e.type for e in cfg.test_evaluator] == ['IoUMetric', 'AnomalyMetric']
        metric = METRICS.build(cfg.test_evaluator[1])
        stages = {s for scorer in metric.scorers for s in scorer.feature_stages}
        assert stages <= set(cfg.model.backbone.out_indices), (scorer_set, stages)


def test_all_scorers_under_tools_test_tta(tmp_path, repo_root, tiny_street_hazards):
    """``tools/test.py --tta`` on the demo config: the dataset base's tta_pipeline, the runtime's LogitSegTTAModel,
    the fit pass through the same wrapper; every scorer (Mahalanobis on the four views' merged features) and both
    protocols, each metric by value on the merged logits and features (see the module docstring)."""
    spec = importlib.util.spec_from_file_location('anomseg_tools_test_e2e', osp.join(repo_root, 'tools', 'test.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    cfg = compose(tmp_path, repo_root, tiny_street_hazards, 'all_scorers', tmp_path / 'work')
    augs = cfg.tta_pipeline[1].transforms
    augs[0][0].scale = (160, 96)  # the generated images' own size, and two ratios: keeps the test fast
    augs[1] = [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in (1.0, 0.5)]
    cfg = tool.use_tta(cfg, 'demo_tta.py')
    runner, metrics, recorder = run_test(cfg, stage=2)
    assert type(runner.test_loop.tta_model).__name__ == 'LogitSegTTAModel'
    # every test image ran as 2 scales x 2 flips, and its features are the four views' merged
    assert all(len(s['view_metas']) == len(s['calls']) == 4 for s in recorder.samples)
    assert_metrics_by_value(runner, metrics, recorder, all_scorer_maps(cfg, runner, recorder))
    meta = torch.load(osp.join(cfg.work_dir, 'anomaly_scorer_stats.pth'), weights_only=True)['meta']
    assert meta['tta'] == 'LogitSegTTAModel' and 'TestTimeAug' in meta['fit_pipeline']
