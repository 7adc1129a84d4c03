"""Test loop that feeds anomaly scorers from the test forward pass and fits them beforehand."""
import os.path as osp
import sys
import time
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

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
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List],
                 fp16: bool = False,
                 fit_dataloader: Optional[Union[DataLoader, Dict]] = None,
                 stats_file: Optional[str] = STATS_FILE,
                 max_fit_passes: int = 3) -> None:
        super().__init__(runner, dataloader, evaluator, fp16)
        self._fit_dataloader = fit_dataloader
        self._fit_loader: Optional[DataLoader] = None
        self._fit_loader_origin = 'test_cfg.fit_dataloader' if fit_dataloader is not None else 'val_dataloader'
        self.stats_file = stats_file
        self.max_fit_passes = int(max_fit_passes)
        self.scorers = metric_scorers(self.evaluator)
        self.feature_stages = feature_stages(self.scorers)
        self.capture = BackboneFeatureCapture.for_model(self.runner.model, self.scorers, 'AnomalyTestLoop')
        if not self.scorers:
            print_log(
                'AnomalyTestLoop: no test metric has anomaly scorers (e.g. AnomalyMetric); running as a '
                'plain TestLoop',
                logger='current')

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
                               'test_dataloader and for the fit data, test_cfg.fit_dataloader or val_dataloader)')
        with self.capture:
            with autocast(enabled=self.fp16):
                outputs = self.runner.model.test_step(data_batch)
            feats = self.capture.per_sample(outputs)
        for sample, sample_feats in zip(outputs, feats or []):
            sample.backbone_feats = sample_feats
        return outputs

    # ----- test -----
    def run(self) -> dict:
        """Fit (or load) the scorers, then test as mmengine's ``TestLoop`` does."""
        self.runner.model.eval()
        self.prepare_scorers()
        for scorer in self.scorers:
            scorer.reset()
        return super().run()

    @torch.no_grad()
    def run_iter(self, idx, data_batch: Sequence[dict]) -> None:
        """mmengine's test iteration, the outputs carrying ``backbone_feats`` while the metrics process them.

        Without scorers it is mmengine's own (test losses included); with them, losses a model appends to its
        test outputs are not collected (mmseg segmentors append none).
        """
        if not self.scorers:
            return super().run_iter(idx, data_batch)
        self.runner.call_hook('before_test_iter', batch_idx=idx, data_batch=data_batch)
        outputs = self.predict(data_batch)
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
