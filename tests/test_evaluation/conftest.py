"""Reference implementations (scikit-learn and the official StreetHazards FPR rule) and awkward score maps
shared by the evaluation tests."""
from types import SimpleNamespace

import numpy as np
import pytest
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
    return dict(AUROC=roc_auc_score(y, s), AUPR=average_precision_score(y, s), FPR95=fpr_first(y, s),
                FPR95_nearest=fpr_nearest(y, s), F1=f1, F1_threshold=thr)


def make_case(kind: str, n: int = 60000, seed: int = 0):
    """Score/label arrays (float32, uint8) of an awkward kind, ~1% anomalies."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.01).astype(np.uint8)
    labels[:3] = (1, 0, 1)  # both classes present
    shift = labels * 1.5
    if kind == 'random':
        scores = rng.standard_normal(n) + shift
    elif kind == 'tied':  # many exact ties, also across the classes
        scores = np.round(rng.standard_normal(n) + shift, 1)
    elif kind == 'heavy_tailed':
        scores = rng.standard_cauchy(n) * 10 + shift * 5
    elif kind == 'energy':  # -logsumexp scale: hundreds
        scores = -300.0 + 25.0 * rng.standard_normal(n) + shift * 40
    elif kind == 'negative':
        scores = -np.abs(rng.standard_normal(n)) * 1e-3 + shift * 1e-3 - 5e-4
    elif kind == 'probability':  # MSP-like -max p: concentrated near -1
        scores = -(1.0 - rng.beta(0.5, 20, n) * (1 - 0.7 * labels) - labels * rng.beta(2, 5, n) * 0.5)
    elif kind == 'mixed_sign':  # both signs, magnitudes from ~1e-9 to ~1e6
        scores = np.sinh(5.0 * (rng.standard_normal(n) + shift)) * 1e-3
    else:
        raise KeyError(kind)
    return scores.astype(np.float32), labels


CASES = ('random', 'tied', 'heavy_tailed', 'energy', 'negative', 'probability', 'mixed_sign')


@pytest.fixture(scope='session')
def ref():
    return SimpleNamespace(reference=reference, fpr_first=fpr_first, fpr_nearest=fpr_nearest, best_f1=best_f1,
                           make_case=make_case, CASES=CASES)


@pytest.fixture(params=CASES)
def case(request):
    """``(kind, scores, labels)`` for every awkward kind of score map."""
    scores, labels = make_case(request.param)
    return request.param, scores, labels
