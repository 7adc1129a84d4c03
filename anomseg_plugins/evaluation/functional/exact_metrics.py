"""Exact anomaly metrics of one score array against one binary label array.

The reference path: no quantisation, ties handled exactly as scikit-learn handles tied scores. Used for
the per-image protocol when exactness is asked for, and as the ground truth in tests.

Instead of an ``argsort`` of all pixels, the (few) positive scores and the (many) negative scores are
sorted separately and merged by ``searchsorted``. The levels (see :mod:`.level_metrics`) are: each
distinct positive score ``u_j`` (its positives plus the negatives tied with it), and between two
consecutive distinct positive scores one level holding all negatives strictly in between (merging
negative-only runs changes none of the metrics, including the ``'nearest'`` FPR rule, whose tie break
picks the lowest threshold of a recall value).
"""
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch

from .level_metrics import check_ignore_index, metrics_from_level_counts

ArrayLike = Union[np.ndarray, torch.Tensor]


def to_numpy(x: ArrayLike) -> np.ndarray:
    """A CPU numpy view (or copy) of a tensor / array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        return (x.float() if x.dtype in (torch.bfloat16, torch.float16) else x).numpy()
    return np.asarray(x)


def valid_scores_and_labels(scores: ArrayLike,
                            labels: ArrayLike,
                            ignore_index: Optional[int] = 255,
                            name: str = 'scores') -> Tuple[np.ndarray, np.ndarray]:
    """Flatten, drop ``ignore_index`` pixels, check labels are 0/1 and scores finite.

    Returns:
        ``(scores, labels)``: float32 ``(M,)`` and bool ``(M,)`` (True = anomaly).

    Raises:
        ValueError: ``ignore_index`` is 0 or 1, shapes differ, labels hold values other than 0, 1 and
            ``ignore_index``, or a score of a kept pixel is NaN/inf (the message names ``name``, e.g. the scorer).
    """
    check_ignore_index(ignore_index, name)
    scores = to_numpy(scores)
    labels = to_numpy(labels)
    if scores.shape != labels.shape:
        raise ValueError(f'{name}: scores of shape {scores.shape} and labels of shape {labels.shape} differ')
    scores = scores.reshape(-1)
    labels = labels.reshape(-1)
    if ignore_index is not None:
        keep = labels != ignore_index
        if not keep.all():
            scores, labels = scores[keep], labels[keep]
    if labels.dtype != np.bool_:
        if labels.size and (labels.min() < 0 or labels.max() > 1):
            bad = np.unique(labels[(labels != 0) & (labels != 1)])[:10]
            raise ValueError(f'{name}: anomaly labels must be 0 (normal), 1 (anomaly) or '
                             f'ignore_index={ignore_index}; found {bad.tolist()}')
        labels = labels.astype(bool)
    if scores.dtype != np.float32:
        scores = scores.astype(np.float32)
    finite = np.isfinite(scores)
    if not finite.all():
        raise ValueError(f'{name}: {int(finite.size - finite.sum())} of {finite.size} evaluated anomaly '
                         'scores are NaN or inf; the scorer must return finite scores')
    return scores, labels


def exact_level_counts(scores: ArrayLike,
                       labels: ArrayLike,
                       ignore_index: Optional[int] = 255,
                       name: str = 'scores') -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact level counts ``(pos, neg, thresholds)``, levels in descending score order.

    Thresholds are the level's score for the levels holding positives and for the bottom level; a level holding
    only negatives between two positive scores gets NaN (its scores differ), which no metric reads: the one
    threshold reported, ``F1_threshold``, is always taken at a level holding positives (:mod:`.level_metrics`).

    Args:
        scores: anomaly scores of any shape (higher = more anomalous).
        labels: same shape, 1 = anomaly, 0 = normal, ``ignore_index`` = not evaluated.
    """
    scores, labels = valid_scores_and_labels(scores, labels, ignore_index, name)
    neg_sorted = np.sort(scores[~labels])  # the expensive step: O(N log N) on the normal pixels
    pos_sorted = np.sort(scores[labels])[::-1]
    if pos_sorted.size == 0:
        lowest = neg_sorted[0] if neg_sorted.size else np.nan
        return np.zeros(1, np.int64), np.array([neg_sorted.size], np.int64), np.array([lowest], np.float64)
    starts = np.r_[0, np.flatnonzero(np.diff(pos_sorted)) + 1]
    uniq = pos_sorted[starts]  # distinct positive scores, descending
    pos_count = np.diff(np.r_[starts, pos_sorted.size])
    n_neg = neg_sorted.size
    neg_ge = n_neg - np.searchsorted(neg_sorted, uniq, side='left')  # negatives >= u_j
    neg_gt = n_neg - np.searchsorted(neg_sorted, uniq, side='right')  # negatives >  u_j
    m = uniq.size
    pos = np.zeros(2 * m + 1, np.int64)
    neg = np.zeros(2 * m + 1, np.int64)
    thr = np.full(2 * m + 1, np.nan)
    # level 2j + 1: score == u_j; level 2j: negatives in (u_j, u_{j-1}); level 2m: below u_{m-1}
    pos[1::2] = pos_count
    neg[1::2] = neg_ge - neg_gt
    neg[0:-1:2] = neg_gt - np.r_[0, neg_ge[:-1]]
    neg[-1] = n_neg - neg_ge[-1]
    thr[1::2] = uniq
    if neg[-1] > 0:
        thr[-1] = neg_sorted[0]
    keep = (pos > 0) | (neg > 0)
    return pos[keep], neg[keep], thr[keep]


def exact_anomaly_metrics(scores: ArrayLike,
                          labels: ArrayLike,
                          ignore_index: Optional[int] = 255,
                          recall_level: float = 0.95,
                          fpr_rule: str = 'first',
                          name: str = 'scores',
                          warn: bool = True) -> Dict[str, float]:
    """Exact AUROC, AUPR (average precision), FPR at ``recall_level`` and best F1.

    Args:
        scores: anomaly scores (higher = more anomalous), any shape, numpy or torch.
        labels: same shape; 1 = anomaly, 0 = normal, ``ignore_index`` = dropped.
        ignore_index: label value of pixels to drop (None: keep all).
        recall_level: recall of the FPR metric (0.95).
        fpr_rule: ``'first'`` (first threshold, descending, whose recall >= recall_level; pooled protocol)
            or ``'nearest'`` (threshold whose recall is nearest recall_level; official StreetHazards).
        name: named in error and warning messages (e.g. the scorer).
        warn: log a warning when a metric is undefined (one class absent) or the scores are constant.

    Returns:
        dict with fractions ``AUROC``, ``AUPR``, ``FPR95``, ``F1``, the score ``F1_threshold`` and the pixel
        counts ``num_pos``, ``num_neg`` (and ``num_levels``). Undefined metrics are NaN (see :mod:`.level_metrics`).
    """
    pos, neg, thr = exact_level_counts(scores, labels, ignore_index, name)
    return metrics_from_level_counts(pos, neg, thr, recall_level, fpr_rule, warn_name=name if warn else None)


def auroc(scores: ArrayLike, labels: ArrayLike, ignore_index: Optional[int] = 255) -> float:
    """Exact area under the ROC curve (= ``sklearn.metrics.roc_auc_score``); NaN if one class is absent."""
    return exact_anomaly_metrics(scores, labels, ignore_index)['AUROC']


def average_precision(scores: ArrayLike, labels: ArrayLike, ignore_index: Optional[int] = 255) -> float:
    """Exact average precision (= ``sklearn.metrics.average_precision_score``); NaN without positives."""
    return exact_anomaly_metrics(scores, labels, ignore_index)['AUPR']


def fpr_at_recall(scores: ArrayLike,
                  labels: ArrayLike,
                  recall_level: float = 0.95,
                  fpr_rule: str = 'first',
                  ignore_index: Optional[int] = 255) -> float:
    """Exact false-positive rate at ``recall_level`` under ``fpr_rule`` (``'first'`` or ``'nearest'``)."""
    return exact_anomaly_metrics(scores, labels, ignore_index, recall_level, fpr_rule)['FPR95']


def best_f1(scores: ArrayLike, labels: ArrayLike, ignore_index: Optional[int] = 255) -> Tuple[float, float]:
    """Exact best F1 over all thresholds and that threshold (predict anomaly where score >= threshold)."""
    res = exact_anomaly_metrics(scores, labels, ignore_index)
    return res['F1'], res['F1_threshold']
