"""Anomaly segmentation metric: every scorer, both protocols, one forward pass, memory flat in pixels."""
import itertools
import logging
import math
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.dist import all_reduce, get_rank, get_world_size
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmengine.structures import BaseDataElement
from mmseg.registry import METRICS
from prettytable import PrettyTable
from torch import nn

from anomseg_plugins.registry import ANOMALY_SCORERS
from ..functional import BOUND_NAMES, METRIC_NAMES, ScoreHistogram, exact_anomaly_metrics
from .anomaly_results_writer import runner_output_dir, write_anomaly_results

PROTOCOLS = ('pooled', 'per_image')
PERCENT_METRICS = ('AUROC', 'AUPR', 'FPR95', 'F1')
ROW_FIELDS = METRIC_NAMES  # the per-image metrics kept per scorer (the row of ``results``)
BOUND_FIELDS = BOUND_NAMES  # metrics with a reported quantisation error bound
WARN_BOUND = 0.1  # points: a larger bound of a histogram-based metric is logged as a warning


@METRICS.register_module()
class AnomalyMetric(BaseMetric):
    """Pixel-level anomaly segmentation metrics of several scorers under two protocols.

    For every test image, each scorer turns the *same* predicted logits (``seg_logits``, at ground-truth
    resolution) and, if it asks for them, the backbone features of the same forward pass into an anomaly
    map (higher = more anomalous), which is evaluated against ``gt_anomaly_map`` (1 = anomaly,
    0 = normal, ``ignore_index`` = not evaluated). Metrics (README "Metrics and the two protocols"; per-image as
    the official StreetHazards evaluation, github.com/hendrycks/anomaly-seg, pooled as SegmentMeIfYouCan's):

    - ``AUROC``; ``AUPR`` = average precision (step sum, as sklearn); ``FPR95`` = false-positive rate at
      95 % recall; ``F1`` = best F1 over thresholds and ``F1_threshold`` the score threshold achieving it
      (anomaly where score >= threshold).
    - protocol ``pooled``: all evaluated pixels of the whole set in one ranking (the study,
      SegmentMeIfYouCan). FPR95 is read at the first threshold (descending) where recall >= 95 %.
      Computed from an order-preserving score histogram (:class:`ScoreHistogram`): memory is flat in
      the number of pixels and the result is exact up to scores sharing a bin (relative width
      ``2^-(num_bits - 9)``; see :mod:`anomseg_plugins.evaluation.functional.pooled_histogram`). The
      bounds of that error (``AUROC_tie_bound``, ``AUPR_tie_bound``, ``FPR95_tie_bound``) are reported
      with the results, and a warning is logged when one exceeds 0.1 points.
    - protocol ``per_image``: the metrics of every image holding both anomalous and normal pixels,
      averaged over those images, as the official StreetHazards evaluation does (hendrycks/anomaly-seg
      ``eval_ood.py``: ``sklearn.metrics.roc_auc_score`` and ``average_precision_score`` per image, FPR95
      by ``anom_utils.fpr_and_fdr_at_recall``, i.e. at the threshold whose recall is *nearest* 95 %).
      Exact by default: each image's scores are sorted in ``process`` (:func:`exact_anomaly_metrics`,
      equal to sklearn and the official rule, ties included) and only the image's metrics are kept, so
      memory stays flat in the number of images and pixels. ``F1_threshold`` is the median of the
      per-image optimal thresholds. Images with one class only are skipped (as officially) and counted
      in the logs.

    Results: ``compute_metrics`` returns ``{protocol}/{scorer}/{AUROC|AUPR|FPR95|F1|F1_threshold}``
    (``evaluate`` adds ``{prefix}/``), AUROC, AUPR, FPR95 and F1 in percent (as mmseg reports mIoU),
    unrounded; prints one table per protocol; and has
    :func:`~anomseg_plugins.evaluation.metrics.anomaly_results_writer.write_anomaly_results` write to
    ``output_dir``: ``anomaly_metrics.json`` (``{protocol: {scorer: {...}}}``), ``anomaly_metrics.csv``,
    ``anomaly_per_image.csv`` and the pooled ``roc_curves.png`` / ``pr_curves.png`` (all scorers per figure).

    Distributed testing: ``evaluate`` sums the pooled histograms over ranks with ``all_reduce`` (the sample a
    distributed sampler repeats to even out the ranks, mmengine ``DefaultSampler(round_up=True)``, taken out
    again), then runs mmengine's ``BaseMetric.evaluate``: the per-image rows travel through ``collect_results``
    and the main process computes.

    Args:
        scorers: anomaly scorers: configs for ``ANOMALY_SCORERS.build`` (e.g. ``dict(type='MaxLogit')``) or
            built :class:`BaseAnomalyScorer` modules. Names (``scorer.name``) must be distinct.
        protocols: any of ``'pooled'``, ``'per_image'``.
        ignore_index: label of ``gt_anomaly_map`` pixels left out.
        num_bits: histogram resolution (9..24 float32 bits kept); 22 -> relative bin width 1.2e-4 and
            128 KiB per binade (factor of 2) the scores occupy: typically 0.5-10 MiB per scorer.
        recall_level: recall of the FPR metric (0.95).
        per_image_fpr_rule: ``'nearest'`` (official StreetHazards) or ``'first'`` (as pooled).
        per_image_exact: compute per-image metrics exactly, sorting each image's scores (default; the official
            protocol; ~20 ms per scorer and 720 x 1280 image on one CPU core). ``False`` reads them from the
            image's ``num_bits`` histogram instead (~8 ms, the histogram itself being built for the pooled
            protocol anyway), but scores closer than the bin width then count as ties: on energies of
            500 +- 0.01 the per-image FPR95 moved by 11 points. Its error bounds (mean over the images of each
            image's bounds, see :class:`ScoreHistogram`) are then reported as ``*_tie_bound``, and logged, as a
            warning when one exceeds 0.1 points.
        output_dir: where result files and figures go. ``None``: ``<log_dir>/anomaly`` of the current
            mmengine runner (found through the runner's logger file), else nothing is written.
        save_figures: draw ``roc_curves.png`` and ``pr_curves.png`` (pooled protocol).
        collect_device: ``'cpu'`` or ``'gpu'``, for collecting the per-image rows across ranks.
        collect_dir: synchronisation directory for ``collect_device='cpu'``.
        prefix: metric name prefix (``'anomaly'``).
    """

    default_prefix: Optional[str] = 'anomaly'

    def __init__(self,
                 scorers: Sequence[Union[dict, nn.Module]],
                 protocols: Sequence[str] = PROTOCOLS,
                 ignore_index: int = 255,
                 num_bits: int = 22,
                 recall_level: float = 0.95,
                 per_image_fpr_rule: str = 'nearest',
                 per_image_exact: bool = True,
                 output_dir: Optional[str] = None,
                 save_figures: bool = True,
                 collect_device: str = 'cpu',
                 collect_dir: Optional[str] = None,
                 prefix: Optional[str] = 'anomaly') -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if isinstance(protocols, str):
            protocols = (protocols, )
        bad = [p for p in protocols if p not in PROTOCOLS]
        if bad or not protocols:
            raise ValueError(f'AnomalyMetric: protocols must be a non-empty subset of {PROTOCOLS}, got {protocols}')
        if per_image_fpr_rule not in ('first', 'nearest'):
            raise ValueError("AnomalyMetric: per_image_fpr_rule must be 'first' or 'nearest', "
                             f'got {per_image_fpr_rule!r}')
        if not scorers:
            raise ValueError('AnomalyMetric: `scorers` is empty; give at least one, e.g. [dict(type=\'MaxLogit\')]')
        self.scorers = nn.ModuleList([self._build_scorer(s) for s in scorers])
        names = [s.name for s in self.scorers]
        if len(set(names)) != len(names):
            raise ValueError(f'AnomalyMetric: scorer names must be distinct (they key the results), got {names}; '
                             'set `name=` in the scorer configs')
        self.protocols = tuple(protocols)
        self.ignore_index = ignore_index
        self.num_bits = int(num_bits)
        self.recall_level = float(recall_level)
        self.per_image_fpr_rule = per_image_fpr_rule
        self.per_image_exact = bool(per_image_exact)
        self.output_dir = output_dir
        self.save_figures = bool(save_figures)
        self._hists: Dict[str, ScoreHistogram] = {}
        self._last_image: Dict[str, Optional[ScoreHistogram]] = {}
        self._num_images = 0
        self.reset_histograms()

    @staticmethod
    def _build_scorer(scorer: Union[dict, nn.Module]) -> nn.Module:
        if isinstance(scorer, nn.Module):
            built = scorer
        elif isinstance(scorer, dict):
            built = ANOMALY_SCORERS.build(scorer)
        else:
            raise TypeError(f'AnomalyMetric: each scorer must be a config dict or a built scorer module, '
                            f'got {type(scorer).__name__}: {scorer!r}')
        if not hasattr(built, 'name') or not callable(built):
            raise TypeError(f'AnomalyMetric: {type(built).__name__} is not an anomaly scorer (needs `name` and '
                            '`score(logits, feats)`; subclass anomseg_plugins.scorers.BaseAnomalyScorer)')
        return built

    # ------------------------------------------------------------------ state
    @property
    def scorer_names(self) -> List[str]:
        return [s.name for s in self.scorers]

    @property
    def feature_stages(self) -> Tuple[int, ...]:
        """Union of the backbone stages the scorers need (the test loop captures these)."""
        return tuple(sorted({int(st) for s in self.scorers for st in getattr(s, 'feature_stages', ())}))

    def reset_histograms(self) -> None:
        """Empty the pooled histograms (done by ``evaluate`` after computing)."""
        self._hists = {n: ScoreHistogram(self.num_bits, self.ignore_index, n) for n in self.scorer_names}
        self._last_image = {n: None for n in self.scorer_names}
        self._num_images = 0

    @property
    def histograms(self) -> Dict[str, ScoreHistogram]:
        """The pooled histogram of each scorer (read-only use)."""
        return self._hists

    def merge(self, other: 'AnomalyMetric') -> 'AnomalyMetric':
        """Fold the state of ``other`` (same scorers and settings, fed with other data) into this metric.

        Afterwards this metric computes what one metric fed with both data streams would: histograms are
        added and ``other.results`` appended. Used to combine shards evaluated separately.
        """
        if other.scorer_names != self.scorer_names or other.num_bits != self.num_bits or \
                other.ignore_index != self.ignore_index:
            raise ValueError('AnomalyMetric.merge: the metrics differ in scorers, num_bits or ignore_index: '
                             f'{self.scorer_names}/{self.num_bits}/{self.ignore_index} vs '
                             f'{other.scorer_names}/{other.num_bits}/{other.ignore_index}')
        for name in self.scorer_names:
            self._hists[name].add(other._hists[name])
        self.results.extend(other.results)
        self._num_images += other._num_images
        return self

    # ------------------------------------------------------------------ processing
    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Score every sample with every scorer and accumulate.

        Per sample: ``seg_logits.data`` ``(C, H, W)``, ``gt_anomaly_map.data`` ``(1, H, W)`` (0/1/ignore) and,
        for feature scorers, ``backbone_feats`` (list by stage of ``(C_s, h_s, w_s)`` or ``None``). The
        pooled histograms are updated in place; one small row per image goes to ``self.results``
        (per scorer: the per-image metrics, and their error bounds when ``per_image_exact=False``): no
        scores are kept.
        """
        pooled, per_image = 'pooled' in self.protocols, 'per_image' in self.protocols
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            logits, labels, feats = self._unpack(sample)
            row = dict(img_path=sample.get('img_path'), scores=OrderedDict())
            if per_image and not self.per_image_exact:
                row['bounds'] = OrderedDict()
            for scorer in self.scorers:
                name = scorer.name
                self._check_ready(scorer, logits.device)
                with torch.no_grad():
                    score = scorer(logits[None], feats)
                if not isinstance(score, torch.Tensor) or tuple(score.shape) != (1, ) + tuple(labels.shape):
                    shape = tuple(score.shape) if isinstance(score, torch.Tensor) else type(score).__name__
                    raise ValueError(f'AnomalyMetric: scorer {name} returned {shape} for logits of shape '
                                     f'{tuple(logits[None].shape)}; expected (1, {labels.shape[0]}, {labels.shape[1]})')
                score = score[0]
                image_hist = None
                if pooled or not self.per_image_exact:
                    image_hist = ScoreHistogram.from_scores(score, labels, self.num_bits, self.ignore_index,
                                                            f'scorer {name}')
                    row['num_pos'], row['num_neg'] = image_hist.num_pos, image_hist.num_neg
                if pooled:
                    self._hists[name].add(image_hist)
                    self._last_image[name] = image_hist
                if per_image:
                    if self.per_image_exact:
                        res = exact_anomaly_metrics(
                            score,
                            labels,
                            self.ignore_index,
                            self.recall_level,
                            self.per_image_fpr_rule,
                            name=f'scorer {name}',
                            warn=False)
                        row['num_pos'], row['num_neg'] = res['num_pos'], res['num_neg']
                    else:
                        res = image_hist.compute(self.recall_level, self.per_image_fpr_rule, warn=False)
                        bounds = image_hist.error_bounds(self.recall_level, self.per_image_fpr_rule)
                        row['bounds'][name] = tuple(float(bounds[k]) for k in BOUND_FIELDS)
                    row['scores'][name] = tuple(float(res[k]) for k in ROW_FIELDS)
            self._num_images += 1
            self.results.append(row)

    def _unpack(self, sample: dict) -> Tuple[torch.Tensor, torch.Tensor, Optional[list]]:
        where = sample.get('img_path', 'a data sample')
        if 'seg_logits' not in sample:
            raise KeyError(f'AnomalyMetric: {where} has no `seg_logits`; the model must output per-pixel logits '
                           '(mmseg segmentors add them to the predicted data samples)')
        if 'gt_anomaly_map' not in sample:
            raise KeyError(f'AnomalyMetric: {where} has no `gt_anomaly_map`; the test dataset / pipeline must load '
                           'and pack it (e.g. LoadStreetHazardsAnnotations before PackAnomalySegInputs, which put '
                           '`gt_anomaly_map` (1 = anomaly, 0 = normal, 255 = ignore) into the data sample)')
        logits = _data(sample['seg_logits'])
        labels = _data(sample['gt_anomaly_map'])
        if logits.dim() != 3:
            raise ValueError(f'AnomalyMetric: seg_logits of {where} must be (C, H, W), got {tuple(logits.shape)}')
        labels = labels.reshape(labels.shape[-2:]) if labels.dim() == 3 and labels.shape[0] == 1 else labels
        if tuple(labels.shape) != tuple(logits.shape[-2:]):
            raise ValueError(f'AnomalyMetric: gt_anomaly_map of {where} has shape {tuple(labels.shape)} but the '
                             f'logits are {tuple(logits.shape)}; logits must be at ground-truth resolution')
        feats = sample.get('backbone_feats')
        if feats is not None:
            feats = [None if f is None else f[None] for f in feats]
        return logits, labels, feats

    def _check_ready(self, scorer: nn.Module, device: torch.device) -> None:
        if not getattr(scorer, 'is_fitted', True):
            raise RuntimeError(
                f'AnomalyMetric: scorer {scorer.name} ({type(scorer).__name__}) needs fitting before evaluation. '
                "Test with test_cfg=dict(type='AnomalyTestLoop') (it fits scorers with requires_fit on the val "
                'split, or loads their saved statistics), or fit it yourself (fit_begin / fit_step / fit_end) '
                'or load its fitted state with scorer.load_state_dict(...)')
        tensor = next(itertools.chain(scorer.parameters(), scorer.buffers()), None)
        if tensor is not None and tensor.device != device:
            scorer.to(device)

    # ------------------------------------------------------------------ distributed
    def _drop_padding(self, size: int) -> None:
        """Take the sample repeated by a round-up distributed sampler out of this rank's histograms.

        mmengine's ``DefaultSampler`` gives rank ``r`` dataset positions ``r, r + W, ...`` and pads the
        last round with repeated samples; ``collect_results`` drops positions ``>= size``. The same
        positions are padding here; at most the last sample of a rank is one (``padding < W``).
        """
        world, rank = get_world_size(), get_rank()
        n = self._num_images
        if n == 0:
            return
        genuine = max(0, -(-(size - rank) // world))  # ceil((size - rank) / world) positions < size
        extra = n - genuine
        if extra <= 0:
            return
        for name in self.scorer_names:
            if self._last_image[name] is not None:
                self._hists[name].add(self._last_image[name], sign=-1)
                self._last_image[name] = None
        if extra > 1:
            print_log(
                f'AnomalyMetric: rank {rank} processed {n} samples but the dataset size ({size}) leaves '
                f'{genuine} to it; only the last repeated sample could be removed from the pooled '
                'histograms',
                logger='current',
                level=logging.WARNING)

    def _all_reduce_histograms(self) -> None:
        """Sum the pooled histograms of all ranks (each rank ends up with the global histograms).

        Two collectives: a ``max`` over the block-occupancy masks of every scorer (so that all ranks agree
        on the blocks), then a ``sum`` over those blocks' counts.
        """
        if get_world_size() == 1:
            return
        names = self.scorer_names
        masks = torch.from_numpy(np.stack([self._hists[n].block_mask() for n in names]).astype(np.int32))
        all_reduce(masks, op='max')
        ids = [np.flatnonzero(m.numpy()) - m.numel() // 2 for m in masks]
        flat = torch.from_numpy(
            np.concatenate([self._hists[n].dense_blocks(i).reshape(-1)
                            for n, i in zip(names, ids)] + [np.zeros(0, np.int64)]))
        all_reduce(flat, op='sum')
        start = 0
        for name, block_ids in zip(names, ids):
            hist = self._hists[name]
            num = 2 * len(block_ids) * hist.block_size
            hist.set_blocks(block_ids, flat[start:start + num].numpy().reshape(2, -1, hist.block_size))
            start += num

    def evaluate(self, size: int) -> dict:
        """Sum the pooled histograms over ranks, then mmengine's ``evaluate`` (collect the per-image rows, compute
        on the main process, broadcast); the histograms are emptied afterwards."""
        if 'pooled' in self.protocols:
            self._drop_padding(size)
            self._all_reduce_histograms()
        metrics = super().evaluate(size)
        self.reset_histograms()
        return metrics

    # ------------------------------------------------------------------ metrics
    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Metrics from the pooled histograms and the per-image ``results`` rows.

        Returns:
            ``{f'{protocol}/{scorer}/{metric}': value}``; AUROC, AUPR, FPR95, F1 in percent.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        summary: Dict[str, Dict[str, Dict[str, Any]]] = OrderedDict()
        curves = OrderedDict()
        num_images = len(results)
        if 'pooled' in self.protocols:
            summary['pooled'] = OrderedDict()
            for name in self.scorer_names:
                hist = self._hists[name]
                res = hist.compute(self.recall_level, 'first', warn=False)
                bounds = {k: 100 * v for k, v in hist.error_bounds(self.recall_level, 'first').items()}
                self._warn_pooled(name, res, bounds)
                entry = _to_percent(res)
                entry.update(
                    num_images=num_images,
                    num_pixels=res['num_pos'] + res['num_neg'],
                    num_anomaly_pixels=res['num_pos'],
                    FPR95_rule='first',
                    exact=False,
                    num_bits=self.num_bits,
                    **{
                        f'{k}_tie_bound': v
                        for k, v in bounds.items()
                    })
                summary['pooled'][name] = entry
                curves[name] = (hist.curves(), res)
        if 'per_image' in self.protocols:
            summary['per_image'] = OrderedDict()
            both = [r for r in results if r['num_pos'] > 0 and r['num_neg'] > 0]
            if not both:
                print_log(
                    f'AnomalyMetric: none of the {num_images} images holds both anomalous and normal pixels; '
                    'per-image metrics are NaN',
                    logger,
                    level=logging.WARNING)
            elif len(both) < num_images:
                print_log(
                    f'AnomalyMetric: per-image protocol averages over the {len(both)} of {num_images} images '
                    'holding both anomalous and normal pixels', logger)
            for name in self.scorer_names:
                rows = np.array([r['scores'][name] for r in both], dtype=np.float64).reshape(-1, len(ROW_FIELDS))
                res = {k: float('nan') for k in ROW_FIELDS}
                if len(rows):
                    res.update({k: float(np.mean(rows[:, i])) for i, k in enumerate(ROW_FIELDS[:-1])})
                    res['F1_threshold'] = float(np.median(rows[:, -1]))
                entry = _to_percent(res)
                entry.update(
                    num_images=len(both),
                    num_images_skipped=num_images - len(both),
                    FPR95_rule=self.per_image_fpr_rule,
                    exact=self.per_image_exact)
                if self.per_image_exact:
                    bounds = {k: 0.0 for k in BOUND_FIELDS}
                else:
                    # |mean of the metrics - mean of the exact ones| <= mean of the per-image bounds
                    per = np.array([r['bounds'][name] for r in both], np.float64).reshape(-1, len(BOUND_FIELDS))
                    bounds = {
                        k: 100 * float(np.mean(per[:, i])) if len(per) else float('nan')
                        for i, k in enumerate(BOUND_FIELDS)
                    }
                    if len(per):
                        self._warn_per_image_quantised(name, bounds, len(both))
                    entry['num_bits'] = self.num_bits
                entry.update({f'{k}_tie_bound': v for k, v in bounds.items()})
                summary['per_image'][name] = entry

        metrics = OrderedDict()
        for protocol, per_scorer in summary.items():
            for name, entry in per_scorer.items():
                for key in ROW_FIELDS:
                    metrics[f'{protocol}/{name}/{key}'] = entry[key]
            self._print_table(protocol, per_scorer, logger)

        out_dir = self.resolve_output_dir()
        if out_dir is not None:
            write_anomaly_results(out_dir, summary, results, curves, self.per_image_exact, self.recall_level,
                                  self.save_figures, logger)
        return metrics

    def _warn_pooled(self, name: str, res: dict, bounds: Dict[str, float]) -> None:
        if res['num_pos'] == 0 or res['num_neg'] == 0:
            print_log(
                f'AnomalyMetric: pooled protocol, scorer {name}: {res["num_pos"]} anomalous and '
                f'{res["num_neg"]} normal pixels were evaluated; metrics needing both are NaN '
                '(does the test split contain anomalies? is gt_anomaly_map all ignore?)',
                logger='current',
                level=logging.WARNING)
        elif res['num_levels'] == 1:
            print_log(
                f'AnomalyMetric: pooled protocol, scorer {name}: all scores fall in one histogram bin '
                '(constant map); the scorer does not rank pixels (AUROC 50%)',
                logger='current',
                level=logging.WARNING)
        elif max(bounds.values()) > WARN_BOUND:
            print_log(
                f'AnomalyMetric: pooled protocol, scorer {name}: many normal and anomalous pixels share '
                f'histogram bins (scores closer than {2.0 ** (9 - self.num_bits):.1e} relative); '
                f'{_bound_text(bounds)} may differ from an exact ranking by up to that many points. Raise '
                f'num_bits (now {self.num_bits}, max 24) or use a score with more resolution (e.g. '
                'log-probabilities instead of probabilities near 1).',
                logger='current',
                level=logging.WARNING)

    def _warn_per_image_quantised(self, name: str, bounds: Dict[str, float], num_images: int) -> None:
        """Say that the per-image metrics come from histograms, and how far off they may be."""
        large = any(v > WARN_BOUND for v in bounds.values())
        print_log(
            f'AnomalyMetric: per-image protocol, scorer {name}: computed from {self.num_bits}-bit histograms '
            f'(per_image_exact=False), not exactly as the official code; over {num_images} images '
            f'{_bound_text(bounds)} may differ from the exact per-image means by up to that many points' +
            ('. Use per_image_exact=True (the default) for the official numbers.' if large else ''),
            logger='current',
            level=logging.WARNING if large else logging.INFO)

    def _print_table(self, protocol: str, per_scorer: dict, logger) -> None:
        table = PrettyTable()
        table.field_names = ['Scorer', 'FPR95', 'AUROC', 'AUPR', 'F1', 'F1 thr']
        for name, e in per_scorer.items():
            table.add_row([name] + [_fmt(e[k])
                                    for k in ('FPR95', 'AUROC', 'AUPR', 'F1')] + [f'{e["F1_threshold"]:.5g}'])
        level = f'{100 * self.recall_level:g}%'
        rule = f'recall >= {level}' if per_scorer and next(iter(per_scorer.values()))['FPR95_rule'] == 'first' \
            else f'recall nearest {level}'
        what = (f'all evaluated pixels ranked together, {self.num_bits}-bit histogram'
                if protocol == 'pooled' else 'mean over images with both classes, ' +
                ('exact' if self.per_image_exact else f'{self.num_bits}-bit histograms'))
        print_log(f'anomaly results, {protocol} protocol ({what}; FPR95 at {rule}; %):', logger)
        print_log('\n' + table.get_string(), logger=logger)

    # ------------------------------------------------------------------ outputs
    def resolve_output_dir(self) -> Optional[str]:
        """``output_dir`` if given, else ``<log_dir>/anomaly`` of the current runner, else ``None``."""
        return self.output_dir or runner_output_dir()


def _data(field: Any) -> torch.Tensor:
    """The ``data`` tensor of a packed field (PixelData, its ``to_dict()``, or a bare tensor)."""
    if isinstance(field, dict):
        field = field['data']
    elif hasattr(field, 'data') and not isinstance(field, torch.Tensor):
        field = field.data
    return torch.as_tensor(field)


def _to_percent(res: dict) -> Dict[str, Any]:
    out = OrderedDict((k, 100.0 * float(res[k]) if k in PERCENT_METRICS else float(res[k])) for k in ROW_FIELDS)
    return out


def _bound_text(bounds: Dict[str, float]) -> str:
    """``'FPR95 +-a, AUROC +-b, AUPR +-c'`` (points)."""
    return ', '.join(f'{k} +-{bounds[k]:.2g}' for k in ('FPR95', 'AUROC', 'AUPR'))


def _fmt(value: float) -> str:
    return 'nan' if value is None or math.isnan(value) else f'{value:.2f}'
