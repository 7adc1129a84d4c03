"""ComponentAccumulator beyond the happy path: how the grid of thresholds is built (flagged-pixel counts spaced
around the current best-F1 threshold, the tie rule, a single histogram level, no anomalous pixel yet), exactly
when the cache overflows, merging shards in every mode pair, and what ``result`` reports in grid mode (grid range,
gap, warning, a grid threshold above every remaining score). Counts are checked by brute force over the pixels,
statistics against the official algorithm (``tests/reference_component_metrics.py``)."""
import logging
import math
import warnings
import zlib

import numpy as np
import pytest
import reference_component_metrics as official

from anomseg_plugins.evaluation.functional import (STAT_FIELDS, ComponentAccumulator, ScoreHistogram,
                                                   aggregate_component_stats, bin_lower_edges, official_threshold,
                                                   score_bins)

AGG_KEYS = ('sIoU', 'PPV', 'sIoU_pred', 'F1_mean', 'F1_25', 'F1_50', 'F1_75')
COUNT_KEYS = ('num_gt_components', 'num_pred_components', 'tp_25', 'fn_25', 'fp_25', 'tp_50', 'fn_50', 'fp_50', 'tp_75',
              'fn_75', 'fp_75')


def assert_official(stats, data, threshold, segsize, instsize):
    """``stats`` aggregate to the official result at ``threshold`` (rule ``score >= threshold``)."""
    got = aggregate_component_stats(stats)
    want = official.evaluate([s for s, _ in data], [y for _, y in data], official_threshold(threshold), segsize,
                             instsize)
    for key in AGG_KEYS:
        if math.isnan(want[key]):
            assert math.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(want[key], abs=1e-12, rel=0), key
    for key in COUNT_KEYS:
        assert got[key] == want[key], key


def ranked_image(shape=(50, 50), num_anomalous=200, seed=0):
    """Scores 1 .. H*W, each once (one 22-bit bin each), scattered; the ``num_anomalous`` highest are anomalies."""
    h, w = shape
    scores = (np.random.default_rng(seed).permutation(h * w) + 1).astype(np.float32).reshape(shape)
    labels = (scores > h * w - num_anomalous).astype(np.uint8)
    return scores, labels


def flagged(grid, *score_maps):
    """Pooled pixels with ``score >=`` the lower edge of each grid bin code."""
    scores = np.concatenate([s.reshape(-1) for s in score_maps])
    return np.array([np.count_nonzero(scores >= e) for e in bin_lower_edges(np.asarray(grid), 22)])


def nearest_counts(centre, exponents, total):
    """Brute force: for each target ``centre * 2^e`` the count in 1..total nearest in log terms (ties: smaller)."""
    k = np.arange(1, total + 1)
    log_t = np.log(centre * 2.0**np.asarray(exponents))
    return sorted({int(k[np.argmin(np.abs(np.log(k) - t))]) for t in log_t})


def pooled(*data):
    hist = ScoreHistogram(22)
    for scores, labels in data:
        hist.update(scores, labels)
    return hist


# ---------------------------------------------------------------------------------------------- the grid
def test_grid_counts_are_the_nearest_to_the_current_count_times_powers_of_two(caplog):
    scores, labels = ranked_image()  # best F1 = 1 flagging the 200 anomalies
    hist = pooled((scores, labels))
    acc = ComponentAccumulator(4, 2, cache_bytes=0, name='grid_scorer')
    with caplog.at_level(logging.INFO):
        acc.add(scores, labels, hist)
    assert acc.mode == 'grid' and acc.nbytes == 0 and acc.num_images == 1
    assert 'grid_scorer: component cache reached 0.0 MiB (cap 0.0 MiB) after 1 images' in caplog.text
    assert f'grid of {acc.grid.size} thresholds' in caplog.text
    counts = flagged(acc.grid, scores)
    assert list(counts) == nearest_counts(200, acc.grid_exponents, scores.size)  # descending codes, rising counts
    assert counts[0] == 13 and counts[-1] == 2500 and 200 in counts  # 200 / 16 = 12.5 -> 13; 200 * 16 clipped
    res = acc.result(hist)  # the final threshold is the grid's centre: no gap
    assert res['mode'] == 'grid' and res['threshold'] == res['F1_threshold'] == hist.compute()['F1_threshold']
    assert res['threshold_gap'] == 0.0 and not res['grid_outside']
    assert res['grid_range'] == (13 / 200 - 1, 2500 / 200 - 1)
    assert_official(res['stats'], [(scores, labels)], res['threshold'], 4, 2)


def test_grid_without_anomalous_pixels_is_centred_on_the_top_percent(caplog):
    """2501 pixels: the top 1% rounds up to 26 pixels (25.01)."""
    scores, _ = ranked_image((41, 61))
    labels = np.zeros(scores.shape, np.uint8)
    hist = pooled((scores, labels))
    acc = ComponentAccumulator(1, 1, cache_bytes=0, name='blind')
    with caplog.at_level(logging.WARNING):
        acc.add(scores, labels, hist)
    assert [r.getMessage() for r in caplog.records] == [
        'blind: no anomalous pixel yet when the component cache overflowed; the threshold grid is centred on the '
        'top 1% of the pixels'
    ]
    assert list(flagged(acc.grid, scores)) == nearest_counts(26, acc.grid_exponents, scores.size)


def test_grid_ties_in_log_distance_go_to_the_higher_threshold():
    """Grid exponents -1, 0, 1 around 4 flagged pixels: the target 2 lies exactly between the levels flagging 1
    and 4 pixels (log 2 each way) and takes the 1-pixel level; the target 8 takes 4 (24 is farther)."""
    scores = np.ones((4, 6), np.float32)
    scores.reshape(-1)[:4] = (3.0, 2.0, 2.0, 2.0)
    labels = (scores > 1).astype(np.uint8)  # best F1 = 1 at 4 flagged pixels
    hist = pooled((scores, labels))
    acc = ComponentAccumulator(1, 1, cache_bytes=0, grid_octaves=1, grid_per_octave=1, fine_octaves=0)
    np.testing.assert_array_equal(acc.grid_exponents, [-1.0, 0.0, 1.0])
    acc.add(scores, labels, hist)
    np.testing.assert_array_equal(acc.grid, score_bins(np.array([3.0, 2.0], np.float32), 22))


def test_grid_of_a_constant_map_is_its_single_level():
    scores = np.full((6, 8), 0.7, np.float32)
    labels = np.zeros((6, 8), np.uint8)
    labels[1:4, 2:5] = 1
    hist = pooled((scores, labels))
    acc = ComponentAccumulator(2, 2, cache_bytes=0)
    acc.add(scores, labels, hist)
    np.testing.assert_array_equal(acc.grid, score_bins(np.array([0.7], np.float32), 22))
    res = acc.result(hist)
    assert res['threshold'] == res['F1_threshold'] <= 0.7 and res['threshold_gap'] == 0
    assert_official(res['stats'], [(scores, labels)], res['threshold'], 2, 2)  # all flagged: one component
    assert aggregate_component_stats(res['stats'])['sIoU'] == pytest.approx(100 * 9 / 48)


# ---------------------------------------------------------------------------------------------- overflow
def test_cache_overflows_exactly_when_the_next_image_exceeds_the_cap():
    data = [ranked_image((20, 30), 40, seed=i) for i in range(3)]
    sizes = []
    for scores, labels in data:
        one = ComponentAccumulator(1, 1)
        one.add(scores, labels, pooled((scores, labels)))
        sizes.append(one.nbytes)
    hist = ScoreHistogram(22)
    for cap, switch_at in ((sizes[0] + sizes[1], 2), (sizes[0] + sizes[1] - 1, 1), (sizes[0] - 1, 0)):
        acc = ComponentAccumulator(1, 1, cache_bytes=cap)
        hist.reset()
        modes = []
        for scores, labels in data:
            hist.update(scores, labels)
            acc.add(scores, labels, hist)
            modes.append(acc.mode)
        assert modes == ['exact'] * switch_at + ['grid'] * (3 - switch_at), cap
    full = ComponentAccumulator(1, 1, cache_bytes=sum(sizes))
    hist.reset()
    for scores, labels in data:
        hist.update(scores, labels)
        full.add(scores, labels, hist)
    assert full.mode == 'exact' and full.nbytes == sum(sizes)


def test_an_all_void_first_image_is_cached_even_over_the_cap():
    """No grid can be built from an empty pooled histogram: the image is cached."""
    scores = np.ones((5, 5), np.float32)
    labels = np.full((5, 5), 255, np.uint8)
    acc = ComponentAccumulator(1, 1, cache_bytes=0)
    acc.add(scores, labels, pooled((scores, labels)))
    assert acc.mode == 'exact' and acc.nbytes > 0


def test_cache_holds_byte_shuffled_codes_and_labels_compressed_with_zlib_rle():
    scores, labels = ranked_image((30, 40), 50)
    labels[:, :3] = 255
    acc = ComponentAccumulator(1, 1)
    acc.add(scores, labels, pooled((scores, labels)))
    codes = score_bins(scores, 22).astype(np.int32)
    codes[labels == 255] = np.iinfo(np.int32).min

    def rle(data):
        engine = zlib.compressobj(1, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
        return engine.compress(data) + engine.flush()

    planes = codes.reshape(-1).view(np.uint8).reshape(-1, 4).T.copy().tobytes()
    assert acc.nbytes == len(rle(planes)) + len(rle(labels.tobytes()))
    cached_codes, cached_labels = next(acc._cached_images())
    np.testing.assert_array_equal(cached_codes, codes)
    np.testing.assert_array_equal(cached_labels, labels)


# ---------------------------------------------------------------------------------------------- merging
def random_set(num, seed, shape=(32, 40)):
    rng = np.random.default_rng(seed)
    return [official.blobs(rng, shape) for _ in range(num)]


def feed(data, hist=None, cache_bytes=1 << 30, grid_hist=None):
    """Accumulate ``data``; the grid (if the cache overflows) is built from ``grid_hist`` when given."""
    hist = hist if hist is not None else ScoreHistogram(22)
    acc = ComponentAccumulator(3, 2, cache_bytes=cache_bytes, name='shard')
    for scores, labels in data:
        hist.update(scores, labels)
        acc.add(scores, labels, grid_hist if grid_hist is not None else hist)
    return acc, hist


def test_merge_exact_shard_into_grid_shard():
    one, two = random_set(3, seed=1), random_set(3, seed=2)
    grid_side, hist = feed(one, cache_bytes=1)
    exact_side, _ = feed(two)
    hist.update(np.stack([s for s, _ in two]), np.stack([y for _, y in two]))
    assert grid_side.merge(exact_side) is grid_side
    assert grid_side.mode == 'grid' and grid_side.num_images == 6
    res = grid_side.result(hist)
    assert_official(res['stats'], one + two, res['threshold'], 3, 2)


def test_merge_grid_shards_with_the_same_grid_adds_their_statistics():
    one, two = random_set(3, seed=3), random_set(3, seed=4)
    final = pooled(*(one + two))  # both shards build their grid from the final histogram: same grid
    a, _ = feed(one, cache_bytes=0, grid_hist=final)
    b, _ = feed(two, cache_bytes=0, grid_hist=final)
    assert a.mode == b.mode == 'grid' and np.array_equal(a.grid, b.grid)
    a.merge(b)
    assert a.num_images == 6
    res = a.result(final)
    assert res['threshold'] == res['F1_threshold'] and res['threshold_gap'] == 0  # the final threshold is on the grid
    assert res['stats'][STAT_FIELDS.index('num_gt')] > 3
    assert_official(res['stats'], one + two, res['threshold'], 3, 2)


def test_merge_grid_shards_with_different_grids_is_refused():
    a, _ = feed(random_set(2, seed=5), cache_bytes=0)
    b, _ = feed(random_set(2, seed=6), cache_bytes=0)
    assert not np.array_equal(a.grid, b.grid)
    with pytest.raises(
            ValueError,
            match=r'^shard: both component accumulators switched to grid mode with different threshold '
            r'grids; their statistics cannot be combined\. Raise cache_bytes so that at most one shard '
            r'overflows\.$'):
        a.merge(b)


# ---------------------------------------------------------------------------------------------- grid results
def test_final_threshold_outside_the_grid_is_reported_and_logged(caplog):
    """Grid built while no pixel was anomalous (top 1% = 25 pixels: counts 2 .. 400); the anomalies of the second
    image score below everything, so the final threshold flags all 5000 pixels, far outside the grid."""
    first, _ = ranked_image()
    first_labels = np.zeros(first.shape, np.uint8)
    second, second_labels = np.full((50, 50), 0.5, np.float32), np.ones((50, 50), np.uint8)
    hist = ScoreHistogram(22)
    acc = ComponentAccumulator(3, 2, cache_bytes=0, name='far')
    for scores, labels in ((first, first_labels), (second, second_labels)):
        hist.update(scores, labels)
        acc.add(scores, labels, hist)
    counts = flagged(acc.grid, first, second)
    assert counts[0] == 2 and counts[-1] == 400
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        res = acc.result(hist)
    assert res['F1_threshold'] == bin_lower_edges(score_bins(np.array([0.5], np.float32), 22), 22)[0]
    assert res['grid_outside'] and res['threshold'] == bin_lower_edges(acc.grid[-1:], 22)[0]
    assert res['threshold_gap'] == 400 / 5000 - 1
    assert res['grid_range'] == (2 / 5000 - 1, 400 / 5000 - 1)
    assert [r.getMessage() for r in caplog.records] == [
        'far: the final pooled best-F1 threshold lies outside the component threshold grid built when the cache '
        'overflowed; component metrics are computed at the nearest grid threshold, which flags -92.0% pixels. '
        'Raise component_cache_bytes for exact component metrics.'
    ]
    assert_official(res['stats'], [(first, first_labels), (second, second_labels)], res['threshold'], 3, 2)


def test_grid_thresholds_above_every_remaining_score_flag_no_pixel():
    """The image that set the grid is dropped (and subtracted from the pooled histogram): the grid thresholds
    above the new image's scores (1 .. 100) flag nothing, the lowest one (score 1) all 100 pixels, 10 times the
    final threshold's 10; that one is used, and the others (an infinite log distance) raise no numpy warning."""
    big, big_labels = ranked_image()
    acc = ComponentAccumulator(1, 1, cache_bytes=0)
    acc.add(big, big_labels, pooled((big, big_labels)))
    acc.drop_last()
    small = np.arange(1, 101, dtype=np.float32).reshape(10, 10)
    small_labels = (small > 90).astype(np.uint8)
    hist = pooled((small, small_labels))
    acc.add(small, small_labels, hist)
    counts = flagged(acc.grid, small)
    assert counts[-1] == 100 and np.all(counts[:-1] == 0)
    with warnings.catch_warnings():  # the thresholds flagging no pixel (log 0) are left out without numpy warnings
        warnings.simplefilter('error')
        res = acc.result(hist)
    assert acc.num_images == 1 and res['threshold'] == 1.0 and not res['grid_outside']
    assert res['grid_range'] == (-1.0, 9.0) and res['threshold_gap'] == 9.0
    assert_official(res['stats'], [(small, small_labels)], 1.0, 1, 1)


def test_result_without_anomalous_pixels_logs_nothing(caplog):
    """No threshold: NaN, silently (the pooled metric itself reports the missing class)."""
    scores, _ = ranked_image((20, 20))
    labels = np.zeros(scores.shape, np.uint8)
    for cap in (1 << 30, 0):
        acc = ComponentAccumulator(1, 1, cache_bytes=cap)
        hist = pooled((scores, labels))
        with caplog.at_level(logging.DEBUG):
            acc.add(scores, labels, hist)
            caplog.clear()
            res = acc.result(hist)
        assert caplog.records == [] and math.isnan(res['threshold']) and np.isnan(res['stats']).all()
