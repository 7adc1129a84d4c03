"""AnomalyMetric's component protocol (SegmentMeIfYouCan sIoU / PPV / F1), images without ground truth and the
official submission files, checked against the official algorithm (``tests/reference_component_metrics.py``) fed
with the score maps computed by hand from the logits, and against scikit-learn's pooled best-F1 threshold."""
import csv
import json
import math
import os
import os.path as osp
import sys

import numpy as np
import pytest
import reference_component_metrics as official
import torch
import torch.multiprocessing as mp
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from reference_metrics import best_f1

import anomseg_plugins.evaluation.metrics.anomaly_metric as module
from anomseg_plugins.evaluation import AnomalyMetric
from anomseg_plugins.evaluation.functional import official_threshold
from anomseg_plugins.evaluation.metrics import DEFAULT_PROTOCOLS, PROTOCOLS, submission_fid
from anomseg_plugins.scorers import BaseAnomalyScorer, MaxLogit

C = 4
FIELDS = ('sIoU', 'PPV', 'F1_mean', 'F1_25', 'F1_50', 'F1_75', 'threshold')
SIZES = dict(component_min_pred_size=4, component_min_gt_size=2)


class SecondLogit(BaseAnomalyScorer):
    """Test scorer: score = -z_1 (a second, different map)."""

    def score(self, logits, feats=None):
        return -logits[:, 1].float()


MAPS = dict(MaxLogit=lambda z: -z.max(0), SecondLogit=lambda z: -z[1])


def make_samples(num, seed=0, shape=(40, 56), no_gt=(), name='img_{i}.png'):
    """Samples whose MaxLogit map is an official-style blob image (``reference_component_metrics.blobs``); samples
    whose index is in ``no_gt`` carry no ``gt_anomaly_map``."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(num):
        scores, labels = official.blobs(rng, shape)
        logits = -scores[None] - np.abs(rng.normal(0, 0.5, (C, ) + shape)).astype(np.float32)
        logits[0] = -scores  # the max: MaxLogit = scores exactly
        logits[1] = np.where(labels == 1, logits[1] + 0.3, logits[1] - 0.2)  # SecondLogit: another ranking
        s = SegDataSample(metainfo=dict(img_path=name.format(i=i)))
        s.seg_logits = PixelData(data=torch.from_numpy(logits))
        if i not in no_gt:
            s.gt_anomaly_map = PixelData(data=torch.from_numpy(labels)[None])
        samples.append(s)
    return samples


def run_metric(metric, samples, batch_size=3):
    for i in range(0, len(samples), batch_size):
        metric.process({}, [s.to_dict() for s in samples[i:i + batch_size]])
    return metric.evaluate(len(samples))


def hand_maps(samples, name):
    """The scorer's maps and the label maps of the samples with ground truth, by hand from the logits."""
    maps = [MAPS[name](s.seg_logits.data.numpy()).astype(np.float32) for s in samples if 'gt_anomaly_map' in s]
    labels = [s.gt_anomaly_map.data.numpy()[0] for s in samples if 'gt_anomaly_map' in s]
    return maps, labels


def check_against_official(metrics, samples, name, segsize=4, instsize=2, prefix='anomaly/component'):
    maps, labels = hand_maps(samples, name)
    thr = metrics[f'{prefix}/{name}/threshold']
    want = official.evaluate(maps, labels, official_threshold(thr), segsize, instsize)
    assert want['num_gt_components'] > 5 and want['num_pred_components'] > 5
    for key in FIELDS[:-1]:
        assert metrics[f'{prefix}/{name}/{key}'] == pytest.approx(want[key], abs=1e-12, rel=0), (name, key)
    return thr, maps, labels


def test_component_protocol_equals_the_official_code_at_the_pooled_best_f1_threshold(tmp_path):
    samples = make_samples(10)
    metric = AnomalyMetric(
        scorers=[MaxLogit(), SecondLogit()], protocols=('pooled', 'component'), output_dir=str(tmp_path), **SIZES)
    metrics = run_metric(metric, samples)
    assert [k for k in metrics if '/component/' in k
            ] == [f'anomaly/component/{n}/{k}' for n in ('MaxLogit', 'SecondLogit') for k in FIELDS]
    for name in MAPS:
        thr, maps, labels = check_against_official(metrics, samples, name)
        # the threshold flags the pixels of the reported pooled best F1 (score >= threshold); that is scikit-learn's
        # best F1 up to the histogram's bins (here one bin of MaxLogit holds sklearn's optimum and a normal pixel)
        keep = [y != 255 for y in labels]
        s = np.concatenate([m[k] for m, k in zip(maps, keep)])
        y = np.concatenate([lab[k] for lab, k in zip(labels, keep)])
        flagged = s >= thr
        f1 = 2 * np.count_nonzero(flagged & (y == 1)) / (flagged.sum() + y.sum())
        assert thr == metrics[f'anomaly/pooled/{name}/F1_threshold']
        assert 100 * f1 == pytest.approx(metrics[f'anomaly/pooled/{name}/F1'], abs=1e-12)
        assert f1 == pytest.approx(best_f1(y, s.astype(np.float64))[0], abs=2e-4)
    with open(tmp_path / 'anomaly_metrics.json') as f:
        summary = json.load(f)
    entry = summary['component']['MaxLogit']
    assert list(summary) == ['pooled', 'component'] and entry['mode'] == 'exact' and entry['threshold_gap'] == 0
    assert (entry['min_pred_size'], entry['min_gt_size'], entry['num_images']) == (4, 2, 10)
    assert entry['sIoU'] == pytest.approx(metrics['anomaly/component/MaxLogit/sIoU'], abs=1e-12)
    with open(tmp_path / 'anomaly_metrics.csv') as f:
        rows = list(csv.DictReader(f))
    assert [(r['protocol'], r['scorer']) for r in rows] == [(p, n) for p in ('pooled', 'component') for n in MAPS]
    assert float(rows[3]['F1_mean']) == pytest.approx(metrics['anomaly/component/SecondLogit/F1_mean'], abs=1e-9)
    assert rows[2]['mode'] == 'exact' and rows[2]['track'] == 'anomaly' and rows[0]['sIoU'] == ''


def test_default_protocols_give_exactly_the_keys_of_before():
    assert DEFAULT_PROTOCOLS == ('pooled', 'per_image') and PROTOCOLS == DEFAULT_PROTOCOLS + ('component', )
    metrics = run_metric(AnomalyMetric(scorers=[MaxLogit(), SecondLogit()]), make_samples(4))
    assert list(metrics) == [
        f'anomaly/{p}/{n}/{k}' for p in ('pooled', 'per_image') for n in ('MaxLogit', 'SecondLogit')
        for k in ('AUROC', 'AUPR', 'FPR95', 'F1', 'F1_threshold')
    ]


def test_component_protocol_leaves_the_pixel_protocols_unchanged():
    samples = make_samples(6, seed=3)
    plain = run_metric(AnomalyMetric(scorers=[MaxLogit()]), samples)
    both = run_metric(AnomalyMetric(scorers=[MaxLogit()], protocols=PROTOCOLS, **SIZES), samples)
    assert {k: v for k, v in both.items() if '/component/' not in k} == plain
    assert both['anomaly/component/MaxLogit/threshold'] == plain['anomaly/pooled/MaxLogit/F1_threshold']


def test_tracks_and_overrides():
    assert AnomalyMetric(scorers=[MaxLogit()]).component_sizes == (500, 100)
    assert AnomalyMetric(scorers=[MaxLogit()], component_track='obstacle').component_sizes == (50, 10)
    metric = AnomalyMetric(
        scorers=[MaxLogit()], protocols='component', component_track='obstacle', component_min_gt_size=3)
    assert metric.component_sizes == (50, 3) and metric._components['MaxLogit'].settings()[:2] == (50, 3)
    with pytest.raises(ValueError, match="AnomalyMetric: component track must be one of .*got 'road'"):
        AnomalyMetric(scorers=[MaxLogit()], component_track='road')
    with pytest.raises(ValueError, match='component_cache_bytes must be an int >= 0'):
        AnomalyMetric(scorers=[MaxLogit()], component_cache_bytes=-1)


def test_obstacle_preset_sizes_are_used():
    """At 50 / 10 pixels most blobs of the small test images are dropped / void: the results follow."""
    samples = make_samples(8, seed=5, shape=(64, 80))
    metrics = run_metric(
        AnomalyMetric(scorers=[MaxLogit()], protocols='component', component_track='obstacle'), samples)
    maps, labels = hand_maps(samples, 'MaxLogit')
    want = official.evaluate(maps, labels, official_threshold(metrics['anomaly/component/MaxLogit/threshold']), 50, 10)
    assert want['num_gt_components'] > 0
    for key in FIELDS[:-1]:
        got = metrics[f'anomaly/component/MaxLogit/{key}']
        assert (math.isnan(got) and math.isnan(want[key])) or got == pytest.approx(want[key], abs=1e-12), key


def test_grid_mode_when_the_cache_overflows(tmp_path, monkeypatch):
    messages = []
    monkeypatch.setattr(module, 'print_log', lambda msg, *a, **k: messages.append(str(msg)))
    samples = make_samples(12, seed=7)
    metric = AnomalyMetric(
        scorers=[MaxLogit(), SecondLogit()],
        protocols='component',
        component_cache_bytes=4000,
        output_dir=str(tmp_path),
        **SIZES)
    metrics = run_metric(metric, samples)
    with open(tmp_path / 'anomaly_metrics.json') as f:
        summary = json.load(f)['component']
    for name in MAPS:
        thr, maps, _ = check_against_official(metrics, samples, name)  # official at the threshold it used
        entry = summary[name]
        assert entry['mode'] == 'grid' and entry['exact'] is False and entry['threshold'] == thr
        flat = np.concatenate([m[y != 255] for m, y in zip(maps, hand_maps(samples, name)[1])])
        gap = np.count_nonzero(flat >= thr) / np.count_nonzero(flat >= entry['F1_threshold']) - 1
        assert entry['threshold_gap'] == pytest.approx(gap, abs=1e-12)
    assert sum('grid threshold' in m for m in messages) == 2


def test_samples_without_ground_truth_are_scored_but_left_out(tmp_path, monkeypatch):
    messages = []
    monkeypatch.setattr(module, 'print_log', lambda msg, *a, **k: messages.append(str(msg)))
    samples = make_samples(9, seed=9, no_gt=(1, 4, 8))
    kept = [s for s in samples if 'gt_anomaly_map' in s]
    kw = dict(scorers=[MaxLogit(), SecondLogit()], protocols=PROTOCOLS, **SIZES)
    metrics = run_metric(AnomalyMetric(output_dir=str(tmp_path), **kw), samples)
    want = run_metric(AnomalyMetric(**kw), kept)
    assert list(metrics) == list(want) and len(want) == 2 * (5 + 5 + 7)
    assert all(metrics[k] == want[k] or (math.isnan(metrics[k]) and math.isnan(want[k])) for k in want)
    assert any('3 of 9 images have no gt_anomaly_map' in m for m in messages)
    with open(tmp_path / 'anomaly_per_image.csv') as f:
        paths = {r['img_path'] for r in csv.DictReader(f)}
    assert paths == {s.img_path for s in kept}
    only = AnomalyMetric(scorers=[MaxLogit()], protocols=PROTOCOLS, **SIZES)
    nan = run_metric(only, make_samples(2, no_gt=(0, 1)))  # nothing to evaluate: NaN, no exception
    assert all(math.isnan(v) for v in nan.values())


def test_submission_files_hold_the_maps_as_float16(tmp_path):
    h5py = pytest.importorskip('h5py')
    samples = make_samples(5, seed=11, no_gt=(0, 3), name='city/frame_{i}_leftImg8bit.png')
    out = tmp_path / 'submission'
    run_metric(AnomalyMetric(scorers=[MaxLogit(), SecondLogit()], submission_dir=str(out), **SIZES), samples)
    for name, fn in MAPS.items():
        assert sorted(os.listdir(out / name)) == [f'frame_{i}.hdf5' for i in range(5)]
        for i, s in enumerate(samples):
            with h5py.File(out / name / f'frame_{i}.hdf5', 'r') as f:
                assert list(f.keys()) == ['value']
                value = f['value'][:]
            assert value.dtype == np.float16
            np.testing.assert_array_equal(value, fn(s.seg_logits.data.numpy()).astype(np.float16))


def test_submission_fid_and_name_clashes(tmp_path):
    assert submission_fid('a/b/04_Maurener_Weg_8_000000_000030_leftImg8bit.png') == '04_Maurener_Weg_8_000000_000030'
    assert submission_fid('x.y/airplane0000.jpg') == 'airplane0000'
    assert submission_fid('t5/300.png') == '300'
    with pytest.raises(ValueError, match='no `img_path`'):
        submission_fid(None)
    pytest.importorskip('h5py')
    samples = make_samples(2, name='t{i}/300.png')
    with pytest.raises(ValueError, match='t1/300.png and t0/300.png both map to the submission file name 300.hdf5'):
        run_metric(AnomalyMetric(scorers=[MaxLogit()], submission_dir=str(tmp_path)), samples)


def test_submission_needs_h5py(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, 'h5py', None)  # import h5py -> ImportError
    with pytest.raises(ImportError, match='pip install h5py'):
        AnomalyMetric(scorers=[MaxLogit()], submission_dir=str(tmp_path))


def test_float16_precision_warning_once_per_scorer(tmp_path, monkeypatch):
    pytest.importorskip('h5py')
    messages = []
    monkeypatch.setattr(module, 'print_log', lambda msg, *a, **k: messages.append(str(msg)))

    class Energy(BaseAnomalyScorer):  # hundreds, spanning a few units: float16 steps of 0.25

        def score(self, logits, feats=None):
            return 300.0 + logits[:, 0].float()

    run_metric(AnomalyMetric(scorers=[Energy(), MaxLogit()], submission_dir=str(tmp_path)), make_samples(4))
    warned = [m for m in messages if 'float16' in m]
    assert len(warned) == 1 and 'scorer Energy' in warned[0] and 'of the range' in warned[0]


def test_merge_with_the_component_protocol():
    samples = make_samples(8, seed=13)
    kw = dict(scorers=[MaxLogit()], protocols=('pooled', 'component'), **SIZES)
    first, second, whole = AnomalyMetric(**kw), AnomalyMetric(**kw), AnomalyMetric(**kw)
    for metric, part in ((first, samples[:5]), (second, samples[5:]), (whole, samples)):
        metric.process({}, [s.to_dict() for s in part])
    first.merge(second)
    assert first.compute_metrics(first.results) == whole.compute_metrics(whole.results)
    with pytest.raises(ValueError, match='component sizes'):
        first.merge(AnomalyMetric(scorers=[MaxLogit()], protocols=('pooled', 'component')))


# ---------------------------------------------------------------------------------------------- two ranks (gloo)
def _two_rank_worker(rank: int, world: int, port: int, num: int, out_dir: str) -> None:
    import torch.distributed as dist
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world)
    try:
        samples = make_samples(num, seed=17, no_gt=(3, ))
        total = -(-num // world) * world  # mmengine DefaultSampler(round_up=True): pad by repeating the start
        indices = (list(range(num)) * 2)[:total][rank:total:world]
        for mode, cap in (('exact', 1 << 30), ('grid', 4000)):
            metric = AnomalyMetric(scorers=[MaxLogit()], protocols=PROTOCOLS, component_cache_bytes=cap, **SIZES)
            for i in indices:
                metric.process({}, [samples[i].to_dict()])
            with open(osp.join(out_dir, f'{mode}{rank}.json'), 'w') as f:
                json.dump(metric.evaluate(num), f)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # 2 processes
def test_two_ranks_equal_single_process(tmp_path):
    """Two gloo ranks fed as mmengine's DefaultSampler would (7 samples: rank 1 gets sample 0 again as padding):
    the component statistics are those of one process (padding removed, summed over ranks). With caches that
    overflow, each rank uses its own grid: the results are those of the official code at the reported (worst
    rank's) threshold on that rank's images, so only their range is checked here."""
    from tool_runner import free_port
    num = 7
    mp.spawn(_two_rank_worker, args=(2, free_port(), num, str(tmp_path)), nprocs=2, join=True)
    samples = make_samples(num, seed=17, no_gt=(3, ))
    single = run_metric(AnomalyMetric(scorers=[MaxLogit()], protocols=PROTOCOLS, **SIZES), samples)
    for rank in range(2):
        with open(tmp_path / f'exact{rank}.json') as f:
            got = json.load(f)
        assert got.keys() == single.keys()
        for key, value in single.items():
            assert got[key] == pytest.approx(value, abs=1e-12, nan_ok=True), key
        with open(tmp_path / f'grid{rank}.json') as f:
            grid = json.load(f)
        assert grid.keys() == single.keys()
        assert all(0 <= grid[f'anomaly/component/MaxLogit/{k}'] <= 100 for k in FIELDS[:-1])
