"""AnomalyMetric's component protocol combined over ranks (``_reduce_components``), in one process: the ranks are
metrics fed with disjoint shards that share the summed pooled histograms (as after ``_all_reduce_histograms``), and
``all_gather_object`` hands rank 0 the other rank's local results. Checked against one metric fed with every image
and against the official algorithm (``tests/reference_component_metrics.py``) at each rank's threshold."""
import json
import math

import numpy as np
import pytest
import reference_component_metrics as official
from test_anomaly_metric_components import FIELDS, MAPS, SIZES, SecondLogit, hand_maps, make_samples

import anomseg_plugins.evaluation.metrics.anomaly_metric as module
from anomseg_plugins.evaluation import AnomalyMetric
from anomseg_plugins.evaluation.functional import ScoreHistogram, official_threshold
from anomseg_plugins.scorers import MaxLogit


def fed(samples, cache=1 << 30, **kw):
    metric = AnomalyMetric(
        scorers=[MaxLogit(), SecondLogit()],
        protocols=('pooled', 'component'),
        component_cache_bytes=cache,
        **SIZES,
        **kw)
    for s in samples:
        metric.process({}, [s.to_dict()])
    return metric


def share_summed_histograms(ranks):
    """Every rank holds the histograms summed over the ranks (what ``_all_reduce_histograms`` leaves)."""
    for name in ranks[0].scorer_names:
        total = ScoreHistogram(ranks[0].num_bits, ranks[0].ignore_index, name)
        for rank in ranks:
            total.add(rank.histograms[name])
        for rank in ranks:
            rank._hists[name] = total


def gather_on_rank0(monkeypatch, ranks):
    """Rank 0's combined component results, the other ranks' local results given by ``all_gather_object``."""
    others = [rank._reduce_components() for rank in ranks[1:]]  # one process: the local results
    monkeypatch.setattr(module, 'get_world_size', lambda: len(ranks))
    monkeypatch.setattr(module, 'all_gather_object', lambda local: [local] + others)
    return ranks[0]._reduce_components(), others


def test_exact_ranks_sum_to_the_single_process_results(monkeypatch, tmp_path):
    samples = make_samples(9, seed=21)
    ranks = [fed(samples[:4], output_dir=str(tmp_path)), fed(samples[4:])]
    share_summed_histograms(ranks)
    reduced, _ = gather_on_rank0(monkeypatch, ranks)
    ranks[0]._component_results = reduced  # as evaluate() does before compute_metrics
    got = ranks[0].compute_metrics(ranks[0].results + ranks[1].results)
    whole = fed(samples)
    want = whole.compute_metrics(whole.results)
    assert list(got) == list(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12, nan_ok=True), key
    for name in MAPS:  # the official code on all nine images at the pooled best-F1 threshold
        maps, labels = hand_maps(samples, name)
        thr = got[f'component/{name}/threshold']
        ref = official.evaluate(maps, labels, official_threshold(thr), 4, 2)
        assert ref['num_gt_components'] > 5
        for key in FIELDS[:-1]:
            assert got[f'component/{name}/{key}'] == pytest.approx(ref[key], abs=1e-12), (name, key)
        assert reduced[name]['num_images'] == 9 and reduced[name]['mode'] == 'exact'
        assert reduced[name]['grid_outside'] is False
    with open(tmp_path / 'anomaly_metrics.json') as f:
        entry = json.load(f)['component']['MaxLogit']
    assert entry['mode'] == 'exact' and entry['exact'] is True and entry['threshold_gap'] == 0
    assert entry['num_gt_components'] == official.evaluate(*hand_maps(samples, 'MaxLogit'),
                                                           official_threshold(entry['threshold']), 4,
                                                           2)['num_gt_components']


def test_a_grid_rank_makes_the_result_grid_at_its_threshold(monkeypatch, tmp_path):
    """Rank 1's cache overflows: the combined result is in grid mode at rank 1's threshold (the largest gap) and
    its statistics are rank 0's exact ones plus rank 1's at its grid threshold."""
    samples = make_samples(10, seed=23)
    ranks = [fed(samples[:5], output_dir=str(tmp_path)), fed(samples[5:], cache=4000)]
    share_summed_histograms(ranks)
    reduced, (local1, ) = gather_on_rank0(monkeypatch, ranks)
    ranks[0]._component_results = reduced
    got = ranks[0].compute_metrics(ranks[0].results + ranks[1].results)
    with open(tmp_path / 'anomaly_metrics.json') as f:
        summary = json.load(f)['component']
    for name in MAPS:
        exact_thr, grid_thr = got[f'pooled/{name}/F1_threshold'], local1[name]['threshold']
        assert local1[name]['mode'] == 'grid' and local1[name]['threshold_gap'] != 0 and grid_thr != exact_thr
        assert got[f'component/{name}/threshold'] == grid_thr
        entry = summary[name]
        assert entry['mode'] == 'grid' and entry['exact'] is False
        assert entry['threshold_gap'] == local1[name]['threshold_gap']
        assert entry['grid_outside'] is bool(local1[name]['grid_outside'])
        assert entry['F1_threshold'] == exact_thr and entry['num_images'] == 10
        maps, labels = hand_maps(samples, name)
        frames = [
            official.frame(m, y, official_threshold(exact_thr if i < 5 else grid_thr), 4, 2)
            for i, (m, y) in enumerate(zip(maps, labels))
        ]
        ref = official.aggregate(frames)
        assert entry['num_gt_components'] == ref['num_gt_components'] > 5
        assert entry['num_pred_components'] == ref['num_pred_components']
        for key in FIELDS[:-1]:
            assert got[f'component/{name}/{key}'] == pytest.approx(ref[key], abs=1e-12), (name, key)


def test_the_rank_with_the_largest_finite_gap_gives_the_threshold(monkeypatch):
    """The reported threshold / gap are those of the rank whose gap is largest in magnitude; a rank without a gap
    (NaN) never wins over one with a gap, however small; statistics and image counts are summed."""
    metric = AnomalyMetric(scorers=[MaxLogit()], protocols='component', **SIZES)
    rng = np.random.default_rng(0)
    stats = [rng.integers(0, 9, 40).astype(np.float64) for _ in range(3)]

    def rank(gap, threshold, mode, outside, i):
        return dict(
            MaxLogit=dict(
                stats=stats[i],
                mode=mode,
                threshold=threshold,
                F1_threshold=1.0,
                threshold_gap=gap,
                grid_outside=outside,
                num_images=i + 1))

    cases = [
        ([(float('nan'), 5.0, 'exact', False), (0.01, 6.0, 'grid', False), (-0.02, 7.0, 'exact', False)], 7.0, -0.02),
        ([(0.0, 5.0, 'exact', False), (0.3, 6.0, 'grid', True), (-0.02, 7.0, 'grid', False)], 6.0, 0.3),
        ([(float('nan'), 5.0, 'exact', False), (float('nan'), 6.0, 'exact', False)], 5.0, float('nan')),
    ]
    for spec, threshold, gap in cases:
        gathered = [rank(*s, i) for i, s in enumerate(spec)]
        metric._components = {'MaxLogit': _Fixed(gathered[0]['MaxLogit'])}
        monkeypatch.setattr(module, 'get_world_size', lambda: len(gathered))
        monkeypatch.setattr(module, 'all_gather_object', lambda local, g=gathered: [local] + g[1:])
        res = metric._reduce_components()['MaxLogit']
        assert res['threshold'] == threshold
        assert res['threshold_gap'] == gap or (math.isnan(gap) and math.isnan(res['threshold_gap']))
        np.testing.assert_array_equal(res['stats'], np.sum(stats[:len(spec)], axis=0))
        assert res['num_images'] == sum(range(1, len(spec) + 1))
        assert res['mode'] == ('grid' if any(s[2] == 'grid' for s in spec) else 'exact')
        assert res['grid_outside'] is any(s[3] for s in spec)


class _Fixed:
    """A component accumulator whose result is given."""

    def __init__(self, result):
        self._result = result

    def result(self, hist):
        return dict(self._result)
