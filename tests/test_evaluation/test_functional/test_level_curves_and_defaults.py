"""Curves and bounds from level counts at their degenerate ends (one class, one positive, no level), the curve
thinning's spacing, the defaults of the histogram's bounds and name, and float32 comparison of component scores."""
import logging

import numpy as np
import pytest

from anomseg_plugins.evaluation.functional import (ScoreHistogram, component_sizes, curves_from_level_counts,
                                                   fpr_bin_bound, image_components, metrics_from_level_counts,
                                                   thin_curve)


def assert_curves(got, **want):
    assert set(got) == {'fpr', 'tpr', 'recall', 'precision'}
    for key in got:
        expected = np.asarray(want.get(key, np.zeros(0)), np.float64)
        assert isinstance(got[key], np.ndarray) and got[key].shape == expected.shape, key
        np.testing.assert_array_equal(got[key], expected, err_msg=key)


def test_curves_at_degenerate_counts():
    assert_curves(curves_from_level_counts([], []))
    assert_curves(curves_from_level_counts([0, 0], [1, 2]))  # no positive: no curve at all
    assert_curves(curves_from_level_counts([1, 2], [0, 0]), recall=[1 / 3, 1.0], precision=[1.0, 1.0])  # no ROC
    assert_curves(curves_from_level_counts([1, 0], [0, 1]), fpr=[0, 0, 1], tpr=[0, 1, 1], recall=[1.0], precision=[1.0])


def test_thin_curve_spacing_along_the_arc():
    x, y = np.arange(101.0), np.zeros(101)
    tx, ty = thin_curve(x, y, 11)
    np.testing.assert_array_equal(tx, np.arange(0.0, 101.0, 10.0))
    np.testing.assert_array_equal(ty, np.zeros(11))
    # fine steps: targets every 0.003 of arc length, each taking the first point at or beyond it
    x = np.arange(300) * 0.001  # (total arc length below 1)
    tx, _ = thin_curve(x, np.zeros(300), 100)
    arc = np.r_[0.0, np.cumsum(np.diff(x))]
    first = [next(i for i, a in enumerate(arc) if a >= t) for t in np.linspace(0.0, arc[-1], 100)]
    np.testing.assert_array_equal(tx, x[sorted(set(first) | {299})])
    x, y = np.arange(101.0), np.zeros(101)
    x[-1] = np.inf  # an arc length running to infinity keeps the two ends
    with np.errstate(invalid='ignore'):  # (numpy's linspace up to inf)
        tx, _ = thin_curve(x, y, 5)
    np.testing.assert_array_equal(tx, [0.0, np.inf])


def test_level_count_shape_errors():
    with pytest.raises(ValueError, match=r'^pos and neg must be 1-d arrays of one length, got shapes \(2,\), \(3,\)$'):
        metrics_from_level_counts([1, 2], [1, 2, 3], lambda i: 0.0)


def tie_hist():
    """Two bins: the top one 1 anomalous + 2 normal pixels, the other 19 + 5: recall 0.05, then 1."""
    scores = np.r_[np.full(3, 2.0), np.full(24, 1.0)].astype(np.float32)
    labels = np.r_[1, 0, 0, np.ones(19), np.zeros(5)].astype(np.uint8)
    return ScoreHistogram.from_scores(scores, labels, 22)


def test_fpr_bound_defaults_are_fpr95_first():
    hist = tie_hist()
    assert fpr_bin_bound([1, 19], [2, 5]) == 5 / 7  # FPR95 is read in the second bin: its 5 negatives
    assert hist.fpr_tie_bound() == 5 / 7 and hist.error_bounds()['FPR95'] == 5 / 7
    assert hist.fpr_tie_bound(0.03) == 2 / 7


def test_histogram_default_name_and_silent_compute(caplog):
    with pytest.raises(ValueError, match=r'^scores: anomaly labels must be 0'):
        ScoreHistogram(22).update(np.zeros(3, np.float32), np.array([0, 1, 7], np.uint8))
    hist = ScoreHistogram.from_scores(np.ones(4, np.float32), np.zeros(4, np.uint8), 22)
    with caplog.at_level(logging.DEBUG):
        assert np.isnan(hist.compute(warn=False)['F1'])
    assert caplog.records == []
    with caplog.at_level(logging.DEBUG):
        hist.compute()
    assert [r.getMessage() for r in caplog.records
            ] == ['scores: 0 anomalous and 4 normal pixels evaluated; metrics needing both classes are NaN']


def test_component_size_errors_name_the_limit():
    with pytest.raises(ValueError, match=r'^component min_gt_size must be an int >= 0 \(pixels\), got -1$'):
        component_sizes('obstacle', min_gt_size=-1)


def test_component_scores_are_compared_as_float32():
    """A float64 score a hair above the threshold is the threshold itself in float32: not flagged."""
    scores = np.zeros((4, 4))
    scores[1:3, 1:3] = 0.5 + 1e-12
    scores[1, 1] = 0.75
    labels = np.zeros((4, 4), np.uint8)
    labels[1:3, 1:3] = 1
    got = image_components(scores, labels, 0.5, 1, 1)
    np.testing.assert_array_equal(got['sIoU_gt'], [0.25])
