"""Ranking metrics of an anomaly score from *level counts*.

Every metric of the anomaly benchmarks (AUROC, AUPR, FPR at 95 % recall, best F1) depends on the scores
only through their ranking. Both the exact per-array path (:mod:`.exact_metrics`) and the pooled
histogram (:mod:`.pooled_histogram`) therefore reduce the data to the same form: a list of *levels* in
descending score order, each with the number of positive (anomalous) and negative (normal) pixels
whose score falls on it, and the lowest score of the level (the threshold that, with the rule
``anomalous <=> score >= threshold``, includes the level and everything above it).

With ``tps_i`` / ``fps_i`` the cumulative positive / negative counts down to level ``i``, ``P`` / ``N``
the totals:

- ``AUROC = sum_i neg_i * (tps_{i-1} + pos_i / 2) / (P * N)``: the trapezoidal area under the ROC
  curve through the level points, i.e. ``sklearn.metrics.roc_auc_score`` (tied scores count 1/2).
- ``AUPR = sum_i (pos_i / P) * tps_i / (tps_i + fps_i)``: average precision as a step sum, i.e.
  ``sklearn.metrics.average_precision_score`` (no interpolation).
- ``FPR95`` with ``fpr_rule='first'`` (pooled protocol, as SegmentMeIfYouCan's evaluation, Chan et al., NeurIPS
  2021 Datasets and Benchmarks, github.com/SegmentMeIfYouCan/road-anomaly-benchmark): ``fps_i / N`` at the first
  level in descending order whose recall ``tps_i / P >= recall_level``.
- ``FPR95`` with ``fpr_rule='nearest'`` (official StreetHazards code, hendrycks/anomaly-seg
  ``anom_utils.fpr_and_fdr_at_recall``): among the levels from the top down to the first level that
  reaches full recall, the one whose recall is nearest ``recall_level``; ties in the distance are broken
  as ``np.argmin`` over the official reversed arrays does, i.e. towards the *higher* recall, and among
  levels of equal recall towards the *lowest* threshold (largest ``fps``).
- ``F1 = max_i 2 * tps_i / (tps_i + fps_i + P)`` (= 2PR / (P + R)), ``F1_threshold`` its level's
  threshold (the first, i.e. highest, on ties).

All values are fractions in [0, 1]. Undefined metrics are NaN: with no positive pixel every metric; with
no negative pixel AUROC and FPR95.
"""
import logging
from typing import Callable, Dict, Optional, Tuple, Union

import numpy as np

METRIC_NAMES = ('AUROC', 'AUPR', 'FPR95', 'F1', 'F1_threshold')
#: The metrics with a reported quantisation (tie) error bound, as ``ScoreHistogram.error_bounds`` gives them.
BOUND_NAMES = ('AUROC', 'AUPR', 'FPR95')
logger = logging.getLogger(__name__)
FPR_RULES = ('first', 'nearest')


def check_ignore_index(ignore_index: Optional[int], name: str = 'scores') -> Optional[int]:
    """``ignore_index`` if it can mark pixels to drop from 0 / 1 anomaly labels, else a ValueError naming ``name``.

    0 and 1 are the label values themselves (normal, anomaly): as ``ignore_index`` they would silently drop every
    normal or every anomalous pixel, leaving every metric undefined.
    """
    if ignore_index is not None and ignore_index in (0, 1):
        raise ValueError(f'{name}: ignore_index={ignore_index} is an anomaly label value (0 normal, 1 anomaly), '
                         'so it cannot mark pixels to leave out; use another value (the datasets use 255) or None')
    return ignore_index


def _check_rule(fpr_rule: str) -> None:
    if fpr_rule not in FPR_RULES:
        raise ValueError(f'fpr_rule must be one of {FPR_RULES}, got {fpr_rule!r}')


def metrics_from_level_counts(pos: np.ndarray,
                              neg: np.ndarray,
                              thresholds: Union[np.ndarray, Callable[[int], float]],
                              recall_level: float = 0.95,
                              fpr_rule: str = 'first',
                              warn_name: Optional[str] = None) -> Dict[str, float]:
    """AUROC, AUPR, FPR at ``recall_level`` and best F1 from per-level counts.

    Args:
        pos: ``(L,)`` integer counts of positive pixels per level, levels in descending score order.
        neg: ``(L,)`` integer counts of negative pixels per level.
        thresholds: ``(L,)`` float, the lowest score of each level, or a function of a level index giving
            it (only the F1 level's threshold is needed).
        recall_level: recall at which the false-positive rate is read (0.95 for FPR95).
        fpr_rule: ``'first'`` or ``'nearest'`` (see the module docstring).
        warn_name: if given, log a warning naming it when a metric is undefined (one class absent) or
            the scores are constant.

    Returns:
        dict with ``AUROC``, ``AUPR``, ``FPR95``, ``F1``, ``F1_threshold`` (floats, NaN where undefined),
        ``num_pos``, ``num_neg`` and ``num_levels`` (ints; number of non-empty levels).
    """
    out = _metrics(pos, neg, thresholds, recall_level, fpr_rule)
    if warn_name is not None:
        warn_degenerate(out, warn_name)
    return out


def warn_degenerate(result: Dict[str, float], name: str) -> None:
    """Log why metrics of ``name`` are undefined (no anomalous / no normal pixel) or uninformative."""
    num_pos, num_neg = result['num_pos'], result['num_neg']
    if num_pos == 0 or num_neg == 0:
        logger.warning(f'{name}: {num_pos} anomalous and {num_neg} normal pixels evaluated; metrics '
                       'needing both classes are NaN')
    elif result.get('num_levels', 2) == 1:
        logger.warning(f'{name}: all {num_pos + num_neg} evaluated scores are equal (constant map): '
                       'AUROC is 0.5 and FPR95 is 100%')


def _level_counts(pos: np.ndarray, neg: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``pos`` and ``neg`` as int64 arrays, or a ValueError unless they are 1-d and of one length."""
    pos = np.asarray(pos, dtype=np.int64)
    neg = np.asarray(neg, dtype=np.int64)
    if pos.shape != neg.shape or pos.ndim != 1:
        raise ValueError(f'pos and neg must be 1-d arrays of one length, got shapes {pos.shape}, {neg.shape}')
    return pos, neg


def _metrics(pos, neg, thresholds, recall_level, fpr_rule):
    _check_rule(fpr_rule)
    if not 0.0 < recall_level <= 1.0:
        raise ValueError(f'recall_level must be in (0, 1], got {recall_level}')
    pos, neg = _level_counts(pos, neg)
    if not callable(thresholds):
        thresholds = np.asarray(thresholds, dtype=np.float64)
        if thresholds.shape != pos.shape:
            raise ValueError(f'thresholds of shape {thresholds.shape} do not match the counts {pos.shape}')
    nan = float('nan')
    out = dict(AUROC=nan, AUPR=nan, FPR95=nan, F1=nan, F1_threshold=nan, num_pos=0, num_neg=0, num_levels=0)
    if pos.size == 0:
        return out
    tps = np.cumsum(pos)
    fps = np.cumsum(neg)
    num_pos, num_neg = int(tps[-1]), int(fps[-1])
    out.update(num_pos=num_pos, num_neg=num_neg, num_levels=int(np.count_nonzero((pos > 0) | (neg > 0))))
    if num_pos == 0:
        return out

    # average precision: recall only moves on levels holding positives
    pos_levels = np.flatnonzero(pos)
    tp, fp = tps[pos_levels], fps[pos_levels]
    out['AUPR'] = float(np.sum(pos[pos_levels] * (tp / (tp + fp))) / num_pos)

    # best F1: for a given tp, the fewest fp is at the level adding those positives
    f1 = 2.0 * tp / (tp + fp + num_pos)
    best = int(np.argmax(f1))
    out['F1'] = float(f1[best])
    best = int(pos_levels[best])
    out['F1_threshold'] = float(thresholds(best) if callable(thresholds) else thresholds[best])

    if num_neg == 0:
        return out
    # trapezoids between consecutive ROC points; exact in int64 (sum <= 2 * P * N)
    area2 = int(np.sum(neg * (2 * (tps - pos) + pos)))
    out['AUROC'] = area2 / (2.0 * num_pos * num_neg)

    recall = tps / num_pos
    if fpr_rule == 'first':
        idx = int(np.argmax(recall >= recall_level))  # recall[-1] == 1, so always found
    else:
        last = int(np.searchsorted(tps, num_pos))  # first level with full recall
        dist = np.abs(recall[:last + 1] - recall_level)
        idx = last - int(np.argmin(dist[::-1]))
    out['FPR95'] = float(fps[idx] / num_neg)
    return out


def fpr_bin_bound(pos: np.ndarray, neg: np.ndarray, recall_level: float = 0.95, fpr_rule: str = 'first') -> float:
    """Upper bound of ``|FPR95_bins - FPR95_exact|`` when the levels are *bins* that may merge distinct scores.

    The bin ends are exact points of the ROC staircase; the exact points inside a bin are unknown. With
    ``tps_i`` / ``fps_i`` the cumulative counts at the end of bin ``i``, ``j`` the first bin whose recall
    ``tps_j / P >= recall_level`` and ``N`` the number of negatives:

    - ``'first'``: the exact first point reaching the recall lies inside bin ``j``, so
      ``FPR_exact`` is in ``[fps_{j-1}, fps_j] / N`` while the bins give ``fps_j / N``: bound ``neg_j / N``.
    - ``'nearest'``: the exact point nearest the recall level has a recall between those of bins ``j - 1``
      and ``j`` (both are exact points). If the bins pick bin ``j - 1``'s recall, the exact choice lies in
      bin ``j``: bound ``neg_j / N``. If they pick bin ``j``'s recall (at the end of the last bin ``k - 1``
      before the next bin ``k`` holding positives; ``k - 1 = j`` when bin ``j`` reaches full recall), the
      exact choice is either that recall, taken just before the next positive, i.e. inside bin ``k``
      (bound ``neg_k / N``; ``neg_j / N`` at full recall), or, when bin ``j`` holds two or more positives
      and the recall level is not met exactly, a point inside bin ``j`` (bound
      ``(fps_{k-1} - fps_{j-1}) / N``); the larger of the two.

    Args:
        pos: ``(L,)`` positive counts per bin, bins in descending score order.
        neg: ``(L,)`` negative counts per bin.
        recall_level: recall of the FPR metric.
        fpr_rule: ``'first'`` or ``'nearest'`` (see the module docstring).

    Returns:
        the bound as a fraction; NaN when one class is absent (FPR95 undefined).
    """
    _check_rule(fpr_rule)
    pos = np.asarray(pos, dtype=np.int64)
    neg = np.asarray(neg, dtype=np.int64)
    tps, fps = np.cumsum(pos), np.cumsum(neg)
    if pos.size == 0 or tps[-1] == 0 or fps[-1] == 0:
        return float('nan')
    num_pos, num_neg = int(tps[-1]), int(fps[-1])
    recall = tps / num_pos
    j = int(np.argmax(recall >= recall_level))
    if fpr_rule == 'first':
        return float(neg[j] / num_neg)
    last = int(np.searchsorted(tps, num_pos))
    dist = np.abs(recall[:last + 1] - recall_level)
    idx = last - int(np.argmin(dist[::-1]))  # the bins' choice, as in metrics_from_level_counts
    if recall[idx] < recall_level:
        return float(neg[j] / num_neg)
    if j == last:
        beyond = int(neg[j])
    else:
        k = j + 1 + int(np.argmax(pos[j + 1:] > 0))
        beyond = int(neg[k])
    inside = int(fps[idx] - (fps[j] - neg[j])) if pos[j] >= 2 and recall[j] != recall_level else 0
    return float(max(beyond, inside) / num_neg)


def curves_from_level_counts(pos: np.ndarray, neg: np.ndarray) -> Dict[str, np.ndarray]:
    """ROC and precision-recall curves through the level points.

    Returns:
        dict with ``fpr``, ``tpr`` (ROC, starting at (0, 0)) and ``recall``, ``precision`` (PR, one point
        per level holding positives, as ``sklearn.metrics.precision_recall_curve`` without its final
        (0, 1) point). Empty arrays where the curve is undefined.

    Raises:
        ValueError: ``pos`` and ``neg`` are not 1-d arrays of one length.
    """
    pos, neg = _level_counts(pos, neg)
    empty = np.zeros(0)
    tps = np.cumsum(pos)
    fps = np.cumsum(neg)
    num_pos = int(tps[-1]) if tps.size else 0
    num_neg = int(fps[-1]) if fps.size else 0
    curves = dict(fpr=empty, tpr=empty, recall=empty, precision=empty)
    if num_pos > 0 and num_neg > 0:
        curves['fpr'] = np.r_[0.0, fps / num_neg]
        curves['tpr'] = np.r_[0.0, tps / num_pos]
    if num_pos > 0:
        has_pos = pos > 0
        curves['recall'] = tps[has_pos] / num_pos
        curves['precision'] = tps[has_pos] / (tps[has_pos] + fps[has_pos])
    return curves


def thin_curve(x: np.ndarray, y: np.ndarray, max_points: int = 2000) -> Tuple[np.ndarray, np.ndarray]:
    """Keep at most ``max_points`` points of a curve, evenly spaced along its (L1) arc length.

    Used for plotting only; the first and the last point are always kept.
    """
    if x.size <= max_points:
        return x, y
    arc = np.r_[0.0, np.cumsum(np.abs(np.diff(x)) + np.abs(np.diff(y)))]
    idx = np.searchsorted(arc, np.linspace(0.0, arc[-1], max_points))
    idx = np.unique(np.clip(np.r_[0, idx, x.size - 1], 0, x.size - 1))
    return x[idx], y[idx]
