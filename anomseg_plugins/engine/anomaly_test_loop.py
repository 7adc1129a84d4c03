"""Test loop that feeds anomaly scorers from the test forward pass and fits them beforehand; one or several test
sets."""
import copy
import os.path as osp
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from mmengine.dist import is_main_process
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.model import BaseTTAModel
from mmengine.runner.amp import autocast
from mmengine.runner.base_loop import BaseLoop
from mmengine.runner.loops import TestLoop
from mmengine.utils import ProgressBar
from mmseg.registry import LOOPS
from torch import Tensor, nn
from torch.utils.data import DataLoader

from anomseg_plugins.scorers.base_scorer import BaseAnomalyScorer
from .feature_capture import BackboneFeatureCapture, feature_stages, find_tta_model, unwrap_model
from .scorer_lookup import metric_scorers
from .scorer_stats import STATS_FILE, load_matching_stats, save_stats, stats_key
from .test_sets import TestSetSpec, parse_test_sets, set_metric_key


@dataclass
class TestSet:
    """One built test set of :class:`AnomalyTestLoop`: its name, dataloader and evaluator, and where the config
    gives it (``key``, for messages)."""

    __test__ = False  # not a pytest test class despite the name

    name: str
    key: str
    dataloader: DataLoader
    evaluator: Evaluator


@LOOPS.register_module()
class AnomalyTestLoop(TestLoop):
    """mmengine ``TestLoop`` that also serves the anomaly scorers of ``AnomalyMetric`` from the same pass.

    The scorers are the ``scorers`` of every test metric that has such an attribute. During each test
    step a forward hook on ``model.backbone`` captures the stages the scorers list in ``feature_stages``
    (their union); every output data sample gets ``backbone_feats``: a list indexed by stage holding
    that sample's ``(C_s, h_s, w_s)`` features (padding removed) for the captured stages and ``None``
    elsewhere (:mod:`~anomseg_plugins.engine.feature_capture`). They are dropped once the metrics have processed
    the batch, before the ``after_test_iter`` hooks.

    Before testing, scorers that need fitting (``requires_fit`` and not yet fitted) are

    1. loaded from ``<work_dir>/<stats_file>`` when that file was written for the same scorer
       (``fit_signature()``) and the same key (:meth:`stats_key`, :mod:`~anomseg_plugins.engine.scorer_stats`):
       everything that changes the logits or features the scorers see, i.e. the model weights (a hash of the
       state dict), the model's ``test_cfg`` (mode, crop size, stride), its data preprocessor (mean, std, size,
       padding), its other settings (e.g. ``align_corners``, dilations), the test-time-augmentation wrapper, and
       the fit data and its pipeline; the log names the part that changed; or else
    2. fitted: the fit dataloader (``fit_dataloader``, by default the config's ``val_dataloader``) is run
       through ``model.test_step`` (the same model, TTA wrapper included, as the test) with the same
       feature capture, every scorer gets ``fit_step(seg_logits, feats, gt_sem_seg)`` per batch (logits at
       ground-truth resolution, as mmseg's ``predict`` returns them) and ``fit_end()`` after the pass; passes
       repeat while a scorer is still unfitted (a z-score fusion needs its children fitted first). The main
       process draws one mmengine ``ProgressBar`` per pass. The statistics are then saved to the stats file
       (main process).

    Fitting happens in :meth:`run` before mmengine's ``TestLoop.run`` starts (with the model in eval mode), i.e.
    before the ``before_test`` / ``before_test_epoch`` hooks; the test iterations (:meth:`run_iter`) are mmengine's
    with the features attached. Without scorers the loop is mmengine's ``TestLoop``.

    **Several test sets** (``primary_set`` and ``test_sets``; config form in :mod:`~anomseg_plugins.engine.test_sets`):
    the runner's ``test_dataloader`` / ``test_evaluator`` are the primary set (mmengine's ``Runner`` requires them),
    named by ``primary_set``; every set of ``test_sets`` brings its own dataloader and evaluator (default: a copy of
    the ``test_evaluator`` config). The scorers are fitted once, before the first set, and every set runs the same
    model with the same fitted statistics: a scorer that needs fitting and appears in several sets' metrics under
    one name (the stats file keys the statistics by name) must have the same settings (``fit_signature()``) in all
    of them, and becomes one object shared by those metrics; different settings under one name are an error. Each
    set's scorers are ``reset()`` before the set (HEAT's running statistics start afresh, as in a single-set run), so
    every set's metrics equal those of a single-set run on it. The sets run in order inside one test epoch:
    ``before_test`` / ``before_test_epoch`` once, each set's iterations (``batch_idx`` counting from 0 per set;
    while a set runs, ``self.dataloader`` / ``self.evaluator``, hence ``runner.test_dataloader``, are that set's),
    its evaluation, then ``after_test_epoch`` once with every set's metrics, keyed ``<set name>/<metric>``
    (``road_anomaly21/anomaly/pooled/MaxLogit/AUPR``, ``street_hazards/mIoU``); :attr:`set_metrics` keeps them per
    set. An ``AnomalyMetric`` without ``output_dir`` writes its files to ``<log_dir>/anomaly/<set name>/``.

    Why ``test_sets`` extends this loop instead of a loop type of its own: the fitting, the feature capture and the
    stats file are the same code path for one set or several, and what keys on the loop type (the pre-flight check
    that scorers needing fitting run under ``AnomalyTestLoop``, ``tools/test.py --tta`` refusing mmseg's
    ``SegTTAModel``) holds for both; a single-set config is this loop without the two arguments, unchanged.

    Works with any mmseg segmentor that has a ``backbone`` (``EncoderDecoder``,
    ``CascadeEncoderDecoder``; DDP / TTA wrappers are unwrapped via ``.module``). Scorers that need
    features require one backbone call per batch, or under test-time augmentation (``LogitSegTTAModel``,
    ``tools/test.py --tta``) one per view, whose features are merged like the logits
    (:func:`~anomseg_plugins.engine.feature_capture.merge_view_features`): sliding-window inference raises an
    error naming ``test_cfg.mode``. Under TTA the fit dataloader must give augmented batches too
    (``tools/test.py --tta`` gives it the ``tta_pipeline``).

    Args:
        runner: the runner.
        dataloader: test dataloader (config or object).
        evaluator: test evaluator (config or object); e.g. ``[IoUMetric, AnomalyMetric]``.
        fp16: run the model under autocast.
        fit_dataloader: dataloader (config or object) of the fit split; ``None`` = the runner's
            ``val_dataloader``.
        stats_file: file name (in ``work_dir``) or path of the fitted statistics; ``None`` = never
            save or load them.
        max_fit_passes: passes over the fit data before giving up on a scorer that stays unfitted.
        primary_set: name of the set of ``dataloader`` / ``evaluator`` (str), or ``dict(name=..., tta_pipeline=...)``
            (the pipeline ``tools/test.py --tta`` gives it); required with ``test_sets``. Given alone, the single set's
            metrics are reported under its name too.
        test_sets: more test sets: ``{name: dict(dataloader=..., evaluator=..., tta_pipeline=...)}`` or
            ``[dict(name=..., dataloader=..., ...)]`` (dataloader and evaluator as configs or objects; evaluator
            default: a copy of the ``evaluator`` config; ``tta_pipeline`` is read by ``tools/test.py --tta``).
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List],
                 fp16: bool = False,
                 fit_dataloader: Optional[Union[DataLoader, Dict]] = None,
                 stats_file: Optional[str] = STATS_FILE,
                 max_fit_passes: int = 3,
                 primary_set: Union[None, str, Mapping] = None,
                 test_sets: Union[None, Mapping, Sequence[Mapping]] = None) -> None:
        specs = parse_test_sets(primary_set, test_sets)  # a config mistake is reported before anything is built
        evaluator_cfg = copy.deepcopy(evaluator) if isinstance(evaluator, (dict, list)) else None
        super().__init__(runner, dataloader, evaluator, fp16)
        self._fit_dataloader = fit_dataloader
        self._fit_loader: Optional[DataLoader] = None
        self._fit_loader_origin = 'test_cfg.fit_dataloader' if fit_dataloader is not None else 'val_dataloader'
        self.stats_file = stats_file
        self.max_fit_passes = int(max_fit_passes)
        #: The test sets, primary first; ``[]`` for a single-set run (no ``primary_set``).
        self.test_sets: List[TestSet] = self._build_test_sets(specs, evaluator_cfg)
        #: The metrics of the last run per set, ``{set name: {metric: value}}`` (without the set prefix).
        self.set_metrics: 'OrderedDict[str, dict]' = OrderedDict()
        if self.test_sets:
            self._share_fitted_scorers()
            self.scorers = []
            for test_set in self.test_sets:
                self.scorers += [s for s in metric_scorers(test_set.evaluator) if not any(s is t for t in self.scorers)]
        else:
            self.scorers = metric_scorers(self.evaluator)
        self.feature_stages = feature_stages(self.scorers)
        self.capture = BackboneFeatureCapture.for_model(self.runner.model, self.scorers, 'AnomalyTestLoop')
        if not self.scorers:
            print_log(
                'AnomalyTestLoop: no test metric has anomaly scorers (e.g. AnomalyMetric); running as a '
                'plain TestLoop',
                logger='current')

    # ----- test sets -----
    @property
    def set_names(self) -> List[str]:
        """Names of the test sets in test order (``[]`` for a single-set run)."""
        return [s.name for s in self.test_sets]

    def _build_test_sets(self, specs: List[TestSetSpec], evaluator_cfg: Any) -> List[TestSet]:
        """Build the dataloader and evaluator of every set but the primary (the runner's); point each set's
        ``AnomalyMetric`` without ``output_dir`` to ``<log_dir>/anomaly/<set name>``."""
        if not specs:
            return []
        sets = [TestSet(specs[0].name, 'test_dataloader', self.dataloader, self.evaluator)]
        for spec in specs[1:]:
            loader = spec.dataloader
            if isinstance(loader, dict):
                try:
                    loader = self.runner.build_dataloader(
                        loader,
                        seed=self.runner.seed,
                        diff_rank_seed=self.runner._randomness_cfg.get('diff_rank_seed', False))
                except Exception as exc:
                    raise RuntimeError(
                        f'AnomalyTestLoop: cannot build {spec.key}.dataloader of test set {spec.name!r}: '
                        f'{type(exc).__name__}: {exc}') from exc
            evaluator = spec.evaluator if spec.evaluator is not None else copy.deepcopy(evaluator_cfg)
            if evaluator is None:
                raise ValueError(f'AnomalyTestLoop: {spec.key} has no `evaluator`, and the test evaluator was given '
                                 f'built (not as a config) so there is none to copy; set {spec.key}.evaluator')
            if isinstance(evaluator, (dict, list)):
                evaluator = self.runner.build_evaluator(evaluator)
            if any(evaluator is s.evaluator for s in sets):
                raise ValueError(f'AnomalyTestLoop: {spec.key}.evaluator is the evaluator object of another test set; '
                                 'every set needs its own (give a config: it is built per set)')
            if hasattr(loader.dataset, 'metainfo'):
                evaluator.dataset_meta = loader.dataset.metainfo
            sets.append(TestSet(spec.name, spec.key, loader, evaluator))
        self._separate_output_folders(sets)
        return sets

    def _separate_output_folders(self, sets: List[TestSet]) -> None:
        """Give each set's anomaly metrics (those with ``scorers``) folders of their own: ``output_dir`` ``None`` ->
        ``<log_dir>/anomaly/<set name>``; an ``output_dir`` or ``submission_dir`` that several sets share (e.g. one
        ``submission_dir`` in a base config) -> ``<dir>/<set name>``, logged."""
        for attr in ('output_dir', 'submission_dir'):
            users: Dict[str, List[Tuple[Any, str]]] = {}
            for test_set in sets:
                for metric in test_set.evaluator.metrics:
                    if getattr(metric, 'scorers', None) is None or not hasattr(metric, attr):
                        continue
                    folder = getattr(metric, attr)
                    if folder is None and attr == 'output_dir':
                        metric.output_dir = osp.join(self.runner.log_dir, 'anomaly', test_set.name)
                    elif folder is not None:
                        users.setdefault(osp.normpath(str(folder)), []).append((metric, test_set.name))
            for folder, shared in users.items():
                if len({name for _, name in shared}) < 2:
                    continue
                for metric, name in shared:
                    setattr(metric, attr, osp.join(folder, name))
                print_log(
                    f'AnomalyTestLoop: the test sets {sorted({n for _, n in shared})} share {attr}={folder!r}; each '
                    f'writes to {osp.join(folder, "<set name>")}',
                    logger='current')

    def _share_fitted_scorers(self) -> None:
        """Make the scorers that need fitting one object per name across the sets' metrics (fitted once).

        Raises:
            ValueError: two scorers of one name with different settings (``fit_signature()``): the stats file keys
                the fitted statistics by name, so they cannot both be fitted under it.
        """
        first: Dict[str, Tuple[nn.Module, str]] = {}
        for test_set in self.test_sets:
            for metric in test_set.evaluator.metrics:
                scorers = getattr(metric, 'scorers', None) or []
                for i, scorer in enumerate(scorers):
                    if not getattr(scorer, 'requires_fit', False):
                        continue
                    if scorer.name not in first:
                        first[scorer.name] = (scorer, test_set.key)
                        continue
                    shared, where = first[scorer.name]
                    if shared is scorer:
                        continue
                    if shared.fit_signature() != scorer.fit_signature():
                        raise ValueError(
                            f'AnomalyTestLoop: scorer {scorer.name!r} needs fitting and has other settings in the '
                            f'evaluator of {test_set.key} ({scorer.fit_signature()}) than in that of {where} '
                            f'({shared.fit_signature()}); the stats file keys fitted statistics by name, so give one '
                            "of them another `name=` in its scorer config")
                    scorers[i] = shared

    def _use(self, test_set: TestSet) -> None:
        """Make ``test_set`` the one the loop (and the hooks, through ``runner.test_dataloader``) runs."""
        self.dataloader, self.evaluator = test_set.dataloader, test_set.evaluator
        self._test_source = 'test_dataloader' if test_set.key == 'test_dataloader' else f'{test_set.key}.dataloader'
        metainfo = getattr(test_set.dataloader.dataset, 'metainfo', None)
        if metainfo is not None:
            self.runner.visualizer.dataset_meta = metainfo

    # ----- model access -----
    @property
    def segmentor(self) -> nn.Module:
        """The runner's model with DDP / TTA wrappers removed."""
        return unwrap_model(self.runner.model)

    @property
    def tta_model(self) -> Optional[BaseTTAModel]:
        """The test-time-augmentation wrapper (e.g. ``LogitSegTTAModel``) around the segmentor, if any."""
        return find_tta_model(self.runner.model)

    def predict(self, data_batch, source: str = 'test_dataloader') -> list:
        """``model.test_step`` under autocast; attaches ``backbone_feats`` to each output sample.

        ``source`` names the dataloader of ``data_batch`` in error messages.
        """
        tta = self.tta_model
        inputs = data_batch.get('inputs') if isinstance(data_batch, dict) else None
        if tta is not None and isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], Tensor):
            raise RuntimeError(f'AnomalyTestLoop: the model is wrapped in {type(tta).__name__} (test-time '
                               f'augmentation), but {source} gives un-augmented batches; set its '
                               'dataset.pipeline to the tta_pipeline (tools/test.py --tta does it for '
                               'test_dataloader, every test_cfg.test_sets entry and the fit data, '
                               'test_cfg.fit_dataloader or val_dataloader)')
        with self.capture:
            with autocast(enabled=self.fp16):
                outputs = self.runner.model.test_step(data_batch)
            feats = self.capture.per_sample(outputs)
        for sample, sample_feats in zip(outputs, feats or []):
            sample.backbone_feats = sample_feats
        return outputs

    # ----- test -----
    def run(self) -> dict:
        """Fit (or load) the scorers, then test as mmengine's ``TestLoop`` does (every test set in turn, see the class
        docstring)."""
        self.runner.model.eval()
        self.prepare_scorers()
        if self.test_sets:
            return self.run_sets()
        for scorer in self.scorers:
            scorer.reset()
        return super().run()

    def run_sets(self) -> dict:
        """One test epoch over every test set; returns every set's metrics keyed ``<set name>/<metric>``."""
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        self.runner.model.eval()
        metrics: Dict[str, Any] = OrderedDict()
        self.set_metrics = OrderedDict()
        try:
            for number, test_set in enumerate(self.test_sets, 1):
                result = self.run_set(test_set, number)
                self.set_metrics[test_set.name] = result
                metrics.update((set_metric_key(test_set.name, key), value) for key, value in result.items())
        finally:
            self._use(self.test_sets[0])
        self.runner.call_hook('after_test_epoch', metrics=metrics)
        self.runner.call_hook('after_test')
        return metrics

    def run_set(self, test_set: TestSet, number: int = 1) -> dict:
        """Test one set (its scorers reset first) and evaluate it; returns its metrics without the set prefix."""
        self._use(test_set)
        loader = test_set.dataloader
        print_log(
            f'AnomalyTestLoop: test set {number}/{len(self.test_sets)} {test_set.name!r} ({test_set.key}): '
            f'{len(loader.dataset)} images, {len(loader)} batches',
            logger='current')
        for scorer in metric_scorers(test_set.evaluator):
            scorer.reset()
        test_loss = getattr(self, 'test_loss', None)
        if isinstance(test_loss, dict):
            test_loss.clear()
        start = time.time()
        for idx, data_batch in enumerate(loader):
            self.run_iter(idx, data_batch)
        result = dict(test_set.evaluator.evaluate(len(loader.dataset)))
        if test_loss:  # losses a model appends to its test outputs (plain TestLoop iterations only)
            from mmengine.runner.loops import _parse_losses
            result.update(_parse_losses(test_loss, 'test'))
        print_log(
            f'AnomalyTestLoop: test set {test_set.name!r}: {len(result)} metrics in {time.time() - start:.0f} s',
            logger='current')
        return result

    @torch.no_grad()
    def run_iter(self, idx, data_batch: Sequence[dict]) -> None:
        """mmengine's test iteration, the outputs carrying ``backbone_feats`` while the metrics process them.

        Without scorers it is mmengine's own (test losses included); with them, losses a model appends to its
        test outputs are not collected (mmseg segmentors append none).
        """
        if not self.scorers:
            return super().run_iter(idx, data_batch)
        self.runner.call_hook('before_test_iter', batch_idx=idx, data_batch=data_batch)
        outputs = self.predict(data_batch, source=getattr(self, '_test_source', 'test_dataloader'))
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        for sample in outputs:
            if 'backbone_feats' in sample:
                del sample.backbone_feats
        self.runner.call_hook('after_test_iter', batch_idx=idx, data_batch=data_batch, outputs=outputs)

    # ----- fitting -----
    @property
    def stats_path(self) -> Optional[str]:
        return None if self.stats_file is None else osp.join(self.runner.work_dir, self.stats_file)

    def fit_dataloader(self) -> Optional[DataLoader]:
        """The fit dataloader (built once): ``fit_dataloader``, else the runner's val dataloader, else ``None``."""
        if self._fit_loader is None:
            source = self._fit_dataloader
            if source is None:  # the runner keeps the val dataloader config until its val loop is built
                val_loop = getattr(self.runner, '_val_loop', None)
                source = val_loop.dataloader if isinstance(val_loop, BaseLoop) else \
                    (self.runner.cfg.get('val_dataloader') or getattr(self.runner, '_val_dataloader', None))
            if isinstance(source, dict):
                source = self.runner.build_dataloader(source, seed=self.runner.seed)
            self._fit_loader = source
        return self._fit_loader

    def stats_key(self, loader: Optional[DataLoader]) -> dict:
        """What the fitted statistics depend on besides the scorer's own settings (see ``STATS_KEY_PARTS``).

        The fit runs the same model as the test (with its TTA wrapper, if any), so this is also what makes
        the statistics valid for the test: :func:`~anomseg_plugins.engine.scorer_stats.stats_key` of the
        segmentor, its TTA wrapper and the fit data with its pipeline.
        """
        return stats_key(self.segmentor, self.tta_model, loader)

    def prepare_scorers(self) -> None:
        """Load the fitted statistics of the scorers that need them, or fit them (and save the stats file)."""
        todo = [s for s in self.scorers if s.requires_fit and not s.is_fitted]
        if not todo:
            return
        names = [s.name for s in todo]
        if len(set(names)) != len(names):
            raise ValueError(f'AnomalyTestLoop: scorers that need fitting must have distinct names (they key the stats '
                             f'file), got {names}; set `name=` in the scorer configs')
        device = next(self.segmentor.parameters()).device
        for scorer in self.scorers:
            scorer.to(device)
        loader = self.fit_dataloader()
        meta = self.stats_key(loader)
        loaded = load_matching_stats(self.stats_path, todo, meta)
        todo = [s for s in todo if s.name not in loaded]
        if not todo:
            return
        if loader is None:
            raise RuntimeError(
                f'AnomalyTestLoop: scorer(s) {", ".join(s.name for s in todo)} need fitting, but there is no fit data: '
                f'test_cfg has no `fit_dataloader` and the config has no `val_dataloader`' +
                (f', and {self.stats_path} holds no matching statistics' if self.stats_path else '') +
                '. Add `fit_dataloader=dict(batch_size=1, num_workers=2, sampler=dict(type=\'DefaultSampler\', '
                'shuffle=False), dataset=dict(...))` (a labelled split, e.g. validation) to '
                "`test_cfg = dict(type='AnomalyTestLoop', ...)`, or remove these scorers.")
        self.fit(todo, loader)
        save_stats(self.stats_path, meta, self.scorers)

    @staticmethod
    def fit_batches(outputs: list) -> Iterator[Tuple[Tensor, Optional[list], Tensor]]:
        """Stack predicted samples into ``(logits (N,C,H,W), feats, gt (N,H,W))``, one group per distinct size."""
        groups: Dict[tuple, list] = {}
        for sample in outputs:
            if 'gt_sem_seg' not in sample:
                raise KeyError('AnomalyTestLoop: the fit dataloader gives no `gt_sem_seg`; its pipeline must load the '
                               'annotations (e.g. LoadAnnotations / LoadStreetHazardsAnnotations before packing)')
            logits, feats = sample.seg_logits.data, sample.get('backbone_feats', None)
            key = (tuple(logits.shape), None if feats is None else tuple(None if f is None else f.shape for f in feats))
            groups.setdefault(key, []).append((logits, feats, sample.gt_sem_seg.data[0]))
        for group in groups.values():
            feats = None
            if group[0][1] is not None:
                feats = [
                    None if f is None else torch.stack([it[1][s] for it in group]) for s, f in enumerate(group[0][1])
                ]
            yield torch.stack([it[0] for it in group]), feats, torch.stack([it[2] for it in group])

    @torch.no_grad()
    def fit(self, scorers: List[BaseAnomalyScorer], loader: DataLoader) -> None:
        """Run ``loader`` through the model and fit ``scorers`` (several passes while one stays unfitted)."""
        num_batches = len(loader)
        for pass_idx in range(1, self.max_fit_passes + 1):
            todo = [s for s in scorers if not s.is_fitted]
            if not todo:
                return
            what = ', '.join(s.name for s in todo)
            print_log(
                f'AnomalyTestLoop: fitting {what} on {self._fit_loader_origin} '
                f'({len(loader.dataset)} images, {num_batches} batches), pass {pass_idx}',
                logger='current')
            for scorer in todo:
                scorer.reset()
                scorer.fit_begin()
            start = time.time()
            bar = ProgressBar(num_batches, file=sys.stdout) if is_main_process() else None
            for data_batch in loader:
                outputs = self.predict(data_batch, source=self._fit_loader_origin)
                for logits, feats, gt in self.fit_batches(outputs):
                    for scorer in todo:
                        scorer.fit_step(logits, feats, gt)
                if bar is not None:
                    bar.update()
            if bar is not None:
                bar.file.write('\n')
                bar.file.flush()
            for scorer in todo:
                scorer.fit_end()
            print_log(
                f'AnomalyTestLoop: fitting {what}: {num_batches} batches in {time.time() - start:.0f} s',
                logger='current')
        unfitted = [s.name for s in scorers if not s.is_fitted]
        if unfitted:
            raise RuntimeError(f'AnomalyTestLoop: {", ".join(unfitted)} still not fitted after {self.max_fit_passes} '
                               f'passes over the fit data; raise test_cfg.max_fit_passes')
