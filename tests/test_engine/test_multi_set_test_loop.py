"""AnomalyTestLoop with several test sets (``primary_set`` + ``test_sets``) on the tiny mmseg segmentor and toy sets.

Every set's metrics of a multi-set run must equal, value for value, those of a single-set run of the same model on
that set (mIoU and every anomaly metric of both protocols, including HEAT whose running statistics carry from image
to image); the scorers that need fitting are fitted once for all sets; the hooks see one test epoch with every set's
metrics; each set's AnomalyMetric writes its own folder.
"""
import json
import os.path as osp
import uuid

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.registry import DATASETS, HOOKS
from mmseg.structures import SegDataSample
from tiny_models import tiny_segmentor_cfg

import anomseg_plugins  # noqa: F401  (registers the loop, the metric and the scorers)
from anomseg_plugins.engine import AnomalyTestLoop, TestSetConfigError, parse_test_sets, split_set_metrics
from anomseg_plugins.scorers import SML, Mahalanobis

NUM_CLASSES = 3
#: a logit scorer, two fitted ones (one on backbone features) and HEAT with its feature term (running statistics)
SCORERS = [
    dict(type='MaxLogit'),
    dict(type='SML'),
    dict(type='Mahalanobis', feature_stage=2),
    dict(type='HEAT', feature_stage=1)
]
SET_A = dict(seed=2, num=4, size=(24, 40))
SET_B = dict(seed=5, num=3, size=(20, 32))


@DATASETS.register_module(force=True)
class ToyMultiSetDataset(torch.utils.data.Dataset):
    """Random images, labels (some ignored) and a rectangular anomaly per image, packed like PackAnomalySegInputs."""

    metainfo = dict(classes=('a', 'b', 'c'), palette=[[0, 0, 0], [1, 1, 1], [2, 2, 2]])

    def __init__(self, num=4, size=(24, 40), seed=0):
        g = torch.Generator().manual_seed(seed)
        h, w = size
        self.items = []
        for i in range(num):
            img = torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
            gt = torch.randint(0, NUM_CLASSES, (1, h, w), generator=g)
            gt[:, :2] = 255
            anomaly = torch.zeros(1, h, w, dtype=torch.uint8)
            top, left = (int(v) for v in torch.randint(2, h // 2, (2, ), generator=g))
            anomaly[:, top:top + h // 3, left:left + w // 3] = 1
            anomaly[gt == 255] = 255
            self.items.append((img, gt, anomaly, f'set{seed}_img{i}.png'))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        img, gt, anomaly, path = self.items[idx]
        sample = SegDataSample(
            metainfo=dict(img_path=path, img_shape=tuple(img.shape[1:]), ori_shape=tuple(img.shape[1:])))
        sample.gt_sem_seg = PixelData(data=gt.clone())
        sample.gt_anomaly_map = PixelData(data=anomaly.clone())
        return dict(inputs=img.clone(), data_samples=sample)


@HOOKS.register_module(force=True)
class RecordTestEpochHook(Hook):
    """What the hooks see: calls per hook point, the test dataloader's length at each iteration, the epoch metrics."""

    def __init__(self):
        self.calls, self.loader_lengths, self.epoch_metrics = [], [], None

    def before_test(self, runner):
        self.calls.append('before_test')

    def before_test_epoch(self, runner):
        self.calls.append('before_test_epoch')

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.loader_lengths.append((batch_idx, len(runner.test_dataloader.dataset)))

    def after_test_epoch(self, runner, metrics=None):
        self.calls.append('after_test_epoch')
        self.epoch_metrics = dict(metrics)

    def after_test(self, runner):
        self.calls.append('after_test')


def loader(seed, num=4, size=(24, 40), batch_size=2):
    return dict(
        batch_size=batch_size,
        num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(type='ToyMultiSetDataset', num=num, size=size, seed=seed))


def evaluator(scorers=SCORERS, **metric_kwargs):
    return [
        dict(type='IoUMetric', iou_metrics=['mIoU']),
        dict(type='AnomalyMetric', scorers=scorers, save_figures=False, **metric_kwargs)
    ]


def make_runner(work_dir, test_set=SET_A, stats='stats.pth', test_evaluator=None, **loop_kwargs):
    """A runner testing ``test_set`` (the primary) with the tiny model (same weights for every runner: seed 0),
    fitting on a toy val split; ``loop_kwargs`` go to ``test_cfg`` (``primary_set``, ``test_sets``)."""
    return Runner(
        model=tiny_segmentor_cfg(NUM_CLASSES),
        work_dir=str(work_dir),
        test_dataloader=loader(**test_set),
        test_cfg=dict(type='AnomalyTestLoop', stats_file=osp.join(osp.dirname(str(work_dir)), stats), **loop_kwargs),
        test_evaluator=test_evaluator or evaluator(),
        val_dataloader=loader(seed=1),
        val_cfg=dict(type='ValLoop'),
        val_evaluator=dict(type='IoUMetric'),
        custom_hooks=[dict(type='RecordTestEpochHook')],
        default_scope='mmseg',
        randomness=dict(seed=0),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1)),
        experiment_name=uuid.uuid4().hex)


def recorder(runner):
    return next(h for h in runner.hooks if isinstance(h, RecordTestEpochHook))


def log_text(runner):
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        return f.read()


def anomaly_metric(evaluator):
    return next(m for m in evaluator.metrics if hasattr(m, 'scorers'))


@pytest.fixture(scope='module')
def single_runs(tmp_path_factory):
    """Single-set runs of the same model on set A and on set B (each fitting its own scorers)."""
    root = tmp_path_factory.mktemp('single')
    out = {}
    for name, test_set in (('a', SET_A), ('b', SET_B)):
        runner = make_runner(root / name, test_set, stats=f'stats_{name}.pth')
        out[name] = (runner, runner.test())
    return out


def test_two_sets_give_the_metrics_of_single_set_runs_with_scorers_fitted_once(tmp_path, single_runs, monkeypatch):
    fit_ends = {'SML': 0, 'Mahalanobis': 0}  # one per fitting pass
    fit_steps = {'SML': 0, 'Mahalanobis': 0}  # one per fit batch
    for cls in (SML, Mahalanobis):
        end, step = cls.fit_end, cls.fit_step

        def counting_end(self, _end=end):
            fit_ends[self.name] += 1
            return _end(self)

        def counting_step(self, *args, _step=step):
            fit_steps[self.name] += 1
            return _step(self, *args)

        monkeypatch.setattr(cls, 'fit_end', counting_end)
        monkeypatch.setattr(cls, 'fit_step', counting_step)
    runner = make_runner(
        tmp_path / 'multi', primary_set='set_a', test_sets=dict(set_b=dict(dataloader=loader(**SET_B))))
    metrics = runner.test()
    loop = runner.test_loop

    # fitted once: one pass over the 2 fit batches per scorer, one object per name in both sets' metrics
    assert fit_ends == {'SML': 1, 'Mahalanobis': 1}
    assert fit_steps == {'SML': 2, 'Mahalanobis': 2}
    first, second = (anomaly_metric(s.evaluator) for s in loop.test_sets)
    assert first is not second
    for name in ('SML', 'Mahalanobis'):
        assert first.scorers[first.scorer_names.index(name)] is second.scorers[second.scorer_names.index(name)]
    assert first.scorers[0] is not second.scorers[0]  # scorers without fitting stay each metric's own
    assert [s.name for s in loop.scorers] == ['MaxLogit', 'SML', 'Mahalanobis', 'HEAT', 'MaxLogit', 'HEAT']
    stats = torch.load(tmp_path / 'stats.pth', weights_only=True)
    assert set(stats['scorers']) == {'SML', 'Mahalanobis'}
    assert 'fitting SML, Mahalanobis on val_dataloader (4 images, 2 batches), pass 1' in log_text(runner)
    assert 'pass 2' not in log_text(runner)

    # every set's metrics are exactly the single-set run's, under the set's prefix (and nothing else)
    per_set = split_set_metrics(metrics, ['set_a', 'set_b'])
    assert loop.set_names == ['set_a', 'set_b'] and loop.set_metrics == per_set
    assert len(metrics) == sum(len(m) for m in per_set.values())
    for name, key in (('set_a', 'a'), ('set_b', 'b')):
        single = single_runs[key][1]
        assert set(per_set[name]) == set(single)
        for metric, value in single.items():
            assert per_set[name][metric] == value, (name, metric, per_set[name][metric], value)
    # the sets differ (a set reported twice would pass the check above only with equal single runs)
    assert metrics['set_a/anomaly/pooled/HEAT/AUROC'] != metrics['set_b/anomaly/pooled/HEAT/AUROC']
    # the fitted statistics are those of the single runs (same model, same fit data)
    single_sml = anomaly_metric(single_runs['b'][0].test_loop.evaluator).scorers[1]
    torch.testing.assert_close(second.scorers[1].mu, single_sml.mu, rtol=0, atol=0)

    # hooks: one test epoch over both sets, iterations numbered per set, the dataloader of the running set
    rec = recorder(runner)
    assert rec.calls == ['before_test', 'before_test_epoch', 'after_test_epoch', 'after_test']
    assert rec.loader_lengths == [(0, 4), (1, 4), (0, 3), (1, 3)]  # batches of 2: set A 4 images, set B 3
    assert rec.epoch_metrics == metrics
    assert loop.dataloader is loop.test_sets[0].dataloader and loop.evaluator is loop.test_sets[0].evaluator
    text = log_text(runner)
    assert "AnomalyTestLoop: test set 1/2 'set_a' (test_dataloader): 4 images, 2 batches" in text
    assert "AnomalyTestLoop: test set 2/2 'set_b' (test_cfg.test_sets.set_b): 3 images, 2 batches" in text

    # each set's AnomalyMetric wrote its own folder, with its own numbers
    for name in ('set_a', 'set_b'):
        summary = json.load(open(osp.join(runner.log_dir, 'anomaly', name, 'anomaly_metrics.json')))
        for protocol in ('pooled', 'per_image'):
            for scorer in ('MaxLogit', 'SML', 'Mahalanobis', 'HEAT'):
                assert summary[protocol][scorer]['AUPR'] == pytest.approx(
                    metrics[f'{name}/anomaly/{protocol}/{scorer}/AUPR'], abs=1e-9)
    assert summary['pooled']['MaxLogit']['num_images'] == 3
    assert not osp.exists(osp.join(runner.log_dir, 'anomaly', 'anomaly_metrics.json'))


def test_list_form_own_evaluator_and_stats_reuse(tmp_path, single_runs, monkeypatch):
    """``test_sets`` as a list with its own evaluator (fewer scorers): the run loads the stats file the first run
    wrote, and set B's metrics are its evaluator's."""
    make_runner(tmp_path / 'first', primary_set='set_a').test()  # writes tmp_path/stats.pth
    monkeypatch.setattr(AnomalyTestLoop, 'fit', lambda *a, **k: pytest.fail('the stats file must be reused'))
    runner = make_runner(
        tmp_path / 'again',
        primary_set=dict(name='set_a'),
        test_sets=[dict(name='set_b', dataloader=loader(**SET_B), evaluator=evaluator([dict(type='SML')]))])
    metrics = runner.test()
    assert 'loaded the fitted statistics of SML, Mahalanobis' in log_text(runner)
    per_set = split_set_metrics(metrics, ['set_a', 'set_b'])
    single_b = single_runs['b'][1]
    assert set(per_set['set_b']) == {'aAcc', 'mIoU', 'mAcc'} | {k for k in single_b if '/SML/' in k}
    for key, value in per_set['set_b'].items():
        assert value == single_b[key], key
    assert per_set['set_a'] == single_runs['a'][1]


def test_primary_set_alone_prefixes_the_metrics(tmp_path, single_runs):
    metrics = make_runner(tmp_path / 'named', primary_set='set_a').test()
    assert metrics == {f'set_a/{k}': v for k, v in single_runs['a'][1].items()}


def test_single_set_config_is_unchanged(tmp_path, single_runs):
    runner = make_runner(tmp_path / 'plain')
    metrics = runner.test()
    assert runner.test_loop.test_sets == [] and runner.test_loop.set_names == []
    assert metrics == single_runs['a'][1]
    assert osp.isfile(osp.join(runner.log_dir, 'anomaly', 'anomaly_metrics.json'))


def test_a_folder_shared_by_the_sets_gets_a_subfolder_per_set(tmp_path, single_runs):
    """An ``output_dir`` every set's metric has (here: set B's evaluator is a copy of the primary's) would make the
    sets overwrite each other's files: each set writes to ``<output_dir>/<set name>``."""
    shared = tmp_path / 'shared'
    runner = make_runner(
        tmp_path / 'run',
        test_evaluator=evaluator(output_dir=str(shared)),
        primary_set='set_a',
        test_sets=dict(set_b=dict(dataloader=loader(**SET_B))))
    metrics = runner.test()
    assert sorted(p.name for p in shared.iterdir()) == ['set_a', 'set_b']
    for name, key in (('set_a', 'a'), ('set_b', 'b')):
        summary = json.load(open(shared / name / 'anomaly_metrics.json'))
        assert summary['pooled']['SML']['AUPR'] == pytest.approx(metrics[f'{name}/anomaly/pooled/SML/AUPR'], abs=1e-9)
        assert metrics[f'{name}/anomaly/pooled/SML/AUPR'] == single_runs[key][1]['anomaly/pooled/SML/AUPR']
    assert "the test sets ['set_a', 'set_b'] share output_dir=" in log_text(runner)


def test_same_scorer_name_with_other_settings_is_refused(tmp_path):
    other = evaluator([dict(type='SML', min_pixels=5)])
    with pytest.raises(
            ValueError,
            match=r"scorer 'SML' needs fitting and has other settings in the evaluator of "
            r'test_cfg.test_sets.set_b .*give one of them another `name=`'):
        make_runner(
            tmp_path / 'x',
            primary_set='set_a',
            test_sets=dict(set_b=dict(dataloader=loader(**SET_B), evaluator=other))).test()


@pytest.mark.parametrize('primary, sets, message', [
    (None, dict(b=dict(dataloader={})), r'test_sets is given but test_cfg.primary_set is not'),
    ('a b', None, r"test_cfg.primary_set = 'a b': a test set name must be"),
    ('anomaly', None, r"test_cfg.primary_set = 'anomaly' is reserved"),
    (dict(tta_pipeline=[]), None, r'test_cfg.primary_set has no `name`'),
    (dict(name='a', pipeline=[]), None, r"test_cfg.primary_set has unknown key\(s\) \['pipeline'\]"),
    ('a', dict(b=dict(evaluator=[])), r'test_cfg.test_sets.b has no `dataloader`'),
    ('a', dict(a=dict(dataloader={})), r"name 'a' is used twice \(test_cfg.primary_set and test_cfg.test_sets.a\)"),
    ('a', [dict(dataloader={})], r'test_cfg.test_sets\[0\] has no `name`'),
    ('a', [dict(name='b/c', dataloader={})], r"test_cfg.test_sets\[0\].name = 'b/c'"),
    ('a', dict(b=dict(dataloader={}, datalaoder={})), r"test_cfg.test_sets.b has unknown key\(s\) \['datalaoder'\]"),
    ('a', dict(b=dict(name='c', dataloader={})), r"test_cfg.test_sets.b.name = 'c' differs from its key 'b'"),
    ('a', 'b', r'test_cfg.test_sets must be a dict'),
])
def test_test_set_config_errors_name_the_key(primary, sets, message):
    with pytest.raises(TestSetConfigError, match=message):
        parse_test_sets(primary, sets)


def test_test_set_specs_order_defaults_and_dropped_sets():
    specs = parse_test_sets(
        dict(name='a', tta_pipeline=['p']),
        dict(b=dict(dataloader={'x': 1}), dropped=None, c=dict(dataloader={'y': 2}, evaluator=['e'])))
    assert [s.name for s in specs] == ['a', 'b', 'c']
    assert specs[0].is_primary and specs[0].tta_pipeline == ['p'] and specs[0].dataloader_key() == 'test_dataloader'
    assert specs[1].evaluator is None and specs[1].evaluator_key() == 'test_evaluator'
    assert specs[2].evaluator_key() == 'test_cfg.test_sets.c.evaluator'
    assert specs[2].dataloader_key() == 'test_cfg.test_sets.c.dataloader'
    assert parse_test_sets(None, None) == []
    assert split_set_metrics({
        'a/mIoU': 1.0,
        'b/anomaly/pooled/X/AUPR': 2.0,
        'other': 3.0
    }, ['a', 'b']) == {
        'a': {
            'mIoU': 1.0
        },
        'b': {
            'anomaly/pooled/X/AUPR': 2.0
        }
    }
