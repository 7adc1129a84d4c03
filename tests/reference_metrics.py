"""Reference metric implementations shared by the tests: scikit-learn and the official StreetHazards FPR rule, both
protocols of AnomalyMetric, mmseg's IoU metrics and the StreetHazards labels written out with numpy, and the anomaly
scorers' formulas, so that tests can check the package's numbers by value.

Importable from any test module (pytest puts ``tests/`` on ``sys.path`` for ``tests/conftest.py``).
"""
import numpy as np
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score, roc_curve


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


# ----- segmentation (mmseg's IoUMetric, StreetHazards labels) -----
def street_hazards_labels(path: str, ignore_index: int = 255):
    """``(gt_sem_seg, gt_anomaly)`` read from a StreetHazards annotation file (values 1..14) with numpy: the
    known classes 1..13 become 0..12, the anomaly (14) is ``ignore_index`` in the first map and 1 in the second."""
    from PIL import Image
    raw = np.asarray(Image.open(path)).astype(np.int64)
    assert raw.ndim == 2 and raw.min() >= 1 and raw.max() <= 14, (path, raw.shape, raw.min(), raw.max())
    anomaly = raw == 14
    return np.where(anomaly, ignore_index, raw - 1), anomaly.astype(np.uint8)


def iou_areas(pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore_index: int = 255):
    """Per-class ``(intersection, union, predicted, labelled)`` pixel counts over the labelled pixels of one image
    (``gt != ignore_index``), classes ``0..num_classes - 1``: what mmseg's ``IoUMetric`` sums over images."""
    valid = gt != ignore_index
    p, g = pred[valid].astype(np.int64), gt[valid].astype(np.int64)
    inter, area_pred, area_gt = (
        np.bincount(x[(x >= 0) & (x < num_classes)], minlength=num_classes).astype(np.float64)
        for x in (g[p == g], p, g))
    return inter, area_pred + area_gt - inter, area_pred, area_gt


def iou_reference(preds, gts, num_classes: int, ignore_index: int = 255) -> dict:
    """mmseg's ``IoUMetric(iou_metrics=['mIoU'])`` written out with numpy, in percent and unrounded: areas summed
    over the images, per class ``IoU = I / U`` and ``Acc = I / labelled`` (NaN where the denominator is 0: a
    class neither labelled nor predicted), ``mIoU`` / ``mAcc`` their NaN-skipping means, ``aAcc`` = correct /
    labelled pixels."""
    inter, union, _, area_gt = (
        sum(a) for a in zip(*(iou_areas(p, g, num_classes, ignore_index) for p, g in zip(preds, gts))))
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = np.where(union > 0, 100 * inter / union, np.nan)
        acc = np.where(area_gt > 0, 100 * inter / area_gt, np.nan)
    return dict(
        IoU=iou,
        Acc=acc,
        mIoU=float(np.nanmean(iou)),
        mAcc=float(np.nanmean(acc)),
        aAcc=float(100 * inter.sum() / area_gt.sum()))


def image_miou(pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore_index: int = 255) -> float:
    """One image's mIoU (%): mean IoU over the classes labelled or predicted on its labelled pixels."""
    inter, union, _, _ = iou_areas(pred, gt, num_classes, ignore_index)
    present = union > 0
    return float(100 * np.mean(inter[present] / union[present]))


# ----- anomaly scores written out (numpy, float64) -----
def logsumexp_classes(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z_max = z.max(0)
    return z_max + np.log(np.exp(z - z_max).sum(0))


def logit_scores(logits: np.ndarray) -> dict:
    """The logit-only scorers of ``(C, H, W)`` logits as their papers define them (higher = more anomalous):
    MSP ``-log max softmax`` (the package's log-space default), MaxLogit ``-max z``, Energy ``-logsumexp z``
    (T = 1), Entropy of the softmax."""
    z = logits.astype(np.float64)
    lse = logsumexp_classes(z)
    log_p = z - lse
    return dict(MSP=lse - z.max(0), MaxLogit=-z.max(0), Energy=-lse, Entropy=-(np.exp(log_p) * log_p).sum(0))


def sml_scores(logits: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Standardized max logit with fitted per-class ``mu`` / ``sigma``: ``-(max z - mu_k) / sigma_k``,
    ``k = argmax z``."""
    z = logits.astype(np.float64)
    k = z.argmax(0)
    return -(z.max(0) - np.asarray(mu, np.float64)[k]) / np.asarray(sigma, np.float64)[k]


def heat_scores(logit_maps, alpha: float = 0.9, kernel_size: int = 3, eps: float = 1e-6) -> list:
    """HEAT without its feature term over images in order: energy, ``k x k`` box mean (border: the neighbours
    inside the image), then ``(s - M) / D`` with ``M``, ``D`` the EMAs (weight ``alpha`` on the past, the first
    image sets them) of each image's mean and population std, updated with the image before it is normalised."""
    from numpy.lib.stride_tricks import sliding_window_view
    out, running = [], None
    r = kernel_size // 2
    for logits in logit_maps:
        energy = -logsumexp_classes(logits)
        window = (kernel_size, kernel_size)
        total = sliding_window_view(np.pad(energy, r), window).sum(axis=(-2, -1))
        count = sliding_window_view(np.pad(np.ones_like(energy), r), window).sum(axis=(-2, -1))
        s = total / count
        stats = np.array([s.mean(), s.std()])
        running = stats if running is None else alpha * running + (1 - alpha) * stats
        out.append((s - running[0]) / max(running[1], eps))
    return out


def image_ranks(scores: np.ndarray) -> np.ndarray:
    """Average ranks of an image's pixels scaled to ``[0, 1]``: ``(rank - 1) / (n - 1)``, ties share their mean."""
    from scipy.stats import rankdata
    flat = scores.reshape(-1)
    return ((rankdata(flat, method='average') - 1) / max(flat.size - 1, 1)).reshape(scores.shape)


def curve_reference(labels: np.ndarray, scores: np.ndarray, level: float = 0.95) -> dict:
    """What :func:`reference` computes (fractions), from one scikit-learn ROC curve and one PR curve: AUROC is the
    trapezoid area under the full ROC curve (``roc_auc_score``'s), AUPR the step sum
    ``sum (R_n - R_{n-1}) P_n`` (``average_precision_score``'s), FPR95 by both rules, and the best F1 with its
    threshold. Half the sorting of :func:`reference`, for tests that evaluate many score maps."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-300)
    k = int(np.argmax(f1[:-1]))
    return dict(
        AUROC=float(auc(fpr, tpr)),
        AUPR=float(-np.sum(np.diff(recall) * precision[:-1])),
        FPR95=float(fpr[np.argmax(tpr >= level)]),
        FPR95_nearest=fpr_nearest(labels, scores, level),
        F1=float(f1[k]),
        F1_threshold=float(thresholds[k]))


def protocol_reference(score_maps, label_maps, ignore_index: int = 255) -> dict:
    """Both protocols of ``AnomalyMetric`` by scikit-learn and the official FPR rule, in fractions.

    ``pooled``: every kept pixel of every image in one ranking (FPR95 at the first threshold reaching 95 %
    recall). ``per_image``: the mean over the images holding both classes of each image's AUROC, AUPR, FPR95
    (official rule: recall nearest 95 %) and F1, and the median of their best-F1 thresholds.
    """
    keep = [np.asarray(y).reshape(-1) != ignore_index for y in label_maps]
    scores = [np.asarray(s, np.float64).reshape(-1)[k] for s, k in zip(score_maps, keep)]
    labels = [np.asarray(y).reshape(-1)[k].astype(int) for y, k in zip(label_maps, keep)]
    pooled = curve_reference(np.concatenate(labels), np.concatenate(scores))
    pooled = {k: pooled[k] for k in ('AUROC', 'AUPR', 'FPR95', 'F1', 'F1_threshold')}
    rows = [curve_reference(y, s) for s, y in zip(scores, labels) if 0 < y.sum() < y.size]
    per_image = {k: float(np.mean([r[k] for r in rows])) for k in ('AUROC', 'AUPR', 'F1')}
    per_image.update(
        FPR95=float(np.mean([r['FPR95_nearest'] for r in rows])),
        F1_threshold=float(np.median([r['F1_threshold'] for r in rows])),
        num_images=len(rows))
    return dict(pooled=pooled, per_image=per_image)
