"""The four road-anomaly benchmark sets in one test run: ``configs/_base_/anomaly/road_anomaly_benchmarks.py`` and
the Cityscapes demo configs (``configs/cityscapes_demo/``).

Fast: what the configs give ``AnomalyTestLoop`` (four named sets in order, every scorer on each with the track of
its benchmark, no mIoU, the demo's data roots and test resize, a tta_pipeline per set around its own pipeline).
Slow: ``tools/test.py`` on the demo config, in-process, with a freshly initialised Cityscapes demo model on a small
generated copy of the five sets (``generate_road_anomaly_sets``): four sets' metrics under the three protocols, each
set's files in its folder, the fitted scorers fitted once, the first set equal to a run of it alone, and
``tools/analysis/compare.py`` holding the json's numbers.
"""
import importlib.util
import json
import os
import os.path as osp
import sys
import uuid

import pytest
import torch
from mmengine.config import Config

BASE = 'configs/_base_/anomaly/road_anomaly_benchmarks.py'
MODEL = 'configs/cityscapes_demo/deeplab_r18_tiny_cityscapes_demo.py'
DEMO = 'configs/cityscapes_demo/deeplab_r18_tiny_cityscapes_demo_road_anomaly.py'
SETS = ('road_anomaly21', 'road_obstacle21', 'lost_and_found', 'fishyscapes_laf')
TRACKS = dict(
    road_anomaly21='anomaly', road_obstacle21='obstacle', lost_and_found='obstacle', fishyscapes_laf='anomaly')
DATASET_TYPES = dict(
    road_anomaly21='RoadAnomaly21Dataset',
    road_obstacle21='RoadObstacle21Dataset',
    lost_and_found='LostAndFoundDataset',
    fishyscapes_laf='FishyscapesLAFDataset')
SCORERS = ('MSP', 'MaxLogit', 'Energy', 'Entropy', 'SML', 'HEAT', 'Mahalanobis')
DEMO_ROOTS = dict(
    road_anomaly21='data/road_anomaly_demo/dataset_AnomalyTrack',
    road_obstacle21='data/road_anomaly_demo/dataset_ObstacleTrack',
    lost_and_found='data/road_anomaly_demo/dataset_LostAndFound',
    fishyscapes_laf='data/road_anomaly_demo/dataset_FishyLAF')


def load(repo_root, rel):
    return Config.fromfile(osp.join(repo_root, rel))


def set_parts(cfg):
    """``{set: (dataloader, evaluator, tta_pipeline)}`` of a config, the primary set first."""
    parts = {
        cfg.test_cfg.primary_set.name: (cfg.test_dataloader, cfg.test_evaluator, cfg.test_cfg.primary_set.tta_pipeline)
    }
    for name, entry in cfg.test_cfg.test_sets.items():
        parts[name] = (entry.dataloader, entry.evaluator, entry.tta_pipeline)
    return parts


def check_sets(cfg, resize):
    from anomseg_plugins.engine import config_test_sets
    assert [s.name for s in config_test_sets(cfg)] == list(SETS)
    assert cfg.test_cfg.type == 'AnomalyTestLoop' and cfg.test_cfg.stats_file == 'anomaly_scorer_stats.pth'
    for name, (loader, evaluator, tta) in set_parts(cfg).items():
        assert loader.dataset.type == DATASET_TYPES[name]
        [metric] = evaluator  # no IoUMetric: the sets have no class labels
        assert metric.type == 'AnomalyMetric' and metric.component_track == TRACKS[name]
        assert tuple(metric.protocols) == ('pooled', 'per_image', 'component')
        assert [s.type for s in metric.scorers] == list(SCORERS)
        pipeline = loader.dataset.pipeline
        assert [t.type for t in pipeline
                ] == ['LoadImageFromFileWithRetry', 'Resize', 'LoadAnomalyAnnotations', 'PackAnomalySegInputs']
        assert pipeline[1] == resize, name
        # --tta: the set's own pipeline around 6 ratios x 2 flips, the annotations loaded after the augmentations
        assert tta[0] == pipeline[0] and tta[1].type == 'TestTimeAug'
        branches = tta[1].transforms
        assert branches[0] == [pipeline[1]] and branches[-2:] == [[pipeline[2]], [pipeline[3]]]
        assert [t.scale_factor for t in branches[1]] == [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
        assert [t.prob for t in branches[2]] == [0.0, 1.0]
    # the scorer configs are the same in every set, so the fitted ones are fitted once (one object per name)
    scorers = [[dict(s) for s in ev[0].scorers] for _, ev, _ in set_parts(cfg).values()]
    assert all(s == scorers[0] for s in scorers)


def test_base_lists_the_four_benchmarks(repo_root, tmp_path):
    """The base, composed with a StreetHazards model config in the three lines its header gives."""
    path = tmp_path / 'pspnet_road_anomaly.py'
    path.write_text(
        f"_base_ = [{osp.join(repo_root, 'configs/pspnet/pspnet_r18-d8_1xb4-40e_streethazards-512x512.py')!r}, "
        f'{osp.join(repo_root, BASE)!r}]\n'
        'test_dataloader = dict(_base_.road_anomaly_test_dataloader, _delete_=True)\n'
        'test_evaluator = _base_.road_anomaly_test_evaluator\n'
        'test_cfg = _base_.road_anomaly_test_cfg\n')
    test_cfg = Config.fromfile(str(path))
    check_sets(test_cfg, dict(type='Resize', scale=(1280, 720), keep_ratio=True))
    assert 'data_prefix' not in test_cfg.test_dataloader.dataset  # StreetHazards' test_dataloader replaced
    assert test_cfg.val_dataloader.dataset.type == 'StreetHazardsDataset'  # the fit data
    roots = {n: loader.dataset.data_root for n, (loader, _, _) in set_parts(test_cfg).items()}
    assert roots == dict(
        road_anomaly21='data/dataset_AnomalyTrack',
        road_obstacle21='data/dataset_ObstacleTrack',
        lost_and_found='data/dataset_LostAndFound',
        fishyscapes_laf='data/dataset_FishyLAF')
    assert test_cfg.test_cfg.test_sets.lost_and_found.dataloader.dataset.subset == 'LostAndFound-testNoKnown'


def test_cityscapes_demo_configs(repo_root):
    model = load(repo_root, MODEL)
    assert model.model.decode_head.num_classes == model.model.auxiliary_head.num_classes == 19
    for split, folder in (('train', 'train'), ('val', 'val'), ('test', 'val')):
        ds = model[f'{split}_dataloader'].dataset
        assert ds.type == 'CityscapesDataset' and ds.data_root == 'data/road_anomaly_demo/cityscapes'
        assert ds.data_prefix == dict(img_path=f'leftImg8bit/{folder}', seg_map_path=f'gtFine/{folder}')
        assert 'LoadAnnotations' in [t.type for t in ds.pipeline]
    cfg = load(repo_root, DEMO)
    check_sets(cfg, model.test_resize)
    for name, (loader, _, _) in set_parts(cfg).items():
        assert loader.dataset.data_root == DEMO_ROOTS[name]
    assert cfg.test_dataloader.dataset.type == 'RoadAnomaly21Dataset' and '_delete_' not in cfg.test_dataloader
    assert 'data_prefix' not in cfg.test_dataloader.dataset  # the Cityscapes test_dataloader is replaced, not merged
    assert cfg.test_cfg.test_sets.lost_and_found.dataloader.dataset.subset is None
    assert cfg.test_cfg.test_sets.fishyscapes_laf.dataloader.dataset.laf_root == DEMO_ROOTS['lost_and_found']
    assert cfg.val_dataloader.dataset.type == 'CityscapesDataset'  # the fit data of SML / Mahalanobis


# ------------------------------------------------------------------------------------------------------ slow
def _tool(repo_root, rel):
    spec = importlib.util.spec_from_file_location(f'tool_{uuid.uuid4().hex}', osp.join(repo_root, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _root_options(root):
    """--cfg-options pointing the demo config at a generated copy in ``root`` (names as the config's keys)."""
    opts = [f'val_dataloader.dataset.data_root={root}/cityscapes']
    for name in SETS:
        key = 'test_dataloader' if name == 'road_anomaly21' else f'test_cfg.test_sets.{name}.dataloader'
        folder = osp.basename(DEMO_ROOTS[name])
        opts += [f'{key}.dataset.data_root={root}/{folder}', f'{key}.num_workers=0', f'{key}.persistent_workers=False']
    opts += [
        f'test_cfg.test_sets.fishyscapes_laf.dataloader.dataset.laf_root={root}/dataset_LostAndFound',
        'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False'
    ]
    return opts


def _run(tool, monkeypatch, config, ckpt, work_dir, options):
    with monkeypatch.context() as m:
        m.setattr(sys, 'argv', ['tools/test.py', config, ckpt, '--work-dir', str(work_dir), '--cfg-options'] + options)
        tool.main()
    [log] = [osp.join(d, f) for d, _, files in os.walk(work_dir) for f in files if f.endswith('.log')]
    return json.load(open(osp.join(work_dir, 'test_results.json'))), open(log).read(), osp.dirname(log)


@pytest.mark.slow
def test_demo_runs_the_four_benchmarks_in_one_call(repo_root, tmp_path, monkeypatch):
    from mmengine.model import revert_sync_batchnorm
    from mmseg.registry import MODELS

    from anomseg_plugins.tooling.street_scenes.benchmark_layouts import generate_road_anomaly_sets
    data = str(tmp_path / 'data')
    generate_road_anomaly_sets(data, num_train=2, num_val=2, num_test=3, size=(128, 64), verbose=False, log=print)
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(load(repo_root, MODEL).model))
    ckpt = str(tmp_path / 'init.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    tool = _tool(repo_root, 'tools/test.py')
    options = _root_options(data) + ['test_cfg.stats_file=' + str(tmp_path / 'stats.pth')]
    results, log, log_dir = _run(tool, monkeypatch, osp.join(repo_root, DEMO), ckpt, tmp_path / 'four', options)

    assert list(results['test_sets']) == list(SETS)
    metric_names = {
        f'{p}/{s}/{m}'
        for p in ('pooled', 'per_image')
        for s in SCORERS
        for m in ('AUROC', 'AUPR', 'FPR95', 'F1', 'F1_threshold')
    }
    for name, values in results['test_sets'].items():
        assert 'mIoU' not in values
        assert {f'anomaly/{k}' for k in metric_names} <= set(values), name
        for scorer in SCORERS:
            for key in ('sIoU', 'PPV', 'F1_mean'):
                assert f'anomaly/component/{scorer}/{key}' in values, (name, scorer, key)
        summary = json.load(open(osp.join(log_dir, 'anomaly', name, 'anomaly_metrics.json')))
        for scorer in SCORERS:
            got = summary['pooled'][scorer]['AUPR']
            assert got == pytest.approx(values[f'anomaly/pooled/{scorer}/AUPR'], abs=1e-9, nan_ok=True)
        assert results['metrics'][f'{name}/anomaly/pooled/MaxLogit/AUROC'] == values['anomaly/pooled/MaxLogit/AUROC']
    assert log.count('AnomalyTestLoop: fitting SML, Mahalanobis on val_dataloader (2 images, 2 batches), pass 1') == 1
    for number, name in enumerate(SETS, 1):
        assert f'[{number}/4] test set {name}: no class labels (no mIoU); anomaly metrics' in log

    # the first set alone (the other three dropped), with the stats file of the four-set run: the same numbers
    alone, alone_log, _ = _run(tool, monkeypatch, osp.join(repo_root, DEMO), ckpt, tmp_path / 'alone',
                               options + [f'test_cfg.test_sets.{n}=None' for n in SETS[1:]])
    assert list(alone['test_sets']) == ['road_anomaly21']
    assert alone['test_sets']['road_anomaly21'] == results['test_sets']['road_anomaly21']
    assert 'loaded the fitted statistics of SML, Mahalanobis' in alone_log

    compare = _tool(repo_root, 'tools/analysis/compare.py')
    res = compare.compare([str(tmp_path / 'four')], str(tmp_path / 'cmp'), sort_by=None, plot=False)
    assert [(r['dataset'], r['scorer']) for r in res['rows']] == [(d, s) for d in SETS for s in SCORERS]
    for r in res['rows']:
        values = results['test_sets'][r['dataset']]
        for column in ('pooled/AUPR', 'pooled/FPR95', 'component/sIoU', 'component/PPV', 'component/F1_mean'):
            protocol, metric = column.split('/')
            want = values[f'anomaly/{protocol}/{r["scorer"]}/{metric}']
            assert r[column] == want or (want != want and r[column] != r[column]), (r['dataset'], column)
