"""End to end: the demo model x the scorer-set configs on a generated StreetHazards copy, one runner.test()."""
import importlib.util
import os.path as osp
import uuid

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from anomseg_plugins.engine import AnomalyTestLoop

SCORERS = ['MSP', 'MaxLogit', 'Energy', 'Entropy', 'SML', 'HEAT', 'Mahalanobis']


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


def test_all_scorers_from_one_pass(tmp_path, repo_root, tiny_street_hazards):
    cfg = compose(tmp_path, repo_root, tiny_street_hazards, 'all_scorers', tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    assert isinstance(runner.test_loop, AnomalyTestLoop)
    assert runner.test_loop.feature_stages == (2, )
    assert 0 <= metrics['mIoU'] <= 100
    for name in SCORERS:
        for protocol in ('pooled', 'per_image'):
            value = metrics[f'anomaly/{protocol}/{name}/AUROC']
            assert 0 <= value <= 100, (protocol, name, value)
    stats = torch.load(osp.join(cfg.work_dir, 'anomaly_scorer_stats.pth'), weights_only=True)
    assert set(stats['scorers']) == {'SML', 'Mahalanobis'}
    assert stats['meta']['fit_data'].startswith('StreetHazardsDataset(len=4')


def test_fusion_scorer_set(tmp_path, repo_root, tiny_street_hazards):
    cfg = compose(tmp_path, repo_root, tiny_street_hazards, 'fusion_scorers', tmp_path / 'work')
    metrics = Runner.from_cfg(cfg).test()
    for name in ('RankFusion(MaxLogit+Mahalanobis)', 'ZScoreFusion(MaxLogit+Mahalanobis)'):
        assert 0 <= metrics[f'anomaly/pooled/{name}/AUROC'] <= 100


def test_scorer_sets_compose_with_the_headline_config(tmp_path, repo_root):
    from mmengine.registry import init_default_scope
    from mmseg.registry import METRICS
    init_default_scope('mmseg')
    for scorer_set in ('logit_scorers', 'all_scorers', 'fusion_scorers', 'study_scorers'):
        path = tmp_path / f'{scorer_set}.py'
        path.write_text(f"_base_ = [{osp.join(repo_root, 'configs', 'deeplab_r50_multiscale.py')!r}, "
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
    the fit pass through the same wrapper; every scorer (Mahalanobis / HEAT on merged features) and both protocols."""
    spec = importlib.util.spec_from_file_location('anomseg_tools_test_e2e', osp.join(repo_root, 'tools', 'test.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    cfg = compose(tmp_path, repo_root, tiny_street_hazards, 'all_scorers', tmp_path / 'work')
    augs = cfg.tta_pipeline[1].transforms
    augs[0][0].scale = (160, 96)  # the generated images' own size, and two ratios: keeps the test fast
    augs[1] = [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in (1.0, 0.5)]
    cfg = tool.use_tta(cfg, 'demo_tta.py')
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    assert type(runner.test_loop.tta_model).__name__ == 'LogitSegTTAModel'
    assert 0 <= metrics['mIoU'] <= 100
    for name in SCORERS:
        for protocol in ('pooled', 'per_image'):
            value = metrics[f'anomaly/{protocol}/{name}/AUROC']
            assert 0 <= value <= 100, (protocol, name, value)
    meta = torch.load(osp.join(cfg.work_dir, 'anomaly_scorer_stats.pth'), weights_only=True)['meta']
    assert meta['tta'] == 'LogitSegTTAModel' and 'TestTimeAug' in meta['fit_pipeline']
