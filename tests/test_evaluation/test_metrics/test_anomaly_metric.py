"""AnomalyMetric end to end on hand-made data samples, checked against scikit-learn."""
import csv
import json
import logging
import os.path as osp
import pickle
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from mmengine.structures import PixelData
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

import anomseg_plugins  # noqa: F401
from anomseg_plugins.evaluation import AnomalyMetric
from anomseg_plugins.scorers import BaseAnomalyScorer, MaxLogit

H, W, C = 24, 32, 5


class FirstLogit(BaseAnomalyScorer):
    """Test scorer: score = -z_0 (so scores differ from MaxLogit's)."""

    def score(self, logits, feats=None):
        return -logits[:, 0].float()


class NeedsFit(BaseAnomalyScorer):
    requires_fit = True

    def score(self, logits, feats=None):
        return logits[:, 0]


def make_samples(num: int, seed: int = 0, empty_every: int = 4, ignore: bool = True, ties: bool = True):
    """Data samples with logits (C, H, W) and gt_anomaly_map (1, H, W): 1 in a box, 255 on a border,
    every ``empty_every``-th image without anomaly; anomalies get lower max logits."""
    g = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(num):
        gt = torch.zeros(1, H, W, dtype=torch.uint8)
        if i % empty_every != empty_every - 1:
            y, x = (
                int(v) for v in torch.randint(0, H - 8, (1, ), generator=g).tolist() +
                torch.randint(0, W - 8, (1, ), generator=g).tolist())
            gt[0, y:y + 6, x:x + 7] = 1
        logits = torch.randn(C, H, W, generator=g) * 2
        logits[:, gt[0] == 1] -= 1.5
        if ties:
            logits = torch.round(logits * 4) / 4
        if ignore:
            gt[0, :, :2] = 255
            logits[:, :, :2] = 1e4  # scores of ignored pixels would break the ranking if used
        s = SegDataSample(metainfo=dict(img_path=f'img_{seed}_{i}.png'))
        s.seg_logits = PixelData(data=logits)
        s.gt_anomaly_map = PixelData(data=gt)
        samples.append(s)
    return samples


def expected(samples, scorer_fn, ref):
    """Pooled and per-image reference values (fractions) of a score function by sklearn."""
    all_s, all_y, per = [], [], []
    for s in samples:
        score = scorer_fn(s.seg_logits.data).numpy().reshape(-1)
        gt = s.gt_anomaly_map.data.numpy().reshape(-1)
        keep = gt != 255
        all_s.append(score[keep])
        all_y.append(gt[keep])
        if 0 < gt[keep].sum() < keep.sum():
            r = ref.reference(score[keep], gt[keep])
            per.append([r['AUROC'], r['AUPR'], r['FPR95_nearest'], r['F1']])
    pooled = ref.reference(np.concatenate(all_s), np.concatenate(all_y))
    per = np.mean(per, axis=0)
    return pooled, dict(AUROC=per[0], AUPR=per[1], FPR95=per[2], F1=per[3])


def run_metric(metric, samples, batch_size=3):
    for i in range(0, len(samples), batch_size):
        metric.process({}, [s.to_dict() for s in samples[i:i + batch_size]])
    return metric.evaluate(len(samples))


def test_registered_and_built_from_config():
    metric = METRICS.build(dict(type='AnomalyMetric', scorers=[dict(type='MaxLogit'), dict(type='MSP')]))
    assert isinstance(metric, AnomalyMetric)
    assert metric.scorer_names == ['MaxLogit', 'MSP'] and metric.prefix == 'anomaly'
    assert metric.feature_stages == ()


def test_end_to_end_matches_sklearn(tmp_path, ref):
    samples = make_samples(9)
    metric = AnomalyMetric(scorers=[dict(type='MaxLogit'), FirstLogit()], output_dir=str(tmp_path / 'out'))
    metrics = run_metric(metric, samples)
    fns = dict(MaxLogit=lambda z: -z.amax(0), FirstLogit=lambda z: -z[0])
    for name, fn in fns.items():
        pooled, per_image = expected(samples, fn, ref)
        for key in ('AUROC', 'AUPR', 'FPR95', 'F1'):
            assert metrics[f'anomaly/pooled/{name}/{key}'] == pytest.approx(100 * pooled[key], abs=1e-2), key
            assert metrics[f'anomaly/per_image/{name}/{key}'] == pytest.approx(100 * per_image[key], abs=1e-2), key
        assert metrics[f'anomaly/pooled/{name}/F1_threshold'] == pytest.approx(pooled['F1_threshold'], rel=1e-3)
    assert len(metrics) == 2 * 2 * 5
    # state is reset: a second evaluation of new data does not see the first
    again = run_metric(metric, samples[:4])
    pooled, _ = expected(samples[:4], fns['MaxLogit'], ref)
    assert again['anomaly/pooled/MaxLogit/AUROC'] == pytest.approx(100 * pooled['AUROC'], abs=1e-2)


def test_output_files(tmp_path):
    out = tmp_path / 'anomaly'
    metric = AnomalyMetric(scorers=[MaxLogit(), FirstLogit()], output_dir=str(out))
    metrics = run_metric(metric, make_samples(6))
    with open(out / 'anomaly_metrics.json') as f:
        summary = json.load(f)
    assert set(summary) == {'pooled', 'per_image'}
    assert set(summary['pooled']) == {'MaxLogit', 'FirstLogit'}
    assert summary['pooled']['MaxLogit']['AUROC'] == pytest.approx(metrics['anomaly/pooled/MaxLogit/AUROC'])
    pooled = summary['pooled']['MaxLogit']
    assert pooled['exact'] is False and all(pooled[f'{k}_tie_bound'] >= 0 for k in ('AUROC', 'AUPR', 'FPR95'))
    assert summary['per_image']['MaxLogit']['exact'] is True
    # image 3 of 0..5 has no anomaly (every 4th): skipped by the per-image protocol
    assert summary['per_image']['FirstLogit']['num_images'] == 5 and \
        summary['per_image']['FirstLogit']['num_images_skipped'] == 1
    with open(out / 'anomaly_metrics.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {r['protocol'] for r in rows} == {'pooled', 'per_image'}
    assert float(rows[0]['FPR95']) == pytest.approx(metrics[f'anomaly/{rows[0]["protocol"]}/{rows[0]["scorer"]}/FPR95'])
    with open(out / 'anomaly_per_image.csv') as f:
        assert len(list(csv.DictReader(f))) == 6 * 2
    for fig in ('roc_curves.png', 'pr_curves.png'):
        path = out / fig
        assert path.stat().st_size > 5000
        assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_output_dir_defaults_to_runner_log_dir(tmp_path):
    from mmengine.logging import MMLogger
    log_dir = tmp_path / 'work' / '20260101_000000'
    log_dir.mkdir(parents=True)
    # a runner creates its logger with log_file=<log_dir>/<timestamp>.log
    MMLogger.get_instance('anomaly_metric_test', log_file=str(log_dir / '20260101_000000.log'))
    try:
        metric = AnomalyMetric(scorers=[MaxLogit()], save_figures=False)
        assert metric.resolve_output_dir() == str(log_dir / 'anomaly')
        run_metric(metric, make_samples(3))
        assert (log_dir / 'anomaly' / 'anomaly_metrics.json').is_file()
        assert AnomalyMetric(scorers=[MaxLogit()], output_dir=str(tmp_path / 'x')).resolve_output_dir() == \
            str(tmp_path / 'x')
    finally:
        MMLogger.get_instance('anomaly_metric_test_done')  # later tests: a current logger without a file
    assert AnomalyMetric(scorers=[MaxLogit()]).resolve_output_dir() is None


def test_warns_when_bins_merge_many_scores(monkeypatch):
    """Scores that differ only in the 6th digit share bins: the metric says how much that can matter (and
    stays silent for MaxLogit on continuous logits)."""
    import anomseg_plugins.evaluation.metrics.anomaly_metric as module
    messages = []
    monkeypatch.setattr(module, 'print_log', lambda msg, *a, **k: messages.append(str(msg)))

    class NearlyConstant(BaseAnomalyScorer):

        def score(self, logits, feats=None):
            return 1.0 + logits[:, 0].float() * 1e-6

    metric = AnomalyMetric(scorers=[NearlyConstant(), MaxLogit()], protocols='pooled')
    metrics = run_metric(metric, make_samples(4, ignore=False, ties=False))
    warned = [m for m in messages if 'share histogram bins' in m]
    assert len(warned) == 1 and 'NearlyConstant' in warned[0] and 'num_bits' in warned[0]
    assert not np.isnan(metrics['anomaly/pooled/NearlyConstant/AUROC'])


def test_ignore_index_honoured(ref):
    samples = make_samples(5, seed=3, ignore=True)
    metrics = run_metric(AnomalyMetric(scorers=[MaxLogit()], protocols=('pooled', )), samples)
    pooled, _ = expected(samples, lambda z: -z.amax(0), ref)
    assert metrics['anomaly/pooled/MaxLogit/AUROC'] == pytest.approx(100 * pooled['AUROC'], abs=1e-2)
    # with another ignore_index the 255 border becomes invalid labels
    metric = AnomalyMetric(scorers=[MaxLogit()], ignore_index=254)
    with pytest.raises(ValueError, match=r'labels must be 0 .*found \[255\]'):
        metric.process({}, [samples[0].to_dict()])


def test_per_image_exact_equals_histogram_on_ties():
    samples = make_samples(6, seed=5)
    a = run_metric(AnomalyMetric(scorers=[MaxLogit()], protocols='per_image', per_image_exact=False), samples)
    b = run_metric(AnomalyMetric(scorers=[MaxLogit()], protocols='per_image'), samples)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], abs=1e-9), key


# ---------------------------------------------------------------------- the official per-image protocol
def official_per_image(labels: np.ndarray, scores: np.ndarray, level: float = 0.95) -> dict:
    """One image as hendrycks/anomaly-seg evaluates it, from scikit-learn's curves: AUROC = roc_auc_score,
    AUPR = average_precision_score, FPR95 = ``fpr_and_fdr_at_recall``: over the distinct thresholds from the
    top down to the first one reaching full recall, taken in reverse order (lowest threshold first), the
    first whose recall is nearest ``level``; best F1 over precision_recall_curve."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    fpr, tpr = fpr[1:], tpr[1:]  # sklearn's (0, 0) start point (threshold inf) is not in the official arrays
    last = int(np.argmax(tpr >= 1.0))
    cut = int(np.argmin(np.abs(tpr[:last + 1][::-1] - level)))
    precision, recall, _ = precision_recall_curve(labels, scores)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-300)
    return dict(
        AUROC=roc_auc_score(labels, scores),
        AUPR=average_precision_score(labels, scores),
        FPR95=float(fpr[:last + 1][::-1][cut]),
        F1=float(f1.max()))


def energy_scale_samples(num: int = 6, seed: int = 0):
    """Logits around -500 whose max differs between pixels only in the 5th digit: MaxLogit scores are
    500 +- 0.01 (float32 steps of 3e-5, so many exact ties too); anomalies slightly higher."""
    samples = make_samples(num, seed=seed, empty_every=num + 1, ignore=True, ties=False)
    g = torch.Generator().manual_seed(seed + 100)
    for s in samples:
        gt = s.gt_anomaly_map.data[0]
        logits = -500.0 + 0.003 * torch.randn(C, H, W, generator=g)
        logits[:, gt == 1] -= 0.004
        logits[:, gt == 255] = 1e4
        s.seg_logits = PixelData(data=logits)
    return samples


def test_per_image_default_is_the_official_protocol_exactly():
    """Scores 500 +- 0.01 fall into one or two histogram bins; the per-image protocol must still give the
    official numbers (mean over images of sklearn's AUROC / AP and the nearest-95% FPR) by default."""
    samples = energy_scale_samples()
    metric = AnomalyMetric(scorers=[MaxLogit()], protocols='per_image', output_dir=None, save_figures=False)
    got = run_metric(metric, samples)
    per = []
    for s in samples:
        score = MaxLogit().score(s.seg_logits.data[None])[0].numpy().reshape(-1)
        gt = s.gt_anomaly_map.data.numpy().reshape(-1)
        keep = gt != 255
        assert 499.98 < score[keep].min() and score[keep].max() < 500.02
        per.append(official_per_image(gt[keep].astype(int), score[keep].astype(np.float64)))
    for key in ('AUROC', 'AUPR', 'FPR95', 'F1'):
        want = np.mean([p[key] for p in per])
        assert got[f'anomaly/per_image/MaxLogit/{key}'] / 100 == pytest.approx(want, abs=1e-9), key
    # the data is hard for a histogram: what per_image_exact=False would give is far off (see next test)
    assert 0.5 < np.mean([p['AUROC'] for p in per]) < 0.99


def test_quantised_per_image_reports_its_bounds_and_warns(tmp_path, monkeypatch):
    import anomseg_plugins.evaluation.metrics.anomaly_metric as module
    messages = []
    monkeypatch.setattr(module, 'print_log', lambda msg, *a, **k: messages.append((str(msg), k.get('level'))))
    samples = energy_scale_samples(seed=1)
    exact = run_metric(AnomalyMetric(scorers=[MaxLogit()], protocols='per_image', save_figures=False), samples)
    metric = AnomalyMetric(
        scorers=[MaxLogit()],
        protocols='per_image',
        per_image_exact=False,
        output_dir=str(tmp_path),
        save_figures=False)
    quantised = run_metric(metric, samples)
    with open(tmp_path / 'anomaly_metrics.json') as f:
        entry = json.load(f)['per_image']['MaxLogit']
    assert entry['exact'] is False and entry['num_bits'] == 22
    worst = 0.0
    for key in ('AUROC', 'AUPR', 'FPR95'):
        diff = abs(quantised[f'anomaly/per_image/MaxLogit/{key}'] - exact[f'anomaly/per_image/MaxLogit/{key}'])
        assert diff <= entry[f'{key}_tie_bound'] + 1e-9, key
        worst = max(worst, diff)
    assert worst > 1.0  # points: the quantisation does matter on this data ...
    assert entry['FPR95_tie_bound'] > 1.0  # ... and the bound says so
    warned = [m for m, level in messages if 'per_image_exact=False' in m]
    assert len(warned) == 1 and 'MaxLogit' in warned[0] and 'FPR95 +-' in warned[0]
    assert [level for m, level in messages if m == warned[0]] == [logging.WARNING]
    with open(tmp_path / 'anomaly_per_image.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(samples) and float(rows[0]['FPR95_tie_bound_%']) >= 0
    # the exact (default) entry reports zero bounds
    metric = AnomalyMetric(
        scorers=[MaxLogit()], protocols='per_image', output_dir=str(tmp_path / 'e'), save_figures=False)
    run_metric(metric, samples)
    with open(tmp_path / 'e' / 'anomaly_metrics.json') as f:
        entry = json.load(f)['per_image']['MaxLogit']
    assert entry['exact'] is True and entry['FPR95_tie_bound'] == entry['AUROC_tie_bound'] == 0.0


def test_per_image_state_does_not_grow_with_pixels():
    """Per image only the metrics are kept (one tuple per scorer), whatever the image size."""
    sizes = []
    for scale in (1, 4):
        metric = AnomalyMetric(scorers=[MaxLogit(), FirstLogit()], protocols='per_image')
        g = torch.Generator().manual_seed(0)
        gt = torch.zeros(1, H * scale, W * scale, dtype=torch.uint8)
        gt[0, :4 * scale, :4 * scale] = 1
        sample = dict(
            seg_logits=dict(data=torch.randn(C, H * scale, W * scale, generator=g)),
            gt_anomaly_map=dict(data=gt),
            img_path='a.png')
        metric.process({}, [sample])
        (row, ) = metric.results
        assert set(row) == {'img_path', 'scores', 'num_pos', 'num_neg'}
        assert all(len(v) == 5 and all(isinstance(x, float) for x in v) for v in row['scores'].values())
        sizes.append(len(pickle.dumps(row)))
    assert sizes[1] <= sizes[0] + 8 and sizes[1] < 1000  # 16x the pixels; only the pixel counts grow (int width)


def test_merge_equals_single_stream():
    samples = make_samples(10, seed=7)
    whole = AnomalyMetric(scorers=[MaxLogit(), FirstLogit()])
    first, second = AnomalyMetric(scorers=[MaxLogit(), FirstLogit()]), AnomalyMetric(scorers=[MaxLogit(), FirstLogit()])
    for s in samples:
        whole.process({}, [s.to_dict()])
    for s in samples[:4]:
        first.process({}, [s.to_dict()])
    for s in samples[4:]:
        second.process({}, [s.to_dict()])
    first.merge(second)
    assert first.compute_metrics(first.results) == whole.compute_metrics(whole.results)
    with pytest.raises(ValueError, match='differ'):
        first.merge(AnomalyMetric(scorers=[MaxLogit()]))


@pytest.mark.parametrize('split', [3, 6])
def test_merge_then_padding_drops_the_streams_last_image(split):
    """``evaluate(size)`` after ``merge`` takes out the last image of the *merged* stream (a distributed sampler's
    padding), as a metric fed the whole stream does: merge once kept this shard's own last image there, and the
    pooled metrics then dropped a genuine image (pooled AUROC 80.42 instead of 77.82 at split 3) while the per-image
    rows dropped the padding."""
    samples = make_samples(6, seed=2)
    whole, first, second = (AnomalyMetric(scorers=[MaxLogit()], save_figures=False) for _ in range(3))
    for s in samples:
        whole.process({}, [s.to_dict()])
    for s in samples[:split]:
        first.process({}, [s.to_dict()])
    for s in samples[split:]:
        second.process({}, [s.to_dict()])
    first.merge(second)
    expected, got = whole.evaluate(5), first.evaluate(5)
    assert got == expected


def test_errors():
    sample = make_samples(1)[0].to_dict()
    sample.pop('seg_logits')
    with pytest.raises(KeyError, match='seg_logits'):
        AnomalyMetric(scorers=[MaxLogit()]).process({}, [sample])
    # no gt_anomaly_map (hidden test splits): scored, kept out of the metrics (test_anomaly_metric_components.py)
    sample = make_samples(1)[0].to_dict()
    sample.pop('gt_anomaly_map')
    metric = AnomalyMetric(scorers=[MaxLogit()])
    metric.process({}, [sample])
    assert metric.results[0]['has_gt'] is False and metric.histograms['MaxLogit'].num_neg == 0
    with pytest.raises(RuntimeError, match='NeedsFit .*needs fitting'):
        AnomalyMetric(scorers=[NeedsFit()]).process({}, [make_samples(1)[0].to_dict()])
    with pytest.raises(ValueError, match='distinct'):
        AnomalyMetric(scorers=[MaxLogit(), dict(type='MaxLogit')])
    with pytest.raises(ValueError, match='protocols'):
        AnomalyMetric(scorers=[MaxLogit()], protocols=('pooled', 'official'))

    class NaNScorer(BaseAnomalyScorer):

        def score(self, logits, feats=None):
            out = -logits[:, 0].clone()
            out[0, 5, 5] = float('nan')
            return out

    with pytest.raises(ValueError, match='scorer NaNScorer: 1 of .*NaN or inf'):
        AnomalyMetric(scorers=[NaNScorer()]).process({}, [make_samples(1, ignore=False)[0].to_dict()])


def test_no_anomaly_anywhere_gives_nan():
    samples = make_samples(3, empty_every=1)
    metrics = run_metric(AnomalyMetric(scorers=[MaxLogit()]), samples)
    assert all(np.isnan(v) for k, v in metrics.items() if not k.endswith('F1_threshold'))


# ---------------------------------------------------------------------- two ranks (gloo)
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _two_rank_worker(rank: int, world: int, port: int, num: int, out_dir: str) -> None:
    import torch.distributed as dist
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world)
    try:
        samples = make_samples(num, seed=11)
        total = -(-num // world) * world  # mmengine DefaultSampler(round_up=True): pad by repeating the start
        indices = (list(range(num)) * 2)[:total][rank:total:world]
        metric = AnomalyMetric(scorers=[MaxLogit(), FirstLogit()])
        for i in indices:
            metric.process({}, [samples[i].to_dict()])
        metrics = metric.evaluate(num)
        with open(osp.join(out_dir, f'rank{rank}.json'), 'w') as f:
            json.dump(metrics, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # 2 processes
@pytest.mark.parametrize('num', [7])
def test_two_ranks_equal_single_process(tmp_path, num):
    """Two gloo ranks fed as mmengine's DefaultSampler would (7 samples: rank 1 gets sample 0 again as
    padding) give exactly the single-process metrics: histograms all-reduced, padding removed."""
    mp.spawn(_two_rank_worker, args=(2, _free_port(), num, str(tmp_path)), nprocs=2, join=True)
    single = run_metric(AnomalyMetric(scorers=[MaxLogit(), FirstLogit()]), make_samples(num, seed=11))
    for rank in range(2):
        with open(tmp_path / f'rank{rank}.json') as f:
            got = json.load(f)
        assert got.keys() == single.keys()
        for key, value in single.items():
            assert got[key] == pytest.approx(value, abs=1e-12, nan_ok=True), key
