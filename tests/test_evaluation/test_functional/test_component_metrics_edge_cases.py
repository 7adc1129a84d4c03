"""Component metrics at the edges of their input: label maps of shape (1, H, W) and single-row images, the
aggregate's key set, dtype and silence when a mean has no component, and error messages naming the scorer."""
import math
import warnings

import numpy as np
import pytest
import reference_component_metrics as official
import torch

from anomseg_plugins.evaluation.functional import (NUM_STATS, STAT_FIELDS, ComponentAccumulator, ScoreHistogram,
                                                   aggregate_component_stats, image_component_stats, image_components)

TP, FN, FP = (np.array([STAT_FIELDS.index(f'{kind}_{i}') for i in range(11)]) for kind in ('tp', 'fn', 'fp'))


def small_case():
    scores = np.zeros((6, 7), np.float32)
    labels = np.zeros((6, 7), np.uint8)
    labels[1:4, 1:4] = 1  # 9 pixels
    scores[1:4, 2:6] = 1.0  # 12 pixels, 6 on the ground truth
    labels[5, :] = 255
    return scores, labels


# ---------------------------------------------------------------------------------------------- label shapes
@pytest.mark.parametrize('wrap', [lambda y: y[None], lambda y: torch.from_numpy(y[None])], ids=['numpy', 'torch'])
def test_label_maps_with_a_leading_singleton_axis(wrap):
    scores, labels = small_case()
    got = image_components(scores, wrap(labels), 0.5, 1, 1)
    np.testing.assert_array_equal(got['sIoU_gt'], [6 / 15])  # 6 / (9 + 6 predicted background pixels)
    np.testing.assert_array_equal(got['prec_pred'], [6 / 12])
    np.testing.assert_array_equal(got['sIoU_pred'], [6 / 15])  # 6 / (12 + 3 missed)
    np.testing.assert_array_equal(
        image_component_stats(scores, wrap(labels), [0.5, 2.0], 1, 1),
        image_component_stats(scores, labels, [0.5, 2.0], 1, 1))
    acc = ComponentAccumulator(1, 1)
    hist = ScoreHistogram(22)
    hist.update(scores, labels)
    acc.add(torch.from_numpy(scores), wrap(labels), hist)
    assert acc.result(hist)['stats'][STAT_FIELDS.index('num_gt')] == 1


def test_single_row_image():
    scores = np.array([[0, 1, 1, 1, 0, 0, 1, 1, 0, 0]], np.float32)
    labels = np.array([[0, 0, 1, 1, 1, 0, 0, 0, 0, 1]], np.uint8)
    got = image_components(scores, labels, 0.5, 1, 1)
    want = official.frame(scores, labels, 0.5, 1, 1)
    for key in ('sIoU_gt', 'sIoU_pred', 'prec_pred'):
        np.testing.assert_array_equal(np.sort(got[key]), np.sort(want[key]), err_msg=key)
    np.testing.assert_array_equal(np.sort(got['sIoU_gt']), [0.0, 2 / 4])  # (2 of 3) / (3 + 1 background pixel)


def test_label_maps_of_other_shapes_are_refused():
    with pytest.raises(
            ValueError, match=r'^acc: component metrics need a 2-d \(H, W\) label map, got shape \(2, 3, 4\)'):
        image_components(np.zeros((2, 3, 4)), np.zeros((2, 3, 4), np.uint8), 0.5, 1, 1, name='acc')
    acc = ComponentAccumulator(1, 1, name='acc')
    with pytest.raises(ValueError, match=r'^acc: component metrics need a 2-d \(H, W\) label map, got shape \(5,\)'):
        acc.add(np.zeros(5, np.float32), np.zeros(5, np.uint8), ScoreHistogram(22))


# ---------------------------------------------------------------------------------------------- messages
def bad_labels():
    labels = np.zeros((4, 5), np.uint8)
    labels.reshape(-1)[:12] = np.arange(2, 14)  # twelve invalid values: the message lists the first ten
    return np.zeros((4, 5), np.float32), labels


def test_invalid_labels_are_named_per_scorer():
    scores, labels = bad_labels()
    found = r'found \[2, 3, 4, 5, 6, 7, 8, 9, 10, 11\]$'
    with pytest.raises(
            ValueError, match=r'^msp: anomaly labels must be 0 \(normal\), 1 \(anomaly\) or '
            r'ignore_index=255; ' + found):
        image_component_stats(scores, labels, [0.5], 1, 1, name='msp')
    with pytest.raises(
            ValueError,
            match=r'^scores: anomaly labels must be 0 \(normal\), 1 \(anomaly\) or '
            r'ignore_index=255; ' + found):
        ComponentAccumulator(1, 1).add(scores, labels, ScoreHistogram(22))  # the default name
    with pytest.raises(
            ValueError,
            match=r'^energy: anomaly labels must be 0 \(normal\), 1 \(anomaly\) or '
            r'ignore_index=7; found \[2, 3, 4, 5, 6, 8, 9, 10, 11, 12\]$'):
        ComponentAccumulator(1, 1, ignore_index=7, name='energy').add(scores, labels, ScoreHistogram(22))


def test_invalid_cache_cap_is_named():
    with pytest.raises(ValueError, match=r'^maxlogit: component cache_bytes must be an int >= 0, got -1$'):
        ComponentAccumulator(1, 1, cache_bytes=-1, name='maxlogit')
    with pytest.raises(ValueError, match=r"^scores: component cache_bytes must be an int >= 0, got '1'$"):
        ComponentAccumulator(1, 1, cache_bytes='1')


def test_statistics_of_the_wrong_length_are_refused():
    with pytest.raises(
            ValueError,
            match=rf'^component statistics must have {NUM_STATS} entries \(STAT_FIELDS\), '
            rf'got {NUM_STATS - 1}$'):
        aggregate_component_stats(np.zeros(NUM_STATS - 1))


# ---------------------------------------------------------------------------------------------- the aggregate
def hand_stats():
    """Two ground-truth components with sIoU 0.32 and 0.8, one predicted component with precision 0.62 (sIoU 0.4)."""
    t = np.linspace(0.25, 0.75, 11)
    stats = np.zeros(NUM_STATS)
    stats[TP] = (t <= 0.32).astype(int) + (t <= 0.8)
    stats[FN] = 2 - stats[TP]
    stats[FP] = t > 0.62
    stats[STAT_FIELDS.index('num_gt')], stats[STAT_FIELDS.index('sIoU_gt_sum')] = 2, 1.12
    stats[STAT_FIELDS.index('num_pred')], stats[STAT_FIELDS.index('sIoU_pred_sum')] = 1, 0.4
    stats[STAT_FIELDS.index('prec_pred_sum')] = 0.62
    return stats


def test_aggregate_counts_and_means_by_hand():
    agg = aggregate_component_stats(hand_stats())
    # tp per threshold: 2 at 0.25, 0.30, then 1; fp: 1 from 0.65 on; fn = 2 - tp
    assert (agg['tp_25'], agg['fn_25'], agg['fp_25']) == (2, 0, 0)
    assert (agg['tp_50'], agg['fn_50'], agg['fp_50']) == (1, 1, 0)
    assert (agg['tp_75'], agg['fn_75'], agg['fp_75']) == (1, 1, 1)
    assert agg['tp_mean'] == 13 / 11 and agg['fn_mean'] == 9 / 11
    assert agg['fp_mean'] == 3 / 11
    assert agg['F1_25'] == 100.0 and agg['F1_50'] == pytest.approx(100 * 2 / 3) and agg['F1_75'] == 50.0
    f1 = [1.0] * 2 + [2 / 3] * 6 + [2 / 4] * 3
    assert agg['F1_mean'] == pytest.approx(100 * np.mean(f1))
    assert agg['sIoU'] == pytest.approx(56.0) and agg['PPV'] == pytest.approx(62.0)
    assert agg['sIoU_pred'] == pytest.approx(40.0)
    assert all(type(v) in (float, int) for v in agg.values())


def test_nan_statistics_give_nan_under_every_key():
    keys = set(aggregate_component_stats(hand_stats()))
    nan = aggregate_component_stats(np.full(NUM_STATS, np.nan))
    assert set(nan) == keys
    assert all(math.isnan(v) for v in nan.values())


def test_means_without_components_are_nan_without_numpy_warnings():
    stats = np.zeros(NUM_STATS)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        agg = aggregate_component_stats(stats)
    for key in ('sIoU', 'PPV', 'sIoU_pred', 'F1_mean', 'F1_25'):
        assert math.isnan(agg[key]), key
    assert agg['num_gt_components'] == agg['num_pred_components'] == agg['tp_50'] == 0


def test_aggregate_computes_in_float64_whatever_the_input_dtype():
    """float32 sums (e.g. from a reduced tensor) are widened first: 100 / 3 as a float64 quotient."""
    stats = np.zeros(NUM_STATS)
    stats[FN] = 3
    stats[STAT_FIELDS.index('num_gt')], stats[STAT_FIELDS.index('sIoU_gt_sum')] = 3, 1.0
    stats[STAT_FIELDS.index('num_pred')], stats[STAT_FIELDS.index('prec_pred_sum')] = 3, 2.0
    stats[STAT_FIELDS.index('sIoU_pred_sum')] = 1.0
    agg = aggregate_component_stats(stats.astype(np.float32))
    assert agg['sIoU'] == 100 * 1.0 / 3 == agg['sIoU_pred'] and agg['PPV'] == 100 * 2.0 / 3
    assert type(agg['sIoU']) is float and agg['F1_mean'] == 0.0
    assert aggregate_component_stats(torch.from_numpy(stats.astype(np.float32)))['PPV'] == 100 * 2.0 / 3
