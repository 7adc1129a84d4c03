"""Test oracle: SegmentMeIfYouCan's component-level (segment) metrics, re-implemented step by step as the official
code does them (road-anomaly-benchmark ``metrics/instance_segmentation.py``: ``default_instancer``,
``segment_metrics``, ``MetricSegment.aggregate``): ``scipy.ndimage.label`` with a 3x3 structure, one loop per
component with boolean masks over the whole image, the adjusted union summed term by term. Slow (components x
pixels) and meant for small test images only; it shares no code with ``anomseg_plugins``.
"""
from typing import Dict, List, Sequence

import numpy as np
from scipy import ndimage

SIOU_THRESHOLDS = np.linspace(0.25, 0.75, 11, endpoint=True)
EIGHT = np.ones((3, 3), dtype=np.uint8)


def instances(scores: np.ndarray, labels: np.ndarray, thresh_p: float, segsize: int, instsize: int, void: int = 255):
    """Ground-truth and predicted instance labels of the ROI pixels (1-d), as ``default_instancer``.

    Prediction: ``scores > thresh_p`` (compared in float64), removed on void; components; predicted ones
    under ``segsize`` pixels removed; ground-truth ones under ``instsize`` made void, the background
    "component" 0 included; both restricted to the (shrunken) ROI."""
    flagged = np.asarray(scores, np.float64) > np.float64(thresh_p)
    anomaly_gt = (labels == 1).astype(np.uint8)
    anomaly_pred = (flagged & (labels != void)).astype(np.uint8)
    gt_inst, n_gt = ndimage.label(anomaly_gt, EIGHT)
    pred_inst, n_pred = ndimage.label(anomaly_pred, EIGHT)
    original = pred_inst.copy()
    for comp in range(n_pred + 1):
        if np.count_nonzero(original == comp) < segsize:
            pred_inst[original == comp] = 0
    labels = labels.copy()
    for comp in range(n_gt + 1):
        where = gt_inst == comp
        if np.count_nonzero(where) < instsize:
            labels[where] = void
    roi = labels != void
    return gt_inst[roi], pred_inst[roi]


def segment_metrics(gt: np.ndarray, pred: np.ndarray) -> Dict[str, np.ndarray]:
    """Per component sIoU / precision lists of one image (1-d ROI arrays), as ``segment_metrics``."""
    siou_gt: List[float] = []
    for i in np.unique(gt[gt > 0]):
        mine = gt == i
        touching = np.unique(pred[mine & (pred > 0)])
        covered = np.isin(pred, touching)
        intersection = int(np.count_nonzero(mine & covered))
        adjustment = int(np.count_nonzero(~np.isin(gt, [0, i]) & covered))
        union = int(np.count_nonzero(covered)) + int(np.count_nonzero(mine)) - intersection - adjustment
        siou_gt.append(intersection / union)
    siou_pred: List[float] = []
    prec_pred: List[float] = []
    for j in np.unique(pred[pred > 0]):
        mine = pred == j
        touching = np.unique(gt[mine & (gt > 0)])
        covered = np.isin(gt, touching)
        intersection = int(np.count_nonzero(mine & covered))
        adjustment = int(np.count_nonzero(~np.isin(pred, [0, j]) & covered))
        union = int(np.count_nonzero(covered)) + int(np.count_nonzero(mine)) - intersection - adjustment
        siou_pred.append(intersection / union)
        prec_pred.append(intersection / int(np.count_nonzero(mine)))
    out = dict(sIoU_gt=np.array(siou_gt), sIoU_pred=np.array(siou_pred), prec_pred=np.array(prec_pred))
    for t in SIOU_THRESHOLDS:
        out[f'tp_{t}'] = int(np.count_nonzero(out['sIoU_gt'] >= t))
        out[f'fn_{t}'] = int(np.count_nonzero(out['sIoU_gt'] < t))
        out[f'fp_{t}'] = int(np.count_nonzero(out['prec_pred'] < t))
    return out


def frame(scores, labels, thresh_p, segsize, instsize, void=255):
    """Official per-frame result of one image."""
    return segment_metrics(*instances(np.asarray(scores), np.asarray(labels), thresh_p, segsize, instsize, void))


def aggregate(frames: Sequence[dict]) -> Dict[str, float]:
    """``MetricSegment.aggregate`` (in percent, NaN where the official code divides by zero)."""
    n_gt = sum(len(f['sIoU_gt']) for f in frames)
    n_pred = sum(len(f['prec_pred']) for f in frames)
    nan = float('nan')
    out = dict(
        sIoU=100 * sum(np.sum(f['sIoU_gt']) for f in frames) / n_gt if n_gt else nan,
        PPV=100 * sum(np.sum(f['prec_pred']) for f in frames) / n_pred if n_pred else nan,
        sIoU_pred=100 * sum(np.sum(f['sIoU_pred']) for f in frames) / n_pred if n_pred else nan,
        num_gt_components=n_gt,
        num_pred_components=n_pred)
    f1s = []
    for t in SIOU_THRESHOLDS:
        tp = sum(f[f'tp_{t}'] for f in frames)
        fn = sum(f[f'fn_{t}'] for f in frames)
        fp = sum(f[f'fp_{t}'] for f in frames)
        f1 = 2 * tp / (2 * tp + fn + fp) if 2 * tp + fn + fp else nan
        f1s.append(f1)
        for name in (25, 50, 75):
            if abs(t - name / 100) < 1e-9:
                out[f'F1_{name}'] = 100 * f1
                out.update({f'tp_{name}': tp, f'fn_{name}': fn, f'fp_{name}': fp})
    out['F1_mean'] = 100 * float(np.mean(f1s))
    return out


def evaluate(maps: Sequence[np.ndarray],
             labels: Sequence[np.ndarray],
             thresh_p: float,
             segsize: int,
             instsize: int,
             void: int = 255) -> Dict[str, float]:
    """Aggregate over a set of (score map, label map) pairs at one ``thresh_p`` (rule ``score > thresh_p``)."""
    return aggregate([frame(s, y, thresh_p, segsize, instsize, void) for s, y in zip(maps, labels)])


def blobs(rng: np.random.Generator, shape=(48, 64), num_gt=4, num_noise=5, void=True):
    """A random (scores float32, labels uint8) image: elliptic anomaly blobs (some tiny, some touching), a void
    band and border, scores high on the anomalies with noise and false-positive blobs."""
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    labels = np.zeros(shape, np.uint8)
    scores = rng.normal(0.0, 0.35, shape)
    for _ in range(int(rng.integers(0, num_gt + 1))):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(1, 9), rng.uniform(1, 12)
        blob = ((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 <= 1
        labels[blob] = 1
        scores[blob] += rng.uniform(0.3, 2.0)
    for _ in range(int(rng.integers(0, num_noise + 1))):  # false positives and partial detections
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(1, 6)
        scores[(yy - cy)**2 + (xx - cx)**2 <= r * r] += rng.uniform(0.5, 1.5)
    if void:
        labels[:, :int(rng.integers(0, 4))] = 255
        row = int(rng.integers(0, h))
        labels[row:row + int(rng.integers(0, 3)), :] = 255
    return scores.astype(np.float32), labels
