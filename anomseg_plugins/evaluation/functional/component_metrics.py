"""SegmentMeIfYouCan component-level metrics (sIoU, PPV, mean F1), vectorised, and their pooled-threshold accumulator.

Official definition (Chan et al., NeurIPS 2021 Datasets and Benchmarks; github.com/SegmentMeIfYouCan/
road-anomaly-benchmark, ``metrics/instance_segmentation.py``: ``default_instancer``, ``segment_metrics`` and
``MetricSegment.aggregate``), per image, with ``label`` 0 = normal, 1 = anomaly, ``ignore_index`` = void:

1. prediction = ``score > thresh_p`` outside the void; ``thresh_p`` is the *pooled* pixel best-F1 threshold of
   the whole set;
2. 8-connected components (``scipy.ndimage.label`` with a 3x3 structure) of the ground truth (``label == 1``) and
   of the prediction; predicted components of fewer than ``min_pred_size`` pixels are dropped (``thresh_segsize``:
   500 AnomalyTrack, 50 ObstacleTrack); ground-truth components of fewer than ``min_gt_size`` pixels
   (``thresh_instsize``: 100 / 10) become void, which shrinks the region of interest (ROI); everything is then
   restricted to the ROI (a predicted component keeps its full-image size for the size filter, but only its ROI
   pixels count below);
3. per ground-truth component ``g``, with ``S`` the predicted components it touches:
   ``sIoU = |g & S| / (|S| + |g| - |g & S| - adjustment)``, ``adjustment`` = pixels of ``S`` on *other*
   ground-truth components. Written with the pair counts ``n(g, p)`` (``p = 0`` / ``g = 0``: no component) the
   denominator is ``|g| + sum_{p in S} n(0, p)``: the ground truth plus the touching predictions' pixels on the
   background. Per predicted component ``p``, mirrored: ``sIoU = |p & T| / (|p| + sum_{g in T} n(g, 0))``, and
   ``precision = |p & T| / |p|`` (the PPV of the component). Integer numerator and denominator as in the
   official code, so the quotients are bit-identical;
4. over the set: ``sIoU`` = mean over all ground-truth components of all images, ``PPV`` = mean over all predicted
   components; for each of the 11 sIoU thresholds ``t`` in ``linspace(0.25, 0.75, 11)``: ``tp`` = ground-truth
   components with ``sIoU >= t``, ``fn`` = those with ``sIoU < t``, ``fp`` = predicted components with
   ``precision < t``, counts summed over images, ``F1_t = 2 tp / (2 tp + fn + fp)``; ``F1_mean`` = mean of
   the 11 ``F1_t``.

The official loops cost O(components x pixels) per image (``np.isin`` over the image for every component); here
one connected-component pass (OpenCV's 8-connectivity labelling, the same partition as scipy's 3x3 structure) and
a handful of ``np.bincount`` / ``np.unique`` over the pixels that are ground truth or predicted give every
component at once (:func:`image_component_stats`, :func:`image_components`). Quirks of the official code, kept
so the numbers agree: the strict ``>`` of the threshold; the ground-truth size loop also visits component 0 (all
pixels not labelled anomalous, void included): if there are fewer than ``min_gt_size`` of them they all become
void (only matters for tiny images); the same loop over the predicted components' 0 is a no-op; the official
``segmentation_filtered[mask_roi == 255] = 0`` is a no-op (a boolean is never 255) and only feeds a
visualisation.

**The threshold.** ``thresh_p`` is the pooled best-F1 threshold, known only once every image has been scored,
while :class:`~anomseg_plugins.evaluation.AnomalyMetric` keeps no score maps (memory flat in the pixel count:
its :class:`~.pooled_histogram.ScoreHistogram` gives the pooled best F1 and its ``F1_threshold``).
:class:`ComponentAccumulator` resolves this per scorer:

- *exact mode* (default while it fits): each image's scores are cached as their histogram bin codes (the
  order-preserving ``num_bits`` quantisation of :mod:`.pooled_histogram`; void pixels set to the lowest code),
  byte-shuffled and zlib-compressed, with the compressed label map, up to ``cache_bytes``. At the end the
  components of every image are computed at the final pooled threshold, exactly as the official code would.
- *grid mode* (when adding an image would exceed ``cache_bytes``): a grid of thresholds is built from the
  *current* pooled histogram around its current best-F1 threshold: the bins at which the number of flagged
  pixels (pooled) is that of the current threshold times ``2^e``, ``e`` in steps of 1/4 from -4 to 4 (counts
  x1/16 .. x16 in steps of 19 %) and, near the centre, in steps of 1/16 from -1/2 to 1/2 (x0.71 .. x1.41 in steps
  of 4.4 %): 45 thresholds by default (fewer where neighbouring targets fall on one histogram level). The
  cached images' component statistics are computed at every grid threshold and the cache is freed; from then
  on every image's statistics are computed at the grid thresholds when it is added (only sums are kept). At
  the end the grid threshold nearest the final threshold in pooled-rank terms (flagged-pixel count, log
  ratio) is used, and reported: ``threshold_gap`` = (pooled flagged pixels at the used threshold) / (those at
  the exact threshold) - 1, 0 when the final threshold is a grid point. A warning is logged when the final
  threshold falls outside the grid. Measured on four random sets of 60 images of 96 x 128 (blobs; the cache
  overflowing after 10 images; in two sets the anomalies score higher after the switch, moving the threshold):
  ``|threshold_gap|`` <= 1.0 % and sIoU, PPV, mean F1 within 0.6 points of exact mode. On small sets where a few
  pixels decide components the difference can be larger (3 points of PPV at a 0.65 % gap on 16 images of 48 x
  64, see the tests).

Costs, measured on 720 x 1280 maps (a bilinearly upsampled MaxLogit map, one core): caching ~36 ms an image and
~1.8 bytes a pixel (1.6 MiB an image: the StreetHazards test split needs ~2.5 GB per scorer for exact mode; the
default cap of 1 GiB, shared by the scorers, switches to grid mode long before); computing an image at one
threshold ~40 ms (at the end of exact mode); grid mode ~250 ms an image (45 thresholds). Per image, the candidate
pixels (flagged at the lowest threshold evaluated) are labelled once, their components too small to survive
at any threshold pruned, and every threshold's work restricted to the bounding box of what is left.

Threshold convention: ``ScoreHistogram`` reports ``F1_threshold`` as the lowest score of the best bin with the
rule ``anomalous <=> score >= F1_threshold``; its flagged pixels are exactly those of the reported pooled best
F1. The component prediction uses these same pixels (bin code ``>=`` the threshold's bin). In the official
``score > thresh_p`` form this is ``thresh_p`` = the largest float32 below ``F1_threshold``
(:func:`official_threshold`), which is what the tests feed the reference implementation. (The official code
finds its own ``thresh_p`` on a curve binned per frame, so the two thresholds can differ slightly; the
components computed at a given threshold are the official ones.)

Sizes are in pixels of the evaluated maps (the ground-truth resolution): the official limits assume SMIYC's
native resolutions (2048 x 1024 AnomalyTrack, 1920 x 1080 / 2048 x 1024 ObstacleTrack).
"""
import logging
import math
import zlib
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch

from .level_metrics import check_ignore_index
from .pooled_histogram import ScoreHistogram, bin_lower_edges, score_bins

logger = logging.getLogger(__name__)

ArrayLike = Union[np.ndarray, torch.Tensor]

#: sIoU thresholds of the official aggregate (``np.linspace(0.25, 0.75, 11, endpoint=True)``).
SIOU_THRESHOLDS = np.linspace(0.25, 0.75, 11, endpoint=True)
#: ``{track: (min_pred_size, min_gt_size)}``: the official ``thresh_segsize`` / ``thresh_instsize``.
COMPONENT_TRACKS = {'anomaly': (500, 100), 'obstacle': (50, 10)}
#: Result names of :func:`aggregate_component_stats` given in percent.
COMPONENT_METRIC_NAMES = ('sIoU', 'PPV', 'F1_mean', 'F1_25', 'F1_50', 'F1_75')

_NT = SIOU_THRESHOLDS.size
#: Layout of a statistics vector (float64; counts are exact integers): per sIoU threshold ``tp``, ``fn``, ``fp``,
#: then the number of ground-truth components and the sum of their sIoU, the number of predicted components and
#: the sums of their sIoU and precision.
STAT_FIELDS = tuple(f'{kind}_{i}' for kind in ('tp', 'fn', 'fp')
                    for i in range(_NT)) + ('num_gt', 'sIoU_gt_sum', 'num_pred', 'sIoU_pred_sum', 'prec_pred_sum')
NUM_STATS = len(STAT_FIELDS)
_TP, _FN, _FP = slice(0, _NT), slice(_NT, 2 * _NT), slice(2 * _NT, 3 * _NT)
_NUM_GT, _SIOU_GT, _NUM_PRED, _SIOU_PRED, _PREC = range(3 * _NT, 3 * _NT + 5)
_VOID_CODE = np.iinfo(np.int32).min  # bin code of void pixels in the cache: below every threshold
_VOID = 255  # void label in the cache (whatever the ignore_index)


def component_sizes(track: str = 'anomaly',
                    min_pred_size: Optional[int] = None,
                    min_gt_size: Optional[int] = None) -> Tuple[int, int]:
    """``(min_pred_size, min_gt_size)`` of a track preset (``'anomaly'``: 500 / 100, ``'obstacle'``: 50 / 10),
    with explicit values overriding the preset."""
    if track not in COMPONENT_TRACKS:
        raise ValueError(f'component track must be one of {sorted(COMPONENT_TRACKS)} (SegmentMeIfYouCan '
                         f'AnomalyTrack / ObstacleTrack size limits), got {track!r}')
    pred, gt = COMPONENT_TRACKS[track]
    pred = pred if min_pred_size is None else min_pred_size
    gt = gt if min_gt_size is None else min_gt_size
    for key, value in (('min_pred_size', pred), ('min_gt_size', gt)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise ValueError(f'component {key} must be an int >= 0 (pixels), got {value!r}')
    return int(pred), int(gt)


def official_threshold(f1_threshold: float) -> float:
    """The official ``thresh_p`` (rule ``score > thresh_p``) flagging the same float32 scores as
    ``score >= f1_threshold``: the largest float32 below ``f1_threshold``."""
    return float(np.nextafter(np.float32(f1_threshold), np.float32(-np.inf)))


# ---------------------------------------------------------------------------------------------- one image
def _labels(labels: ArrayLike, name: str) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.ndim == 3 and labels.shape[0] == 1:
        labels = labels[0]
    if labels.ndim != 2:
        raise ValueError(f'{name}: component metrics need a 2-d (H, W) label map, got shape {labels.shape}')
    return labels


def _components(mask: np.ndarray) -> Tuple[int, np.ndarray]:
    """``(count incl. background, (H, W) int32 labels)`` of the 8-connected components of a bool mask.

    An empty mask (a zero-size side) has the background only: OpenCV would crash the process on it (segfault).
    """
    if mask.size == 0:
        return 1, np.zeros(mask.shape, np.int32)
    num, lab = cv2.connectedComponents(np.ascontiguousarray(mask).view(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    return int(num), lab


class _ImageGroundTruth:
    """The threshold-independent half of one image: ground-truth components, void, ROI and where predictions can be.

    Every prediction evaluated must lie inside ``candidates`` (e.g. the prediction at the lowest threshold; ``None``:
    anywhere). Candidate components smaller than ``min_pred_size`` are pruned first: a prediction at a higher
    threshold inside one is smaller still and would be dropped, and pruning it changes no other component (a
    candidate component is a maximal connected set). Per threshold the caller flags pixels on ``box`` (the bounding
    box of what is left) and passes ``flags & mask`` to :meth:`stats`; only the ROI pixels inside that box that
    are candidates are visited (ground-truth pixels elsewhere can never be predicted and only count as missed).

    Args:
        labels: ``(H, W)`` 0 normal, 1 anomaly, ``ignore_index`` void.
    """

    def __init__(self, labels: np.ndarray, ignore_index: int, min_gt_size: int, min_pred_size: int,
                 candidates: Optional[np.ndarray], name: str) -> None:
        valid = labels != check_ignore_index(ignore_index, name)
        gt = labels == 1
        bad = valid & ~gt & (labels != 0)
        if bad.any():
            values = np.unique(labels[bad])[:10].tolist()
            raise ValueError(f'{name}: anomaly labels must be 0 (normal), 1 (anomaly) or ignore_index='
                             f'{ignore_index}; found {values}')
        self.min_pred_size = min_pred_size
        self.num_gt, gt_lab = _components(gt)
        sizes = np.bincount(gt_lab.reshape(-1), minlength=self.num_gt)
        small = sizes < min_gt_size  # index 0 = every pixel not labelled 1 (official quirk, see the module doc)
        roi = valid & ~small[gt_lab]
        self.gt_size = np.bincount(gt_lab[roi], minlength=self.num_gt)  # 0 for voided components
        cand = valid if candidates is None else candidates & valid
        if min_pred_size > 1 and cand.any():
            num, lab = _components(cand)
            big = np.bincount(lab.reshape(-1), minlength=num) >= min_pred_size
            big[0] = False
            cand = big[lab]
        rows, cols = np.flatnonzero(cand.any(axis=1)), np.flatnonzero(cand.any(axis=0))
        if rows.size == 0:
            rows = cols = np.zeros(1, np.int64)
        self.box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        self.mask = np.ascontiguousarray(cand[self.box])
        self.index = np.flatnonzero(self.mask & roi[self.box])  # candidate ROI pixels, flat in the box
        self.gt = gt_lab[self.box].reshape(-1)[self.index]

    def stats(self, pred: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-component ``(sIoU_gt, sIoU_pred, prec_pred)`` of the prediction ``pred`` (bool on ``box``, inside
        ``mask``), components in label order."""
        num_pred, pred_lab = _components(pred)
        flat = pred_lab.reshape(-1)
        keep = np.bincount(flat, minlength=num_pred) >= self.min_pred_size  # sizes on the whole image
        keep[0] = False
        p = flat[self.index]
        p = np.where(keep[p], p, 0)
        g = self.gt
        ng, npd = self.num_gt, num_pred
        g_size = self.gt_size
        p_size = np.bincount(p, minlength=npd)
        bg_g, bg_p = g == 0, p == 0
        both = ~(bg_g | bg_p)
        on_bg = np.bincount(p[bg_g], minlength=npd)  # n(0, p): predicted pixels on no ground truth
        gt_inter = np.bincount(g[both], minlength=ng)  # ground-truth pixels predicted
        missed = g_size - gt_inter  # n(g, 0)
        pairs = np.unique(g[both].astype(np.int64) * npd + p[both])
        pg, pp = pairs // npd, pairs % npd
        gt_ids = np.flatnonzero(g_size[1:]) + 1
        pred_ids = np.flatnonzero(p_size[1:]) + 1
        gt_union = g_size + np.bincount(pg, weights=on_bg[pp], minlength=ng).astype(np.int64)
        pred_inter = p_size - on_bg
        pred_union = p_size + np.bincount(pp, weights=missed[pg], minlength=npd).astype(np.int64)
        siou_gt = gt_inter[gt_ids] / gt_union[gt_ids]
        siou_pred = pred_inter[pred_ids] / pred_union[pred_ids]
        prec = pred_inter[pred_ids] / p_size[pred_ids]
        return siou_gt, siou_pred, prec


def _stats_vector(siou_gt: np.ndarray, siou_pred: np.ndarray, prec: np.ndarray) -> np.ndarray:
    out = np.zeros(NUM_STATS, np.float64)
    out[_TP] = np.count_nonzero(siou_gt[:, None] >= SIOU_THRESHOLDS, axis=0)
    out[_FN] = np.count_nonzero(siou_gt[:, None] < SIOU_THRESHOLDS, axis=0)
    out[_FP] = np.count_nonzero(prec[:, None] < SIOU_THRESHOLDS, axis=0)
    out[_NUM_GT], out[_SIOU_GT] = siou_gt.size, np.sum(siou_gt)
    out[_NUM_PRED], out[_SIOU_PRED], out[_PREC] = siou_pred.size, np.sum(siou_pred), np.sum(prec)
    return out


def _scores(scores: ArrayLike) -> np.ndarray:
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().float().cpu().numpy()
    return np.asarray(scores, dtype=np.float32)


def image_components(scores: ArrayLike,
                     labels: ArrayLike,
                     threshold: float,
                     min_pred_size: int,
                     min_gt_size: int,
                     ignore_index: int = 255,
                     name: str = 'scores') -> Dict[str, np.ndarray]:
    """Per-component values of one image at the official rule ``score > threshold`` (float32 scores).

    Returns:
        ``sIoU_gt`` (one per ground-truth component in the ROI), ``sIoU_pred`` and ``prec_pred`` (one per
        predicted component in the ROI), float64, as the official ``segment_metrics`` computes them.
    """
    labels = _labels(labels, name)
    scores = _scores(scores).reshape(labels.shape)
    flags = scores > np.float64(threshold)
    gt = _ImageGroundTruth(labels, ignore_index, min_gt_size, min_pred_size, flags, name)
    siou_gt, siou_pred, prec = gt.stats(flags[gt.box] & gt.mask)
    return dict(sIoU_gt=siou_gt, sIoU_pred=siou_pred, prec_pred=prec)


def image_component_stats(scores: ArrayLike,
                          labels: ArrayLike,
                          thresholds: Union[float, Sequence[float]],
                          min_pred_size: int,
                          min_gt_size: int,
                          ignore_index: int = 255,
                          name: str = 'scores') -> np.ndarray:
    """Statistics vectors (``STAT_FIELDS``) of one image at each of ``thresholds`` (rule ``score > t``).

    Args:
        scores: ``(H, W)`` anomaly scores (compared as float32).
        labels: ``(H, W)`` (or ``(1, H, W)``) 0 normal, 1 anomaly, ``ignore_index`` void.
        thresholds: one threshold or a sequence.
        min_pred_size: predicted components with fewer pixels are dropped (``thresh_segsize``).
        min_gt_size: ground-truth components with fewer pixels become void (``thresh_instsize``).

    Returns:
        ``(T, NUM_STATS)`` float64; sum them over images and pass them to :func:`aggregate_component_stats`.
    """
    labels = _labels(labels, name)
    scores = _scores(scores).reshape(labels.shape)
    thr = np.atleast_1d(np.asarray(thresholds, np.float64))  # compared exactly: float32 scores widen losslessly
    if thr.size == 0:
        return np.zeros((0, NUM_STATS))
    gt = _ImageGroundTruth(labels, ignore_index, min_gt_size, min_pred_size, scores > thr.min(), name)
    box = scores[gt.box]
    return np.stack([_stats_vector(*gt.stats((box > t) & gt.mask)) for t in thr])


def _codes_stats(codes: np.ndarray, labels: np.ndarray, grid: np.ndarray, min_pred_size: int, min_gt_size: int,
                 ignore_index: int, name: str) -> np.ndarray:
    """As :func:`image_component_stats`, on histogram bin codes with the rule ``code >= g`` for each ``g``."""
    if grid.size == 0:
        return np.zeros((0, NUM_STATS))
    gt = _ImageGroundTruth(labels, ignore_index, min_gt_size, min_pred_size, codes >= grid.min(), name)
    box = codes[gt.box]
    return np.stack([_stats_vector(*gt.stats((box >= g) & gt.mask)) for g in grid])


def aggregate_component_stats(stats: np.ndarray) -> Dict[str, float]:
    """The official aggregate of summed statistics (``(NUM_STATS,)``, e.g. the sum of the images' vectors).

    Returns:
        ``sIoU`` (mean sIoU of the ground-truth components), ``PPV`` (mean precision of the predicted
        components), ``F1_mean`` and ``F1_25`` / ``F1_50`` / ``F1_75`` (at sIoU thresholds 0.25 / 0.5 / 0.75) in
        percent; ``sIoU_pred`` (mean sIoU of the predicted components, percent); ``num_gt_components``,
        ``num_pred_components``; ``tp_25``, ``fn_25``, ``fp_25``, ``..._50``, ``..._75`` and ``tp_mean``,
        ``fn_mean``, ``fp_mean``. NaN where a mean has no component (the official code divides by zero), and
        everywhere (counts included) for NaN statistics (no threshold: see :meth:`ComponentAccumulator.result`).
    """
    stats = np.asarray(stats, np.float64).reshape(-1)
    if stats.size != NUM_STATS:
        raise ValueError(f'component statistics must have {NUM_STATS} entries (STAT_FIELDS), got {stats.size}')
    if np.isnan(stats).any():
        keys = ('sIoU', 'PPV', 'F1_mean', 'sIoU_pred', 'num_gt_components', 'num_pred_components', 'F1_25', 'tp_25',
                'fn_25', 'fp_25', 'F1_50', 'tp_50', 'fn_50', 'fp_50', 'F1_75', 'tp_75', 'fn_75', 'fp_75', 'tp_mean',
                'fn_mean', 'fp_mean')
        return {k: float('nan') for k in keys}
    tp, fn, fp = stats[_TP], stats[_FN], stats[_FP]
    num_gt, num_pred = stats[_NUM_GT], stats[_NUM_PRED]
    with np.errstate(invalid='ignore', divide='ignore'):
        f1 = 2 * tp / (2 * tp + fn + fp)
    nan = float('nan')
    out = dict(
        sIoU=100 * stats[_SIOU_GT] / num_gt if num_gt else nan,
        PPV=100 * stats[_PREC] / num_pred if num_pred else nan,
        F1_mean=100 * float(np.mean(f1)),
        sIoU_pred=100 * stats[_SIOU_PRED] / num_pred if num_pred else nan,
        num_gt_components=int(num_gt),
        num_pred_components=int(num_pred))
    for pct in (25, 50, 75):
        i = int(np.flatnonzero(np.isclose(SIOU_THRESHOLDS, pct / 100))[0])
        out[f'F1_{pct}'] = 100 * float(f1[i])
        out.update({f'tp_{pct}': int(tp[i]), f'fn_{pct}': int(fn[i]), f'fp_{pct}': int(fp[i])})
    out.update(tp_mean=float(np.mean(tp)), fn_mean=float(np.mean(fn)), fp_mean=float(np.mean(fp)))
    return {k: float(v) if isinstance(v, np.floating) else v for k, v in out.items()}


# ---------------------------------------------------------------------------------------------- accumulator
def _compress(data: bytes) -> bytes:
    """zlib with run-length matching only: on score codes ~3 % larger than the default strategy, ~40 % faster."""
    engine = zlib.compressobj(1, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    return engine.compress(data) + engine.flush()


def _compress_codes(codes: np.ndarray) -> bytes:
    """int32 codes, byte-shuffled (the high bytes of neighbouring codes repeat), compressed."""
    return _compress(np.ascontiguousarray(codes.reshape(-1).view(np.uint8).reshape(-1, 4).T).tobytes())


def _decompress_codes(blob: bytes, shape: Tuple[int, int]) -> np.ndarray:
    planes = np.frombuffer(zlib.decompress(blob), np.uint8).reshape(4, -1)
    return np.ascontiguousarray(planes.T).view(np.int32).reshape(shape)


class ComponentAccumulator:
    """Component statistics of one scorer over a set, at the pooled best-F1 threshold known only at the end.

    See the module docstring for the exact and grid modes. Use: :meth:`add` every image (after adding it to the
    pooled histogram, which is passed along), then :meth:`result` with the final pooled histogram.

    Args:
        min_pred_size: predicted components with fewer pixels are dropped.
        min_gt_size: ground-truth components with fewer pixels become void.
        num_bits: bits of the histogram's bin codes (that of the pooled :class:`ScoreHistogram`).
        ignore_index: void label.
        cache_bytes: byte cap of the compressed cache (exact mode); exceeding it switches to grid mode.
        grid_octaves: the grid spans flagged-pixel counts of the current threshold x ``2^-octaves .. 2^octaves``.
        grid_per_octave: grid thresholds per factor 2 of the flagged-pixel count.
        fine_octaves: within x ``2^-fine_octaves .. 2^fine_octaves`` of the current count the grid is denser, ...
        fine_per_octave: ... with this many thresholds per factor 2 (the final threshold is usually close to the
            current one: the default 16 per octave within x0.71 .. x1.41 leaves gaps of at most ~2 %).
        name: named in messages (the scorer).
    """

    def __init__(self,
                 min_pred_size: int,
                 min_gt_size: int,
                 num_bits: int = 22,
                 ignore_index: int = 255,
                 cache_bytes: int = 1 << 30,
                 grid_octaves: int = 4,
                 grid_per_octave: int = 4,
                 fine_octaves: float = 0.5,
                 fine_per_octave: int = 16,
                 name: str = 'scores') -> None:
        self.min_pred_size, self.min_gt_size = component_sizes('anomaly', min_pred_size, min_gt_size)
        self.num_bits = int(num_bits)
        self.ignore_index = check_ignore_index(ignore_index, name)
        if not isinstance(cache_bytes, (int, np.integer)) or cache_bytes < 0:
            raise ValueError(f'{name}: component cache_bytes must be an int >= 0, got {cache_bytes!r}')
        self.cache_bytes = int(cache_bytes)
        if grid_octaves < 1 or grid_per_octave < 1 or fine_octaves < 0 or fine_per_octave < 1:
            raise ValueError(f'{name}: grid_octaves, grid_per_octave, fine_per_octave must be >= 1 and fine_octaves '
                             f'>= 0, got {grid_octaves}, {grid_per_octave}, {fine_per_octave}, {fine_octaves}')
        coarse = np.arange(-grid_octaves * grid_per_octave, grid_octaves * grid_per_octave + 1) / grid_per_octave
        fine_steps = int(math.floor(fine_octaves * fine_per_octave))
        fine = np.arange(-fine_steps, fine_steps + 1) / fine_per_octave
        #: log2 of the grid's flagged-pixel counts relative to the current best-F1 threshold's.
        self.grid_exponents = np.unique(np.r_[coarse, fine])
        self.name = name
        self.reset()

    def reset(self) -> None:
        """Empty the accumulator (back to exact mode)."""
        self._cache: List[Tuple[Tuple[int, int], bytes, bytes]] = []
        self._cached_bytes = 0
        self.grid: Optional[np.ndarray] = None  # bin codes, descending; None in exact mode
        self._grid_totals: Optional[np.ndarray] = None
        self._last: Optional[np.ndarray] = None  # grid statistics of the last image (for drop_last)
        self.num_images = 0

    @property
    def mode(self) -> str:
        """``'exact'`` (images cached) or ``'grid'`` (statistics at fixed grid thresholds)."""
        return 'exact' if self.grid is None else 'grid'

    @property
    def nbytes(self) -> int:
        """Bytes held by the compressed cache."""
        return self._cached_bytes

    def settings(self) -> Tuple[int, int, int, object]:
        """``(min_pred_size, min_gt_size, num_bits, ignore_index)``: what must agree for :meth:`merge`."""
        return self.min_pred_size, self.min_gt_size, self.num_bits, self.ignore_index

    # ------------------------------------------------------------------ adding
    def add(self, scores: ArrayLike, labels: ArrayLike, hist: ScoreHistogram) -> None:
        """Add one image: ``scores`` ``(H, W)``, ``labels`` ``(H, W)``; ``hist`` is the pooled histogram that
        already holds this image (used to build the threshold grid if the cache overflows)."""
        labels = _labels(labels, self.name)
        scores = _scores(scores)
        if scores.shape != labels.shape:
            raise ValueError(f'{self.name}: scores of shape {scores.shape} and labels of shape {labels.shape} differ')
        self._check_hist(hist)
        void = labels == self.ignore_index
        bad = ~void & (labels != 0) & (labels != 1)
        if bad.any():
            raise ValueError(f'{self.name}: anomaly labels must be 0 (normal), 1 (anomaly) or ignore_index='
                             f'{self.ignore_index}; found {np.unique(labels[bad])[:10].tolist()}')
        labels = np.where(void, _VOID, labels).astype(np.uint8)  # cached and evaluated with void = 255
        codes = score_bins(scores, self.num_bits).astype(np.int32)
        codes[void] = _VOID_CODE
        self.num_images += 1
        if self.grid is not None:
            self._last = self._stats(codes, labels, self.grid)
            self._grid_totals += self._last
            return
        entry = (labels.shape, _compress_codes(codes), _compress(np.ascontiguousarray(labels).tobytes()))
        size = len(entry[1]) + len(entry[2])
        if self._cached_bytes + size > self.cache_bytes and hist.num_pos + hist.num_neg > 0:
            self._switch_to_grid(self._grid_from(hist), pending=(codes, labels))
        else:
            self._cache.append(entry)
            self._cached_bytes += size

    def _check_hist(self, hist: ScoreHistogram) -> None:
        if hist.num_bits != self.num_bits:
            raise ValueError(f'{self.name}: the pooled histogram has {hist.num_bits} bits, the component '
                             f'accumulator {self.num_bits}')

    def _stats(self, codes: np.ndarray, labels: np.ndarray, grid: np.ndarray) -> np.ndarray:
        return _codes_stats(codes, labels, grid, self.min_pred_size, self.min_gt_size, _VOID, self.name)

    def _cached_images(self):
        for shape, codes, labels in self._cache:
            yield _decompress_codes(codes, shape), np.frombuffer(zlib.decompress(labels), np.uint8).reshape(shape)

    def _switch_to_grid(self, grid: np.ndarray, pending: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> None:
        """Compute the cached images (and ``pending``) at ``grid``, free the cache, continue in grid mode."""
        totals = np.zeros((grid.size, NUM_STATS))
        last = None
        for codes, labels in self._cached_images():
            last = self._stats(codes, labels, grid)
            totals += last
        if pending is not None:
            last = self._stats(*pending, grid)
            totals += last
        logger.info(f'{self.name}: component cache reached {self._cached_bytes / 2**20:.1f} MiB '
                    f'(cap {self.cache_bytes / 2**20:.1f} MiB) after {self.num_images} images; component metrics '
                    f'continue on a grid of {grid.size} thresholds around the current best-F1 threshold')
        self.grid, self._grid_totals, self._last = grid, totals, last
        self._cache, self._cached_bytes = [], 0

    def _grid_from(self, hist: ScoreHistogram) -> np.ndarray:
        """Grid bin codes (descending) around ``hist``'s best-F1 threshold, spaced in flagged-pixel counts."""
        codes, flagged = _level_codes(hist)
        best = _best_code(hist)
        if best is None:
            centre = max(1, int(math.ceil(0.01 * flagged[-1])))
            logger.warning(f'{self.name}: no anomalous pixel yet when the component cache overflowed; the threshold '
                           'grid is centred on the top 1% of the pixels')
        else:
            centre = int(flagged[np.searchsorted(-codes, -best)])
        targets = centre * 2.0**self.grid_exponents
        idx = np.clip(np.searchsorted(flagged, targets), 0, flagged.size - 1)
        below = np.clip(idx - 1, 0, None)
        # nearer in log distance: log t - log b <= log i - log t <=> t^2 <= b * i (ties: below, the higher threshold);
        # t^2 = centre^2 * 2^(2e) is exact where a tie with integer counts can occur (2e an integer)
        targets_sq = float(centre)**2 * 2.0**(2 * self.grid_exponents)
        use_below = targets_sq <= flagged[below].astype(np.float64) * flagged[idx]
        chosen = np.where(use_below, below, idx)
        grid = np.unique(codes[chosen])[::-1]
        if best is not None and best not in grid:  # k = 0 is the current threshold itself
            grid = np.unique(np.r_[grid, best])[::-1]
        return grid.astype(np.int64)

    def drop_last(self) -> None:
        """Undo the last :meth:`add` (the sample a distributed sampler repeats)."""
        if self.num_images == 0:
            return
        if self.grid is None:
            if self._cache:
                shape, codes, labels = self._cache.pop()
                self._cached_bytes -= len(codes) + len(labels)
        elif self._last is not None:
            self._grid_totals -= self._last
        else:
            raise RuntimeError(f'{self.name}: cannot remove the last image from the component statistics twice')
        self._last = None
        self.num_images -= 1

    def merge(self, other: 'ComponentAccumulator') -> 'ComponentAccumulator':
        """Fold ``other`` (same settings, other images) into this accumulator.

        Exact + exact: caches concatenated (the cap is checked at the next :meth:`add`). Exact + grid: the
        exact side's images are computed at the grid side's thresholds. Grid + grid: only with the same grid.
        """
        if other.settings() != self.settings():
            raise ValueError(f'{self.name}: cannot merge component accumulators with different settings '
                             f'(min_pred_size, min_gt_size, num_bits, ignore_index): {self.settings()} vs '
                             f'{other.settings()}')
        if other.grid is None:
            if self.grid is None:
                self._cache.extend(other._cache)
                self._cached_bytes += other._cached_bytes
            else:
                for codes, labels in other._cached_images():
                    self._grid_totals += self._stats(codes, labels, self.grid)
        elif self.grid is None:
            self._switch_to_grid(other.grid.copy())
            self._grid_totals += other._grid_totals
        elif np.array_equal(self.grid, other.grid):
            self._grid_totals += other._grid_totals
        else:
            raise ValueError(f'{self.name}: both component accumulators switched to grid mode with different '
                             'threshold grids; their statistics cannot be combined. Raise cache_bytes so that '
                             'at most one shard overflows.')
        self._last = None
        self.num_images += other.num_images
        return self

    # ------------------------------------------------------------------ result
    def result(self, hist: ScoreHistogram) -> Dict[str, object]:
        """Summed statistics at the final pooled best-F1 threshold of ``hist`` (exact mode) or at the nearest
        grid threshold (grid mode).

        Returns:
            ``stats`` (``(NUM_STATS,)``), ``mode``, ``threshold`` (score threshold used, rule
            ``score >= threshold``), ``F1_threshold`` (the exact pooled one), ``threshold_gap`` (relative
            difference of the pooled flagged-pixel counts of the two; 0 in exact mode), ``grid_outside``
            (grid mode: the final threshold lies outside the grid), ``num_images``; NaN threshold and stats
            when the set holds no anomalous pixel (no best-F1 threshold).
        """
        self._check_hist(hist)
        best = _best_code(hist)
        out = dict(
            mode=self.mode,
            num_images=self.num_images,
            F1_threshold=float('nan'),
            threshold=float('nan'),
            threshold_gap=float('nan'),
            grid_outside=False,
            stats=np.full(NUM_STATS, np.nan))
        if best is None:
            return out
        out['F1_threshold'] = _code_edge(best, self.num_bits)
        if self.grid is None:
            stats = np.zeros(NUM_STATS)
            grid = np.array([best], np.int64)
            for codes, labels in self._cached_images():
                stats += self._stats(codes, labels, grid)[0]
            out.update(stats=stats, threshold=out['F1_threshold'], threshold_gap=0.0)
            return out
        codes, flagged = _level_codes(hist)

        def count(code):  # pooled pixels with bin >= code
            n = int(np.searchsorted(-codes, -code, side='right'))
            return int(flagged[n - 1]) if n else 0

        exact = count(best)
        counts = np.array([count(g) for g in self.grid], np.float64)
        with np.errstate(divide='ignore'):
            dist = np.abs(np.log(counts) - math.log(exact))
        i = int(np.argmin(dist))
        outside = bool(exact < counts.min() or exact > counts.max())
        out.update(
            stats=self._grid_totals[i].copy(),
            threshold=_code_edge(int(self.grid[i]), self.num_bits),
            threshold_gap=float(counts[i] / exact - 1.0),
            grid_outside=outside,
            grid_range=(float(counts.min() / exact - 1.0), float(counts.max() / exact - 1.0)))
        if outside:
            logger.warning(f'{self.name}: the final pooled best-F1 threshold lies outside the component threshold '
                           f'grid built when the cache overflowed; component metrics are computed at the nearest '
                           f'grid threshold, which flags {100 * out["threshold_gap"]:+.1f}% pixels. Raise '
                           'component_cache_bytes for exact component metrics.')
        return out


def _code_edge(code: int, num_bits: int) -> float:
    return float(bin_lower_edges(np.array([code]), num_bits)[0])


def _level_codes(hist: ScoreHistogram) -> Tuple[np.ndarray, np.ndarray]:
    """``(codes, flagged)`` of the non-empty bins in descending order: bin code and pooled pixel count at or above
    it (strictly increasing)."""
    pos, neg, thresholds = hist.level_counts()
    return score_bins(thresholds.astype(np.float32), hist.num_bits), np.cumsum(pos + neg)


def _best_code(hist: ScoreHistogram) -> Optional[int]:
    """Bin code of the pooled best-F1 threshold (``None`` without anomalous pixels)."""
    thr = hist.compute(warn=False)['F1_threshold']
    if not math.isfinite(thr) and not (thr == -math.inf):
        return None
    return int(score_bins(np.array([thr], np.float32), hist.num_bits)[0])
