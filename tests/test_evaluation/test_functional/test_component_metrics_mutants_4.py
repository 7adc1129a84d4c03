"""Component metrics: input forms and defaults of the per-image functions (score maps with a leading axis, empty and
non-float threshold lists, the strict rule, default names in messages, the default track, component order under
padding), the aggregate's integer counts, and the accumulator's bookkeeping (grid validation and dtype, cache bytes
after ``drop_last``, the overflow log line, the ``-inf`` best-F1 threshold, ``drop_last`` after ``merge``, the result
without anomalous pixels, the grid of a tiny image without anomalies, the grid when pooled counts exceed float64's
integers, the cache size of a large image, a zero cap with a one-pixel image, a final threshold on the grid's edge)."""
import logging
import math
import re
import zlib
from fractions import Fraction

import numpy as np
import pytest
import torch
from test_component_accumulator_modes import flagged, nearest_counts, pooled, ranked_image

from anomseg_plugins.evaluation.functional import (NUM_STATS, STAT_FIELDS, ComponentAccumulator, ScoreHistogram,
                                                   aggregate_component_stats, bin_lower_edges)
from anomseg_plugins.evaluation.functional import component_metrics as cm
from anomseg_plugins.evaluation.functional import image_component_stats, image_components, score_bins

NUM_GT, NUM_PRED = STAT_FIELDS.index('num_gt'), STAT_FIELDS.index('num_pred')
SIOU_GT, PREC = STAT_FIELDS.index('sIoU_gt_sum'), STAT_FIELDS.index('prec_pred_sum')


def square_case():
    """A 3 x 3 anomaly scored 0.5, a 2 x 2 false positive scored 0.9, 0 elsewhere; 8 x 8."""
    scores = np.zeros((8, 8), np.float32)
    labels = np.zeros((8, 8), np.uint8)
    labels[1:4, 1:4] = 1
    scores[1:4, 1:4] = 0.5
    scores[5:7, 5:7] = 0.9
    return scores, labels


def random_image(rng, shape):
    """Uniform float32 noise (compresses poorly: ~2 bytes a pixel in the cache) with one anomalous rectangle."""
    labels = np.zeros(shape, np.uint8)
    labels[10:30, 20:50] = 1
    return rng.random(shape, dtype=np.float32), labels


def feed(data, acc, hist=None):
    hist = hist or ScoreHistogram(acc.num_bits)
    for scores, labels in data:
        hist.update(scores, labels)
        acc.add(scores, labels, hist)
    return hist


# ---------------------------------------------------------------------------------------------- one image
@pytest.mark.parametrize('wrap', [lambda a: a[None], lambda a: torch.from_numpy(a[None])], ids=['numpy', 'torch'])
def test_score_maps_with_a_leading_singleton_axis(wrap):
    """Scores of shape (1, H, W) (a scorer's per-image output) give the same statistics as (H, W)."""
    scores, labels = square_case()
    want = image_component_stats(scores, labels, [0.2, 0.7], 1, 1)
    assert want[0, NUM_GT] == 1 and want[0, NUM_PRED] == 2  # the anomaly and the false positive at 0.2
    np.testing.assert_array_equal(image_component_stats(wrap(scores), wrap(labels), [0.2, 0.7], 1, 1), want)
    got = image_components(wrap(scores), wrap(labels), 0.2, 1, 1)
    np.testing.assert_array_equal(np.sort(got['prec_pred']), [0.0, 1.0])


def test_image_component_stats_threshold_is_strict():
    """``score > t``: scores equal to a threshold are not flagged, one float32 step above they are."""
    scores, labels = square_case()
    above = float(np.nextafter(np.float32(0.5), np.float32(0)))
    stats = image_component_stats(scores, labels, [0.5, above], 1, 1)
    # at 0.5 only the false positive is predicted: the anomaly is missed (sIoU 0), precision 0
    assert stats[0, NUM_GT] == 1 and stats[0, SIOU_GT] == 0.0
    assert stats[0, NUM_PRED] == 1 and stats[0, PREC] == 0.0
    # one step below 0.5 the anomaly is found exactly: sIoU 1, precisions 1 and 0
    assert stats[1, SIOU_GT] == 1.0 and stats[1, NUM_PRED] == 2 and stats[1, PREC] == 1.0


def test_no_threshold_gives_no_rows():
    """An empty threshold list gives a (0, NUM_STATS) float64 array (sums over images stay well-shaped)."""
    scores, labels = square_case()
    got = image_component_stats(scores, labels, [], 1, 1)
    assert got.shape == (0, NUM_STATS) and got.dtype == np.float64


def test_thresholds_are_read_as_float64_like_image_components():
    """A threshold of any real type is rounded to float64 first, as ``image_components`` does: a Fraction just
    below 0.5 that rounds to 0.5 does not flag scores of 0.5 in either function."""
    scores, labels = square_case()
    t = Fraction(1, 2) - Fraction(1, 2**60)
    assert float(t) == 0.5
    got = image_component_stats(scores, labels, [t], 1, 1)
    np.testing.assert_array_equal(got, image_component_stats(scores, labels, [0.5], 1, 1))
    assert got[0, SIOU_GT] == 0.0  # the anomaly (scored 0.5) is not flagged
    assert image_components(scores, labels, t, 1, 1)['sIoU_gt'].tolist() == [0.0]


def test_per_image_functions_name_their_input_in_messages():
    """Errors of both per-image functions start with ``name`` (default ``'scores'``), for wrong shapes and values."""
    shape_msg = r'component metrics need a 2-d \(H, W\) label map, got shape \(2, 3, 4\)$'
    value_msg = r'anomaly labels must be 0 \(normal\), 1 \(anomaly\) or ignore_index=255; found \[2\]$'
    flat = np.zeros((2, 3, 4), np.float32), np.zeros((2, 3, 4), np.uint8)
    scores, labels = square_case()
    labels[7, 7] = 2
    for func, args in ((image_component_stats, [0.5]), (image_components, 0.5)):
        with pytest.raises(ValueError, match='^scores: ' + shape_msg):
            func(*flat, args, 1, 1)
        with pytest.raises(ValueError, match='^msp: ' + shape_msg):
            func(*flat, args, 1, 1, name='msp')
        with pytest.raises(ValueError, match='^scores: ' + value_msg):
            func(scores, labels, args, 1, 1)
        with pytest.raises(ValueError, match='^msp: ' + value_msg):
            func(scores, labels, args, 1, 1, name='msp')


# ---------------------------------------------------------------------------------------------- the aggregate
def test_aggregate_counts_are_python_ints():
    """Component counts come back as ``int`` (e.g. for ``%d`` logging, JSON), the means as ``float``."""
    scores, labels = square_case()
    agg = aggregate_component_stats(image_component_stats(scores, labels, 0.2, 1, 1)[0])
    counts = ('num_gt_components', 'num_pred_components', 'tp_25', 'fn_25', 'fp_25', 'tp_50', 'fn_50', 'fp_50', 'tp_75',
              'fn_75', 'fp_75')
    assert [type(agg[k]) for k in counts] == [int] * len(counts)
    assert (agg['num_gt_components'], agg['num_pred_components'], agg['tp_50'], agg['fp_50']) == (1, 2, 1, 1)
    means = ('sIoU', 'PPV', 'sIoU_pred', 'F1_mean', 'F1_25', 'F1_50', 'F1_75', 'tp_mean', 'fn_mean', 'fp_mean')
    assert [type(agg[k]) for k in means] == [float] * len(means)


def test_aggregate_reads_any_shape_with_num_stats_entries():
    """The ``(1, NUM_STATS)`` output of ``image_component_stats`` at one threshold (or a nested list) is read flat:
    the same aggregate as its row."""
    scores, labels = square_case()
    stats = image_component_stats(scores, labels, 0.2, 1, 1)
    assert stats.shape == (1, NUM_STATS)
    want = aggregate_component_stats(stats[0])
    assert (want['num_gt_components'], want['num_pred_components'], want['sIoU'], want['PPV']) == (1, 2, 100.0, 50.0)
    assert aggregate_component_stats(stats) == want
    assert aggregate_component_stats(stats.tolist()) == want


# ---------------------------------------------------------------------------------------------- accumulator
@pytest.mark.parametrize(
    'kwargs', [dict(grid_octaves=0),
               dict(grid_per_octave=0),
               dict(fine_octaves=-0.5),
               dict(fine_per_octave=0)])
def test_grid_settings_are_validated_each_alone(kwargs):
    """Each of ``grid_octaves < 1``, ``grid_per_octave < 1``, ``fine_octaves < 0`` and ``fine_per_octave < 1`` alone
    is refused, with the four values."""
    values = dict(grid_octaves=4, grid_per_octave=4, fine_per_octave=16, fine_octaves=0.5)
    values.update(kwargs)
    shown = ', '.join(str(v) for v in values.values())
    with pytest.raises(
            ValueError,
            match=rf'^acc: grid_octaves, grid_per_octave, fine_per_octave must be >= 1 and '
            rf'fine_octaves >= 0, got {shown}$'):
        ComponentAccumulator(1, 1, name='acc', **kwargs)


def test_drop_last_in_exact_mode_gives_back_the_cache_bytes_of_that_image():
    """After two images and ``drop_last`` the cache holds the first image's bytes and only that image."""
    rng = np.random.default_rng(3)
    first, second = random_image(rng, (64, 80)), random_image(rng, (96, 128))
    acc = ComponentAccumulator(4, 2)
    hist = feed([first], acc)
    one = acc.nbytes
    feed([second], acc, hist)
    assert acc.nbytes > 2 * one  # the second image is larger: its bytes differ from the first's
    acc.drop_last()
    assert acc.nbytes == one and acc.num_images == 1
    (codes, labels), = acc._cached_images()
    np.testing.assert_array_equal(labels, first[1])


def test_overflow_switches_to_an_int64_grid_and_logs_the_cache_size(caplog):
    """The switch to grid mode logs the cache size and cap in MiB and the image count; the grid is int64 bin codes,
    strictly descending."""
    rng = np.random.default_rng(4)
    cap = 2**20 // 10
    acc = ComponentAccumulator(4, 2, cache_bytes=cap, name='msp')
    hist = ScoreHistogram(22)
    with caplog.at_level(logging.INFO, logger=cm.logger.name):
        while acc.mode == 'exact':
            held = acc.nbytes
            feed([random_image(rng, (128, 160))], acc, hist)
    assert held > 2**20 // 20  # at least 0.05 MiB: the logged size is not 0.0
    want = (f'msp: component cache reached {held / 2**20:.1f} MiB (cap 0.1 MiB) after {acc.num_images} images; '
            f'component metrics continue on a grid of {acc.grid.size} thresholds around the current best-F1 '
            'threshold')
    assert [r.getMessage() for r in caplog.records] == [want]
    assert acc.grid.dtype == np.int64 and np.all(np.diff(acc.grid) < 0)


def test_drop_last_after_merge_is_refused_in_grid_mode():
    """A merge forgets the last image: ``drop_last`` then raises instead of subtracting something, state intact."""
    rng = np.random.default_rng(5)
    grid_acc, exact_acc = ComponentAccumulator(4, 2, cache_bytes=1), ComponentAccumulator(4, 2)
    hist = feed([random_image(rng, (48, 64)) for _ in range(2)], grid_acc)
    feed([random_image(rng, (48, 64)) for _ in range(2)], exact_acc, hist)
    assert grid_acc.mode == 'grid'
    grid_acc.merge(exact_acc)
    before = grid_acc.result(hist)['stats']
    with pytest.raises(RuntimeError, match='cannot remove the last image'):
        grid_acc.drop_last()
    assert grid_acc.num_images == 4
    np.testing.assert_array_equal(grid_acc.result(hist)['stats'], before)


def test_best_f1_threshold_at_minus_infinity_flags_every_pixel():
    """Scores in the lowest histogram bin (best-F1 threshold ``-inf``) still give component statistics: every valid
    pixel is predicted, as ``score > -inf``."""
    scores = np.full((4, 5), -np.finfo(np.float32).max, np.float32)
    labels = np.zeros((4, 5), np.uint8)
    labels[1:3, 1:3] = 1
    acc = ComponentAccumulator(1, 1)
    res = acc.result(feed([(scores, labels)], acc))
    assert res['threshold'] == res['F1_threshold'] == -math.inf
    np.testing.assert_array_equal(res['stats'], image_component_stats(scores, labels, -math.inf, 1, 1)[0])
    # one prediction over all 20 pixels: sIoU of the anomaly 4 / (4 + 16), precision 4 / 20
    assert res['stats'][NUM_PRED] == 1 and res['stats'][SIOU_GT] == 0.2 and res['stats'][PREC] == 0.2


def test_result_without_anomalous_pixels_is_nan_throughout():
    """No anomalous pixel: threshold, F1 threshold and threshold gap are NaN floats, nothing is outside a grid."""
    scores, labels = square_case()
    labels[:] = 0
    acc = ComponentAccumulator(1, 1)
    res = acc.result(feed([(scores, labels)], acc))
    for key in ('threshold', 'F1_threshold', 'threshold_gap'):
        assert type(res[key]) is float and math.isnan(res[key]), key
    assert res['grid_outside'] is False and res['mode'] == 'exact' and res['num_images'] == 1


def test_grid_without_anomalous_pixels_on_a_tiny_image_is_centred_on_one_pixel():
    """63 pixels, none anomalous: the top 1% (0.63 pixels) rounds up to one pixel, the grid's centre (counts 1 .. 16
    for exponents -4 .. 4)."""
    scores, labels = ranked_image((7, 9), num_anomalous=0)
    assert not labels.any()
    hist = pooled((scores, labels))
    acc = ComponentAccumulator(1, 1, cache_bytes=0)
    acc.add(scores, labels, hist)
    counts = flagged(acc.grid, scores)
    assert list(counts) == nearest_counts(1, acc.grid_exponents, scores.size)
    assert counts[0] == 1 and counts[-1] == 16


def test_grid_holds_the_current_threshold_when_pooled_counts_exceed_float64_integers():
    """Pooled flagged counts 2^60 + 3 (normal pixels scored 0.9, 2^60 of them set through ``set_blocks``) and 2^60 + 4
    (the only anomaly's level, current threshold) are one float64: the grid targets up to the current count (ties
    go to the higher threshold) take the level of 0.9, those above it the current threshold's own level, so the grid
    holds both levels, in descending code order (no target is lost to the equal float64 counts)."""
    scores = np.array([[0.5, 0.9], [0.9, 0.9]], np.float32)
    labels = np.array([[1, 0], [0, 0]], np.uint8)
    hist = pooled((scores, labels))
    high, low = score_bins(np.array([0.9, 0.5], np.float32), 22)
    ids = hist.block_ids
    counts = hist.dense_blocks(ids)
    counts[0, ids.index(int(high) >> hist.block_bits), int(high) & (hist.block_size - 1)] += 2**60
    hist.set_blocks(ids, counts)
    assert hist.num_neg == 2**60 + 3 and float(2**60 + 3) == float(2**60 + 4)
    assert hist.compute(warn=False)['F1_threshold'] == 0.5  # the only anomaly's level: 2^60 + 4 flagged pixels
    acc = ComponentAccumulator(1, 1, cache_bytes=0)
    acc.add(scores, labels, hist)
    assert acc.mode == 'grid'
    np.testing.assert_array_equal(acc.grid, [high, low])  # the levels of 0.9 and of 0.5 (the current threshold)


def test_cache_size_of_a_large_image_is_that_of_zlib_rle_with_default_memory():
    """``nbytes`` of an image whose shuffled codes span several deflate blocks (80 KiB of noise) is the size of
    zlib's RLE strategy with the default window and memory level (the block size depends on the memory level)."""
    rng = np.random.default_rng(6)
    scores, labels = random_image(rng, (128, 160))
    acc = ComponentAccumulator(4, 2)
    feed([(scores, labels)], acc)
    planes = score_bins(scores, 22).astype(np.int32).reshape(-1).view(np.uint8).reshape(-1, 4).T.copy().tobytes()

    def rle(data):
        engine = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS, zlib.DEF_MEM_LEVEL, zlib.Z_RLE)
        return engine.compress(data) + engine.flush()

    assert len(planes) == 4 * 128 * 160
    assert acc.nbytes == len(rle(planes)) + len(rle(labels.tobytes()))


# ---------------------------------------------------------------------------------------------- round 3
def test_component_sizes_default_to_the_anomaly_track():
    """Without a track the AnomalyTrack limits (500 / 100) apply, and an explicit size overrides only itself."""
    assert cm.component_sizes() == cm.COMPONENT_TRACKS['anomaly'] == (500, 100)
    assert cm.component_sizes(min_pred_size=7) == (7, 100)
    assert cm.component_sizes(min_gt_size=3) == (500, 3)


def test_padding_with_normal_pixels_keeps_the_predicted_components_in_order():
    """Per-component values do not depend on where the candidates sit in the image: normal rows / columns added
    above or left of them leave ``image_components`` unchanged, order of the predicted components included (the
    labelling runs on the candidates' bounding box; OpenCV numbers components by 2 x 2 blocks, so a box starting one
    row higher would pair other rows and could number them differently)."""
    scores = np.zeros((6, 10), np.float32)
    labels = np.zeros((6, 10), np.uint8)
    labels[2:4, 0:4] = 1  # one anomaly (a single ground-truth component: its numbering is not at stake)
    scores[1, 6:8] = 0.9  # a false positive, starting one row above ...
    scores[2, 0:2] = 0.9  # ... a hit inside the anomaly, further left
    base = image_components(scores, labels, 0.5, 1, 1)
    assert base['sIoU_gt'].tolist() == [2 / 8]  # 2 of its 8 pixels found, no predicted pixel on the background
    assert sorted(base['prec_pred'].tolist()) == [0.0, 1.0]
    for rows, cols in ((1, 0), (2, 0), (0, 1), (3, 3)):
        pad = ((rows, 0), (cols, 0))
        got = image_components(np.pad(scores, pad), np.pad(labels, pad), 0.5, 1, 1)
        for key in ('sIoU_gt', 'sIoU_pred', 'prec_pred'):
            np.testing.assert_array_equal(got[key], base[key], err_msg=f'{key}, padding {pad}')


def test_a_cache_cap_of_zero_switches_to_grid_mode_at_the_first_pixel():
    """With ``cache_bytes=0`` even a one-pixel image is not cached: the grid is that pixel's level and the result
    there is the image's exact statistics."""
    scores, labels = np.full((1, 1), 0.7, np.float32), np.ones((1, 1), np.uint8)
    acc = ComponentAccumulator(1, 1, cache_bytes=0)
    hist = feed([(scores, labels)], acc)
    assert hist.num_pos + hist.num_neg == 1
    assert acc.mode == 'grid' and acc.nbytes == 0
    np.testing.assert_array_equal(acc.grid, score_bins(scores.reshape(-1), 22))
    res = acc.result(hist)
    assert res['threshold_gap'] == 0.0 and res['grid_outside'] is False
    np.testing.assert_array_equal(res['stats'], image_component_stats(scores, labels, -math.inf, 1, 1)[0])
    assert res['stats'][NUM_GT] == res['stats'][NUM_PRED] == 1 and res['stats'][SIOU_GT] == 1.0


@pytest.mark.parametrize('edge', ['highest', 'lowest'])
def test_final_threshold_on_the_edge_of_the_grid_is_inside_it(edge, caplog):
    """Two score levels (0.9 on 4 pixels, 0.2 on 20), both grid thresholds; the final best-F1 threshold is the
    grid's highest (4 anomalies scored 0.9) or lowest (every pixel anomalous) threshold: it lies on the grid, not
    outside it, with no warning and a zero gap; ``grid_range`` spans the two levels' flagged counts (4 and 24)."""
    scores = np.full((4, 6), 0.2, np.float32)
    scores[1:3, 1:3] = 0.9
    labels = (scores > 0.5).astype(np.uint8) if edge == 'highest' else np.ones((4, 6), np.uint8)
    acc = ComponentAccumulator(1, 1, cache_bytes=0)
    with caplog.at_level(logging.WARNING, logger=cm.logger.name):
        hist = feed([(scores, labels)], acc)
        res = acc.result(hist)
    assert caplog.records == []
    np.testing.assert_array_equal(acc.grid, score_bins(np.array([0.9, 0.2], np.float32), 22))
    exact, level = (4, 0) if edge == 'highest' else (24, 1)
    assert res['F1_threshold'] == res['threshold'] == bin_lower_edges(acc.grid, 22)[level]
    assert res['grid_outside'] is False and res['threshold_gap'] == 0.0
    assert res['grid_range'] == (4 / exact - 1.0, 24 / exact - 1.0)
    flag_above = 0.5 if edge == 'highest' else 0.1
    np.testing.assert_array_equal(res['stats'], image_component_stats(scores, labels, flag_above, 1, 1)[0])


def test_grid_targets_below_every_pooled_count_take_the_highest_level_beyond_float64_integers():
    """Grid targets below every pooled flagged count are nearest to the highest level (fewest pixels), also when the
    counts (2^60 normal pixels in the top level, set through ``set_blocks``) are equal in float64 and their log
    distances tie: the grid starts at that level; the current threshold (the lowest level) ends it."""
    scores = np.array([[0.9, 0.5], [0.3, 0.3]], np.float32)
    labels = np.array([[0, 0], [1, 1]], np.uint8)
    hist = pooled((scores, labels))
    high, low = score_bins(np.array([0.9, 0.3], np.float32), 22)
    ids = hist.block_ids
    counts = hist.dense_blocks(ids)
    counts[0, ids.index(int(high) >> hist.block_bits), int(high) & (hist.block_size - 1)] += 2**60
    hist.set_blocks(ids, counts)
    assert float(2**60 + 1) == float(2**60 + 4)  # the three levels' flagged counts, 2^60 + 1 .. 2^60 + 4
    assert hist.compute(warn=False)['F1_threshold'] == bin_lower_edges(np.array([low]), 22)[0]  # the anomalies' level
    acc = ComponentAccumulator(1, 1, cache_bytes=0)
    acc.add(scores, labels, hist)
    assert acc.mode == 'grid' and acc.grid[0] == high and acc.grid[-1] == low


def test_grid_tie_at_a_half_octave_goes_to_the_higher_threshold():
    """Cumulative flagged counts 3 (the anomalies, best F1), 28, 32, 36, 40, 48: the default grid's target at
    2^3.5 * 3 = 33.94 lies exactly between 32 and 36 in log distance (33.94^2 = 32 * 36) and takes 32, the higher
    threshold, as a tie should; computed through logarithms it took 36 by rounding."""
    scores = np.repeat(np.array([10.0, 9.0, 8.0, 7.0, 6.0, 5.0], np.float32), [3, 25, 4, 4, 4, 8]).reshape(6, 8)
    labels = (scores == 10.0).astype(np.uint8)
    hist = pooled((scores, labels))
    acc = ComponentAccumulator(1, 1, cache_bytes=0)
    assert 3.5 in acc.grid_exponents
    acc.add(scores, labels, hist)
    grid_scores = {
        s
        for s in (10.0, 9.0, 8.0, 7.0, 6.0, 5.0) if score_bins(np.array([s], np.float32), 22)[0] in acc.grid
    }
    assert grid_scores == {10.0, 9.0, 8.0, 6.0, 5.0}  # 7 (36 flagged) is nearest to no target once the tie goes to 8


# ---------------------------------------------------------------------------------------------- round 4
def test_smallest_grid_settings_are_accepted():
    """The documented minimum (``grid_octaves``, ``grid_per_octave``, ``fine_per_octave`` 1) is valid: one coarse
    step each way, and the fine part at 1 per octave over 2 octaves adds the exponents +-2."""
    acc = ComponentAccumulator(1, 1, grid_octaves=1, grid_per_octave=1, fine_octaves=2, fine_per_octave=1)
    np.testing.assert_array_equal(acc.grid_exponents, [-2.0, -1.0, 0.0, 1.0, 2.0])
    acc = ComponentAccumulator(1, 1, grid_octaves=1, grid_per_octave=1, fine_octaves=0, fine_per_octave=1)
    np.testing.assert_array_equal(acc.grid_exponents, [-1.0, 0.0, 1.0])


def test_histogram_with_other_bits_is_refused_with_both_bit_counts():
    """A pooled histogram of another ``num_bits`` is refused by ``add`` and ``result``, naming the scorer and both
    bit counts; nothing is added."""
    scores, labels = square_case()
    hist = ScoreHistogram(16)
    hist.update(scores, labels)
    acc = ComponentAccumulator(1, 1, name='msp')
    msg = '^msp: the pooled histogram has 16 bits, the component accumulator 22$'
    with pytest.raises(ValueError, match=msg):
        acc.add(scores, labels, hist)
    with pytest.raises(ValueError, match=msg):
        acc.result(hist)
    assert acc.num_images == 0 and acc.nbytes == 0


def with_pixels(hist, score, label, count):
    """``hist`` plus ``count`` pixels of ``score`` (normal: label 0, anomalous: 1), set through ``set_blocks``."""
    code = int(score_bins(np.array([score], np.float32), hist.num_bits)[0])
    ids = sorted(set(hist.block_ids) | {code >> hist.block_bits})
    counts = hist.dense_blocks(ids)
    counts[label, ids.index(code >> hist.block_bits), code & (hist.block_size - 1)] += count
    return hist.set_blocks(ids, counts)


def exact_nearest_levels(counts, centre, exponents):
    """Brute force in integers: indices of the levels (pooled flagged counts, increasing) nearest in log distance to
    ``centre * 2^e`` for each ``e`` (multiples of 1/16); ties go to the smaller count (the higher threshold)."""
    chosen = set()
    for e in exponents:
        k = int(16 * e)
        assert k == 16 * e
        j = 0
        # level j is at least as near as j + 1 <=> t^2 <= c_j c_(j+1) <=> centre^32 2^(2k) <= (c_j c_(j+1))^16
        target = centre**32 * 2**max(2 * k, 0)
        while j + 1 < len(counts) and target > (counts[j] * counts[j + 1])**16 * 2**max(-2 * k, 0):
            j += 1
        chosen.add(j)
    return sorted(chosen)


def test_grid_holds_the_exactly_nearest_levels_when_all_counts_are_one_float64():
    """Pooled flagged counts 2^60 + 2, 2^60 + 3 (the anomaly's level, current threshold), 2^60 + 4 are one float64:
    the grid still holds each level nearest to a target, in descending code order; the current threshold's level is
    the target 2^0 itself, although the float search for its count lands on the level above."""
    scores = np.array([[0.9, 0.5], [0.1, 0.9]], np.float32)
    labels = np.array([[0, 1], [0, 0]], np.uint8)
    hist = with_pixels(pooled((scores, labels)), 0.9, 0, 2**60)
    counts = [2**60 + 2, 2**60 + 3, 2**60 + 4]
    assert hist.compute(warn=False)['F1_threshold'] == bin_lower_edges(score_bins(np.float32([0.5]), 22), 22)[0]
    acc = ComponentAccumulator(1, 1, cache_bytes=0)
    acc.add(scores, labels, hist)
    levels = score_bins(np.array([0.9, 0.5, 0.1], np.float32), 22)
    assert exact_nearest_levels(counts, counts[1], acc.grid_exponents) == [0, 1, 2]
    assert acc.grid.dtype == np.int64
    np.testing.assert_array_equal(acc.grid, levels)


def test_grid_target_just_below_the_top_count_takes_the_top_level_beyond_float64_integers():
    """Pooled flagged counts f0 = 10^17 (top level), f0 + 1, C / 2 and C (the anomalies' level, current threshold)
    with C = 237841423000544210: the target C * 2^-1.25 lies below f0 (exactly: C^4 < 32 f0^4), so the top level is
    nearest to it; the level of f0 + 1 is nearest to no target and stays out of the grid, although in float64 the
    target's square exceeds f0 (f0 + 1) (comparing them would take f0 + 1)."""
    f0, c = 10**17, 237841423000544210
    counts = [f0, f0 + 1, c // 2, c]
    assert c % 2 == 0 and c**4 < 32 * f0**4 and float(c)**2 * 2.0**-2.5 > float(f0) * float(f0 + 1)
    scores = np.array([[0.9, 0.7], [0.5, 0.3]], np.float32)
    labels = np.array([[0, 0], [0, 1]], np.uint8)
    hist = pooled((scores, labels))
    for score, label, count in ((0.9, 0, f0), (0.7, 0, 1), (0.5, 0, c // 2 - f0 - 1), (0.3, 1, c - c // 2)):
        hist = with_pixels(hist, score, label, count - 1)  # the image holds one pixel of each level
    levels = score_bins(np.array([0.9, 0.7, 0.5, 0.3], np.float32), 22)
    assert hist.compute(warn=False)['F1_threshold'] == bin_lower_edges(levels[3:], 22)[0]
    acc = ComponentAccumulator(1, 1, cache_bytes=0)
    acc.add(scores, labels, hist)
    nearest = exact_nearest_levels(counts, c, acc.grid_exponents)
    assert nearest == [0, 2, 3]
    np.testing.assert_array_equal(acc.grid, levels[nearest])


# ---------------------------------------------------------------------------------------------- round 5
@pytest.mark.parametrize('value', [2.5, np.float64(3.0), True, '3'])
def test_component_sizes_refuse_non_integer_sizes(value):
    """A size that is not an integer (a float, even an integral one, a bool, a string) is refused with its repr, for
    either limit; numpy integers are accepted and come back as ``int``."""
    for key in ('min_pred_size', 'min_gt_size'):
        msg = rf'^component {key} must be an int >= 0 \(pixels\), got {re.escape(repr(value))}$'
        with pytest.raises(ValueError, match=msg):
            cm.component_sizes('obstacle', **{key: value})
    got = cm.component_sizes('obstacle', np.int64(7), np.uint8(3))
    assert got == (7, 3) and [type(v) for v in got] == [int, int]


def test_add_refuses_scores_and_labels_of_different_shapes_naming_both():
    """Scores and labels of different shapes are refused by ``add`` with the scorer's name and both shapes; nothing
    is added."""
    scores, labels = square_case()
    acc = ComponentAccumulator(1, 1, name='msp')
    msg = r'^msp: scores of shape \(8, 7\) and labels of shape \(8, 8\) differ$'
    with pytest.raises(ValueError, match=msg):
        acc.add(scores[:, :7], labels, pooled((scores, labels)))
    assert acc.num_images == 0 and acc.nbytes == 0


def test_merging_exact_accumulators_adds_their_cache_bytes():
    """Two exact-mode shards merged hold the bytes of both caches (the cap is checked against that sum at the next
    ``add``: a cap one byte below the three images' bytes then switches to grid mode)."""
    rng = np.random.default_rng(7)
    data = [random_image(rng, (48, 64)) for _ in range(3)]
    first, second = ComponentAccumulator(4, 2), ComponentAccumulator(4, 2)
    hist = feed(data[:1], first)
    feed(data[1:2], second, hist)
    sizes = first.nbytes, second.nbytes
    assert min(sizes) > 0 and sizes[0] != sizes[1]
    first.merge(second)
    assert first.mode == 'exact' and first.nbytes == sum(sizes) and first.num_images == 2
    alone = ComponentAccumulator(4, 2)
    feed(data[2:], alone, ScoreHistogram(22))
    for slack, mode in ((0, 'exact'), (-1, 'grid')):
        acc = ComponentAccumulator(4, 2, cache_bytes=sum(sizes) + alone.nbytes + slack)
        one = feed(data[:1], acc)
        other = ComponentAccumulator(4, 2)
        feed(data[1:2], other, one)
        acc.merge(other)
        feed(data[2:], acc, one)
        assert acc.mode == mode, slack


@pytest.mark.parametrize('cache_bytes', [1 << 30, 0], ids=['exact', 'grid'])
def test_accumulator_with_another_ignore_index_voids_those_pixels(cache_bytes):
    """With ``ignore_index=2`` the pixels labelled 2 are void in both modes: the result is that of
    ``image_component_stats`` with the same ignore index at the threshold used (a void pixel inside the false
    positive splits nothing but leaves it out of the ROI)."""
    scores, labels = square_case()
    labels[5, 5:7] = 2  # half the false positive (scored 0.9) is void
    labels[0, 0] = 2
    acc = ComponentAccumulator(1, 1, ignore_index=2, cache_bytes=cache_bytes)
    hist = ScoreHistogram(22, ignore_index=2)
    res = acc.result(feed([(scores, labels)], acc, hist))
    assert res['mode'] == ('exact' if cache_bytes else 'grid') and res['threshold_gap'] == 0.0
    thr = cm.official_threshold(res['threshold'])
    want = image_component_stats(scores, labels, thr, 1, 1, ignore_index=2)[0]
    np.testing.assert_array_equal(res['stats'], want)
    voided = np.where(labels == 2, 255, labels).astype(np.uint8)
    np.testing.assert_array_equal(want, image_component_stats(scores, voided, thr, 1, 1)[0])
    assert want[NUM_GT] == 1 and want[SIOU_GT] == 1.0 and want[NUM_PRED] == 2 and want[PREC] == 1.0
