"""The result files of ``AnomalyMetric``: what it computed, as JSON, CSV and the pooled ROC / PR figures, and the
SegmentMeIfYouCan submission files of its score maps.

``AnomalyMetric.compute_metrics`` hands its summary, per-image rows and pooled curves to
:func:`write_anomaly_results` (one call); ``AnomalyMetric.process`` hands every score map to
:func:`write_submission_map` when it has a ``submission_dir``. Nothing here computes a metric.
"""
import csv
import json
import math
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
from mmengine.logging import MMLogger, print_log
from mmengine.utils import mkdir_or_exist

from ..functional import BOUND_NAMES, METRIC_NAMES, thin_curve

#: Columns of ``anomaly_metrics.csv`` (one row per protocol and scorer).
SUMMARY_COLUMNS = ('protocol', 'scorer', 'FPR95', 'AUROC', 'AUPR', 'F1', 'F1_threshold', 'num_images', 'num_pixels',
                   'num_anomaly_pixels', 'FPR95_rule', 'exact', 'FPR95_tie_bound', 'AUROC_tie_bound', 'AUPR_tie_bound')

#: Extra columns of ``anomaly_metrics.csv`` when the component protocol ran (empty on the other protocols' rows).
COMPONENT_COLUMNS = ('sIoU', 'PPV', 'F1_mean', 'F1_25', 'F1_50', 'F1_75', 'threshold', 'mode', 'threshold_gap', 'track',
                     'min_pred_size', 'min_gt_size', 'num_gt_components', 'num_pred_components', 'sIoU_pred')

#: Pooled curves of each scorer: ``(ScoreHistogram.curves(), its metrics as fractions)``.
Curves = Dict[str, Tuple[Dict[str, np.ndarray], dict]]


def runner_output_dir() -> Optional[str]:
    """``<log_dir>/anomaly`` of the current mmengine runner, ``None`` without one.

    The runner's log dir is where its logger writes ``<timestamp>.log`` (mmengine's ``Runner`` creates
    the logger with ``log_file=<work_dir>/<timestamp>/<timestamp>.log``).
    """
    try:
        instance = MMLogger.get_current_instance()
    except Exception:  # no logger created yet
        return None
    log_file = getattr(instance, 'log_file', None)
    if not log_file:
        for handler in getattr(instance, 'handlers', []):
            log_file = getattr(handler, 'baseFilename', None) or log_file
    if not log_file:
        return None
    return osp.join(osp.dirname(osp.abspath(log_file)), 'anomaly')


def write_anomaly_results(out_dir: str,
                          summary: Dict[str, Dict[str, Dict[str, Any]]],
                          results: List[dict],
                          curves: Curves,
                          per_image_exact: bool = True,
                          recall_level: float = 0.95,
                          save_figures: bool = True,
                          logger: Union[str, MMLogger] = 'current') -> List[str]:
    """Write the metric's results into ``out_dir`` and log the file names; returns them.

    - ``anomaly_metrics.json``: ``summary`` (``{protocol: {scorer: {metric: value, ...}}}``; NaN as ``null``);
    - ``anomaly_metrics.csv``: its ``SUMMARY_COLUMNS`` (and ``COMPONENT_COLUMNS`` when ``summary`` has the
      ``component`` protocol), one row per protocol and scorer;
    - ``anomaly_per_image.csv`` (with the per-image protocol): one row per image (``results``) and scorer,
      metrics in percent (``_%`` headers), the raw F1 threshold, and the tie bounds unless ``per_image_exact``;
    - ``roc_curves.png`` / ``pr_curves.png`` (``save_figures`` and pooled ``curves``): :func:`plot_curves`.
    """
    mkdir_or_exist(out_dir)
    with open(osp.join(out_dir, 'anomaly_metrics.json'), 'w') as f:
        json.dump(json_safe(summary), f, indent=2)
    with open(osp.join(out_dir, 'anomaly_metrics.csv'), 'w', newline='') as f:
        columns = list(SUMMARY_COLUMNS) + (list(COMPONENT_COLUMNS) if 'component' in summary else [])
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction='ignore')
        writer.writeheader()
        for protocol, per_scorer in summary.items():
            for name, entry in per_scorer.items():
                writer.writerow(dict(entry, protocol=protocol, scorer=name))
    written = ['anomaly_metrics.json', 'anomaly_metrics.csv']
    if 'per_image' in summary:
        _write_per_image(osp.join(out_dir, 'anomaly_per_image.csv'), results, quantised=not per_image_exact)
        written.append('anomaly_per_image.csv')
    if save_figures and curves:
        plot_curves(curves, out_dir, recall_level)
        written += ['roc_curves.png', 'pr_curves.png']
    print_log(f'AnomalyMetric: wrote {", ".join(written)} to {out_dir}', logger)
    return written


def _write_per_image(path: str, results: List[dict], quantised: bool) -> None:
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['index', 'img_path', 'num_anomaly_pixels', 'num_normal_pixels', 'scorer'] +
                        [k + ('' if k == 'F1_threshold' else '_%')
                         for k in METRIC_NAMES] + ([f'{k}_tie_bound_%' for k in BOUND_NAMES] if quantised else []))
        for i, row in enumerate(results):
            for name, vals in row['scores'].items():
                vals = [v * 100 for v in vals[:-1]] + [vals[-1]]
                if quantised:
                    vals += [v * 100 for v in row['bounds'][name]]
                writer.writerow([i, row['img_path'], row['num_pos'], row['num_neg'], name] + vals)


def plot_curves(curves: Curves, out_dir: str, recall_level: float = 0.95, max_points: int = 2000) -> None:
    """Draw the pooled ROC and PR curves of every scorer into ``roc_curves.png`` and ``pr_curves.png``.

    ROC legend: AUROC and FPR95 (marked on the curve where the recall first reaches ``recall_level``);
    PR legend: AUPR, with the best-F1 point marked. Matplotlib's Agg canvas, no pyplot state.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    roc_fig, pr_fig = Figure(figsize=(6, 5), dpi=120), Figure(figsize=(6, 5), dpi=120)
    FigureCanvasAgg(roc_fig)
    FigureCanvasAgg(pr_fig)
    roc, pr = roc_fig.add_subplot(111), pr_fig.add_subplot(111)
    for i, (name, (c, res)) in enumerate(curves.items()):
        color = f'C{i % 10}'
        if c['fpr'].size:
            x, y = thin_curve(c['fpr'], c['tpr'], max_points)
            roc.plot(
                x,
                y,
                color=color,
                lw=1.5,
                label=f'{name}: AUROC {100 * res["AUROC"]:.2f}, FPR95 {100 * res["FPR95"]:.2f}')
            k = int(np.argmax(c['tpr'] >= recall_level))
            roc.plot([c['fpr'][k]], [c['tpr'][k]], 'o', color=color, ms=5)
        if c['recall'].size:
            x, y = thin_curve(c['recall'], c['precision'], max_points)
            pr.plot(
                x, y, color=color, lw=1.5, label=f'{name}: AUPR {100 * res["AUPR"]:.2f}, '
                f'F1 {100 * res["F1"]:.2f}')
            # the best-F1 point: F1 / 2 = PR / (P + R) has the same argmax (no constant factor to round)
            half_f1 = c['precision'] * c['recall'] / np.maximum(c['precision'] + c['recall'], 1e-12)
            k = int(np.argmax(half_f1))
            pr.plot([c['recall'][k]], [c['precision'][k]], 'o', color=color, ms=5)
    roc.plot([0, 1], [0, 1], ':', color='0.6', lw=1)
    roc.axhline(recall_level, ls='--', color='0.6', lw=0.8)
    roc.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        xlabel='false-positive rate',
        ylabel='true-positive rate (recall)',
        title=f'ROC, pooled pixels (dots: FPR at {100 * recall_level:.0f}% recall)')
    pr.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        xlabel='recall',
        ylabel='precision',
        title='Precision-recall, pooled pixels (dots: best F1)')
    for ax in (roc, pr):
        ax.grid(alpha=0.3)
        if ax.lines and any(not ln.get_label().startswith('_') for ln in ax.lines):
            ax.legend(loc='lower right' if ax is roc else 'upper right', fontsize=8)
    roc_fig.tight_layout()
    pr_fig.tight_layout()
    roc_fig.savefig(osp.join(out_dir, 'roc_curves.png'))
    pr_fig.savefig(osp.join(out_dir, 'pr_curves.png'))


def json_safe(obj: Any) -> Any:
    """NaN/inf -> None (strict JSON), numpy scalars -> python."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


# ---------------------------------------------------------------------------------------------- submission
#: File name suffix of Cityscapes-style images that the official frame ids (``fid``) do not carry.
_FID_SUFFIX = '_leftImg8bit'
#: float16 spacing relative to the map's value range above which saving loses precision worth a warning.
FLOAT16_WARN_STEP = 1e-3
#: float16 rounds magnitudes below this to at most 65504 (its maximum) and from it on to infinity.
FLOAT16_OVERFLOW = 65520.0


def submission_fid(img_path: str) -> str:
    """The official frame id of an image: its file name without extension and without a trailing
    ``_leftImg8bit`` (``.../04_Maurener_Weg_8_000000_000030_leftImg8bit.png`` ->
    ``04_Maurener_Weg_8_000000_000030``)."""
    if not img_path:
        raise ValueError('AnomalyMetric(submission_dir=...): a data sample has no `img_path`; the submission files '
                         'are named after it (keep `img_path` in the meta keys of the packing transform)')
    fid = osp.splitext(osp.basename(str(img_path)))[0]
    return fid[:-len(_FID_SUFFIX)] if fid.endswith(_FID_SUFFIX) else fid


def require_h5py():
    """The ``h5py`` module, or an ImportError saying how to install it."""
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError('AnomalyMetric(submission_dir=...) writes the SegmentMeIfYouCan submission files (HDF5) '
                          'and needs h5py: pip install h5py') from e
    return h5py


def submission_path(submission_dir: str, scorer: str, fid: str) -> str:
    """``{submission_dir}/{scorer}/{fid}.hdf5`` (the official ``anomaly_p/{method}/{dataset}/{fid}.hdf5`` below
    a method's folder)."""
    return osp.join(submission_dir, scorer, f'{fid}.hdf5')


def write_submission_map(submission_dir: str, scorer: str, fid: str, score_map: np.ndarray) -> str:
    """Save one anomaly map in the official submission format and return the file's path.

    As road-anomaly-benchmark's ``Evaluation.save_output`` / ``ChannelLoaderHDF5``: an HDF5 file holding one
    dataset ``value``, the ``(H, W)`` map as float16 (higher = more anomalous). Compressed with gzip level 4 (the
    official writer uses level 9; readers do not see the difference, level 4 is several times faster).
    """
    h5py = require_h5py()
    path = submission_path(submission_dir, scorer, fid)
    os.makedirs(osp.dirname(path), exist_ok=True)
    with h5py.File(path, 'w') as f:
        f.create_dataset('value', data=np.asarray(score_map).astype(np.float16), compression='gzip', compression_opts=4)
    return path


def float16_step(value: float) -> float:
    """The float16 step at ``|value|`` (``|value| < FLOAT16_OVERFLOW``): the spacing of the binade its float16
    rounding falls in (subnormals: 2^-24). Unlike ``np.spacing``, finite at 65504, the float16 maximum."""
    rounded = abs(float(np.float16(value)))
    exponent = math.frexp(rounded)[1] - 1 if rounded else -14  # rounded = m * 2**exponent, 1 <= m < 2
    return 2.0**(max(exponent, -14) - 10)


def float16_loss(score_map: np.ndarray) -> Optional[str]:
    """Why saving ``score_map`` as float16 loses precision, or ``None``.

    float16 keeps 11 significant bits: at the map's largest magnitude its step is ~1e-3 of that magnitude. The
    loss matters relative to the map's *range*: an energy of -300 +- 20 is stored in steps of 0.25, 6e-3 of the
    range, merging scores the ranking separated. Values beyond +-65504 become infinite.
    """
    values = np.asarray(score_map, np.float64)
    if values.size == 0:
        return None
    lo, hi = float(values.min()), float(values.max())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 'the map holds NaN or infinite values'
    big = max(abs(lo), abs(hi))
    if big >= FLOAT16_OVERFLOW:
        return f'its values reach {big:.4g}, beyond the float16 maximum 65504 (stored as infinite)'
    if hi == lo:
        return None
    step = float16_step(big)
    if step > FLOAT16_WARN_STEP * (hi - lo):
        return (f'its values span [{lo:.4g}, {hi:.4g}]; float16 steps of {step:.3g} there are '
                f'{step / (hi - lo):.1e} of the range (> {FLOAT16_WARN_STEP:g}), so close scores merge')
    return None
