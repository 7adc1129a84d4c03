"""SegmentMeIfYouCan component metrics (sIoU, PPV, F1): the vectorised per-image statistics against the official
algorithm re-implemented with loops (``tests/reference_component_metrics.py``) on hand-made and random images, and
the accumulator's exact and grid modes at the pooled best-F1 threshold."""
import logging
import math

import numpy as np
import pytest
import reference_component_metrics as official

from anomseg_plugins.evaluation.functional import (NUM_STATS, STAT_FIELDS, ComponentAccumulator, ScoreHistogram,
                                                   aggregate_component_stats)
from anomseg_plugins.evaluation.functional import component_metrics as cm
from anomseg_plugins.evaluation.functional import (component_sizes, image_component_stats, image_components,
                                                   official_threshold)

AGG_KEYS = ('sIoU', 'PPV', 'sIoU_pred', 'F1_mean', 'F1_25', 'F1_50', 'F1_75')
COUNT_KEYS = ('num_gt_components', 'num_pred_components', 'tp_25', 'fn_25', 'fp_25', 'tp_50', 'fn_50', 'fp_50', 'tp_75',
              'fn_75', 'fp_75')


def components(scores, labels, thr=0.5, segsize=1, instsize=1, void=255):
    """Ours and the reference's per-component values, each sorted (component numbering may differ)."""
    ours = image_components(scores, labels, thr, segsize, instsize, void)
    ref = official.frame(np.asarray(scores, np.float32), labels, thr, segsize, instsize, void)
    for key in ('sIoU_gt', 'sIoU_pred', 'prec_pred'):
        np.testing.assert_array_equal(np.sort(ours[key]), np.sort(ref[key]), err_msg=key)
    return {k: np.sort(v) for k, v in ours.items()}


def assert_aggregates_equal(got, want, tol=1e-12):
    for key in AGG_KEYS:
        if math.isnan(want[key]):
            assert math.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(want[key], abs=tol, rel=0), key
    for key in COUNT_KEYS:
        assert got[key] == want[key], key


def image(h, w):
    return np.zeros((h, w), np.float32), np.zeros((h, w), np.uint8)


# ---------------------------------------------------------------------------------------------- hand-made images
def test_diagonal_touch_joins_components():
    """8-connectivity: two diagonal ground-truth pixels are one component, as are two diagonal predictions."""
    scores, labels = image(6, 6)
    labels[1, 1] = labels[2, 2] = 1
    scores[1, 1] = 1.0  # one of the two pixels predicted
    scores[4, 4] = scores[5, 5] = 1.0  # a diagonal pair of false-positive pixels: one predicted component
    got = components(scores, labels)
    np.testing.assert_array_equal(got['sIoU_gt'], [0.5])  # 1 / (2 + 0): one component of 2 pixels
    np.testing.assert_array_equal(got['prec_pred'], [0.0, 1.0])  # two predicted components, not three
    np.testing.assert_array_equal(got['sIoU_pred'], [0.0, 0.5])  # 1 / (1 + 1 missed pixel)


def test_one_gt_split_into_two_predictions():
    scores, labels = image(6, 9)
    labels[1:3, 1:6] = 1  # 10 pixels
    scores[1:3, 1:3] = scores[1:3, 4:6] = 1.0  # two predictions of 4 pixels, column 3 missed
    got = components(scores, labels)
    np.testing.assert_array_equal(got['sIoU_gt'], [0.8])  # 8 / (10 + 0 predicted background pixels)
    np.testing.assert_allclose(got['sIoU_pred'], [4 / 6, 4 / 6], rtol=0, atol=0)  # 4 / (4 + 2 missed)
    np.testing.assert_array_equal(got['prec_pred'], [1.0, 1.0])


def test_one_prediction_covering_two_gt_components_is_adjusted():
    """The union of a ground-truth component leaves out the prediction's pixels on the *other* component."""
    scores, labels = image(6, 8)
    labels[1:3, 1:3] = labels[1:3, 4:6] = 1  # two components of 4 pixels
    scores[1:4, 1:6] = 1.0  # one prediction of 15 pixels over both, the gap and the row below
    got = components(scores, labels)
    np.testing.assert_allclose(got['sIoU_gt'], [4 / 11, 4 / 11], rtol=0, atol=0)  # 15 + 4 - 4 - 4 adjustment
    np.testing.assert_array_equal(got['sIoU_pred'], [8 / 15])  # 8 / (15 + 0 missed)
    np.testing.assert_array_equal(got['prec_pred'], [8 / 15])
    stats = image_component_stats(scores, labels, 0.5, 1, 1)[0]
    t = official.SIOU_THRESHOLDS
    np.testing.assert_array_equal(stats[:11], 2 * (t <= 4 / 11))  # tp: 0.25, 0.3, 0.35
    np.testing.assert_array_equal(stats[11:22], 2 * (t > 4 / 11))  # fn
    np.testing.assert_array_equal(stats[22:33], t > 8 / 15)  # fp: precision 0.533 < t from 0.55 on
    assert stats[:11].sum() == 6 and stats[22:33].sum() == 5


def test_void_splits_predictions_and_leaves_the_roi():
    scores, labels = image(6, 9)
    labels[2:4, 1:8] = 1
    labels[:, 4] = 255  # a void column through the object and the prediction
    scores[1:5, 1:8] = 1.0  # 28 pixels, 4 of them void: two predicted components of 12
    got = components(scores, labels)
    assert got['sIoU_gt'].size == 2 and got['prec_pred'].size == 2
    np.testing.assert_allclose(got['prec_pred'], [0.5, 0.5], rtol=0, atol=0)  # 6 of 12 on the ground truth
    np.testing.assert_allclose(got['sIoU_gt'], [0.5, 0.5], rtol=0, atol=0)  # 6 / (6 + 6)


@pytest.mark.parametrize('segsize', [6, 7])
def test_predicted_component_size_limit(segsize):
    """A predicted component of exactly ``segsize`` pixels is kept, one pixel less is dropped."""
    scores, labels = image(8, 8)
    scores[1:3, 1:4] = 1.0  # 6 pixels, all false positives
    got = components(scores, labels, segsize=segsize)
    assert got['prec_pred'].size == (1 if segsize == 6 else 0)
    stats = image_component_stats(scores, labels, 0.5, segsize, 1)[0]
    assert stats[STAT_FIELDS.index('num_pred')] == (1 if segsize == 6 else 0)


@pytest.mark.parametrize('instsize', [4, 5])
def test_ground_truth_size_limit_makes_small_components_void(instsize):
    """A ground-truth component of ``instsize`` pixels counts; one of ``instsize - 1`` becomes void, and so do the
    predicted pixels on it (a prediction only on it disappears; one larger keeps its other pixels, its size for
    the size filter counted on the whole image)."""
    scores, labels = image(10, 10)
    labels[1:3, 1:3] = 1  # 4 pixels
    scores[1:3, 1:3] = 1.0  # predicted exactly
    labels[6:8, 6:8] = 1  # 4 pixels, predicted with 2 more pixels
    scores[6:8, 5:8] = 1.0  # 6 pixels
    got = components(scores, labels, segsize=4, instsize=instsize)
    if instsize == 4:
        np.testing.assert_array_equal(got['sIoU_gt'], [4 / 6, 1.0])
        np.testing.assert_array_equal(got['prec_pred'], [4 / 6, 1.0])
    else:
        assert got['sIoU_gt'].size == 0  # both components void
        # the first prediction is gone; the second keeps 2 ROI pixels (kept: 6 >= 4 on the whole image)
        np.testing.assert_array_equal(got['prec_pred'], [0.0])


def test_empty_images():
    scores, labels = image(6, 6)
    got = components(scores, labels)  # nothing at all
    assert all(v.size == 0 for v in got.values())
    scores[2:4, 2:4] = 1.0
    got = components(scores, labels)  # a prediction and no ground truth: one false positive
    np.testing.assert_array_equal(got['prec_pred'], [0.0])
    scores[:] = 0
    labels[0:2, 0:3] = 1
    got = components(scores, labels)  # ground truth and no prediction: sIoU 0
    np.testing.assert_array_equal(got['sIoU_gt'], [0.0])
    assert got['prec_pred'].size == 0
    agg = aggregate_component_stats(image_component_stats(scores, labels, 0.5, 1, 1)[0])
    assert agg['sIoU'] == 0 and math.isnan(agg['PPV']) and agg['F1_mean'] == 0 and agg['fn_50'] == 1


def test_threshold_is_strict():
    scores, labels = image(5, 5)
    labels[1:3, 1:3] = 1
    scores[1:3, 1:3] = 0.5  # exactly the threshold: not flagged
    scores[1, 1] = np.nextafter(np.float32(0.5), np.float32(1))  # one float32 step above: flagged
    got = components(scores, labels, thr=0.5)
    np.testing.assert_array_equal(got['sIoU_gt'], [0.25])
    got = components(scores, labels, thr=float(np.nextafter(np.float32(0.5), np.float32(0))))
    np.testing.assert_array_equal(got['sIoU_gt'], [1.0])


def test_official_background_quirk_on_tiny_images():
    """The official size loop also visits "component" 0 (every pixel not labelled anomalous): with fewer than
    ``instsize`` of them, they all become void."""
    scores, labels = image(3, 3)
    labels[:, :2] = 1  # 6 anomalous, 3 other pixels
    scores[:, 1:] = 1.0  # 3 predicted on the anomaly, 3 on the background
    quirk = components(scores, labels, instsize=4)
    np.testing.assert_array_equal(quirk['prec_pred'], [1.0])  # background void: no false-positive pixel left
    plain = components(scores, labels, instsize=3)
    np.testing.assert_array_equal(plain['prec_pred'], [0.5])


def test_other_ignore_index_and_label_errors():
    scores, labels = image(6, 6)
    labels[1:3, 1:3] = 1
    scores[1:3, 1:4] = 1.0
    labels[:, 3] = 254
    got = components(scores, labels, void=254)
    np.testing.assert_array_equal(got['prec_pred'], [1.0])
    with pytest.raises(ValueError, match=r'0 \(normal\), 1 \(anomaly\) or ignore_index=255; found \[254\]'):
        image_components(scores, labels, 0.5, 1, 1, 255)


def test_component_sizes_presets():
    assert component_sizes('anomaly') == (500, 100)
    assert component_sizes('obstacle') == (50, 10)
    assert component_sizes('obstacle', min_gt_size=0) == (50, 0)
    with pytest.raises(ValueError, match="track must be one of \\['anomaly', 'obstacle'\\]"):
        component_sizes('lost_and_found')
    with pytest.raises(ValueError, match='min_pred_size must be an int >= 0'):
        component_sizes('anomaly', min_pred_size=-1)


# ---------------------------------------------------------------------------------------------- random sets
def random_set(num, seed, shape=(48, 64)):
    rng = np.random.default_rng(seed)
    return [official.blobs(rng, shape) for _ in range(num)]


@pytest.mark.parametrize('segsize,instsize,thr', [(1, 1, 0.6), (5, 3, 0.6), (20, 10, 0.9), (0, 0, 1.4)])
def test_random_images_match_the_official_aggregate(segsize, instsize, thr):
    data = random_set(12, seed=segsize + instsize)
    stats = sum(image_component_stats(s, y, thr, segsize, instsize)[0] for s, y in data)
    want = official.evaluate([s for s, _ in data], [y for _, y in data], thr, segsize, instsize)
    assert want['num_gt_components'] > 5 and want['num_pred_components'] > 5  # a case with something to count
    assert_aggregates_equal(aggregate_component_stats(stats), want)


def test_several_thresholds_at_once_equal_one_at_a_time():
    (scores, labels), = random_set(1, seed=5)
    thresholds = [1.2, 0.3, 0.7]
    together = image_component_stats(scores, labels, thresholds, 4, 2)
    assert together.shape == (3, NUM_STATS)
    for row, t in zip(together, thresholds):
        np.testing.assert_array_equal(row, image_component_stats(scores, labels, t, 4, 2)[0])


# ---------------------------------------------------------------------------------------------- accumulator
def feed(data, acc=None, hist=None, num_bits=22, **kw):
    hist = hist or ScoreHistogram(num_bits)
    acc = acc or ComponentAccumulator(kw.pop('segsize', 4), kw.pop('instsize', 2), num_bits, **kw)
    for scores, labels in data:
        hist.update(scores, labels)
        acc.add(scores, labels, hist)
    return acc, hist


def reference_at(data, threshold, segsize=4, instsize=2):
    """The official aggregate at our threshold convention (``score >= threshold`` = ``score > thresh_p``)."""
    return official.evaluate([s for s, _ in data], [y for _, y in data], official_threshold(threshold), segsize,
                             instsize)


def test_exact_mode_equals_the_official_code_at_the_pooled_best_f1_threshold():
    data = random_set(10, seed=21)
    acc, hist = feed(data)
    res = acc.result(hist)
    assert res['mode'] == 'exact' and res['threshold_gap'] == 0 and acc.nbytes > 0
    assert res['F1_threshold'] == hist.compute()['F1_threshold'] == res['threshold']
    # the component prediction flags exactly the pixels of the pooled best F1 (score >= threshold)
    scores = np.concatenate([s[y != 255] for s, y in data])
    labels = np.concatenate([y[y != 255] for _, y in data])
    flagged = scores >= res['threshold']
    tp = np.count_nonzero(flagged & (labels == 1))
    assert 2 * tp / (flagged.sum() + labels.sum()) == pytest.approx(hist.compute()['F1'], abs=1e-12)
    assert_aggregates_equal(aggregate_component_stats(res['stats']), reference_at(data, res['threshold']))


def test_grid_mode_equals_the_official_code_at_the_grid_threshold_and_reports_its_gap(caplog):
    """The first images have weak anomalies, the later ones strong: the final best-F1 threshold moves after the
    cache overflowed (after 4 images), so the grid threshold differs from it. Measured here (45 grid thresholds):
    gap +0.65 % of the flagged pixels; grid / exact sIoU 87.3 / 87.1, PPV 69.7 / 72.7, mean F1 78.3 / 80.3 (on 16
    images of 48 x 64 a few pixels move whole components)."""
    first = random_set(4, seed=31)
    rng = np.random.default_rng(32)
    later = []
    for _ in range(12):
        s, y = official.blobs(rng, (48, 64))
        later.append((np.where(y == 1, s + 1.0, s).astype(np.float32), y))
    data = first + later
    probe, _ = feed(first)
    cap = probe.nbytes + 1  # the 5th image overflows
    with caplog.at_level(logging.INFO, logger=cm.logger.name):
        acc, hist = feed(data, cache_bytes=cap)
    assert acc.mode == 'grid' and acc.nbytes == 0 and 'grid of' in caplog.text
    assert 5 <= acc.grid.size <= acc.grid_exponents.size == 45 and np.all(np.diff(acc.grid) < 0)
    res = acc.result(hist)
    exact, _ = feed(data)
    exact_res = exact.result(hist)
    assert res['F1_threshold'] == exact_res['threshold'] != res['threshold']
    # the statistics are the official ones at the grid threshold used
    assert_aggregates_equal(aggregate_component_stats(res['stats']), reference_at(data, res['threshold']))
    # the gap is what it claims: pooled pixels flagged at the used vs the exact threshold
    scores = np.concatenate([s[y != 255] for s, y in data])
    n_used, n_exact = np.count_nonzero(scores >= res['threshold']), np.count_nonzero(scores >= res['F1_threshold'])
    assert res['threshold_gap'] == pytest.approx(n_used / n_exact - 1, abs=1e-15) and res['threshold_gap'] != 0
    # ... and the used threshold is the grid threshold nearest the exact one in flagged-pixel (log) terms
    edges = [cm._code_edge(int(g), 22) for g in acc.grid]
    counts = np.array([np.count_nonzero(scores >= e) for e in edges])
    assert edges[int(np.argmin(np.abs(np.log(counts / n_exact))))] == res['threshold']
    assert not res['grid_outside'] and counts.min() < n_exact < counts.max()
    got, want = aggregate_component_stats(res['stats']), aggregate_component_stats(exact_res['stats'])
    for key in ('sIoU', 'PPV', 'F1_mean'):
        assert abs(got[key] - want[key]) < 5, key  # measured: see the test's docstring


def test_grid_warns_when_the_final_threshold_leaves_the_grid(caplog):
    """Scores of the later images are 1000x larger: the final threshold flags far fewer pixels than the grid's
    smallest count (1/16 of the switch-time one)."""
    data = random_set(2, seed=41) + [(s * 1000, y) for s, y in random_set(30, seed=42)]
    acc, hist = feed(data, cache_bytes=1)
    assert acc.mode == 'grid'
    with caplog.at_level(logging.WARNING, logger=cm.logger.name):
        res = acc.result(hist)
    assert res['grid_outside'] and 'outside the component threshold grid' in caplog.text
    assert_aggregates_equal(aggregate_component_stats(res['stats']), reference_at(data, res['threshold']))


@pytest.mark.parametrize('cap', [1 << 30, 1])
def test_drop_last_undoes_add(cap):
    data = random_set(4, seed=51)
    acc, hist = feed(data, cache_bytes=cap)
    extra = random_set(1, seed=52)[0]
    acc.add(*extra, hist)  # (the histogram is not updated: only the accumulator is under test)
    acc.drop_last()
    base, _ = feed(data, cache_bytes=cap)
    # (grid mode subtracts the image's sums again: equal up to rounding)
    np.testing.assert_allclose(acc.result(hist)['stats'], base.result(hist)['stats'], rtol=0, atol=1e-12)
    assert acc.num_images == 4 and acc.result(hist)['stats'][STAT_FIELDS.index('num_gt')] > 0
    if cap == 1:
        with pytest.raises(RuntimeError, match='twice'):
            acc.drop_last()


def test_merge_exact_with_exact_and_with_grid():
    one, two = random_set(5, seed=61), random_set(5, seed=62)
    a, hist = feed(one)
    b, _ = feed(two, hist=ScoreHistogram(22))
    hist.update(np.concatenate([s for s, _ in two]), np.concatenate([y for _, y in two]))
    whole, _ = feed(one + two)
    a.merge(b)
    np.testing.assert_array_equal(a.result(hist)['stats'], whole.result(hist)['stats'])
    # grid side: the exact side's images are computed at the grid side's thresholds
    c, _ = feed(one)
    d, _ = feed(two, cache_bytes=1)
    c.merge(d)
    res = c.result(hist)
    assert c.mode == 'grid' and c.num_images == 10
    assert_aggregates_equal(aggregate_component_stats(res['stats']), reference_at(one + two, res['threshold']))
    with pytest.raises(ValueError, match='different settings'):
        c.merge(ComponentAccumulator(5, 2))


def test_no_anomalous_pixel_gives_nan():
    data = [(s, np.where(y == 1, 0, y).astype(np.uint8)) for s, y in random_set(3, seed=71)]
    acc, hist = feed(data)
    res = acc.result(hist)
    assert math.isnan(res['threshold']) and np.isnan(res['stats']).all()
    assert math.isnan(aggregate_component_stats(res['stats'])['F1_mean'])


def test_cache_is_compact():
    """Bin codes byte-shuffled and compressed: well under the 4 bytes of a float32 a pixel on a smooth map."""
    rng = np.random.default_rng(0)
    h, w = 180, 320
    yy, xx = np.mgrid[:h, :w]
    scores = (np.sin(yy / 17.0) + np.cos(xx / 23.0) + 0.05 * rng.standard_normal((h, w))).astype(np.float32)
    labels = np.zeros((h, w), np.uint8)
    labels[50:60, 100:120] = 1
    acc, hist = feed([(scores, labels)])
    assert acc.nbytes < 2.5 * h * w
    codes, lab = next(acc._cached_images())
    np.testing.assert_array_equal(codes, cm.score_bins(scores, 22))
    np.testing.assert_array_equal(lab, labels)
