"""AnomalyMetric details left open by the other tests: the histograms summed over two fake ranks (threads sharing a
fake ``all_reduce``), the removal of a round-up sampler's padding sample, the texts and levels of its log messages
and tables (read back from a handler on mmengine's current logger), and the checks of the data samples."""
import logging
import re
import threading

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from sklearn.metrics import roc_auc_score
from test_anomaly_metric import NeedsFit
from test_anomaly_metric import make_samples as pixel_samples
from test_anomaly_metric_components import SIZES, SecondLogit
from test_anomaly_metric_components import make_samples as blob_samples
from torch import nn

import anomseg_plugins.evaluation.metrics.anomaly_metric as module
from anomseg_plugins.evaluation import AnomalyMetric
from anomseg_plugins.scorers import MaxLogit

H, W, C = 24, 32, 5


class Plain(nn.Module):
    """A scorer that is no BaseAnomalyScorer: no ``is_fitted``; score = -z_0 (or a map of ``shape``)."""

    def __init__(self, name='Plain', shape=None):
        super().__init__()
        self.name, self.shape, self.seen = name, shape, []

    def forward(self, logits, feats=None):
        self.seen.append(feats)
        score = -logits[:, 0].float()
        return score if self.shape is None else score[:, :self.shape[0], :self.shape[1]]


def sample(logits, gt=None, img_path='img.png'):
    s = SegDataSample(metainfo=dict(img_path=img_path))
    s.seg_logits = PixelData(data=logits)
    if gt is not None:
        s.gt_anomaly_map = PixelData(data=gt)
    return s


def feed(metric, samples):
    for s in samples:
        metric.process({}, [s.to_dict()])
    return metric


def assert_same_histogram(got, want):
    mask = got.block_mask() | want.block_mask()  # a subtracted image may leave empty blocks
    ids = np.flatnonzero(mask) - mask.size // 2
    assert len(ids) > 0
    assert np.array_equal(got.dense_blocks(ids), want.dense_blocks(ids))
    assert (got.num_pos, got.num_neg) == (want.num_pos, want.num_neg)


# ------------------------------------------------------------------ distributed
class FakeDist:
    """``all_reduce`` of ranks run as threads: every rank's tensor reduced with ``op`` and written back in place."""

    def __init__(self, world):
        self.barrier = threading.Barrier(world, timeout=10)
        self.slots = [None] * world
        self.local = threading.local()
        self.ops = []

    def all_reduce(self, data, op='sum', group=None):
        if op not in ('sum', 'max'):
            raise ValueError(f'unknown op {op!r}')
        rank = self.local.rank
        self.slots[rank] = data.clone()
        if rank == 0:
            self.ops.append(op)
        self.barrier.wait()
        stacked = torch.stack(self.slots)
        out = stacked.sum(0) if op == 'sum' else stacked.max(0).values
        self.barrier.wait()
        data.copy_(out)

    def run(self, fns):
        errors = []

        def target(rank, fn):
            self.local.rank = rank
            try:
                fn()
            except BaseException as e:  # noqa: B902 - handed to the main thread
                errors.append(e)
                self.barrier.abort()

        threads = [threading.Thread(target=target, args=(r, fn)) for r, fn in enumerate(fns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]


def test_all_reduce_sums_the_histograms_of_two_ranks(monkeypatch):
    samples = pixel_samples(6, seed=5)
    scorers = [MaxLogit(), SecondLogit()]
    ranks = [feed(AnomalyMetric(scorers=scorers), samples[:2]), feed(AnomalyMetric(scorers=scorers), samples[2:])]
    whole = feed(AnomalyMetric(scorers=scorers), samples)
    dist = FakeDist(2)
    monkeypatch.setattr(module, 'get_world_size', lambda: 2)
    monkeypatch.setattr(module, 'all_reduce', dist.all_reduce)
    dist.run([r._all_reduce_histograms for r in ranks])
    assert dist.ops == ['max', 'sum']
    for rank in ranks:
        for name in whole.scorer_names:
            assert_same_histogram(rank.histograms[name], whole.histograms[name])
    # and the summed pooled AUROC is the one of all pixels (no ties: up to the tiny bin width)
    s = np.concatenate([-x.seg_logits.data.max(0).values.numpy().reshape(-1) for x in samples])
    y = np.concatenate([x.gt_anomaly_map.data.numpy().reshape(-1) for x in samples])
    keep = y != 255
    auroc = ranks[1].histograms['MaxLogit'].compute(warn=False)['AUROC']
    assert auroc == pytest.approx(roc_auc_score(y[keep], s[keep]), abs=1e-3)


# ------------------------------------------------------------------ padding of a round-up sampler
def rank0_of_two(monkeypatch):
    monkeypatch.setattr(module, 'get_world_size', lambda: 2)
    monkeypatch.setattr(module, 'get_rank', lambda: 0)


@pytest.mark.parametrize('no_gt, seed, num_images', [((1, ), 3, 1), ((2, ), 4, 2)])
def test_padding_leaves_the_component_statistics_of_the_genuine_images(monkeypatch, no_gt, seed, num_images):
    """Rank 0 of 2, dataset size 4: its third sample is padding. With ground truth it is taken out of the component
    statistics (after an image without ground truth: the second); without ground truth it never reached them, so
    none of the two genuine images is taken out."""
    s = blob_samples(3, seed=seed, no_gt=no_gt)
    kw = dict(scorers=[MaxLogit()], protocols=('pooled', 'component'), **SIZES)
    metric = feed(AnomalyMetric(**kw), s)
    want = feed(AnomalyMetric(**kw), s[:2])
    rank0_of_two(monkeypatch)
    metric._drop_padding(4)
    assert_same_histogram(metric.histograms['MaxLogit'], want.histograms['MaxLogit'])
    got = metric._components['MaxLogit'].result(metric.histograms['MaxLogit'])
    ref = want._components['MaxLogit'].result(want.histograms['MaxLogit'])
    assert got['num_images'] == ref['num_images'] == num_images
    assert np.array_equal(got['stats'], ref['stats']) and ref['stats'].sum() > 0


def test_padding_without_ground_truth_leaves_the_histograms(monkeypatch, logged):
    s = blob_samples(3, seed=4, no_gt=(2, ))
    metric = feed(AnomalyMetric(scorers=[MaxLogit()], protocols='pooled'), s)
    want = feed(AnomalyMetric(scorers=[MaxLogit()], protocols='pooled'), s[:2])
    rank0_of_two(monkeypatch)
    metric._drop_padding(4)
    assert_same_histogram(metric.histograms['MaxLogit'], want.histograms['MaxLogit'])
    assert logged() == []


def test_two_extra_samples_are_reported(monkeypatch, logged):
    s = blob_samples(3, seed=6)
    metric = feed(AnomalyMetric(scorers=[MaxLogit()], protocols='pooled'), s)
    want = feed(AnomalyMetric(scorers=[MaxLogit()], protocols='pooled'), s[:2])
    rank0_of_two(monkeypatch)
    metric._drop_padding(2)  # ceil(2 / 2) = 1 sample is rank 0's, 2 are extra: only the last can be removed
    assert_same_histogram(metric.histograms['MaxLogit'], want.histograms['MaxLogit'])
    assert logged() == [('AnomalyMetric: rank 0 processed 3 samples but the dataset size (2) leaves 1 to it; only '
                         'the last repeated sample could be removed from the pooled histograms', logging.WARNING)]


# ------------------------------------------------------------------ log messages and tables
def table_cells(text):
    return [[c.strip() for c in line.strip('|').split('|')] for line in text.strip().splitlines() if line[0] == '|']


def test_tables_and_headings(logged):
    samples = pixel_samples(4, seed=8)
    metric = feed(AnomalyMetric(scorers=[MaxLogit(), SecondLogit()], recall_level=0.9), samples)
    metrics = metric.compute_metrics(metric.results)
    messages = [m for m, _ in logged()]
    assert 'anomaly results, pooled protocol (all evaluated pixels ranked together, 22-bit histogram; FPR95 at ' \
           'recall >= 90%; %):' in messages
    assert 'anomaly results, per_image protocol (mean over images with both classes, exact; FPR95 at recall ' \
           'nearest 90%; %):' in messages
    tables = [table_cells(m) for m in messages if m.startswith('\n')]
    assert len(tables) == 2
    for protocol, table in zip(('pooled', 'per_image'), tables):
        assert table[0] == ['Scorer', 'FPR95', 'AUROC', 'AUPR', 'F1', 'F1 thr']
        assert [row[0] for row in table[1:]] == ['MaxLogit', 'SecondLogit']
        for row in table[1:]:
            want = [f'{metrics[f"{protocol}/{row[0]}/{k}"]:.2f}' for k in ('FPR95', 'AUROC', 'AUPR', 'F1')]
            assert row[1:5] == want
            assert row[5] == f'{metrics[f"{protocol}/{row[0]}/F1_threshold"]:.5g}'


def test_fmt_and_data():
    assert module._fmt(float('nan')) == 'nan' and module._fmt(None) == 'nan' and module._fmt(1.234) == '1.23'
    t = torch.arange(6).reshape(1, 2, 3)
    for field in (PixelData(data=t), dict(data=t), t):
        assert torch.equal(module._data(field), t)


def test_per_image_averaging_message(logged):
    metric = feed(AnomalyMetric(scorers=[MaxLogit()], protocols='per_image'), pixel_samples(4, seed=9))
    metric.compute_metrics(metric.results)  # image 3 holds no anomaly
    assert ('AnomalyMetric: per-image protocol averages over the 3 of 4 images holding both anomalous and normal '
            'pixels', logging.INFO) in logged()


def test_no_averaging_message_when_every_image_has_both_classes(logged):
    metric = feed(AnomalyMetric(scorers=[MaxLogit()], protocols='per_image'), pixel_samples(3, empty_every=100))
    metric.compute_metrics(metric.results)
    assert not [m for m, _ in logged() if 'averages over' in m]


def test_images_without_ground_truth_message(logged):
    metric = feed(AnomalyMetric(scorers=[MaxLogit()]), blob_samples(3, seed=2, no_gt=(1, )))
    metric.compute_metrics(metric.results)
    msg = ('AnomalyMetric: {} of {} images have no gt_anomaly_map (e.g. a hidden test split); they were scored but '
           'are left out of every metric')
    assert (msg.format(1, 3), logging.INFO) in logged()
    metric = feed(AnomalyMetric(scorers=[MaxLogit()]), blob_samples(2, seed=2, no_gt=(0, 1)))
    metric.compute_metrics(metric.results)
    assert (msg.format(2, 2), logging.WARNING) in logged()


def test_all_normal_pixels_warn_once_and_quantised_bounds_are_nan(logged, caplog):
    samples = pixel_samples(3, seed=10, empty_every=1)  # no anomaly anywhere
    num_neg = sum(int((s.gt_anomaly_map.data == 0).sum()) for s in samples)
    caplog.set_level(logging.INFO)
    metric = feed(AnomalyMetric(scorers=[MaxLogit()], per_image_exact=False), samples)
    metrics = metric.compute_metrics(metric.results)
    assert all(np.isnan(metrics[f'per_image/MaxLogit/{k}']) for k in ('AUROC', 'AUPR', 'FPR95', 'F1'))
    assert (f'AnomalyMetric: pooled protocol, scorer MaxLogit: 0 anomalous and {num_neg} normal pixels were '
            'evaluated; metrics needing both are NaN (does the test split contain anomalies? is gt_anomaly_map all '
            'ignore?)', logging.WARNING) in logged()
    # the functional code's own warnings are switched off (the metric says it once, above)
    assert not [r for r in caplog.records if r.name.startswith('anomseg_plugins.evaluation.functional')]


def test_exact_per_image_metrics_of_single_class_images_do_not_warn(caplog):
    caplog.set_level(logging.INFO)
    feed(AnomalyMetric(scorers=[MaxLogit()], protocols='per_image'), pixel_samples(2, seed=11, empty_every=1))
    assert not [r for r in caplog.records if r.name.startswith('anomseg_plugins.evaluation.functional')]


def test_one_normal_pixel_is_not_reported_as_missing(logged):
    g = torch.Generator().manual_seed(12)
    logits = torch.randn(C, H, W, generator=g)
    gt = torch.ones(1, H, W, dtype=torch.uint8)
    gt[0, 3, 4] = 0
    metric = feed(AnomalyMetric(scorers=[MaxLogit()], protocols='pooled'), [sample(logits, gt)])
    metric.compute_metrics(metric.results)
    assert not [m for m, _ in logged() if 'needing both are NaN' in m]


def test_constant_map_warning(logged):
    logits = torch.zeros(C, H, W)
    gt = torch.zeros(1, H, W, dtype=torch.uint8)
    gt[0, :5, :6] = 1
    metric = feed(AnomalyMetric(scorers=[Plain()], protocols='pooled'), [sample(logits, gt)])
    got = metric.compute_metrics(metric.results)
    assert got['pooled/Plain/AUROC'] == pytest.approx(50.0)
    assert logged().count(('AnomalyMetric: pooled protocol, scorer Plain: all scores fall in one histogram bin '
                           '(constant map); the scorer does not rank pixels (AUROC 50%)', logging.WARNING)) == 1


def test_shared_bins_warning_gives_the_bin_width(logged):
    score = torch.full((H, W), 1.1)
    gt = torch.zeros(1, H, W, dtype=torch.uint8)
    score[:, W // 2:] = 1.2
    gt[0, :, W // 2:] = 1
    score[:4, :4] = 3.0
    logits = torch.zeros(C, H, W)
    logits[0] = -score
    metric = feed(AnomalyMetric(scorers=[Plain()], protocols='pooled', num_bits=10), [sample(logits, gt)])
    metric.compute_metrics(metric.results)
    hits = [(m, lv) for m, lv in logged() if 'share histogram bins' in m]
    assert len(hits) == 1 and hits[0][1] == logging.WARNING
    assert re.fullmatch(
        r'AnomalyMetric: pooled protocol, scorer Plain: many normal and anomalous pixels share histogram bins '
        r'\(scores closer than 5\.0e-01 relative\); FPR95 \+-\S+, AUROC \+-\S+, AUPR \+-\S+ may differ from an exact '
        r'ranking by up to that many points\. Raise num_bits \(now 10, max 24\) or use a score with more resolution '
        r'\(e\.g\. log-probabilities instead of probabilities near 1\)\.', hits[0][0])


def test_component_cache_messages_name_the_scorer(caplog):
    caplog.set_level(logging.INFO)
    metric = AnomalyMetric(scorers=[MaxLogit()], protocols='component', component_cache_bytes=4000, **SIZES)
    feed(metric, blob_samples(4, seed=13))
    msgs = [r.getMessage() for r in caplog.records if 'component cache reached' in r.getMessage()]
    assert msgs and all(m.startswith('scorer MaxLogit: component cache reached') for m in msgs)


# ------------------------------------------------------------------ data samples and scorers
def test_data_elements_and_raw_pixel_data_are_accepted():
    samples = pixel_samples(3, seed=14)
    want = feed(AnomalyMetric(scorers=[MaxLogit()]), samples)
    want = want.compute_metrics(want.results)
    direct = AnomalyMetric(scorers=[MaxLogit()])
    direct.process({}, samples)  # SegDataSample objects
    raw = AnomalyMetric(scorers=[MaxLogit()])
    raw.process({}, [dict(seg_logits=s.seg_logits, gt_anomaly_map=s.gt_anomaly_map) for s in samples])  # PixelData
    for metric in (direct, raw):
        got = metric.compute_metrics(metric.results)
        assert got == pytest.approx(want, abs=1e-12)


def test_plain_module_scorer_needs_no_fitting():
    samples = pixel_samples(3, seed=15, ties=False)
    metric = feed(AnomalyMetric(scorers=[Plain()], protocols='pooled'), samples)
    got = metric.compute_metrics(metric.results)['pooled/Plain/AUROC']
    s = np.concatenate([-x.seg_logits.data[0].numpy().reshape(-1) for x in samples])
    y = np.concatenate([x.gt_anomaly_map.data.numpy().reshape(-1) for x in samples])
    keep = y != 255
    assert got == pytest.approx(100 * roc_auc_score(y[keep], s[keep]), abs=1e-3)


def test_unfitted_scorer_message():
    metric = AnomalyMetric(scorers=[NeedsFit()])
    with pytest.raises(
            RuntimeError,
            match=r"NeedsFit \(NeedsFit\) needs fitting before evaluation\. Test with "
            r"test_cfg=dict\(type='AnomalyTestLoop'\) \(it fits scorers with requires_fit on the val "):
        metric.process({}, pixel_samples(1))


def test_wrong_score_shape():
    metric = AnomalyMetric(scorers=[Plain(shape=(3, 4))])
    with pytest.raises(
            ValueError,
            match=re.escape('AnomalyMetric: scorer Plain returned (1, 3, 4) for logits of shape '
                            f'(1, {C}, {H}, {W}); expected (1, {H}, {W})')):
        metric.process({}, pixel_samples(1))


def test_sample_errors_name_the_image():
    metric = AnomalyMetric(scorers=[MaxLogit()])
    logits = torch.randn(C, H, W)
    with pytest.raises(
            ValueError, match=re.escape(f'AnomalyMetric: seg_logits of dir/a.png must be (C, H, W), got ({H}, {W})')):
        metric.process({}, [dict(img_path='dir/a.png', seg_logits=logits[0])])
    with pytest.raises(KeyError, match=re.escape('AnomalyMetric: dir/b.png has no `seg_logits`')):
        metric.process({}, [dict(img_path='dir/b.png')])
    gt = torch.zeros(2, H, W, dtype=torch.uint8)
    with pytest.raises(
            ValueError,
            match=re.escape(f'AnomalyMetric: gt_anomaly_map of dir/c.png has shape (2, {H}, {W}) but the '
                            f'logits are ({C}, {H}, {W})')):
        metric.process({}, [dict(img_path='dir/c.png', seg_logits=logits, gt_anomaly_map=gt)])


def test_features_reach_the_scorer_batched():
    scorer = Plain()
    feat = torch.randn(3, 4, 5)
    metric = AnomalyMetric(scorers=[scorer], protocols='pooled')
    s = pixel_samples(1)[0].to_dict()
    s['backbone_feats'] = [None, feat]
    metric.process({}, [s])
    (seen, ) = scorer.seen
    assert seen[0] is None and seen[1].shape == (1, 3, 4, 5) and torch.equal(seen[1][0], feat)


# ------------------------------------------------------------------ construction
def test_collect_dir_and_name_messages(tmp_path):
    assert AnomalyMetric(scorers=[MaxLogit()], collect_dir=str(tmp_path)).collect_dir == str(tmp_path)
    with pytest.raises(ValueError, match=re.escape("got ['MaxLogit', 'MaxLogit']; set `name=` in the scorer configs")):
        AnomalyMetric(scorers=[MaxLogit(), MaxLogit()])
    for bad in ('.', '..', 'a/b'):
        with pytest.raises(
                ValueError,
                match=re.escape(f"scorer names [{bad!r}] cannot be folder names of submission_dir; set "
                                '`name=` in the scorer configs')):
            AnomalyMetric(scorers=[MaxLogit(name=bad)], submission_dir=str(tmp_path))
