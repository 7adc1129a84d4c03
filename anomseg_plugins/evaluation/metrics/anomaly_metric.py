"""Anomaly segmentation metric: every scorer, both protocols, one forward pass, memory flat in pixels."""
import itertools
import logging
import math
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.dist import all_gather_object, all_reduce, get_rank, get_world_size
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmengine.structures import BaseDataElement
from mmseg.registry import METRICS
from prettytable import PrettyTable
from torch import nn

from anomseg_plugins.registry import ANOMALY_SCORERS
from ..functional import (BOUND_NAMES, COMPONENT_METRIC_NAMES, METRIC_NAMES, ComponentAccumulator, ScoreHistogram,
                          aggregate_component_stats, component_sizes, exact_anomaly_metrics)
from .anomaly_results_writer import (float16_loss, require_h5py, runner_output_dir, submission_fid,
                                     write_anomaly_results, write_submission_map)

#: Every protocol; ``'component'`` (SegmentMeIfYouCan's component-level metrics) is off by default.
PROTOCOLS = ('pooled', 'per_image', 'component')
DEFAULT_PROTOCOLS = ('pooled', 'per_image')
#: Metrics of the component protocol kept in the results dict (``component/{scorer}/{key}``).
COMPONENT_FIELDS = COMPONENT_METRIC_NAMES + ('threshold', )
PERCENT_METRICS = ('AUROC', 'AUPR', 'FPR95', 'F1')
ROW_FIELDS = METRIC_NAMES  # the per-image metrics kept per scorer (the row of ``results``)
BOUND_FIELDS = BOUND_NAMES  # metrics with a reported quantisation error bound
WARN_BOUND = 0.1  # points: a larger bound of a histogram-based metric is logged as a warning


@METRICS.register_module()
class AnomalyMetric(BaseMetric):
    """Pixel-level anomaly segmentation metrics of several scorers under two protocols, and component-level ones.

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
    - protocol ``component`` (off by default): SegmentMeIfYouCan's component-level metrics (``sIoU``, ``PPV``,
      ``F1_mean`` and ``F1_25`` / ``F1_50`` / ``F1_75``, percent) of the connected components flagged at the
      *pooled* best-F1 threshold (``threshold``, rule ``score >= threshold``; the pooled histogram is built for
      it even without the ``pooled`` protocol), with the AnomalyTrack (``component_track='anomaly'``: predicted
      components under 500 pixels dropped, ground-truth ones under 100 made void) or ObstacleTrack
      (``'obstacle'``: 50 / 10) size limits. The threshold is known only at the end: each scorer's maps are
      cached compressed (bin codes, ~1.8 bytes a pixel: ~2.5 GB per scorer for the StreetHazards test split)
      up to ``component_cache_bytes`` and evaluated exactly then; beyond the cap the metric continues on a grid
      of thresholds around the threshold of the moment and reports the grid threshold it used (``mode`` and
      ``threshold_gap`` in the summary files; within ~1 % of the flagged pixels in tests). See
      :mod:`anomseg_plugins.evaluation.functional.component_metrics`.

    Images without ground truth (e.g. SegmentMeIfYouCan's hidden test splits; no ``gt_anomaly_map`` in the data
    sample) are scored by every scorer (and saved to ``submission_dir``) but left out of every metric; how many
    is logged. With ``submission_dir``, every image's map of every scorer is saved in the official submission
    format: ``{submission_dir}/{scorer}/{fid}.hdf5`` holding the map as float16 in the dataset ``value`` (``fid``
    = the image's file name without extension and without ``_leftImg8bit``); needs ``h5py``.

    Results: ``compute_metrics`` returns ``{protocol}/{scorer}/{AUROC|AUPR|FPR95|F1|F1_threshold}`` and
    ``component/{scorer}/{sIoU|PPV|F1_mean|F1_25|F1_50|F1_75|threshold}`` (``evaluate`` adds ``{prefix}/``),
    AUROC, AUPR, FPR95, F1 and the component metrics in percent (as mmseg reports mIoU),
    unrounded; prints one table per protocol; and has
    :func:`~anomseg_plugins.evaluation.metrics.anomaly_results_writer.write_anomaly_results` write to
    ``output_dir``: ``anomaly_metrics.json`` (``{protocol: {scorer: {...}}}``), ``anomaly_metrics.csv``,
    ``anomaly_per_image.csv`` and the pooled ``roc_curves.png`` / ``pr_curves.png`` (all scorers per figure).

    Distributed testing: ``evaluate`` sums the pooled histograms over ranks with ``all_reduce`` (the sample a
    distributed sampler repeats to even out the ranks, mmengine ``DefaultSampler(round_up=True)``, taken out
    again), then runs mmengine's ``BaseMetric.evaluate``: the per-image rows travel through ``collect_results``
    and the main process computes. Component protocol: after the histograms are summed every rank knows the
    final threshold and evaluates its own images at it (its repeated padding sample removed); the statistics
    are summed over ranks. A rank whose cache overflowed uses the grid threshold nearest the final one; the
    results then say ``mode='grid'`` and give the largest ``threshold_gap`` of the ranks.

    Args:
        scorers: anomaly scorers: configs for ``ANOMALY_SCORERS.build`` (e.g. ``dict(type='MaxLogit')``) or
            built :class:`BaseAnomalyScorer` modules. Names (``scorer.name``) must be distinct.
        protocols: any of ``'pooled'``, ``'per_image'``, ``'component'`` (default: the first two).
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
        component_track: size limits of the component protocol: ``'anomaly'`` (AnomalyTrack, 500 / 100 pixels)
            or ``'obstacle'`` (ObstacleTrack, 50 / 10).
        component_min_pred_size: override of the track's minimum predicted component size (pixels).
        component_min_gt_size: override of the track's minimum ground-truth component size (pixels).
        component_cache_bytes: bytes of compressed score maps the component protocol may cache, shared equally by
            the scorers (default 1 GiB); beyond it, grid mode (see above).
        submission_dir: where to save every image's maps in the SegmentMeIfYouCan submission format (``None``:
            not saved).
    """

    default_prefix: Optional[str] = 'anomaly'

    def __init__(self,
                 scorers: Sequence[Union[dict, nn.Module]],
                 protocols: Sequence[str] = DEFAULT_PROTOCOLS,
                 ignore_index: int = 255,
                 num_bits: int = 22,
                 recall_level: float = 0.95,
                 per_image_fpr_rule: str = 'nearest',
                 per_image_exact: bool = True,
                 output_dir: Optional[str] = None,
                 save_figures: bool = True,
                 collect_device: str = 'cpu',
                 collect_dir: Optional[str] = None,
                 prefix: Optional[str] = 'anomaly',
                 component_track: str = 'anomaly',
                 component_min_pred_size: Optional[int] = None,
                 component_min_gt_size: Optional[int] = None,
                 component_cache_bytes: int = 1 << 30,
                 submission_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if isinstance(protocols, str):
            protocols = (protocols, )
        bad = [p for p in protocols if p not in PROTOCOLS]
        if bad or not protocols:
            raise ValueError(f'AnomalyMetric: protocols must be a non-empty subset of {PROTOCOLS}, got {protocols}')
        try:
            self.component_sizes = component_sizes(component_track, component_min_pred_size, component_min_gt_size)
        except ValueError as e:
            raise ValueError(f'AnomalyMetric: {e}') from None
        if not isinstance(component_cache_bytes, (int, np.integer)) or component_cache_bytes < 0:
            raise ValueError(f'AnomalyMetric: component_cache_bytes must be an int >= 0, got {component_cache_bytes!r}')
        self.component_track = component_track
        self.component_cache_bytes = int(component_cache_bytes)
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
        if submission_dir is not None:
            require_h5py()  # fail now, not after scoring the whole test set
            bad_names = [n for n in names if not n or '/' in n or '\\' in n or n in ('.', '..')]
            if bad_names:
                raise ValueError(f'AnomalyMetric: scorer names {bad_names} cannot be folder names of submission_dir; '
                                 'set `name=` in the scorer configs')
        self.submission_dir = submission_dir
        self.ignore_index = ignore_index
        self.num_bits = int(num_bits)
        self.recall_level = float(recall_level)
        self.per_image_fpr_rule = per_image_fpr_rule
        self.per_image_exact = bool(per_image_exact)
        self.output_dir = output_dir
        self.save_figures = bool(save_figures)
        self._hists: Dict[str, ScoreHistogram] = {}
        self._last_image: Dict[str, Optional[ScoreHistogram]] = {}
        self._components: Dict[str, ComponentAccumulator] = {}
        self._component_results: Optional[Dict[str, dict]] = None
        self._submission_fids: Dict[str, str] = {}
        self._float16_warned: set = set()
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

    @property
    def needs_histograms(self) -> bool:
        """Whether the pooled histograms are built (the pooled and the component protocols need them)."""
        return 'pooled' in self.protocols or 'component' in self.protocols

    def reset_histograms(self) -> None:
        """Empty the pooled histograms and the component caches (done by ``evaluate`` after computing)."""
        self._hists = {n: ScoreHistogram(self.num_bits, self.ignore_index, n) for n in self.scorer_names}
        self._last_image = {n: None for n in self.scorer_names}
        cap = self.component_cache_bytes // len(self.scorers)
        self._components = {
            n: ComponentAccumulator(*self.component_sizes, self.num_bits, self.ignore_index, cap, name=f'scorer {n}')
            for n in self.scorer_names
        } if 'component' in self.protocols else {}
        self._component_results = None
        self._submission_fids = {}
        self._num_images = 0

    @property
    def histograms(self) -> Dict[str, ScoreHistogram]:
        """The pooled histogram of each scorer (read-only use)."""
        return self._hists

    def merge(self, other: 'AnomalyMetric') -> 'AnomalyMetric':
        """Fold the state of ``other`` (same scorers and settings, fed with other data) into this metric.

        Afterwards this metric computes what one metric fed with both data streams would: histograms are
        added, component caches / statistics merged (:meth:`ComponentAccumulator.merge`) and ``other.results``
        appended. Used to combine shards evaluated separately.
        """
        if other.scorer_names != self.scorer_names or other.num_bits != self.num_bits or \
                other.ignore_index != self.ignore_index or other.protocols != self.protocols or \
                other.component_sizes != self.component_sizes:
            raise ValueError('AnomalyMetric.merge: the metrics differ in scorers, num_bits, ignore_index, protocols '
                             'or component sizes: '
                             f'{self.scorer_names}/{self.num_bits}/{self.ignore_index}/{self.protocols}/'
                             f'{self.component_sizes} vs {other.scorer_names}/{other.num_bits}/{other.ignore_index}/'
                             f'{other.protocols}/{other.component_sizes}')
        for name in self.scorer_names:
            self._hists[name].add(other._hists[name])
            if name in self._components:
                self._components[name].merge(other._components[name])
            if other._num_images:  # the merged stream ends with other's images: its last one may be padding
                self._last_image[name] = other._last_image[name]
        self.results.extend(other.results)
        self._num_images += other._num_images
        return self

    # ------------------------------------------------------------------ processing
    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Score every sample with every scorer and accumulate.

        Per sample: ``seg_logits.data`` ``(C, H, W)``, ``gt_anomaly_map.data`` ``(1, H, W)`` (0/1/ignore; may be
        absent: the sample is then scored, saved to ``submission_dir``, and left out of the metrics) and, for
        feature scorers, ``backbone_feats`` (list by stage of ``(C_s, h_s, w_s)`` or ``None``). The pooled
        histograms are updated in place; one small row per image goes to ``self.results`` (per scorer: the
        per-image metrics, and their error bounds when ``per_image_exact=False``); the component protocol caches
        the compressed maps up to ``component_cache_bytes``.
        """
        pooled, per_image = self.needs_histograms, 'per_image' in self.protocols
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            logits, labels, feats = self._unpack(sample)
            img_path = sample.get('img_path')
            row = dict(img_path=img_path, scores=OrderedDict())
            if labels is None:
                row['has_gt'] = False  # scored (and saved) only; compute_metrics leaves it out
            if per_image and not self.per_image_exact:
                row['bounds'] = OrderedDict()
            fid = self._submission_fid(img_path) if self.submission_dir is not None else None
            for scorer in self.scorers:
                name = scorer.name
                self._check_ready(scorer, logits.device)
                with torch.no_grad():
                    score = scorer(logits[None], feats)
                if not isinstance(score, torch.Tensor) or tuple(score.shape) != (1, ) + tuple(logits.shape[-2:]):
                    shape = tuple(score.shape) if isinstance(score, torch.Tensor) else type(score).__name__
                    raise ValueError(f'AnomalyMetric: scorer {name} returned {shape} for logits of shape '
                                     f'{tuple(logits[None].shape)}; expected (1, {logits.shape[-2]}, '
                                     f'{logits.shape[-1]})')
                score = score[0]
                if fid is not None:
                    self._save_submission(name, fid, score)
                if labels is None:
                    self._last_image[name] = None
                    continue
                image_hist = None
                if pooled or not self.per_image_exact:
                    image_hist = ScoreHistogram.from_scores(score, labels, self.num_bits, self.ignore_index,
                                                            f'scorer {name}')
                    row['num_pos'], row['num_neg'] = image_hist.num_pos, image_hist.num_neg
                if pooled:
                    self._hists[name].add(image_hist)
                    self._last_image[name] = image_hist
                if name in self._components:
                    self._components[name].add(score, labels, self._hists[name])
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

    def _submission_fid(self, img_path: Optional[str]) -> str:
        """The official frame id of ``img_path``; two different images with one id would overwrite each other."""
        fid = submission_fid(img_path)
        seen = self._submission_fids.setdefault(fid, str(img_path))
        if seen != str(img_path):
            raise ValueError(f'AnomalyMetric: {img_path} and {seen} both map to the submission file name {fid}.hdf5 '
                             f'in {self.submission_dir}; the official format names files by frame id only. Use a '
                             'submission_dir per split / folder')
        return fid

    def _save_submission(self, name: str, fid: str, score: torch.Tensor) -> None:
        """Write ``{submission_dir}/{name}/{fid}.hdf5``; warn once per scorer about float16 precision loss."""
        score_map = score.detach().float().cpu().numpy()
        if name not in self._float16_warned:
            why = float16_loss(score_map)
            if why is not None:
                self._float16_warned.add(name)
                print_log(
                    f'AnomalyMetric: scorer {name}: the submission format stores maps as float16 and {fid}\'s map '
                    f'loses precision: {why}. Submit a rescaled score (e.g. a normalised or probability-like '
                    'map) for the official evaluation; this warning is shown once per scorer',
                    logger='current',
                    level=logging.WARNING)
        write_submission_map(self.submission_dir, name, fid, score_map)

    def _unpack(self, sample: dict) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[list]]:
        """``(logits (C, H, W), labels (H, W) or None without ground truth, feats)`` of a data sample."""
        where = sample.get('img_path', 'a data sample')
        if 'seg_logits' not in sample:
            raise KeyError(f'AnomalyMetric: {where} has no `seg_logits`; the model must output per-pixel logits '
                           '(mmseg segmentors add them to the predicted data samples)')
        logits = _data(sample['seg_logits'])
        if logits.dim() != 3:
            raise ValueError(f'AnomalyMetric: seg_logits of {where} must be (C, H, W), got {tuple(logits.shape)}')
        labels = None
        if sample.get('gt_anomaly_map') is not None:
            labels = _data(sample['gt_anomaly_map'])
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
        has_gt = bool(self.results) and self.results[-1].get('has_gt', True)
        for name in self.scorer_names:
            if self._last_image[name] is not None:
                self._hists[name].add(self._last_image[name], sign=-1)
                self._last_image[name] = None
            if has_gt and name in self._components:
                self._components[name].drop_last()
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

    def _reduce_components(self) -> Dict[str, dict]:
        """Component statistics of every scorer at its final pooled threshold, summed over ranks.

        Called on every rank after :meth:`_all_reduce_histograms` (all ranks then hold the global histogram and
        agree on the threshold). Each rank evaluates its own images; the results are gathered and combined: the
        statistics summed, ``mode`` ``'grid'`` if any rank used its grid, and the ``threshold`` /
        ``threshold_gap`` of the rank whose gap is largest.
        """
        local = {n: acc.result(self._hists[n]) for n, acc in self._components.items()}
        if get_world_size() == 1:
            return local
        gathered = all_gather_object(local)
        out = {}
        for name in local:
            ranks = [g[name] for g in gathered]
            worst = max(ranks, key=lambda r: abs(r['threshold_gap']) if math.isfinite(r['threshold_gap']) else -1.0)
            res = dict(worst)
            res.update(
                stats=np.sum([r['stats'] for r in ranks], axis=0),
                num_images=sum(r['num_images'] for r in ranks),
                mode='grid' if any(r['mode'] == 'grid' for r in ranks) else 'exact',
                grid_outside=any(r['grid_outside'] for r in ranks))
            out[name] = res
        return out

    def evaluate(self, size: int) -> dict:
        """Sum the pooled histograms over ranks, then mmengine's ``evaluate`` (collect the per-image rows, compute
        on the main process, broadcast); the histograms are emptied afterwards. With the component protocol, its
        statistics are computed on every rank and summed before (see :meth:`_reduce_components`)."""
        if self.needs_histograms:
            self._drop_padding(size)
            self._all_reduce_histograms()
        if 'component' in self.protocols:
            self._component_results = self._reduce_components()
        metrics = super().evaluate(size)
        self.reset_histograms()
        return metrics

    # ------------------------------------------------------------------ metrics
    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Metrics from the pooled histograms and the per-image ``results`` rows.

        Returns:
            ``{f'{protocol}/{scorer}/{metric}': value}``; AUROC, AUPR, FPR95, F1 in percent; component protocol:
            ``component/{scorer}/{sIoU|PPV|F1_mean|F1_25|F1_50|F1_75}`` in percent and ``.../threshold``.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        summary: Dict[str, Dict[str, Dict[str, Any]]] = OrderedDict()
        curves = OrderedDict()
        num_all = len(results)
        results = [r for r in results if r.get('has_gt', True)]
        num_images = len(results)
        if num_images < num_all:
            print_log(
                f'AnomalyMetric: {num_all - num_images} of {num_all} images have no gt_anomaly_map (e.g. a hidden '
                'test split); they were scored' +
                (f' and saved to {self.submission_dir}' if self.submission_dir else '') +
                ' but are left out of every metric',
                logger,
                level=logging.WARNING if num_images == 0 else logging.INFO)
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

        if 'component' in self.protocols:
            summary['component'] = self._component_summary(num_images, logger)

        metrics = OrderedDict()
        for protocol, per_scorer in summary.items():
            fields = COMPONENT_FIELDS if protocol == 'component' else ROW_FIELDS
            for name, entry in per_scorer.items():
                for key in fields:
                    metrics[f'{protocol}/{name}/{key}'] = entry[key]
            if protocol == 'component':
                self._print_component_table(per_scorer, logger)
            else:
                self._print_table(protocol, per_scorer, logger)

        out_dir = self.resolve_output_dir()
        if out_dir is not None:
            write_anomaly_results(out_dir, summary, results, curves, self.per_image_exact, self.recall_level,
                                  self.save_figures, logger)
        return metrics

    def _component_summary(self, num_images: int, logger) -> Dict[str, Dict[str, Any]]:
        """The component protocol's summary entry of every scorer (from ``evaluate``'s reduced statistics, or
        computed here when ``compute_metrics`` is called directly)."""
        reduced = self._component_results
        if reduced is None:
            reduced = {n: acc.result(self._hists[n]) for n, acc in self._components.items()}
        out = OrderedDict()
        for name in self.scorer_names:
            res = reduced[name]
            entry = OrderedDict(aggregate_component_stats(res['stats']))
            entry.update(
                threshold=res['threshold'],
                F1_threshold=res['F1_threshold'],
                mode=res['mode'],
                exact=res['mode'] == 'exact',
                threshold_gap=res['threshold_gap'],
                grid_outside=res['grid_outside'],
                track=self.component_track,
                min_pred_size=self.component_sizes[0],
                min_gt_size=self.component_sizes[1],
                num_images=num_images)
            if not math.isfinite(res['F1_threshold']):
                print_log(
                    f'AnomalyMetric: component protocol, scorer {name}: no anomalous pixel was evaluated, so there '
                    'is no pooled best-F1 threshold; component metrics are NaN',
                    logger,
                    level=logging.WARNING)
            elif res['mode'] == 'grid':
                print_log(
                    f'AnomalyMetric: component protocol, scorer {name}: the compressed maps exceeded '
                    f'component_cache_bytes ({self.component_cache_bytes} shared by {len(self.scorers)} scorers); '
                    f'components were computed at the grid threshold {res["threshold"]:.6g}, which flags '
                    f'{100 * res["threshold_gap"]:+.2f}% pooled pixels relative to the exact best-F1 threshold '
                    f'{res["F1_threshold"]:.6g}',
                    logger,
                    level=logging.WARNING if abs(res['threshold_gap']) > 0.05 else logging.INFO)
            out[name] = entry
        return out

    def _print_component_table(self, per_scorer: dict, logger) -> None:
        table = PrettyTable()
        table.field_names = ['Scorer', 'sIoU', 'PPV', 'mean F1', 'F1@0.25', 'F1@0.5', 'F1@0.75', 'thr', 'mode']
        for name, e in per_scorer.items():
            mode = e['mode'] if e['mode'] == 'exact' else f'grid ({100 * e["threshold_gap"]:+.1f}% px)'
            table.add_row([name] + [_fmt(e[k]) for k in COMPONENT_METRIC_NAMES] + [f'{e["threshold"]:.5g}', mode])
        pred, gt = self.component_sizes
        print_log(
            f'anomaly results, component protocol (SegmentMeIfYouCan {self.component_track} track: predicted '
            f'components < {pred} px dropped, ground-truth components < {gt} px void; at the pooled best-F1 '
            'threshold, score >= thr; %):', logger)
        print_log('\n' + table.get_string(), logger=logger)

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
