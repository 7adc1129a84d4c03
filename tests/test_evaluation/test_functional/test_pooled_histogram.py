"""The order-preserving score histogram against scikit-learn and the exact path."""
import logging

import numpy as np
import pytest
import torch

from anomseg_plugins.evaluation.functional import (ScoreHistogram, bin_lower_edges, exact_anomaly_metrics,
                                                   exact_level_counts, score_bins)


def awkward_floats() -> np.ndarray:
    rng = np.random.default_rng(0)
    special = [0.0, -0.0, 1e-45, -1e-45, 1.17e-38, -1.17e-38, 3.4e38, -3.4e38, 1.0, -1.0, 0.5, 2.0, 255.0]
    values = np.r_[special, rng.standard_normal(5000) * 10.0**rng.integers(-30, 30, 5000)]
    return values.astype(np.float32)


@pytest.mark.parametrize('num_bits', [8, 16, 22, 24])
def test_bins_are_order_preserving(num_bits):
    values = np.sort(awkward_floats())
    bins = score_bins(values, num_bits)
    assert np.all(np.diff(bins) >= 0)
    assert score_bins(np.array([-0.0], np.float32), num_bits)[0] == score_bins(np.array([0.0], np.float32), num_bits)[0]
    # the lower edge of a bin is a float of that bin, and everything below it is in a lower bin
    edges = bin_lower_edges(bins, num_bits).astype(np.float32)
    assert np.all(score_bins(edges, num_bits) == bins)
    assert np.all(values >= edges)
    below = np.nextafter(edges, np.float32(-np.inf))
    finite = np.isfinite(below)
    assert np.all(score_bins(below[finite], num_bits) < bins[finite])


def test_bin_width_is_relative():
    # 22 bits: 13 mantissa bits kept -> values 1 and 1 + 2^-13 fall in neighbouring bins, at any scale
    for scale in (1e-3, 1.0, 300.0, 1e6):
        a = np.array([scale, scale * (1 + 2.0**-13), scale * (1 + 2.0**-15)], np.float32)
        b = score_bins(a, 22)
        assert b[1] == b[0] + 1 and b[2] == b[0]


def test_matches_sklearn_on_awkward_maps(case, ref):
    kind, scores, labels = case
    want = ref.reference(scores, labels)
    exact = exact_anomaly_metrics(scores, labels)
    hist = ScoreHistogram(num_bits=22)
    for chunk in np.array_split(np.arange(scores.size), 7):  # streamed in pieces
        hist.update(scores[chunk], labels[chunk])
    got = hist.compute()
    assert got['AUROC'] == pytest.approx(want['AUROC'], abs=1e-4), kind
    assert got['AUPR'] == pytest.approx(want['AUPR'], abs=1e-4), kind
    assert got['F1'] == pytest.approx(want['F1'], abs=1e-4), kind
    # documented bounds: AUROC within the tie mass of shared bins; FPR95 from the right bin, >= exact,
    # above it by at most the negatives of that bin
    assert abs(got['AUROC'] - exact['AUROC']) <= hist.auroc_tie_bound() + 1e-12
    assert abs(got['AUPR'] - exact['AUPR']) <= hist.aupr_tie_bound() + 1e-12
    pos, neg, thr = hist.level_counts()
    tps = np.cumsum(pos)
    k = int(np.argmax(tps >= 0.95 * tps[-1]))
    bound = neg[k] / neg.sum()
    assert 0 <= got['FPR95'] - want['FPR95'] <= bound + 1e-12, kind
    assert got['FPR95'] == pytest.approx(want['FPR95'], abs=1e-3), kind
    near = hist.compute(fpr_rule='nearest')['FPR95']
    assert near == pytest.approx(want['FPR95_nearest'], abs=1e-3), kind
    assert got['num_pos'] == int(labels.sum()) and got['num_neg'] == int((labels == 0).sum())


def test_aupr_bound_when_positives_crowd_one_bin():
    """300 anomalies within 1e-6 of 1.5 (one bin) below half of the normal pixels: AUPR differs from sklearn,
    by no more than the documented bound; AUROC is unaffected."""
    rng = np.random.default_rng(3)
    neg = rng.standard_normal(30000) * 1e3
    pos = 1.5 + rng.standard_normal(300) * 1e-6
    scores = np.r_[neg, pos].astype(np.float32)
    labels = np.r_[np.zeros(30000), np.ones(300)].astype(np.uint8)
    hist = ScoreHistogram.from_scores(scores, labels, num_bits=22)
    got, exact = hist.compute(), exact_anomaly_metrics(scores, labels)
    assert got['AUROC'] == pytest.approx(exact['AUROC'], abs=1e-6)
    assert 1e-4 < abs(got['AUPR'] - exact['AUPR']) <= hist.aupr_tie_bound()
    assert hist.aupr_tie_bound() < 0.05


@pytest.mark.parametrize('rule', ['first', 'nearest'])
def test_fpr_bound_holds_when_bins_merge_distinct_scores(rule):
    """Coarse bins (9..16 bits) on normal, rounded and 500 +- 0.01 maps at recall levels 0.5..0.95: the FPR read
    from the bins lies within ``fpr_tie_bound`` of the exact one (sklearn / the official nearest rule), and
    ``error_bounds`` bounds AUROC and AUPR the same way."""
    rng = np.random.default_rng(11)
    hits = 0
    for trial in range(300):
        n = int(rng.integers(20, 2000))
        labels = (rng.random(n) < rng.choice([0.02, 0.1, 0.4])).astype(np.uint8)
        labels[:2] = (0, 1)
        base = rng.standard_normal(n) + labels * rng.uniform(0, 2)
        scores = (base, np.round(base, 1), 500 + 0.01 * np.tanh(base))[trial % 3].astype(np.float32)
        level = float(rng.choice([0.5, 0.8, 0.95]))
        hist = ScoreHistogram.from_scores(scores, labels, num_bits=int(rng.choice([9, 10, 12, 16])))
        got = hist.compute(level, rule, warn=False)
        exact = exact_anomaly_metrics(scores, labels, None, level, rule, warn=False)
        bounds = hist.error_bounds(level, rule)
        assert bounds['FPR95'] == hist.fpr_tie_bound(level, rule)
        for key in ('AUROC', 'AUPR', 'FPR95'):
            assert abs(got[key] - exact[key]) <= bounds[key] + 1e-12, (trial, key)
        hits += abs(got['FPR95'] - exact['FPR95']) > 0.05
    assert hits > 20  # the cases do exercise large quantisation errors


def test_fpr_bound_is_zero_when_bins_separate_the_classes():
    """Every score alone in its bin: the bins are the exact levels and every bound is 0."""
    rng = np.random.default_rng(12)
    scores = rng.permutation(4000).astype(np.float32)
    labels = (scores % 37 == 0).astype(np.uint8)
    hist = ScoreHistogram.from_scores(scores, labels, num_bits=22)
    for rule in ('first', 'nearest'):
        assert hist.fpr_tie_bound(0.95, rule) == 0.0
        assert hist.compute(0.95, rule)['FPR95'] == exact_anomaly_metrics(scores, labels, None, 0.95, rule)['FPR95']
    assert hist.auroc_tie_bound() == 0.0 and hist.aupr_tie_bound() == 0.0
    assert np.isnan(ScoreHistogram.from_scores(scores, np.zeros_like(labels)).fpr_tie_bound())


def test_ties_only_data_is_exact(ref):
    """Scores on a coarse grid: every distinct value has its own bin -> identical to sklearn."""
    scores, labels = ref.make_case('tied', n=20000, seed=4)
    got = ScoreHistogram.from_scores(scores, labels, num_bits=22).compute()
    want = exact_anomaly_metrics(scores, labels)
    for key in ('AUROC', 'AUPR', 'FPR95', 'F1'):
        assert got[key] == pytest.approx(want[key], abs=1e-12), key
    # the histogram reports the lower edge of the threshold's bin
    edge, exact = np.float32(got['F1_threshold']), np.float32(want['F1_threshold'])
    assert edge <= exact and score_bins(np.array([edge, exact]), 22).tolist() == [score_bins(exact[None], 22)[0]] * 2


def test_level_counts_equal_exact_when_bins_separate_values():
    rng = np.random.default_rng(5)
    scores = rng.integers(-50, 50, 3000).astype(np.float32) * 0.25
    labels = (rng.random(3000) < 0.1).astype(np.uint8)
    pos, neg, thr = ScoreHistogram.from_scores(scores, labels, num_bits=20).level_counts()
    epos, eneg, ethr = exact_level_counts(scores, labels)
    # the exact path merges negative-only runs; compare the cumulative curves at the positive levels
    assert np.array_equal(np.cumsum(pos)[pos > 0], np.cumsum(epos)[epos > 0])
    assert np.array_equal(np.cumsum(neg)[pos > 0], np.cumsum(eneg)[epos > 0])
    assert np.array_equal(thr[pos > 0], ethr[epos > 0])


def test_merge_of_shards_equals_whole(ref):
    scores, labels = ref.make_case('heavy_tailed', n=30000, seed=6)
    whole = ScoreHistogram.from_scores(scores, labels)
    a = ScoreHistogram.from_scores(scores[:10000], labels[:10000])
    b = ScoreHistogram.from_scores(scores[10000:], labels[10000:])
    merged = ScoreHistogram().merge(a).merge(b)
    assert merged.block_ids == whole.block_ids
    assert np.array_equal(merged.dense_blocks(whole.block_ids), whole.dense_blocks(whole.block_ids))
    assert merged.num_pos + merged.num_neg == scores.size
    assert merged.compute() == whole.compute()
    # subtracting a shard again gives the other one
    merged.add(b, sign=-1)
    assert merged.compute() == a.compute()


def test_memory_tracks_score_range_not_pixels():
    rng = np.random.default_rng(7)
    hist = ScoreHistogram(num_bits=22)
    for _ in range(20):
        hist.update(rng.uniform(-20, -2, 50000).astype(np.float32), (rng.random(50000) < 0.01).astype(np.uint8))
    size_after_20 = hist.nbytes
    for _ in range(20):
        hist.update(rng.uniform(-20, -2, 50000).astype(np.float32), (rng.random(50000) < 0.01).astype(np.uint8))
    assert hist.nbytes == size_after_20  # no growth with more pixels of the same range
    # [-20, -2] spans ~3.3 binades of 2^13 bins each (+ growth slack): well under 1 MiB
    assert size_after_20 < 1 << 20
    assert hist.num_pos + hist.num_neg == 40 * 50000


def test_ignore_index_and_label_dtypes():
    rng = np.random.default_rng(8)
    scores = rng.standard_normal((4, 64, 64)).astype(np.float32)
    labels = (rng.random((4, 64, 64)) < 0.05).astype(np.uint8)
    ignored = labels.copy()
    ignored[:, :10] = 255
    scores_bad = scores.copy()
    scores_bad[:, :10] = np.nan  # scores of ignored pixels are never looked at
    got = ScoreHistogram.from_scores(scores_bad, ignored).compute()
    want = ScoreHistogram.from_scores(scores[:, 10:], labels[:, 10:]).compute()
    assert got == want
    as_bool = ScoreHistogram.from_scores(scores, labels.astype(bool)).compute()
    as_long = ScoreHistogram.from_scores(torch.from_numpy(scores), torch.from_numpy(labels).long()).compute()
    assert as_bool == as_long == ScoreHistogram.from_scores(scores, labels).compute()


def test_non_finite_and_bad_labels_raise():
    scores = np.zeros(10, np.float32)
    for bad in (np.nan, np.inf, -np.inf):
        scores[4] = bad
        with pytest.raises(ValueError, match='scorer Energy: 1 of 10 .*NaN or inf'):
            ScoreHistogram.from_scores(scores, np.zeros(10, np.uint8), name='scorer Energy')
    with pytest.raises(ValueError, match=r'found \[3, 7\]'):
        ScoreHistogram.from_scores(np.zeros(5, np.float32), np.array([0, 1, 3, 7, 255], np.uint8))
    with pytest.raises(ValueError, match='num_bits'):
        ScoreHistogram(num_bits=30)
    with pytest.raises(ValueError, match='cannot merge'):
        ScoreHistogram(num_bits=20).merge(ScoreHistogram.from_scores(np.ones(3), np.ones(3), num_bits=22))


def test_degenerate_histograms(caplog):
    empty = ScoreHistogram.from_scores(np.ones(6, np.float32), np.full(6, 255, np.uint8))
    assert empty.blocks == {} and empty.nbytes == 0
    with caplog.at_level(logging.WARNING):
        res = empty.compute()
    assert all(np.isnan(res[k]) for k in ('AUROC', 'AUPR', 'FPR95', 'F1'))
    assert '0 anomalous and 0 normal' in caplog.text
    labels = np.r_[np.ones(10), np.zeros(90)].astype(np.uint8)
    const = ScoreHistogram.from_scores(np.full(100, -7.5, np.float32), labels)
    res = const.compute(warn=False)
    assert res['AUROC'] == 0.5 and res['FPR95'] == 1.0 and res['AUPR'] == pytest.approx(0.1)
    assert res['F1_threshold'] == -7.5
    curves = const.curves()
    assert curves['fpr'].tolist() == [0.0, 1.0] and curves['tpr'].tolist() == [0.0, 1.0]


def same_counts(a: ScoreHistogram, b: ScoreHistogram) -> bool:
    return a.block_ids == b.block_ids and np.array_equal(a.dense_blocks(a.block_ids), b.dense_blocks(a.block_ids))


@pytest.mark.parametrize('kind', ['energy', 'mixed_sign', 'probability'])
def test_torch_path_matches_numpy_path(kind, ref):
    """The torch binning (used for CUDA tensors) run on CPU tensors gives the numpy path's counts."""
    scores, labels = ref.make_case(kind, n=50000, seed=9)
    labels[:100] = 255
    cpu = ScoreHistogram.from_scores(scores, labels)
    via_torch = ScoreHistogram(22)
    via_torch._bin_torch(torch.from_numpy(scores), torch.from_numpy(labels))
    assert same_counts(cpu, via_torch)


def reference_level_counts(scores: np.ndarray, labels: np.ndarray, num_bits: int = 22):
    """Per-bin counts by np.unique over ``score_bins`` (descending), independent of the binning paths."""
    bins = score_bins(scores, num_bits)
    uniq, inv = np.unique(bins, return_inverse=True)
    pos = np.bincount(inv, weights=labels, minlength=uniq.size).astype(np.int64)
    neg = np.bincount(inv, minlength=uniq.size) - pos
    return pos[::-1], neg[::-1], bin_lower_edges(uniq[::-1], num_bits)


@pytest.mark.parametrize('kind,n', [('energy', 50000), ('random', 200000), ('mixed_sign', 40000), ('negative', 30000)])
def test_binning_paths_count_exactly(kind, n, ref):
    """Dense range (energy), zero crossing with two dense segments (random: ~20 binades per sign) and
    occupied-blocks indexing (mixed_sign: ~100 binades; negative: one sign reaching down to ~1e-9) all give
    the reference counts."""
    scores, labels = ref.make_case(kind, n=n, seed=10)
    hist = ScoreHistogram.from_scores(scores, labels)
    for got, want in zip(hist.level_counts(), reference_level_counts(scores, labels)):
        assert np.array_equal(got, want)
    # only occupied binades are stored
    assert len(hist.blocks) == np.unique(score_bins(scores, 22) >> 13).size


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_path_matches_cpu(ref):
    scores, labels = ref.make_case('energy', n=200000, seed=9)
    cpu = ScoreHistogram.from_scores(scores, labels)
    gpu = ScoreHistogram.from_scores(torch.from_numpy(scores).cuda(), torch.from_numpy(labels).cuda())
    assert same_counts(cpu, gpu)


def test_operating_points_match_sklearn():
    """The panel hook's operating points: the threshold at 95 % recall (where FPR95 is read), the rates of
    flagging ``score >= threshold`` and score quantiles."""
    from sklearn.metrics import roc_curve
    rng = np.random.default_rng(1)
    labels = (rng.random(20000) < 0.05).astype(np.uint8)
    scores = (rng.normal(size=20000) + 2.0 * labels).astype(np.float32)
    hist = ScoreHistogram.from_scores(scores, labels, 22)
    thr = hist.threshold_at_recall(0.95)
    rates = hist.rates_at_threshold(thr)
    assert rates['recall'] >= 0.95
    assert rates['num_anomaly_pixels'] == int(labels.sum()) and rates['num_normal_pixels'] == int((1 - labels).sum())
    fpr, tpr, _ = roc_curve(labels, scores)
    assert rates['fpr'] == pytest.approx(fpr[np.argmax(tpr >= 0.95)], abs=1e-3)
    assert rates['fpr'] * 100 == pytest.approx(hist.compute(0.95)['FPR95'] * 100, abs=1e-9)
    assert hist.quantile(0.5) == pytest.approx(np.percentile(scores, 50), abs=2e-2)
    assert hist.quantile(0.99) == pytest.approx(np.percentile(scores, 99), abs=2e-2)


def test_operating_points_of_empty_and_normal_only_histograms():
    empty = ScoreHistogram(22)
    assert np.isnan(empty.threshold_at_recall(0.95)) and np.isnan(empty.quantile(0.5))
    assert empty.rates_at_threshold(0.0) == dict(recall=None, fpr=None, num_anomaly_pixels=0, num_normal_pixels=0)
    normal = ScoreHistogram.from_scores(np.array([1.0, 2.0, 3.0], np.float32), np.zeros(3, np.uint8))
    assert np.isnan(normal.threshold_at_recall(0.95))
    assert normal.rates_at_threshold(2.0) == dict(recall=None, fpr=2 / 3, num_anomaly_pixels=0, num_normal_pixels=3)
