"""tools/test.py with several test sets, in-process on toy sets and the tiny segmentor (seconds, no subprocess).

- ``test_results.json``: the flat ``<set>/<metric>`` keys and ``test_sets`` (the same values per set), each set's
  values equal to a single-set ``tools/test.py`` run of the same checkpoint on that set; one summary table per set
  in the log with those numbers; ``--out DIR`` gives every set ``DIR/<set>``.
- ``--tta``: every set runs through its own ``tta_pipeline`` (else the config's), the fit data through the config's;
  the set's metrics equal a single-set ``--tta`` run on it.
- the sets' dataloaders and evaluators go through the pre-flight checks, problems named by the set's keys.
- ``tools/analysis/compare.py`` over two such runs: one row per model x dataset x scorer holding the json's values.
"""
import copy
import csv
import importlib.util
import json
import os.path as osp
import sys
import uuid

import numpy as np
import pytest
import torch
from mmcv.transforms import BaseTransform
from mmengine.hooks import Hook
from mmseg.registry import DATASETS, HOOKS, MODELS, TRANSFORMS
from tiny_models import tiny_segmentor_cfg

import anomseg_plugins  # noqa: F401

NUM_CLASSES = 3
SCORERS = [dict(type='MaxLogit'), dict(type='SML'), dict(type='HEAT', feature_stage=1)]
NAMES = ('MaxLogit', 'SML', 'HEAT')


@TRANSFORMS.register_module(force=True)
class ToyLoadAnomalyMaps(BaseTransform):
    """Puts the item's labels and anomaly map into ``gt_seg_map`` / ``gt_anomaly_map`` (original size, as
    LoadAnomalyAnnotations after the resize)."""

    def transform(self, results):
        results['gt_seg_map'] = results['toy_gt'].copy()
        results['gt_anomaly_map'] = results['toy_anomaly'].copy()
        results.setdefault('seg_fields', []).append('gt_seg_map')
        return results


@DATASETS.register_module(force=True)
class ToyToolSetDataset(torch.utils.data.Dataset):
    """Random ``(H, W, 3)`` images, labels (some ignored) and one rectangular anomaly each, through a pipeline."""

    metainfo = dict(classes=('a', 'b', 'c'), palette=[[0, 0, 0], [1, 1, 1], [2, 2, 2]])

    def __init__(self, pipeline, num=3, size=(24, 40), seed=0):
        from mmengine.dataset import Compose
        self.pipeline = Compose(pipeline)
        rng = np.random.default_rng(seed)
        h, w = size
        self.items = []
        for _ in range(num):
            gt = rng.integers(0, NUM_CLASSES, size).astype(np.uint8)
            gt[:2] = 255
            anomaly = np.zeros(size, np.uint8)
            top, left = rng.integers(2, h // 2), rng.integers(2, w // 2)
            anomaly[top:top + h // 3, left:left + w // 3] = 1
            anomaly[gt == 255] = 255
            self.items.append((rng.integers(0, 256, (*size, 3)).astype(np.uint8), gt, anomaly))
        self.seed = seed

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        img, gt, anomaly = self.items[idx]
        return self.pipeline(
            dict(
                img=img.copy(),
                toy_gt=gt,
                toy_anomaly=anomaly,
                img_path=f'set{self.seed}_img{idx}.png',
                img_shape=img.shape[:2],
                ori_shape=img.shape[:2],
                reduce_zero_label=False))


@HOOKS.register_module(force=True)
class RecordViewsHook(Hook):
    """Number of TTA views of every test sample, per test dataloader (dataset seed)."""

    def __init__(self):
        self.views = {}

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        seed = runner.test_dataloader.dataset.seed
        for sample in outputs:
            self.views.setdefault(seed, []).append(len(sample.metainfo.get('tta_view_metas') or [None]))


def pipeline():
    return [
        dict(type='Resize', scale=(40, 24), keep_ratio=False),
        dict(type='ToyLoadAnomalyMaps'),
        dict(type='PackAnomalySegInputs')
    ]


def tta_pipeline(ratios=(1.0, 0.5)):
    return [
        dict(
            type='TestTimeAug',
            transforms=[[dict(type='Resize', scale_factor=r, keep_ratio=True) for r in ratios],
                        [
                            dict(type='RandomFlip', prob=0., direction='horizontal'),
                            dict(type='RandomFlip', prob=1., direction='horizontal')
                        ], [dict(type='ToyLoadAnomalyMaps')], [dict(type='PackAnomalySegInputs')]])
    ]


def loader(seed, num=3, size=(24, 40)):
    return dict(
        batch_size=1,
        num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(type='ToyToolSetDataset', pipeline=pipeline(), num=num, size=size, seed=seed))


SET_A = dict(seed=2, num=2, size=(24, 40))
SET_B = dict(seed=5, num=2, size=(20, 32))


def evaluator():
    return [
        dict(type='IoUMetric', iou_metrics=['mIoU']),
        dict(type='AnomalyMetric', scorers=SCORERS, save_figures=False)
    ]


def write_config(path, primary=SET_A, test_cfg=None, **extra):
    """A config file: the tiny model, ``primary`` as test_dataloader, a toy fit split, ``test_cfg``."""
    cfg = dict(
        model=tiny_segmentor_cfg(NUM_CLASSES).to_dict(),
        test_dataloader=loader(**primary),
        test_evaluator=evaluator(),
        test_cfg=dict(type='AnomalyTestLoop', **(test_cfg or {})),
        val_dataloader=loader(seed=1, num=2),
        val_cfg=dict(type='ValLoop'),
        val_evaluator=dict(type='IoUMetric'),
        default_scope='mmseg',
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1)),
        tta_model=dict(type='LogitSegTTAModel'),
        tta_pipeline=tta_pipeline(),
        custom_hooks=[dict(type='RecordViewsHook')],
        experiment_name=uuid.uuid4().hex)
    cfg.update(extra)
    path.write_text(''.join(f'{k} = {v!r}\n' for k, v in cfg.items()))
    return str(path)


def two_sets(set_b_tta=None):
    entry = dict(dataloader=loader(**SET_B))
    if set_b_tta is not None:
        entry['tta_pipeline'] = set_b_tta
    return dict(primary_set='set_a', test_sets=dict(set_b=entry))


def checkpoint(path, seed):
    torch.manual_seed(seed)
    model = MODELS.build(tiny_segmentor_cfg(NUM_CLASSES))
    torch.save(dict(state_dict=model.state_dict(), meta={}), path)
    return str(path)


def load_tool(repo_root, rel):
    spec = importlib.util.spec_from_file_location(f'tool_{uuid.uuid4().hex}', osp.join(repo_root, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def tool(repo_root):
    return load_tool(repo_root, 'tools/test.py')


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp('ckpts')
    return checkpoint(root / 'm0.pth', 0), checkpoint(root / 'm1.pth', 1)


def run_tool(tool, monkeypatch, config, ckpt, work_dir, *args):
    """``tools/test.py CONFIG CKPT --work-dir WORK_DIR ARGS`` in this process; returns (test_results.json, log)."""
    with monkeypatch.context() as m:
        m.setattr(sys, 'argv', ['tools/test.py', config, ckpt, '--work-dir', str(work_dir), *args])
        tool.main()
    results = json.load(open(osp.join(work_dir, 'test_results.json')))
    [log] = [osp.join(d, f) for d, _, files in __import__('os').walk(work_dir) for f in files if f.endswith('.log')]
    return results, open(log).read()


@pytest.fixture(scope='module')
def runs(tool, ckpts, tmp_path_factory):
    """Two-set runs of both checkpoints (with --out for the first) and a single-set run of set B with the first."""
    root = tmp_path_factory.mktemp('runs')
    mp = pytest.MonkeyPatch()
    try:
        config = write_config(root / 'two_sets.py', test_cfg=two_sets())
        multi = run_tool(tool, mp, config, ckpts[0], root / 'm0', '--out', str(root / 'out'))
        other = run_tool(tool, mp, config, ckpts[1], root / 'm1')
        single = run_tool(tool, mp, write_config(root / 'set_b.py', primary=SET_B), ckpts[0], root / 'single_b')
    finally:
        mp.undo()
    return dict(root=root, multi=multi, other=other, single=single)


def test_results_json_holds_every_set_with_single_run_values(runs):
    (results, _), (single, _) = runs['multi'], runs['single']
    metrics, per_set = results['metrics'], results['test_sets']
    assert list(per_set) == ['set_a', 'set_b']
    assert set(metrics) == {f'{s}/{k}' for s, m in per_set.items() for k in m}
    for name, values in per_set.items():
        for key, value in values.items():
            assert metrics[f'{name}/{key}'] == value
    expected = {'aAcc', 'mIoU', 'mAcc'} | {
        f'anomaly/{p}/{s}/{m}'
        for p in ('pooled', 'per_image')
        for s in NAMES
        for m in ('AUROC', 'AUPR', 'FPR95', 'F1', 'F1_threshold')
    }
    assert set(per_set['set_b']) == expected == set(single['metrics'])
    assert per_set['set_b'] == single['metrics']  # the single-set run of the same checkpoint on set B, exactly
    assert 'test_sets' not in single
    # --out: every set's anomaly files in its own folder, holding the json's numbers
    for name in per_set:
        summary = json.load(open(runs['root'] / 'out' / name / 'anomaly_metrics.json'))
        for scorer in NAMES:
            assert summary['pooled'][scorer]['AUPR'] == pytest.approx(
                per_set[name][f'anomaly/pooled/{scorer}/AUPR'], abs=1e-9)


def test_log_has_one_summary_table_per_set(runs):
    results, log = runs['multi']
    for number, (name, values) in enumerate(results['test_sets'].items(), 1):
        head = f'[{number}/2] test set {name}: mIoU {values["mIoU"]:.2f}, mAcc {values["mAcc"]:.2f}, aAcc '
        lines = log[log.index(head):].splitlines()[1:]
        table = '\n'.join(lines[:next(i for i, line in enumerate(lines) if line[:1] not in '+|')])
        header = next(line for line in table.splitlines() if line.startswith('|') and 'Scorer' in line)
        columns = [c.strip() for c in header.strip('|').split('|')]
        assert columns == [
            'Scorer', 'FPR95 pooled', 'AUROC pooled', 'AUPR pooled', 'FPR95 per-image', 'AUROC per-image',
            'AUPR per-image'
        ]
        rows = [line for line in table.splitlines() if line.startswith('|') and 'Scorer' not in line]
        assert [r.strip('|').split('|')[0].strip() for r in rows] == list(NAMES)
        for row in rows:
            cells = [c.strip() for c in row.strip('|').split('|')]
            for col, cell in zip(columns[1:], cells[1:]):
                protocol, metric = {'pooled': 'pooled', 'per-image': 'per_image'}[col.split()[1]], col.split()[0]
                value = values[f'anomaly/{protocol}/{cells[0]}/{metric}']
                assert cell.rstrip(' *') == f'{value:.2f}', (name, cells[0], col)


def test_use_tta_gives_every_set_its_pipeline(tool, tmp_path, capsys):
    """``use_tta`` on the config: the primary set's ``primary_set.tta_pipeline``, a set's own ``tta_pipeline``, else
    the config's (said on stdout); the fit data the config's; the model wrapped."""
    from mmengine.config import Config
    flip_only, primary_tta = tta_pipeline(ratios=(1.0, )), tta_pipeline(ratios=(1.0, 0.75))
    sets = dict(
        primary_set=dict(name='set_a', tta_pipeline=primary_tta),
        test_sets=dict(
            set_b=dict(dataloader=loader(**SET_B), tta_pipeline=flip_only), set_c=dict(dataloader=loader(9))))
    cfg = tool.use_tta(Config.fromfile(write_config(tmp_path / 'c.py', test_cfg=sets)), 'c.py')
    assert cfg.model.type == 'LogitSegTTAModel' and cfg.model.module.type == 'EncoderDecoder'
    assert cfg.test_dataloader.dataset.pipeline == primary_tta
    assert cfg.test_cfg.test_sets.set_b.dataloader.dataset.pipeline == flip_only
    assert cfg.test_cfg.test_sets.set_c.dataloader.dataset.pipeline == tta_pipeline()
    assert cfg.val_dataloader.dataset.pipeline == tta_pipeline()
    out = capsys.readouterr().out
    assert "test set 'set_c' has no test_cfg.test_sets.set_c.tta_pipeline; it gets the config's tta_pipeline" in out
    assert "'set_b' has no" not in out


@pytest.mark.slow  # two --tta runs
def test_tta_gives_every_set_its_pipeline(tool, ckpts, tmp_path, monkeypatch):
    """Set B declares a flip-only tta_pipeline (2 views), set A takes the config's (2 ratios x 2 flips); set B's
    metrics equal a single-set --tta run of B (primary_set with that pipeline, the same fit data and pipeline)."""
    flip_only = tta_pipeline(ratios=(1.0, ))
    config = write_config(tmp_path / 'tta.py', test_cfg=two_sets(set_b_tta=flip_only))
    (results, _), views = run_recording_views(tool, config, ckpts[0], tmp_path / 'multi', monkeypatch)
    # the views each sample ran through, per set (recorded by a hook through runner.test_dataloader)
    assert views == {SET_A['seed']: [4] * SET_A['num'], SET_B['seed']: [2] * SET_B['num']}
    single_cfg = write_config(
        tmp_path / 'tta_b.py', primary=SET_B, test_cfg=dict(primary_set=dict(name='set_b', tta_pipeline=flip_only)))
    single, _ = run_tool(tool, monkeypatch, single_cfg, ckpts[0], tmp_path / 'single', '--tta')
    assert results['test_sets']['set_b'] == single['test_sets']['set_b']
    stats = torch.load(tmp_path / 'multi' / 'anomaly_scorer_stats.pth', weights_only=True)['meta']
    assert stats['tta'] == 'LogitSegTTAModel' and 'TestTimeAug' in stats['fit_pipeline']
    assert 'scale_factor=(0.5, 0.5)' in stats['fit_pipeline']  # the config's tta_pipeline for the fit data


def run_recording_views(tool, config, ckpt, work_dir, monkeypatch):
    """``tools/test.py --tta``: its results and RecordViewsHook's record (caught from the Runner it builds)."""
    from mmengine.runner import Runner
    built = []
    original = Runner.from_cfg.__func__

    def from_cfg(cls, cfg):
        runner = original(cls, cfg)
        built.append(runner)
        return runner

    with monkeypatch.context() as m:
        m.setattr(Runner, 'from_cfg', classmethod(from_cfg))
        out = run_tool(tool, monkeypatch, config, ckpt, work_dir, '--tta')
    return out, next(h for h in built[0].hooks if isinstance(h, RecordViewsHook)).views


def test_preflight_names_the_keys_of_a_set(tool, ckpts, tmp_path, monkeypatch):
    bad = copy.deepcopy(two_sets())
    bad['test_sets']['set_b']['dataloader']['dataset'] = dict(
        type='StreetHazardsDataset', data_root=str(tmp_path / 'nowhere'), pipeline=pipeline())
    bad['test_sets']['set_b']['evaluator'] = [dict(type='AnomalyMetric', scorers=[dict(type='MaxLogitt')])]
    config = write_config(tmp_path / 'bad.py', test_cfg=bad)
    with monkeypatch.context() as m:
        m.setattr(sys, 'argv', ['tools/test.py', config, ckpts[0], '--work-dir', str(tmp_path / 'w')])
        with pytest.raises(SystemExit) as exc:
            tool.main()
    message = str(exc.value)
    assert message.startswith(f'tools/test.py: 2 problem(s) in the test sets of config {config}:\n- ')
    assert f"test_cfg.test_sets.set_b.dataloader.dataset.data_root = '{tmp_path / 'nowhere'}' does not exist" in message
    assert ("test_cfg.test_sets.set_b.evaluator[0].scorers[0].type = 'MaxLogitt' is not a registered anomaly scorer "
            "type" in message and "Did you mean 'MaxLogit'" in message)
    assert not osp.exists(tmp_path / 'w' / 'test_results.json')

    no_primary = write_config(tmp_path / 'no_primary.py', test_cfg=dict(test_sets=dict(set_b=dict())))
    with monkeypatch.context() as m:
        m.setattr(sys, 'argv', ['tools/test.py', no_primary, ckpts[0], '--work-dir', str(tmp_path / 'w')])
        with pytest.raises(SystemExit, match=r'^tools/test.py: test_cfg.test_sets is given but test_cfg.primary_set'):
            tool.main()


def test_compare_makes_one_table_of_models_datasets_and_scorers(repo_root, runs, tmp_path):
    compare = load_tool(repo_root, 'tools/analysis/compare.py')
    out = tmp_path / 'cmp'
    assert compare.main([str(runs['root'] / 'm0'),
                         str(runs['root'] / 'm1'), '--names', 'm0', 'm1', '--out',
                         str(out)]) == 0
    truth = {}  # (model, dataset, scorer) -> column -> value, read from the two test_results.json
    for model in ('m0', 'm1'):
        data = json.load(open(runs['root'] / model / 'test_results.json'))
        for dataset, values in data['test_sets'].items():
            for scorer in NAMES:
                row = {'mIoU': values['mIoU']}
                for protocol in ('pooled', 'per_image'):
                    for metric in ('FPR95', 'AUROC', 'AUPR'):
                        row[f'{protocol}/{metric}'] = values[f'anomaly/{protocol}/{scorer}/{metric}']
                truth[(model, dataset, scorer)] = row
    columns = list(next(iter(truth.values())))
    with open(out / 'comparison.csv') as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    assert header == ['model', 'dataset', 'scorer'] + columns + ['best_in', 'source']
    # grouped by dataset (in test order), best pooled AUPR first within each
    order = sorted(truth, key=lambda k: (['set_a', 'set_b'].index(k[1]), -truth[k]['pooled/AUPR']))
    assert [tuple(r[:3]) for r in rows] == order
    for r in rows:
        key = tuple(r[:3])
        group = [v for k, v in truth.items() if k[1] == key[1]]
        for c, cell in zip(columns, r[3:3 + len(columns)]):
            assert cell == f'{truth[key][c]:.4f}', (key, c)
        best = {c for c in columns if truth[key][c] == (min if c.endswith('FPR95') else max)(g[c] for g in group)}
        assert set(filter(None, r[3 + len(columns)].split(';'))) == best, key
    data = json.load(open(out / 'comparison.json'))
    assert data['datasets'] == ['set_a', 'set_b']
    for r in data['rows']:
        for c in columns:
            assert r[c] == truth[(r['model'], r['dataset'], r['scorer'])][c]
    md = (out / 'comparison.md').read_text().splitlines()
    assert md[0].startswith('| Model | Dataset | Scorer | mIoU ↑ |')
    assert len(md) == 2 + len(order)
    assert (out / 'comparison_bars.png').stat().st_size > 0


def test_un_augmented_set_under_tta_is_named(tmp_path):
    """A set whose pipeline was left un-augmented under a TTA model fails naming that set's dataloader key."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(write_config(tmp_path / 'c.py', test_cfg=two_sets()))
    cfg.model = dict(cfg.tta_model, module=cfg.model)
    for loader in (cfg.test_dataloader, cfg.val_dataloader):
        loader.dataset.pipeline = tta_pipeline(ratios=(1.0, ))
    cfg.work_dir = str(tmp_path / 'w')
    with pytest.raises(
            RuntimeError,
            match=r'wrapped in LogitSegTTAModel .*but test_cfg.test_sets.set_b.dataloader '
            r'gives un-augmented batches'):
        Runner.from_cfg(cfg).test()
