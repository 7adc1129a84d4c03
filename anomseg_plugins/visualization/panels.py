"""Qualitative figures of anomaly segmentation: per-image 3x3 panels, image grids and scorer grids.

Pure functions of numpy arrays (no runner, no model): :class:`~.AnomalyPanelHook` feeds them from the
test forward pass, ``tools/infer.py`` and ``tools/analysis/make_report.py`` reuse them. Figures are drawn
on matplotlib's Agg canvas (no pyplot state, no display needed) and returned as ``(H, W, 3)`` uint8 RGB
arrays.

The 3x3 panel of one image (``draw_anomaly_panel``)::

    input             | ground truth          | prediction
    overlay           | confidence            | error map
    anomaly heat map  | detection (binary)    | TP / FP / FN / TN map

- *ground truth* / *prediction*: class colours of the dataset palette (StreetHazards: the official palette,
  github.com/hendrycks/anomaly-seg); ground-truth anomaly pixels in the anomaly colour (60, 250, 240), other
  ignored pixels white.
- *overlay*: the input blended with the prediction (``alpha``).
- *confidence*: ``max_c softmax(z)_c`` per pixel (0..1, viridis).
- *error map*: correctly classified pixels light grey, misclassified red, anomaly pixels (left out of
  mIoU) in the anomaly colour, other ignored pixels white.
- *anomaly heat map*: the scorer's map (inferno) on a fixed range (by default the 1st..99.9th percentile
  of all pooled test scores, so heat maps of different images compare); the operating threshold is
  marked on the colour bar.
- *detection*: ``score >= threshold`` (white = flagged anomalous).
- *TP / FP / FN / TN*: true positives green, false positives red, false negatives amber, true negatives
  the darkened input, pixels without anomaly label white.

Title: image name, the image's mIoU (over the classes present in its ground truth or prediction) and
the detection precision / recall at the operating point.
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from anomseg_plugins.datasets.street_hazards import ANOMALY_COLOR

#: Colours of the detection outcome map (RGB).
TP_COLOR = (0, 200, 0)
FP_COLOR = (230, 30, 30)
FN_COLOR = (255, 190, 0)
IGNORE_COLOR = (255, 255, 255)
#: Error map colours (RGB).
CORRECT_COLOR = (200, 200, 200)
WRONG_COLOR = (230, 30, 30)
#: True negatives show the input image scaled by this factor (context without competing colours).
TN_DIM = 0.35

Box = Tuple[int, int, int, int]


@dataclass
class PanelData:
    """Everything one panel shows, at one resolution ``(H, W)``.

    Attributes:
        name: image name shown in titles (e.g. the file name).
        image: ``(H, W, 3)`` uint8 RGB input image.
        pred_sem_seg: ``(H, W)`` int predicted classes.
        confidence: ``(H, W)`` float max softmax probability in [0, 1].
        anomaly_score: ``(H, W)`` float anomaly map (higher = more anomalous).
        gt_sem_seg: ``(H, W)`` int ground-truth classes, ``ignore_index`` where unlabelled, or ``None``.
        gt_anomaly: ``(H, W)`` uint8 ground-truth anomaly mask (1 anomaly, 0 normal, ``ignore_index``),
            or ``None``.
        extra_scores: further anomaly maps ``{scorer name: (H, W) float}`` (for scorer grids).
    """

    name: str
    image: np.ndarray
    pred_sem_seg: np.ndarray
    confidence: np.ndarray
    anomaly_score: np.ndarray
    gt_sem_seg: Optional[np.ndarray] = None
    gt_anomaly: Optional[np.ndarray] = None
    extra_scores: Dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        hw = tuple(self.pred_sem_seg.shape)
        for key in ('confidence', 'anomaly_score', 'gt_sem_seg', 'gt_anomaly'):
            value = getattr(self, key)
            if value is not None and tuple(value.shape) != hw:
                raise ValueError(f'PanelData {self.name!r}: {key} has shape {tuple(value.shape)}, expected {hw} '
                                 '(the prediction\'s)')
        if self.image.shape[:2] != hw:
            self.image = resize(self.image, hw, 'bilinear')
        for key, value in self.extra_scores.items():
            if tuple(value.shape) != hw:
                raise ValueError(f'PanelData {self.name!r}: extra score {key!r} has shape {tuple(value.shape)}, '
                                 f'expected {hw}')

    def downsized(self, max_width: int) -> 'PanelData':
        """A copy at most ``max_width`` pixels wide (labels nearest, image and scores bilinear)."""
        h, w = self.pred_sem_seg.shape
        if w <= max_width:
            return self
        hw = (max(1, round(h * max_width / w)), max_width)
        return PanelData(
            name=self.name,
            image=resize(self.image, hw, 'area'),
            pred_sem_seg=resize(self.pred_sem_seg, hw, 'nearest'),
            confidence=resize(self.confidence, hw, 'bilinear'),
            anomaly_score=resize(self.anomaly_score, hw, 'bilinear'),
            gt_sem_seg=None if self.gt_sem_seg is None else resize(self.gt_sem_seg, hw, 'nearest'),
            gt_anomaly=None if self.gt_anomaly is None else resize(self.gt_anomaly, hw, 'nearest'),
            extra_scores={
                k: resize(v, hw, 'bilinear')
                for k, v in self.extra_scores.items()
            })


# ---------------------------------------------------------------------------------------------- arrays
def resize(array: np.ndarray, hw: Tuple[int, int], interpolation: str = 'nearest') -> np.ndarray:
    """Resize an ``(H, W)`` or ``(H, W, C)`` array to ``hw = (h, w)``; dtype kept.

    ``'nearest'`` indexes pixel centres (any dtype, labels stay exact); ``'bilinear'`` / ``'area'`` use
    OpenCV (``'area'`` when shrinking).
    """
    (height, width), (h, w) = array.shape[:2], (int(hw[0]), int(hw[1]))
    if (height, width) == (h, w):
        return array
    if interpolation == 'nearest':
        ys = np.minimum(((np.arange(h) + 0.5) * height / h).astype(np.int64), height - 1)
        xs = np.minimum(((np.arange(w) + 0.5) * width / w).astype(np.int64), width - 1)
        return array[ys[:, None], xs[None, :]]
    import cv2
    src = array if array.dtype in (np.uint8, np.float32) else array.astype(np.float32)
    mode = cv2.INTER_AREA if interpolation == 'area' and h <= height and w <= width else cv2.INTER_LINEAR
    return cv2.resize(src, (w, h), interpolation=mode).astype(array.dtype, copy=False)


def colorize(labels: np.ndarray,
             palette: Sequence[Sequence[int]],
             ignore_index: int = 255,
             anomaly_mask: Optional[np.ndarray] = None,
             anomaly_color: Sequence[int] = ANOMALY_COLOR,
             ignore_color: Sequence[int] = IGNORE_COLOR) -> np.ndarray:
    """Colour a label map with ``palette`` (class ``k`` -> ``palette[k]``).

    Args:
        labels: ``(H, W)`` integer classes; ``ignore_index`` and values without a palette entry get
            ``ignore_color``.
        palette: ``C`` RGB triples.
        anomaly_mask: optional ``(H, W)`` mask; pixels where it equals 1 get ``anomaly_color``.

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    pal = np.asarray(palette, np.uint8).reshape(-1, 3)
    labels = np.asarray(labels).astype(np.int64)
    valid = (labels >= 0) & (labels < len(pal)) & (labels != ignore_index)
    out = np.empty(labels.shape + (3, ), np.uint8)
    out[:] = np.asarray(ignore_color, np.uint8)
    out[valid] = pal[labels[valid]]
    if anomaly_mask is not None:
        out[np.asarray(anomaly_mask) == 1] = anomaly_color
    return out


def blend(image: np.ndarray, color: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``(1 - alpha) * image + alpha * color`` as uint8."""
    return np.clip((1.0 - alpha) * image.astype(np.float32) + alpha * color.astype(np.float32) + 0.5, 0,
                   255).astype(np.uint8)


def error_map(pred: np.ndarray,
              gt: np.ndarray,
              ignore_index: int = 255,
              anomaly_mask: Optional[np.ndarray] = None) -> np.ndarray:
    """Closed-set errors: correct pixels ``CORRECT_COLOR``, wrong ``WRONG_COLOR``, ignored ``IGNORE_COLOR``,
    ground-truth anomaly pixels (if ``anomaly_mask`` is given) ``ANOMALY_COLOR``. ``(H, W, 3)`` uint8."""
    out = np.empty(pred.shape + (3, ), np.uint8)
    valid = gt != ignore_index
    out[valid & (pred == gt)] = CORRECT_COLOR
    out[valid & (pred != gt)] = WRONG_COLOR
    out[~valid] = IGNORE_COLOR
    if anomaly_mask is not None:
        out[np.asarray(anomaly_mask) == 1] = ANOMALY_COLOR
    return out


def detection_outcomes(detected: np.ndarray, gt_anomaly: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """Per-pixel outcome codes: 0 = TN, 1 = FP, 2 = FN, 3 = TP, 4 = no anomaly label (``ignore_index``)."""
    detected = np.asarray(detected, bool)
    gt_anomaly = np.asarray(gt_anomaly)
    positive = gt_anomaly == 1
    codes = np.where(positive, np.where(detected, 3, 2), np.where(detected, 1, 0)).astype(np.uint8)
    codes[gt_anomaly == ignore_index] = 4
    return codes


def detection_map(detected: np.ndarray,
                  gt_anomaly: np.ndarray,
                  image: Optional[np.ndarray] = None,
                  ignore_index: int = 255) -> np.ndarray:
    """TP / FP / FN / TN map as ``(H, W, 3)`` uint8: TP ``TP_COLOR``, FP ``FP_COLOR``, FN ``FN_COLOR``,
    TN the input darkened by ``TN_DIM`` (black without ``image``), unlabelled ``IGNORE_COLOR``."""
    codes = detection_outcomes(detected, gt_anomaly, ignore_index)
    if image is None:
        out = np.zeros(codes.shape + (3, ), np.uint8)
    else:
        out = (image.astype(np.float32) * TN_DIM).astype(np.uint8)
    for code, color in ((1, FP_COLOR), (2, FN_COLOR), (3, TP_COLOR), (4, IGNORE_COLOR)):
        out[codes == code] = color
    return out


def softmax_confidence(logits) -> np.ndarray:
    """``max_c softmax(z)_c`` of ``(C, H, W)`` logits (tensor or array) as float32 ``(H, W)``."""
    import torch
    logits = torch.as_tensor(logits).float()
    return logits.softmax(dim=0).amax(dim=0).cpu().numpy()


def image_statistics(data: PanelData,
                     threshold: Optional[float],
                     num_classes: int,
                     ignore_index: int = 255) -> Dict[str, float]:
    """The numbers in a panel's title.

    Returns:
        ``mIoU`` (%): mean IoU over the classes present in the image's ground truth or prediction (valid
        pixels only); ``acc`` (%): pixel accuracy; ``precision`` / ``recall`` (%) of ``score >= threshold``
        against ``gt_anomaly`` (NaN when undefined: no flagged pixel / no anomaly); ``tp``, ``fp``, ``fn``,
        ``tn`` pixel counts. Missing ground truth gives NaN.
    """
    nan = float('nan')
    out = dict(mIoU=nan, acc=nan, precision=nan, recall=nan, tp=0, fp=0, fn=0, tn=0)
    if data.gt_sem_seg is not None:
        # mmseg's own per-image areas (IoUMetric.intersect_and_union), so a panel's mIoU is IoUMetric's definition
        from mmseg.evaluation.metrics import IoUMetric
        gt = torch.from_numpy(data.gt_sem_seg.astype(np.int64))
        pred = torch.from_numpy(data.pred_sem_seg.astype(np.int64))
        inter, union, _, area_gt = (
            a.numpy() for a in IoUMetric.intersect_and_union(pred, gt, num_classes, ignore_index))
        if area_gt.sum():
            present = union > 0
            out['mIoU'] = float(100.0 * np.mean(inter[present] / union[present]))
            out['acc'] = float(100.0 * inter.sum() / area_gt.sum())
    if data.gt_anomaly is not None and threshold is not None:
        codes = detection_outcomes(data.anomaly_score >= threshold, data.gt_anomaly, ignore_index)
        counts = np.bincount(codes.reshape(-1), minlength=5)
        tn, fp, fn, tp = (int(c) for c in counts[:4])
        out.update(tp=tp, fp=fp, fn=fn, tn=tn)
        if tp + fp:
            out['precision'] = 100.0 * tp / (tp + fp)
        if tp + fn:
            out['recall'] = 100.0 * tp / (tp + fn)
    return out


# ---------------------------------------------------------------------------------------------- figures
def _new_figure(width_in: float, height_in: float, dpi: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width_in, height_in), dpi=dpi, facecolor='white')
    FigureCanvasAgg(fig)
    return fig


def figure_to_array(fig) -> np.ndarray:
    """Render a matplotlib figure (Agg canvas) to ``(H, W, 3)`` uint8 RGB."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def _axes_box(fig, ax) -> Box:
    """Pixel box ``(x0, y0, x1, y1)`` of an axes in the rendered array (origin top-left)."""
    x0, y0, x1, y1 = ax.get_position().extents
    w, h = fig.canvas.get_width_height()
    return int(round(x0 * w)), int(round((1 - y1) * h)), int(round(x1 * w)), int(round((1 - y0) * h))


def _show(ax, array: np.ndarray, title: str, fontsize: float = 9, **kwargs):
    im = ax.imshow(array, interpolation='nearest', **kwargs)
    ax.set_title(title, fontsize=fontsize, pad=3)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def _fmt(value: float, suffix: str = '%') -> str:
    return 'n/a' if value is None or not np.isfinite(value) else f'{value:.1f}{suffix}'


def score_range(scores: Union[np.ndarray, Sequence[np.ndarray]],
                low: float = 1.0,
                high: float = 99.9) -> Tuple[float, float]:
    """``(vmin, vmax)``: the ``low``/``high`` percentiles of the finite scores (``vmax > vmin`` guaranteed)."""
    if isinstance(scores, np.ndarray):
        scores = [scores]
    flat = np.concatenate([np.asarray(s, np.float32).reshape(-1) for s in scores])
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return 0.0, 1.0
    vmin, vmax = (float(v) for v in np.percentile(flat, [low, high]))
    if not vmax > vmin:
        vmin, vmax = float(flat.min()), float(flat.max())
    if not vmax > vmin:
        vmin, vmax = vmin - 0.5, vmin + 0.5
    return vmin, vmax


def class_legend_handles(classes: Sequence[str],
                         palette: Sequence[Sequence[int]],
                         with_anomaly: bool = True,
                         with_ignore: bool = True):
    """Matplotlib patches for a legend of the class colours (+ anomaly and ignore)."""
    from matplotlib.patches import Patch
    handles = [
        Patch(facecolor=np.asarray(c) / 255.0, edgecolor='0.5', lw=0.5, label=n) for n, c in zip(classes, palette)
    ]
    if with_anomaly:
        handles.append(Patch(facecolor=np.asarray(ANOMALY_COLOR) / 255.0, edgecolor='0.5', lw=0.5, label='anomaly'))
    if with_ignore:
        handles.append(Patch(facecolor=np.asarray(IGNORE_COLOR) / 255.0, edgecolor='0.5', lw=0.5, label='ignored'))
    return handles


def outcome_legend_handles():
    """Matplotlib patches for the TP / FP / FN / TN colours."""
    from matplotlib.patches import Patch
    return [
        Patch(facecolor=np.asarray(c) / 255.0, edgecolor='0.5', lw=0.5, label=n)
        for n, c in (('TP', TP_COLOR), ('FP', FP_COLOR), ('FN', FN_COLOR), ('TN (dimmed input)', (60, 60, 60)))
    ]


def _bottom_legend(fig, classes, palette, max_cols: int, fontsize: float, bottom: float, compact: bool) -> None:
    """The class colours and the TP/FP/FN colours as one legend along the bottom of ``fig``."""
    handles = class_legend_handles(classes, palette) + outcome_legend_handles()
    fig.legend(
        handles=handles,
        loc='lower center',
        ncol=min(len(handles), max_cols),
        fontsize=fontsize,
        frameon=False,
        handlelength=1.0 if compact else 1.2,
        columnspacing=0.7 if compact else 0.9,
        bbox_to_anchor=(0.5, bottom))


def draw_anomaly_panel(data: PanelData,
                       threshold: float,
                       classes: Sequence[str],
                       palette: Sequence[Sequence[int]],
                       scorer_name: str = 'anomaly score',
                       operating_point: str = '',
                       score_limits: Optional[Tuple[float, float]] = None,
                       ignore_index: int = 255,
                       alpha: float = 0.5,
                       cell_width: float = 4.0,
                       dpi: int = 100,
                       max_width: Optional[int] = None,
                       return_layout: bool = False):
    """Draw the 3x3 panel of one image (layout and colours: module docstring).

    Args:
        data: the arrays of the image (one resolution).
        threshold: operating point: pixels with ``score >= threshold`` are flagged anomalous.
        classes / palette: class names and RGB colours (dataset metainfo).
        scorer_name: shown above the heat map.
        operating_point: how ``threshold`` was chosen, e.g. ``'95% recall (pooled)'``.
        score_limits: ``(vmin, vmax)`` of the heat map; ``None`` = this image's 1st..99.9th percentile.
        alpha: prediction opacity in the overlay.
        cell_width: width of one cell in inches; the figure is ``3 * cell_width`` wide, cell heights
            follow the image's aspect ratio.
        dpi: figure resolution.
        max_width: arrays are first downsized to this width (default: the cell's pixel width).
        return_layout: also return ``{cell name: (x0, y0, x1, y1)}`` pixel boxes of the nine cells.

    Returns:
        ``(H, W, 3)`` uint8 RGB, H and W = the figure size in inches times ``dpi`` (rounded).
    """
    disp = data.downsized(max_width or int(cell_width * dpi))
    h, w = disp.pred_sem_seg.shape
    num_classes = len(classes)
    stats = image_statistics(data, threshold, num_classes, ignore_index)
    cell_h = cell_width * h / w
    title_in, gap_in, legend_in = 0.55, 0.55, 0.95
    fig_w = 3 * cell_width + 0.3
    fig_h = title_in + 3 * cell_h + 3 * gap_in + legend_in
    fig = _new_figure(fig_w, fig_h, dpi)
    left = 0.15 / fig_w
    col_w = cell_width / fig_w
    axes = {}
    names = [['input', 'ground truth', 'prediction'], ['overlay', 'confidence', 'error map'],
             ['anomaly heat map', 'detection', 'outcomes']]
    for r in range(3):
        top = (title_in + r * (cell_h + gap_in) + gap_in * 0.5) / fig_h
        for c in range(3):
            axes[names[r][c]] = fig.add_axes(
                [left + c * col_w + 0.02 * col_w, 1 - top - cell_h / fig_h, 0.96 * col_w, cell_h / fig_h])

    anomaly = disp.gt_anomaly
    anomaly_mask = None if anomaly is None else (anomaly == 1)
    pred_color = colorize(disp.pred_sem_seg, palette, ignore_index)
    _show(axes['input'], disp.image, 'input')
    if disp.gt_sem_seg is not None:
        _show(axes['ground truth'], colorize(disp.gt_sem_seg, palette, ignore_index, anomaly_mask),
              'ground truth (anomaly in cyan)')
        _show(axes['error map'], error_map(disp.pred_sem_seg, disp.gt_sem_seg, ignore_index, anomaly_mask),
              f'errors: pixel acc {_fmt(stats["acc"])}, red = wrong')
    else:
        for key in ('ground truth', 'error map'):
            _show(axes[key], np.full_like(disp.image, 255), f'{key}: no annotation')
    _show(axes['prediction'], pred_color, f'prediction (mIoU {_fmt(stats["mIoU"])})')
    _show(axes['overlay'], blend(disp.image, pred_color, alpha), f'overlay (prediction, alpha {alpha:g})')
    im = _show(axes['confidence'], disp.confidence, 'confidence: max softmax', cmap='viridis', vmin=0.0, vmax=1.0)
    _colorbar(fig, axes['confidence'], im, None)

    vmin, vmax = score_limits if score_limits is not None else score_range(disp.anomaly_score)
    im = _show(
        axes['anomaly heat map'], disp.anomaly_score, f'{scorer_name} score', cmap='inferno', vmin=vmin, vmax=vmax)
    _colorbar(fig, axes['anomaly heat map'], im, threshold)
    detected = disp.anomaly_score >= threshold
    _show(axes['detection'],
          np.where(detected[..., None], 255, 0).astype(np.uint8).repeat(3, axis=2),
          f'detection: score >= {threshold:.4g}')
    if anomaly is not None:
        _show(axes['outcomes'], detection_map(detected, anomaly, disp.image, ignore_index),
              f'TP/FP/FN: precision {_fmt(stats["precision"])}, recall {_fmt(stats["recall"])}')
    else:
        _show(axes['outcomes'], np.full_like(disp.image, 255), 'TP/FP/FN: no anomaly annotation')

    op = f' at {operating_point}' if operating_point else ''
    fig.suptitle(
        f'{data.name}   |   mIoU {_fmt(stats["mIoU"])}   |   {scorer_name}{op}: threshold {threshold:.4g}, '
        f'precision {_fmt(stats["precision"])}, recall {_fmt(stats["recall"])}',
        fontsize=11,
        y=1 - 0.12 / fig_h,
        va='top')
    _bottom_legend(fig, classes, palette, max_cols=10, fontsize=7.5, bottom=0.05 / fig_h, compact=False)
    img = figure_to_array(fig)
    if return_layout:
        return img, {k: _axes_box(fig, ax) for k, ax in axes.items()}
    return img


def _colorbar(fig, ax, im, threshold: Optional[float]) -> None:
    cax = ax.inset_axes([0.0, -0.075, 1.0, 0.045])
    bar = fig.colorbar(im, cax=cax, orientation='horizontal')
    bar.ax.tick_params(labelsize=6, length=2, pad=1)
    if threshold is not None and np.isfinite(threshold):
        lo, hi = im.get_clim()
        if lo <= threshold <= hi:
            bar.ax.axvline(threshold, color='cyan', lw=1.5)


def draw_panel_grid(items: Sequence[PanelData],
                    threshold: float,
                    classes: Sequence[str],
                    palette: Sequence[Sequence[int]],
                    scorer_name: str = 'anomaly score',
                    score_limits: Optional[Tuple[float, float]] = None,
                    ignore_index: int = 255,
                    cell_width: float = 2.4,
                    dpi: int = 100) -> np.ndarray:
    """A quick-look grid: one row per image, columns input | ground truth | prediction | heat map | outcomes.

    Row labels give the image name, its mIoU and the detection precision / recall at ``threshold``.
    """
    if not items:
        raise ValueError('draw_panel_grid: no images given')
    cols = ['input', 'ground truth', 'prediction', f'{scorer_name} score', 'TP / FP / FN']
    disp = [d.downsized(int(cell_width * dpi)) for d in items]
    aspect = max(d.pred_sem_seg.shape[0] / d.pred_sem_seg.shape[1] for d in disp)
    cell_h = cell_width * aspect
    label_in, head_in, row_gap, legend_in = 1.3, 0.45, 0.08, 0.75
    fig_w = label_in + len(cols) * cell_width + 0.1
    fig_h = head_in + len(items) * (cell_h + row_gap) + legend_in
    fig = _new_figure(fig_w, fig_h, dpi)
    if score_limits is None:
        score_limits = score_range([d.anomaly_score for d in disp])
    for r, (d, full) in enumerate(zip(disp, items)):
        stats = image_statistics(full, threshold, len(classes), ignore_index)
        top = head_in + r * (cell_h + row_gap)
        anomaly_mask = None if d.gt_anomaly is None else d.gt_anomaly == 1
        detected = d.anomaly_score >= threshold
        blank = np.full_like(d.image, 255)
        arrays = [
            (d.image, {}),
            (blank if d.gt_sem_seg is None else colorize(d.gt_sem_seg, palette, ignore_index, anomaly_mask), {}),
            (colorize(d.pred_sem_seg, palette, ignore_index), {}),
            (d.anomaly_score, dict(cmap='inferno', vmin=score_limits[0], vmax=score_limits[1])),
            (blank if d.gt_anomaly is None else detection_map(detected, d.gt_anomaly, d.image, ignore_index), {}),
        ]
        for c, (array, kw) in enumerate(arrays):
            ax = fig.add_axes([(label_in + c * cell_width + 0.03) / fig_w, 1 - (top + cell_h) / fig_h,
                               (cell_width - 0.06) / fig_w, cell_h / fig_h])
            _show(ax, array, cols[c] if r == 0 else '', **kw)
        fig.text(
            0.08 / fig_w,
            1 - (top + cell_h / 2) / fig_h,
            f'{_short(d.name, 18)}\nmIoU {_fmt(stats["mIoU"])}\nP {_fmt(stats["precision"])}\n'
            f'R {_fmt(stats["recall"])}',
            fontsize=7.5,
            va='center',
            ha='left')
    fig.suptitle(
        f'{len(items)} test images, {scorer_name} at threshold {threshold:.4g}',
        fontsize=10,
        y=1 - 0.05 / fig_h,
        va='top')
    _bottom_legend(fig, classes, palette, max_cols=9, fontsize=6.5, bottom=0.02 / fig_h, compact=True)
    return figure_to_array(fig)


def draw_scorer_grid(items: Sequence[PanelData],
                     scorer_names: Sequence[str],
                     scorer_titles: Optional[Dict[str, str]] = None,
                     cell_width: float = 2.2,
                     dpi: int = 100) -> np.ndarray:
    """Compare scorers by looking: one row per image, columns input (ground-truth anomaly outlined) |
    ground-truth anomaly | one heat map per scorer.

    Each heat map is scaled to its own 1st..99.9th percentile in that image (scorers live on different
    scales; within an image only the ranking matters for detection), so the pictures show *where* each
    scorer puts its highest scores. ``scorer_titles`` adds a caption per scorer (e.g. its AUPR).
    """
    if not items:
        raise ValueError('draw_scorer_grid: no images given')
    missing = [(d.name, n) for d in items for n in scorer_names if n not in d.extra_scores]
    if missing:
        raise KeyError(f'draw_scorer_grid: no score map for (image, scorer) {missing[:5]}')
    scorer_titles = scorer_titles or {}
    disp = [d.downsized(int(cell_width * dpi)) for d in items]
    aspect = max(d.pred_sem_seg.shape[0] / d.pred_sem_seg.shape[1] for d in disp)
    cell_h = cell_width * aspect
    cols = ['input', 'ground-truth anomaly'] + [scorer_titles.get(n, n) for n in scorer_names]
    label_in, head_in, row_gap = 1.0, 0.6, 0.08
    fig_w = label_in + len(cols) * cell_width + 0.1
    fig_h = head_in + len(items) * (cell_h + row_gap) + 0.15
    fig = _new_figure(fig_w, fig_h, dpi)
    for r, d in enumerate(disp):
        top = head_in + r * (cell_h + row_gap)
        if d.gt_anomaly is not None:
            gt = colorize(
                np.where(d.gt_anomaly == 1, 1, np.where(d.gt_anomaly == 0, 0, 255)), [(0, 0, 0), ANOMALY_COLOR])
        else:
            gt = np.full_like(d.image, 255)
        arrays = [(d.image, {}), (gt, {})]
        for name in scorer_names:
            vmin, vmax = score_range(d.extra_scores[name])
            arrays.append((d.extra_scores[name], dict(cmap='inferno', vmin=vmin, vmax=vmax)))
        for c, (array, kw) in enumerate(arrays):
            ax = fig.add_axes([(label_in + c * cell_width + 0.03) / fig_w, 1 - (top + cell_h) / fig_h,
                               (cell_width - 0.06) / fig_w, cell_h / fig_h])
            _show(ax, array, cols[c] if r == 0 else '', fontsize=7.5, **kw)
            if c == 0 and d.gt_anomaly is not None and (d.gt_anomaly == 1).any():
                ax.contour((d.gt_anomaly == 1).astype(np.float32), levels=[0.5], colors=['cyan'], linewidths=0.8)
        fig.text(0.06 / fig_w, 1 - (top + cell_h / 2) / fig_h, _short(d.name, 14), fontsize=7, va='center')
    fig.suptitle(
        'anomaly heat maps per scorer (each scaled to its own range in the image)',
        fontsize=10,
        y=1 - 0.05 / fig_h,
        va='top')
    return figure_to_array(fig)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else '...' + text[-(width - 3):]


def save_rgb(path: str, image: np.ndarray) -> str:
    """Write an RGB uint8 array as PNG (creating the folder); returns ``path``."""
    import mmcv
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if not mmcv.imwrite(np.ascontiguousarray(image[..., ::-1]), path):
        raise OSError(f'could not write {path}')
    return path


__all__: List[str] = [
    'PanelData', 'resize', 'colorize', 'blend', 'error_map', 'detection_outcomes', 'detection_map',
    'softmax_confidence', 'image_statistics', 'figure_to_array', 'score_range', 'class_legend_handles',
    'outcome_legend_handles', 'draw_anomaly_panel', 'draw_panel_grid', 'draw_scorer_grid', 'save_rgb', 'TP_COLOR',
    'FP_COLOR', 'FN_COLOR', 'IGNORE_COLOR', 'CORRECT_COLOR', 'WRONG_COLOR'
]
