"""Contract details of the exact metrics and the level-count metrics left open by the other tests: the default
``ignore_index=255`` of the public helpers (and their passing of an explicit one), the default name in messages,
the float32 scores and int64 level counts returned, integer reading of float32 counts (metrics and curves), the empty
result, the tightness of the ``'nearest'`` FPR bin bound with two positives in a bin, ``thin_curve`` at exactly
``max_points`` points, the warning for a single normal pixel, the ten invalid labels listed in the message and
``num_levels`` with empty levels handed in, ``check_ignore_index``'s default name, the ``'nearest'`` FPR bin bound
when the bins read a recall below the level, float32 counts in ``fpr_bin_bound`` and ``thin_curve``'s default,
``fpr_at_recall``'s default level, half-precision score tensors, a zero recall level, non-numeric thresholds and
the FPR bin bound with a single normal pixel."""
import logging
import re

import numpy as np
import pytest
import torch
from reference_metrics import fpr_first, fpr_nearest
from sklearn.metrics import average_precision_score, roc_auc_score
from test_input_checks import _ignore_index_message

from anomseg_plugins.evaluation.functional import (ScoreHistogram, auroc, average_precision, check_ignore_index,
                                                   curves_from_level_counts, exact_anomaly_metrics, exact_level_counts,
                                                   fpr_at_recall, fpr_bin_bound, metrics_from_level_counts, thin_curve,
                                                   valid_scores_and_labels)


def _map_with_void(seed=0, n=400):
    """Scores and labels with ~20% void (255) pixels whose scores are extreme, so that keeping them changes
    every metric; returns also the valid scores / labels for the references."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.2).astype(np.uint8)
    labels[:2] = (0, 1)
    scores = (rng.standard_normal(n) + 1.2 * labels).astype(np.float32)
    void = rng.random(n) < 0.2
    void[:2] = False
    labels[void] = 255
    scores[void] = 50.0
    keep = ~void
    return scores, labels, scores[keep], labels[keep]


def test_public_helpers_ignore_label_255_by_default():
    """``auroc``, ``average_precision``, ``fpr_at_recall`` and ``valid_scores_and_labels`` drop label-255
    pixels without being told (sklearn on the valid pixels is the reference)."""
    # mutants: auroc 1/4, average_precision 1/4, fpr_at_recall 7, valid_scores_and_labels 1
    scores, labels, v_scores, v_labels = _map_with_void()
    assert auroc(scores, labels) == pytest.approx(roc_auc_score(v_labels, v_scores), abs=1e-12)
    assert average_precision(scores, labels) == pytest.approx(average_precision_score(v_labels, v_scores), abs=1e-12)
    for level in (0.5, 0.95):
        assert fpr_at_recall(scores, labels, level) == pytest.approx(fpr_first(v_labels, v_scores, level), abs=1e-12)
        assert fpr_at_recall(scores, labels, level, 'nearest') == pytest.approx(
            fpr_nearest(v_labels, v_scores.astype(np.float64), level), abs=1e-12)
    got_scores, got_labels = valid_scores_and_labels(scores, labels)
    np.testing.assert_array_equal(got_scores, v_scores)
    np.testing.assert_array_equal(got_labels, v_labels.astype(bool))


def test_public_helpers_pass_an_explicit_ignore_index_on():
    """An explicit ``ignore_index`` reaches the metric: another void value is dropped, and with None a label
    255 is an invalid label."""
    # mutants: auroc 4/7, average_precision 4/7, fpr_at_recall 7
    scores, labels, v_scores, v_labels = _map_with_void(seed=1)
    labels7 = np.where(labels == 255, 7, labels).astype(np.uint8)
    assert auroc(scores, labels7, ignore_index=7) == pytest.approx(roc_auc_score(v_labels, v_scores), abs=1e-12)
    want_ap = average_precision_score(v_labels, v_scores)
    assert average_precision(scores, labels7, ignore_index=7) == pytest.approx(want_ap, abs=1e-12)
    want_fpr = fpr_first(v_labels, v_scores, 0.9)
    assert fpr_at_recall(scores, labels7, 0.9, ignore_index=7) == pytest.approx(want_fpr, abs=1e-12)
    for fn in (auroc, average_precision, fpr_at_recall):
        with pytest.raises(ValueError, match=r'ignore_index=None; found \[255\]'):
            fn(scores, labels, ignore_index=None)


def test_valid_scores_are_float32_and_messages_name_scores_by_default():
    """Non-float32 scores (float64 numpy, float64 / int torch) come back as float32 values; errors name
    ``scores`` when no name is given."""
    # mutants: valid_scores_and_labels 2/42/43
    labels = np.array([[0, 1], [255, 0]], np.uint8)
    values = np.array([[0.1, 0.7], [9.0, 1.0 / 3.0]])
    for scores in (values, torch.from_numpy(values), torch.tensor([[1, 2], [3, 4]])):
        got_scores, got_labels = valid_scores_and_labels(scores, labels)
        assert got_scores.dtype == np.float32 and got_labels.dtype == np.bool_
        want = np.asarray(scores, dtype=np.float64).reshape(-1)[[0, 1, 3]].astype(np.float32)
        np.testing.assert_array_equal(got_scores, want)
        np.testing.assert_array_equal(got_labels, [False, True, False])
    with pytest.raises(ValueError, match=r'^scores: scores of shape \(4,\) and labels of shape \(5,\) differ$'):
        valid_scores_and_labels(np.zeros(4), np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match=r'^scores: 1 of 2 evaluated anomaly scores are NaN or inf'):
        valid_scores_and_labels(np.array([0.0, np.inf]), np.array([0, 1]))
    with pytest.raises(ValueError, match=r'^scores: anomaly labels must be 0 \(normal\), 1 \(anomaly\)'):
        valid_scores_and_labels(np.zeros(2), np.array([0, 3]))


def test_exact_level_counts_dtypes_and_thresholds():
    """Level counts are int64, with and without positives; with positives the thresholds are float64 with NaN on
    the negative-only levels between or above positive scores; without positives the one level's threshold is the
    lowest normal score."""
    # mutants: exact_level_counts 23/34/68/77/79/86
    scores = np.array([5.0, 4.0, 4.0, 3.0, 2.0, 2.0, 1.0, 0.5], np.float32)
    labels = np.array([0, 1, 0, 0, 1, 0, 0, 0], np.uint8)
    pos, neg, thr = exact_level_counts(scores, labels)
    assert pos.dtype == np.int64 and neg.dtype == np.int64 and thr.dtype == np.float64
    np.testing.assert_array_equal(thr, [np.nan, 4.0, np.nan, 2.0, 0.5])
    for labels in (np.zeros(8, np.uint8), np.full(8, 255, np.uint8)):
        pos, neg, thr = exact_level_counts(scores, labels)
        assert pos.dtype == np.int64 and neg.dtype == np.int64
        n_neg = int((labels == 0).sum())
        np.testing.assert_array_equal(pos, [0])
        np.testing.assert_array_equal(neg, [n_neg])
        np.testing.assert_array_equal(thr, [0.5 if n_neg else np.nan])
    # a single normal pixel and no positive: its score is the threshold
    pos, neg, thr = exact_level_counts(np.array([0.25, 9.0], np.float32), np.array([0, 255], np.uint8))
    np.testing.assert_array_equal(np.r_[pos, neg, thr], [0, 1, 0.25])


def test_metrics_read_float32_counts_as_integers():
    """Negative counts handed in as float32 (e.g. a float histogram) are summed exactly: 2**24 + 1 negatives
    stay 2**24 + 1, not float32's rounded 2**24."""
    # mutant: _metrics 17
    big = 1 << 24
    pos = np.array([1, 1], np.float32)
    neg = np.array([big, 1], np.float32)  # both exact in float32, their float32 sum is not
    res = metrics_from_level_counts(pos, neg, np.array([2.0, 1.0]))
    assert res['num_pos'] == 2 and res['num_neg'] == big + 1
    # AUROC: each positive ties with the negatives of its level (1/2 each); the top one also beats the last negative
    assert res['AUROC'] == pytest.approx((0.5 * big + 1.5) / (2 * (big + 1)), rel=1e-12)


def test_curves_read_float32_positive_counts_as_integers():
    """Positive counts handed in as float32 are summed exactly: with 2**24 + 1 positives the first level's recall
    is 2**24 / (2**24 + 1), not 1 as float32's rounded total would make it."""
    # mutant: curves_from_level_counts 3
    big = 1 << 24
    num_pos = big + 1
    curves = curves_from_level_counts(np.array([big, 1], np.float32), np.array([1, 1], np.float32))
    np.testing.assert_array_equal(curves['tpr'], [0.0, big / num_pos, 1.0])
    np.testing.assert_array_equal(curves['fpr'], [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(curves['recall'], [big / num_pos, 1.0])
    np.testing.assert_array_equal(curves['precision'], [big / (big + 1), num_pos / (num_pos + 2)])


def test_empty_level_counts_give_the_full_nan_result():
    """No level at all: every metric NaN and the three counts present and zero."""
    # mutants: _metrics 44/63
    res = metrics_from_level_counts(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    assert set(res) == {'AUROC', 'AUPR', 'FPR95', 'F1', 'F1_threshold', 'num_pos', 'num_neg', 'num_levels'}
    assert all(np.isnan(res[k]) for k in ('AUROC', 'AUPR', 'FPR95', 'F1', 'F1_threshold'))
    assert (res['num_pos'], res['num_neg'], res['num_levels']) == (0, 0, 0)


def test_nearest_fpr_bin_bound_covers_two_positives_in_a_bin():
    """Bins (descending) [n p | p p n n n n n | n | p n], 'nearest' at recall 0.5: the bins read FPR 7/8 while the
    exact recall-0.5 point (between the two positives of bin 1) has FPR 1/8; the bound must cover that 6/8."""
    # mutant: fpr_bin_bound 93
    bins = [[0, 1], [1, 1, 0, 0, 0, 0, 0], [0], [1, 0]]
    labels = np.array([v for b in bins for v in b], np.uint8)
    scores = np.arange(labels.size, 0, -1).astype(np.float32)  # distinct, descending
    pos = np.array([sum(b) for b in bins])
    neg = np.array([len(b) - sum(b) for b in bins])
    binned = metrics_from_level_counts(pos, neg, np.zeros(len(bins)), recall_level=0.5, fpr_rule='nearest')
    exact = fpr_at_recall(scores, labels, 0.5, 'nearest')
    assert exact == fpr_nearest(labels, scores.astype(np.float64), 0.5) == 1 / 8
    assert binned['FPR95'] == 7 / 8
    bound = fpr_bin_bound(pos, neg, 0.5, 'nearest')
    assert bound >= abs(binned['FPR95'] - exact)
    assert bound == 6 / 8  # tight here: the worst case inside bin 1 happens


def test_thin_curve_keeps_a_curve_of_exactly_max_points():
    """A curve with exactly ``max_points`` points is returned untouched, even when its spacing is uneven."""
    # mutant: thin_curve 2
    x = np.array([0.0, 0.1, 1.0])
    y = np.zeros(3)
    got_x, got_y = thin_curve(x, y, 3)
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)


def test_single_normal_pixel_warns_nothing_and_no_normal_pixel_warns(caplog):
    """One normal pixel is enough for every metric (no warning); none at all warns that metrics are NaN, also
    when the anomalous scores differ."""
    # mutant: warn_degenerate 10
    scores = np.array([3.0, 2.0, 1.0], np.float32)
    with caplog.at_level(logging.WARNING):
        res = exact_anomaly_metrics(scores, np.array([1, 1, 0], np.uint8), name='S')
    assert res['AUROC'] == 1.0 and caplog.records == []
    with caplog.at_level(logging.WARNING):
        res = exact_anomaly_metrics(scores, np.ones(3, np.uint8), name='S')
    assert np.isnan(res['AUROC'])
    want = 'S: 3 anomalous and 0 normal pixels evaluated; metrics needing both classes are NaN'
    assert [r.getMessage() for r in caplog.records] == [want]


def test_exact_level_counts_messages_name_scores_by_default():
    """``exact_level_counts`` without a ``name`` names ``scores`` in its errors (bad labels, shapes, NaN/inf)."""
    # mutant: exact_level_counts 3
    message = r'^scores: anomaly labels must be 0 \(normal\), 1 \(anomaly\) or ignore_index=255; found \[3\]$'
    with pytest.raises(ValueError, match=message):
        exact_level_counts(np.zeros(3, np.float32), np.array([0, 3, 1], np.uint8))
    with pytest.raises(ValueError, match=r'^scores: scores of shape \(2,\) and labels of shape \(3,\) differ$'):
        exact_level_counts(np.zeros(2, np.float32), np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match=r'^scores: 1 of 2 evaluated anomaly scores are NaN or inf'):
        exact_level_counts(np.array([np.nan, 1.0], np.float32), np.array([0, 1], np.uint8))


def test_exact_bad_label_message_lists_the_ten_smallest_invalid_values():
    """Twelve distinct invalid labels (given unsorted, next to valid and ignored ones): the message lists the ten
    smallest, sorted, as the histogram's does."""
    # mutant: valid_scores_and_labels 37
    labels = np.r_[0, 1, 255, np.arange(13, 1, -1), 13, 2].astype(np.int64)  # invalid: 2..13
    scores = np.linspace(0.0, 1.0, labels.size).astype(np.float32)
    message = (r'^scorer X: anomaly labels must be 0 \(normal\), 1 \(anomaly\) or ignore_index=255; '
               r'found \[2, 3, 4, 5, 6, 7, 8, 9, 10, 11\]$')
    with pytest.raises(ValueError, match=message):
        valid_scores_and_labels(scores, labels, name='scorer X')
    with pytest.raises(ValueError, match=message):
        exact_anomaly_metrics(scores, labels, name='scorer X')


def test_num_levels_counts_only_non_empty_levels(caplog):
    """Empty levels handed in (``pos = neg = 0``, e.g. empty bins of a dense histogram) are not counted in
    ``num_levels`` and change no metric; a map whose only non-empty level holds every pixel still warns that it is
    constant."""
    # mutant: _metrics 88
    pos, neg = np.array([0, 1, 0, 0, 1, 0]), np.array([0, 0, 0, 2, 1, 0])
    thr = np.array([9.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    res = metrics_from_level_counts(pos, neg, thr)
    keep = (pos > 0) | (neg > 0)
    assert res == metrics_from_level_counts(pos[keep], neg[keep], thr[keep])
    assert (res['num_pos'], res['num_neg'], res['num_levels']) == (2, 3, 3)
    # the same scores as an exact map: anomalies at 5 and 2, normals at 3, 3 and 2
    scores = np.array([5.0, 3.0, 3.0, 2.0, 2.0], np.float32)
    labels = np.array([1, 0, 0, 1, 0], np.uint8)
    assert res == exact_anomaly_metrics(scores, labels)
    # AUROC 3.5 / 6: the anomaly at 5 beats the three normals, the one at 2 ties with one normal
    assert res['AUROC'] == pytest.approx(3.5 / 6, abs=1e-12)
    assert res['AUROC'] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    with caplog.at_level(logging.WARNING):
        const = metrics_from_level_counts(
            np.array([0, 2, 0]), np.array([0, 3, 0]), np.array([2.0, 1.0, 0.0]), warn_name='C')
    assert const['num_levels'] == 1 and const['AUROC'] == 0.5 and const['FPR95'] == 1.0
    want = 'C: all 5 evaluated scores are equal (constant map): AUROC is 0.5 and FPR95 is 100%'
    assert [r.getMessage() for r in caplog.records] == [want]


def test_check_ignore_index_names_scores_by_default():
    """Without a ``name``, refusing a label value as ``ignore_index`` names ``scores`` in the message."""
    # mutant: check_ignore_index 1
    for value in (0, 1):
        with pytest.raises(ValueError, match='^' + _ignore_index_message('scores', value)):
            check_ignore_index(value)


def test_nearest_fpr_bin_bound_when_the_bins_read_a_recall_below_the_level():
    """Bins (descending) [18 p + 1 n | n n n p p], 'nearest' at recall 0.93: the bins' nearest recall is 0.9 (FPR
    1/4), below the level, while the exact nearest point (recall 0.95, after the three negatives of bin 1) has FPR
    1; the bound is the negatives of bin 1 over all negatives, 3/4, and tight here."""
    # mutant: fpr_bin_bound 70
    labels = np.r_[np.ones(18), 0, 0, 0, 0, 1, 1].astype(np.uint8)
    scores = np.arange(labels.size, 0, -1).astype(np.float32)  # distinct, descending
    pos, neg = np.array([18, 2]), np.array([1, 3])
    binned = metrics_from_level_counts(pos, neg, np.zeros(2), recall_level=0.93, fpr_rule='nearest')
    exact = fpr_at_recall(scores, labels, 0.93, 'nearest')
    assert exact == fpr_nearest(labels, scores.astype(np.float64), 0.93) == 1.0
    assert binned['FPR95'] == 1 / 4
    assert fpr_bin_bound(pos, neg, 0.93, 'nearest') == 3 / 4 == abs(binned['FPR95'] - exact)


def test_fpr_bin_bound_reads_float32_counts_as_integers():
    """Negative counts handed in as float32 are summed exactly, as ``metrics_from_level_counts`` sums them: with
    2**24 + 1 negatives the bound of the last bin is 1 / (2**24 + 1), not 1 / 2**24 (float32's rounded total)."""
    # mutant: fpr_bin_bound 12
    big = 1 << 24
    pos = np.array([1, 1], np.float32)
    neg = np.array([big, 1], np.float32)  # both exact in float32, their float32 sum is not
    assert metrics_from_level_counts(pos, neg, np.zeros(2))['num_neg'] == big + 1
    for rule in ('first', 'nearest'):
        assert fpr_bin_bound(pos, neg, 0.95, rule) == 1 / (big + 1)


def test_thin_curve_keeps_at_most_2000_points_by_default():
    """By default a curve of 2000 points is returned untouched and one of 2001 points is thinned to 2000, keeping
    both ends."""
    # mutant: thin_curve 1
    x = np.arange(2000.0)
    got_x, got_y = thin_curve(x, -x)
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, -x)
    x = np.arange(2001.0)
    got_x, got_y = thin_curve(x, -x)
    assert got_x.size == 2000 and (got_x[0], got_x[-1]) == (0.0, 2000.0)
    np.testing.assert_array_equal(got_y, -got_x)


def test_fpr_at_recall_reads_95_percent_recall_by_default():
    """Without ``recall_level`` ``fpr_at_recall`` is the FPR at 95 % recall (the reference's first-rule FPR95), on a
    map where the FPR at 90 % and at 100 % recall differ from it."""
    # mutant: fpr_at_recall 1
    rng = np.random.default_rng(5)
    labels = (np.arange(300) < 40).astype(np.uint8)
    scores = (rng.standard_normal(300) + 2.0 * labels).astype(np.float32)
    want = fpr_first(labels, scores, 0.95)
    assert fpr_first(labels, scores, 0.9) != want != fpr_first(labels, scores, 1.0)
    assert fpr_at_recall(scores, labels) == pytest.approx(want, abs=1e-12)
    nearest = fpr_nearest(labels, scores.astype(np.float64), 0.95)
    assert fpr_at_recall(scores, labels, fpr_rule='nearest') == pytest.approx(nearest, abs=1e-12)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_half_precision_tensor_scores_are_evaluated_as_their_float32_values(dtype):
    """bfloat16 (which numpy cannot hold) and float16 score tensors are read as the float32 values they hold: the
    valid scores are float32 and the metrics are sklearn's on those values."""
    # mutant: to_numpy 2
    rng = np.random.default_rng(6)
    labels = (rng.random(200) < 0.3).astype(np.uint8)
    labels[:2] = (0, 1)
    tensor = torch.from_numpy(rng.standard_normal(200) + labels).to(dtype)
    values = tensor.float().numpy()
    got_scores, got_labels = valid_scores_and_labels(tensor, labels)
    assert got_scores.dtype == np.float32
    np.testing.assert_array_equal(got_scores, values)
    np.testing.assert_array_equal(got_labels, labels.astype(bool))
    res = exact_anomaly_metrics(tensor, torch.from_numpy(labels))
    assert res['AUROC'] == pytest.approx(roc_auc_score(labels, values), abs=1e-12)
    assert res['AUPR'] == pytest.approx(average_precision_score(labels, values), abs=1e-12)


def test_recall_level_zero_is_refused():
    """A recall level of 0 (every threshold reaches it) is outside (0, 1] and refused with the message, as are
    negative ones; the smallest positive level is accepted."""
    # mutant: _metrics 4
    pos, neg, thr = np.array([1, 1]), np.array([1, 1]), np.array([2.0, 1.0])
    for level in (0.0, -0.5):
        with pytest.raises(ValueError, match=re.escape(f'recall_level must be in (0, 1], got {level}') + '$'):
            metrics_from_level_counts(pos, neg, thr, recall_level=level)
        with pytest.raises(ValueError, match=re.escape(f'recall_level must be in (0, 1], got {level}') + '$'):
            fpr_at_recall(np.array([2.0, 1.0], np.float32), np.array([1, 0], np.uint8), level)
    assert metrics_from_level_counts(pos, neg, thr, recall_level=1e-300)['FPR95'] == 0.5


def test_thresholds_are_read_as_numbers_up_front():
    """The thresholds are converted to float64 before any metric: a non-numeric one is refused even on a level no
    metric reads (F1 reads only the first level here) and even when no metric is defined (no positive)."""
    # mutant: _metrics 17
    with pytest.raises(ValueError, match='could not convert'):
        metrics_from_level_counts([1, 0], [0, 2], [0.5, 'low'])
    with pytest.raises(ValueError, match='could not convert'):
        metrics_from_level_counts([0, 0], [1, 2], ['high', 'low'])
    # numeric strings and ints are numbers
    assert metrics_from_level_counts([1, 0], [0, 2], ['0.5', 0])['F1_threshold'] == 0.5


def test_fpr_bin_bound_with_a_single_normal_pixel():
    """With one normal pixel, sharing the bin of the last positive, the FPR95 bound is the whole FPR (1), and it is
    reached: the exact FPR is 0 (the normal pixel scores just below that positive), the binned one 1."""
    # mutant: fpr_bin_bound 29
    pos, neg = np.array([1, 1]), np.array([0, 1])
    for rule in ('first', 'nearest'):
        assert fpr_bin_bound(pos, neg, 0.95, rule) == 1.0
    scores = np.array([2.0, 1.00001, 1.0], np.float32)  # the last two share a 22-bit bin (width 1.2e-4 relative)
    labels = np.array([1, 1, 0], np.uint8)
    hist = ScoreHistogram.from_scores(scores, labels)
    np.testing.assert_array_equal(hist.level_counts()[0], pos)
    np.testing.assert_array_equal(hist.level_counts()[1], neg)
    for rule in ('first', 'nearest'):
        assert exact_anomaly_metrics(scores, labels, fpr_rule=rule)['FPR95'] == 0.0
        assert hist.compute(fpr_rule=rule)['FPR95'] == 1.0
        assert hist.error_bounds(fpr_rule=rule)['FPR95'] == 1.0


def test_fpr_bin_bound_reads_float32_positive_counts_as_integers():
    """Positive counts handed in as float32 are summed exactly, like int64 counts: with 2**24 + 1 positives the first
    bin misses full recall (float32's rounded total would say it reaches it), so the bound at recall 1 is that of
    the last bin, which holds the only negative."""
    # mutants: fpr_bin_bound 7/9
    big = 1 << 24
    pos = np.array([big, 1], np.float32)  # both exact in float32, their float32 sum is not
    neg = np.array([0, 1], np.float32)
    for rule in ('first', 'nearest'):
        assert fpr_bin_bound(pos, neg, 1.0, rule) == fpr_bin_bound(pos.astype(np.int64), neg, 1.0, rule) == 1.0
