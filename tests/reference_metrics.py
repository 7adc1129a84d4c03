"""Reference metric implementations shared by the tests: scikit-learn and the official StreetHazards FPR rule.

Importable from any test module (pytest puts ``tests/`` on ``sys.path`` for ``tests/conftest.py``).
"""
import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve


def fpr_first(labels: np.ndarray, scores: np.ndarray, level: float = 0.95) -> float:
    """FPR at the first threshold (descending) whose recall >= level, from sklearn's full ROC curve."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return float(fpr[np.argmax(tpr >= level)])


def fpr_nearest(labels: np.ndarray, scores: np.ndarray, level: float = 0.95) -> float:
    """The official StreetHazards rule (hendrycks/anomaly-seg ``fpr_and_fdr_at_recall``), written out:
    distinct thresholds from the top down to the first one reaching full recall, taken in reverse
    order; the first whose recall is nearest ``level`` gives the FPR."""
    order = np.argsort(scores, kind='mergesort')[::-1]
    s, y = scores[order], labels[order].astype(bool)
    ends = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]  # last index of each distinct score
    tps = np.cumsum(y, dtype=np.float64)[ends]
    fps = 1 + ends - tps
    recall = tps / tps[-1]
    last = int(tps.searchsorted(tps[-1]))
    recall_rev = np.r_[recall[last::-1], 1.0]
    fps_rev = np.r_[fps[last::-1], 0.0]
    cut = int(np.argmin(np.abs(recall_rev - level)))
    return float(fps_rev[cut] / np.sum(~y))


def best_f1(labels: np.ndarray, scores: np.ndarray):
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-300)
    k = int(np.argmax(f1[:-1]))
    return float(f1[k]), float(thresholds[k])


def reference(scores: np.ndarray, labels: np.ndarray, ignore_index: int = 255) -> dict:
    """All metrics by scikit-learn / the official rule on the kept pixels (fractions)."""
    keep = labels.reshape(-1) != ignore_index
    s = scores.reshape(-1)[keep].astype(np.float64)
    y = labels.reshape(-1)[keep].astype(int)
    f1, thr = best_f1(y, s)
    return dict(
        AUROC=roc_auc_score(y, s),
        AUPR=average_precision_score(y, s),
        FPR95=fpr_first(y, s),
        FPR95_nearest=fpr_nearest(y, s),
        F1=f1,
        F1_threshold=thr)
