"""Hook that draws the qualitative anomaly panels from the test forward pass (``tools/test.py --show-dir``)."""
import copy
import json
import logging
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import mmcv
import mmengine.fileio as fileio
import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from mmengine.visualization import Visualizer
from mmseg.registry import HOOKS
from torch import nn

from anomseg_plugins.datasets.street_hazards import StreetHazardsDataset
from anomseg_plugins.evaluation.functional import ScoreHistogram
from anomseg_plugins.visualization.panels import (PanelData, draw_anomaly_panel, draw_panel_grid, draw_scorer_grid,
                                                  image_statistics, save_rgb, softmax_confidence)
from ..feature_capture import BackboneFeatureCapture, batched_features
from ..scorer_lookup import metric_scorers, resolve_scorer

OPERATING_POINTS = ('recall', 'f1')


@HOOKS.register_module()
class AnomalyPanelHook(Hook):
    """Draw per-image 3x3 anomaly panels, a quick-look grid and a scorer-comparison grid while testing.

    Drop-in replacement of mmseg's ``SegVisualizationHook`` (same ``draw`` / ``show`` / ``wait_time`` /
    ``backend_args`` arguments, so ``tools/test.py --show-dir DIR`` turns it on and sends the figures to
    ``DIR``). It draws from the *test forward pass itself*: the predicted data samples (``seg_logits``,
    ``pred_sem_seg``, ``gt_sem_seg``, ``gt_anomaly_map``) of every test iteration; nothing is inferred
    twice. The anomaly map comes from ``scorer``:

    - a scorer *name* of the test ``AnomalyMetric`` (``'MaxLogit'``, ``'SML'``, ...): a copy of the metric's
      own instance, taken after ``AnomalyTestLoop`` fitted it (SML / Mahalanobis statistics are reused,
      not refitted), fed every test image in order (so stateful scorers such as HEAT see the same image
      sequence as the metric);
    - a scorer *type* or config dict for ``ANOMALY_SCORERS`` (logit-only or already-fitted scorers).

    Scorers that read backbone features get them from the same forward pass: the data sample's
    ``backbone_feats`` when the loop left them on it, otherwise from a forward hook on ``model.backbone``
    held during the test iteration (:mod:`~anomseg_plugins.engine.feature_capture`: whole-image inference or
    ``LogitSegTTAModel``).

    Operating point (the binary detection and TP/FP/FN map): ``threshold`` if given; else
    ``operating_point='recall'``: the highest threshold reaching ``recall_level`` (95 %) recall over the
    pooled pixels of the whole test set, i.e. the point where the metric reads FPR95 (``'first'`` rule;
    computed from this hook's own order-preserving histogram of the scorer's maps, see
    :class:`~anomseg_plugins.evaluation.ScoreHistogram`); or ``operating_point='f1'``: the metric's pooled
    best-F1 threshold. Without anomaly labels in the test set the threshold flags the top 1 % of pixels.
    The figures are therefore drawn after the test epoch; the selected images are kept in memory until
    then (``max(max_panels, grid_size)`` images at full resolution).

    Output (``out_dir``; default ``<visualizer save_dir>/anomaly_panels``: ``--show-dir`` or the run's log
    dir): ``<image>_panel.png`` per selected image (``draw_anomaly_panel``), ``grid.png`` (``grid_size``
    images, ``draw_panel_grid``), ``scorer_grid.png`` (every scorer of the metric on the same images,
    ``draw_scorer_grid``), and ``panels.json`` (threshold, operating point, per-image numbers, files).
    Figures are written by the main process from the images it tested.

    Args:
        draw: draw anything at all (``tools/test.py --show`` / ``--show-dir`` set it).
        interval: take every ``interval``-th eligible test image.
        show: display each panel (``Visualizer.show``) as it is written.
        wait_time: display time in seconds for ``show``.
        backend_args: file backend arguments for reading the input images.
        scorer: scorer name / type (str) or config (dict) of the anomaly map shown.
        threshold: fixed operating threshold (``score >= threshold`` is anomalous); ``None``: see
            ``operating_point``.
        operating_point: ``'recall'`` (threshold at ``recall_level`` recall) or ``'f1'`` (best F1).
        recall_level: recall of the ``'recall'`` operating point.
        max_panels: number of 3x3 panels written.
        grid_size: number of images (rows) in ``grid.png`` and ``scorer_grid.png``; 0 = no grids.
        only_with_anomaly: prefer images holding anomaly pixels (others fill up if there are too few).
        compare_scorers: write ``scorer_grid.png`` with every scorer of the test metric(s).
        out_dir: output folder; ``None`` = ``<save_dir>/anomaly_panels`` (see above).
        add_to_backends: also pass the figures to the visualizer's backends (``add_image``; e.g.
            TensorBoard, W&B, or LocalVisBackend's ``vis_data/vis_image``).
        cell_width / dpi: size of a panel cell in inches and the resolution.
        num_bits: resolution of the histogram behind the 95 %-recall threshold (as ``AnomalyMetric``).
        ignore_index: ignored label in ``gt_sem_seg`` / ``gt_anomaly_map``.
    """

    priority = 'NORMAL'

    def __init__(self,
                 draw: bool = False,
                 interval: int = 1,
                 show: bool = False,
                 wait_time: float = 0.,
                 backend_args: Optional[dict] = None,
                 scorer: Union[str, dict] = 'MaxLogit',
                 threshold: Optional[float] = None,
                 operating_point: str = 'recall',
                 recall_level: float = 0.95,
                 max_panels: int = 8,
                 grid_size: int = 6,
                 only_with_anomaly: bool = True,
                 compare_scorers: bool = True,
                 out_dir: Optional[str] = None,
                 add_to_backends: bool = False,
                 cell_width: float = 4.0,
                 dpi: int = 100,
                 num_bits: int = 22,
                 ignore_index: int = 255) -> None:
        if operating_point not in OPERATING_POINTS:
            raise ValueError(f'AnomalyPanelHook: operating_point must be one of {OPERATING_POINTS}, '
                             f'got {operating_point!r}')
        if not 0.0 < recall_level <= 1.0:
            raise ValueError(f'AnomalyPanelHook: recall_level must be in (0, 1], got {recall_level}')
        if int(interval) < 1 or int(max_panels) < 0 or int(grid_size) < 0:
            raise ValueError(f'AnomalyPanelHook: interval must be >= 1 and max_panels, grid_size >= 0; got '
                             f'{interval}, {max_panels}, {grid_size}')
        if not isinstance(scorer, (str, dict)):
            raise TypeError(f'AnomalyPanelHook: scorer must be a name (str) or a config dict, got {scorer!r}')
        self.draw = bool(draw)
        self.interval = int(interval)
        self.show = bool(show)
        self.wait_time = float(wait_time)
        self.backend_args = backend_args.copy() if backend_args else None
        self.scorer_cfg = scorer
        self.threshold = None if threshold is None else float(threshold)
        self.operating_point = operating_point
        self.recall_level = float(recall_level)
        self.max_panels = int(max_panels)
        self.grid_size = int(grid_size)
        self.only_with_anomaly = bool(only_with_anomaly)
        self.compare_scorers = bool(compare_scorers)
        self.out_dir = out_dir
        self.add_to_backends = bool(add_to_backends)
        self.cell_width = float(cell_width)
        self.dpi = int(dpi)
        self.num_bits = int(num_bits)
        self.ignore_index = int(ignore_index)
        self._reset_state()

    # ------------------------------------------------------------------ state
    def _reset_state(self) -> None:
        self.scorer: Optional[nn.Module] = None
        self.grid_scorers: List[nn.Module] = []
        self.histogram = ScoreHistogram(self.num_bits, self.ignore_index, 'AnomalyPanelHook')
        self.has_anomaly_labels = False
        self.items: List[PanelData] = []
        self.spare: List[PanelData] = []
        self.grid_rows: Dict[int, PanelData] = {}  # id(kept item) -> its scorer-grid row
        self._eligible = 0
        self._capture: Optional[BackboneFeatureCapture] = None

    @property
    def num_kept(self) -> int:
        return max(self.max_panels, self.grid_size)

    def before_test_epoch(self, runner) -> None:
        self._reset_state()

    # ------------------------------------------------------------------ scorer
    @staticmethod
    def _test_scorers(runner) -> List[nn.Module]:
        """The scorers of every test metric that has a ``scorers`` attribute (e.g. ``AnomalyMetric``)."""
        return metric_scorers(getattr(getattr(runner, 'test_loop', None), 'evaluator', None))

    def resolve_scorer(self, runner) -> nn.Module:
        """A private copy of the configured scorer (state reset), fitted statistics included."""
        available = self._test_scorers(runner)
        source = resolve_scorer(self.scorer_cfg, available, 'AnomalyPanelHook',
                                'set default_hooks.visualization.scorer')
        if source.requires_fit and not source.is_fitted:
            raise RuntimeError(f'AnomalyPanelHook: scorer {source.name} needs fitting and the test metric has no '
                               f'fitted scorer of that name (it has {[s.name for s in available]}); add it to '
                               'the AnomalyMetric scorers so AnomalyTestLoop fits it, or show another scorer')
        scorer = copy.deepcopy(source)
        scorer.reset()
        return scorer

    def _prepare(self, runner) -> None:
        self.scorer = self.resolve_scorer(runner)
        if self.compare_scorers and self.grid_size > 0:
            self.grid_scorers = []
            for scorer in self._test_scorers(runner) or [self.scorer]:
                scorer = copy.deepcopy(scorer)
                scorer.reset()
                self.grid_scorers.append(scorer)
        self._capture = BackboneFeatureCapture.for_model(runner.model, [self.scorer] + self.grid_scorers,
                                                         'AnomalyPanelHook')

    # ------------------------------------------------------------------ iterations
    def before_test_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if not self.draw:
            return
        if self.scorer is None:  # at the first iteration: the test metric's scorers are fitted by then
            self._prepare(runner)
        self._capture.__enter__()

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs: Optional[Sequence] = None) -> None:
        if not self.draw:
            return
        try:
            batch_feats = self._batch_features(outputs) if outputs else None
        finally:
            if self._capture is not None:
                self._capture.__exit__()
        for i, sample in enumerate(outputs or []):
            self._process(sample, None if batch_feats is None else batch_feats[i], data_batch, i)

    def _batch_features(self, outputs: Sequence) -> Optional[list]:
        """Per sample, the ``(1, C_s, h_s, w_s)`` stage features for the scorers (``None`` when they need none).
        Features the loop left on the samples (``backbone_feats``) are reused; otherwise this hook's own capture
        of the test iteration is sliced to the samples (padding, flip, TTA views)."""
        if self._capture is None or not self._capture.stages:
            return None
        if all(sample.get('backbone_feats', None) is not None for sample in outputs):
            per_sample = [sample.backbone_feats for sample in outputs]
        else:
            per_sample = self._capture.per_sample(outputs)
        return [batched_features(feats) for feats in per_sample]

    @torch.no_grad()
    def _process(self, sample, feats: Optional[list], data_batch, index: int) -> None:
        if 'seg_logits' not in sample:
            raise KeyError(f'AnomalyPanelHook: {sample.get("img_path", "a test sample")} has no seg_logits; the '
                           'model must return per-pixel logits (mmseg segmentors do)')
        logits = sample.seg_logits.data
        self.scorer.to(logits.device)
        score = self.scorer(logits[None].float(), feats)[0]
        gt_anomaly = sample.gt_anomaly_map.data[0] if 'gt_anomaly_map' in sample else None
        labels = gt_anomaly if gt_anomaly is not None else torch.zeros_like(score, dtype=torch.uint8)
        if gt_anomaly is not None and tuple(gt_anomaly.shape) != tuple(score.shape):
            raise ValueError(f'AnomalyPanelHook: gt_anomaly_map {tuple(gt_anomaly.shape)} and anomaly map '
                             f'{tuple(score.shape)} of {sample.get("img_path")} differ in size')
        image_hist = ScoreHistogram.from_scores(score, labels, self.num_bits, self.ignore_index, 'AnomalyPanelHook')
        self.histogram.add(image_hist)
        has_anomaly = image_hist.num_pos > 0
        self.has_anomaly_labels |= has_anomaly

        eligible = has_anomaly or not self.only_with_anomaly
        if eligible:
            take = self._eligible % self.interval == 0 and len(self.items) < self.num_kept
            self._eligible += 1
        else:
            take = len(self.spare) < self.num_kept and len(self.items) < self.num_kept
        if not take:
            return
        item = self._panel_data(sample, score, gt_anomaly, data_batch, index)
        kept = self.items if eligible else self.spare
        kept.append(item)
        if self.grid_scorers and len(kept) <= self.grid_size:
            self.grid_rows[id(item)] = self._grid_row(item, logits, feats)

    def _panel_data(self, sample, score, gt_anomaly, data_batch, index: int) -> PanelData:
        img_path = sample.get('img_path', None)
        image = None
        if img_path is not None:
            try:
                image = mmcv.imfrombytes(fileio.get(img_path, backend_args=self.backend_args), channel_order='rgb')
            except Exception as exc:  # a vanished file must not end the test run
                print_log(
                    f'AnomalyPanelHook: cannot re-read {img_path} for its panel ({exc}); showing the network '
                    'input instead',
                    logger='current',
                    level=logging.WARNING)
        if image is None:
            inputs = data_batch['inputs'][index] if data_batch is not None else None
            if inputs is None:
                image = np.zeros(tuple(score.shape) + (3, ), np.uint8)
            else:  # mmseg packs the BGR image as (3, h, w) uint8
                image = inputs.detach().cpu().numpy().transpose(1, 2, 0)[..., ::-1].astype(np.uint8)
        logits = sample.seg_logits.data
        pred = sample.pred_sem_seg.data[0] if 'pred_sem_seg' in sample else logits.argmax(dim=0)
        gt = sample.gt_sem_seg.data[0] if 'gt_sem_seg' in sample else None
        name = _display_name(img_path, len(self.items) + len(self.spare))
        return PanelData(
            name=name,
            image=np.ascontiguousarray(image),
            pred_sem_seg=pred.cpu().numpy().astype(np.uint8 if logits.shape[0] < 255 else np.int32),
            confidence=softmax_confidence(logits),
            anomaly_score=score.float().cpu().numpy(),
            gt_sem_seg=None if gt is None else gt.cpu().numpy().astype(np.uint8),
            gt_anomaly=None if gt_anomaly is None else gt_anomaly.cpu().numpy().astype(np.uint8))

    def _grid_row(self, item: PanelData, logits, feats) -> PanelData:
        extra = {}
        for scorer in self.grid_scorers:
            try:
                scorer.to(logits.device)
                scorer.reset()
                extra[scorer.name] = scorer(logits[None].float(), feats)[0].float().cpu().numpy()
            except Exception as exc:  # one scorer failing must not end the test run
                print_log(
                    f'AnomalyPanelHook: scorer {scorer.name} failed on {item.name} for the scorer grid: '
                    f'{exc}',
                    logger='current',
                    level=logging.WARNING)
                extra[scorer.name] = np.full(item.anomaly_score.shape, np.nan, np.float32)
        row = PanelData(item.name, item.image, item.pred_sem_seg, item.confidence, item.anomaly_score, item.gt_sem_seg,
                        item.gt_anomaly, extra)
        return row.downsized(int(2.2 * self.dpi))

    # ------------------------------------------------------------------ figures
    def operating_threshold(self, metrics: Optional[dict] = None) -> tuple:
        """``(threshold, description)`` of the operating point (see the class docstring)."""
        if self.threshold is not None:
            return self.threshold, 'fixed threshold'
        name = self.scorer.name if self.scorer is not None else str(self.scorer_cfg)
        if self.operating_point == 'f1' and metrics:
            key = next((k for k in metrics if k.endswith(f'pooled/{name}/F1_threshold')), None)
            if key is not None and math.isfinite(float(metrics[key])):
                return float(metrics[key]), 'best F1 (pooled)'
            print_log(
                f'AnomalyPanelHook: the metrics hold no pooled F1 threshold of {name}; using '
                f'{100 * self.recall_level:g}% recall instead',
                logger='current',
                level=logging.WARNING)
        if not self.has_anomaly_labels:
            return self.histogram.quantile(0.99), 'top 1% of pixels (no anomaly labels)'
        return self.histogram.threshold_at_recall(self.recall_level), f'{100 * self.recall_level:g}% recall (pooled)'

    def after_test_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        if not self.draw or self.scorer is None:
            return
        if self._capture is not None:
            self._capture.__exit__()
        if not is_main_process():
            self._reset_state()
            return
        chosen = (self.items + self.spare)[:self.num_kept]
        if not chosen:
            print_log(
                'AnomalyPanelHook: no test image was selected; nothing drawn', logger='current', level=logging.WARNING)
            return
        out_dir = self.resolve_out_dir(runner)
        meta = self.dataset_meta(runner)
        classes, palette = meta['classes'], meta['palette']
        threshold, op = self.operating_threshold(metrics)
        limits = (self.histogram.quantile(0.01), self.histogram.quantile(0.999))
        if not limits[1] > limits[0]:
            limits = None
        name = self.scorer.name
        index = dict(
            scorer=name,
            threshold=threshold,
            operating_point=op,
            recall_level=self.recall_level,
            pooled_at_threshold=self.histogram.rates_at_threshold(threshold),
            score_limits=limits,
            panels=[],
            grid=None,
            scorer_grid=None)
        print_log(
            f'AnomalyPanelHook: drawing {min(len(chosen), self.max_panels)} panels and the grids '
            f'({name}, threshold {threshold:.4g} at {op}) into {out_dir}',
            logger='current')
        bar = ProgressBar(min(len(chosen), self.max_panels))
        for item in chosen[:self.max_panels]:
            panel = draw_anomaly_panel(
                item,
                threshold,
                classes,
                palette,
                name,
                op,
                limits,
                self.ignore_index,
                cell_width=self.cell_width,
                dpi=self.dpi)
            file = _file_stem(item.name) + '_panel.png'
            self._emit(osp.join(out_dir, file), panel, runner)
            stats = image_statistics(item, threshold, len(classes), self.ignore_index)
            index['panels'].append(dict(image=item.name, file=file, **_json_floats(stats)))
            bar.update()
        if self.grid_size > 0:
            rows = chosen[:self.grid_size]
            grid = draw_panel_grid(rows, threshold, classes, palette, name, limits, self.ignore_index, dpi=self.dpi)
            self._emit(osp.join(out_dir, 'grid.png'), grid, runner)
            index['grid'] = 'grid.png'
            ordered = [self.grid_rows[id(it)] for it in rows if id(it) in self.grid_rows]
            if self.grid_scorers and ordered:
                names = [s.name for s in self.grid_scorers]
                titles = {n: _scorer_title(n, metrics) for n in names}
                sgrid = draw_scorer_grid(ordered, names, titles, dpi=self.dpi)
                self._emit(osp.join(out_dir, 'scorer_grid.png'), sgrid, runner)
                index['scorer_grid'] = 'scorer_grid.png'
        with open(osp.join(out_dir, 'panels.json'), 'w') as f:
            json.dump(index, f, indent=2)
        print_log(
            f'AnomalyPanelHook: wrote {len(index["panels"])} panels' + (', grid.png' if index['grid'] else '') +
            (', scorer_grid.png' if index['scorer_grid'] else '') + f' and panels.json to {out_dir}',
            logger='current')
        self._reset_state()

    def _emit(self, path: str, image: np.ndarray, runner) -> None:
        save_rgb(path, image)
        if not (self.add_to_backends or self.show):
            return
        visualizer = Visualizer.get_current_instance()
        if self.add_to_backends:
            visualizer.add_image(osp.splitext(osp.basename(path))[0], image, step=runner.iter)
        if self.show:
            visualizer.show(image, win_name=osp.basename(path), wait_time=self.wait_time)

    def resolve_out_dir(self, runner) -> str:
        """``out_dir``, else ``<visualizer.save_dir>/anomaly_panels`` (``--show-dir``), else the log dir's."""
        if self.out_dir:
            return self.out_dir
        vis_cfg = runner.cfg.get('visualizer', None) if getattr(runner, 'cfg', None) is not None else None
        save_dir = vis_cfg.get('save_dir', None) if isinstance(vis_cfg, dict) else None
        return osp.join(save_dir or runner.log_dir, 'anomaly_panels')

    @staticmethod
    def dataset_meta(runner) -> dict:
        """Classes and palette of the test dataset (StreetHazards' when the dataset gives none)."""
        meta = None
        loop = getattr(runner, 'test_loop', None)
        dataset = getattr(getattr(loop, 'dataloader', None), 'dataset', None)
        if dataset is not None:
            meta = getattr(dataset, 'metainfo', None)
        if not meta or 'classes' not in meta or 'palette' not in meta:
            try:
                meta = Visualizer.get_current_instance().dataset_meta
            except RuntimeError:  # no visualizer created (hook used outside a runner)
                meta = None
        if not meta or 'classes' not in meta or 'palette' not in meta:
            meta = StreetHazardsDataset.METAINFO
        return meta


# ---------------------------------------------------------------------------------------------- helpers
def _display_name(img_path: Optional[str], index: int) -> str:
    if not img_path:
        return f'image_{index:04d}'
    parent = osp.basename(osp.dirname(img_path))
    return f'{parent}/{osp.basename(img_path)}' if parent else osp.basename(img_path)


def _file_stem(name: str) -> str:
    return osp.splitext(name)[0].replace('/', '_').replace('\\', '_')


def _scorer_title(name: str, metrics: Optional[dict]) -> str:
    if not metrics:
        return name
    vals = {}
    for key in ('AUPR', 'FPR95'):
        k = next((k for k in metrics if k.endswith(f'pooled/{name}/{key}')), None)
        if k is not None:
            vals[key] = float(metrics[k])
    if not vals:
        return name
    return name + '\n' + ', '.join(f'{k} {v:.1f}' for k, v in vals.items())


def _json_floats(stats: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in stats.items()}
