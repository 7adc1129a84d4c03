"""Test loop that feeds anomaly scorers from the test forward pass and fits them beforehand."""
import hashlib
import os.path as osp
import time
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner.amp import autocast
from mmengine.runner.base_loop import BaseLoop
from mmengine.runner.loops import TestLoop, _parse_losses, _update_losses
from mmseg.registry import LOOPS
from torch import Tensor, nn
from torch.utils.data import DataLoader

from anomseg_plugins.scorers.base_scorer import BaseAnomalyScorer
from anomseg_plugins.utils import safe_torch_load

STATS_FORMAT = 1


class BackboneFeatureCapture:
    """Forward hook on ``backbone`` that keeps the outputs of the requested stages of every call.

    ``backbone`` returns a tuple/list of stage outputs (mmseg backbones, indexed as by ``out_indices``);
    a backbone returning a single tensor counts as one stage. Use as a context manager; ``pop()``
    returns and clears ``[(stage_outputs, input_hw), ...]`` (one entry per backbone call).
    """

    def __init__(self, backbone: nn.Module, stages: Sequence[int]) -> None:
        self.backbone = backbone
        self.stages = tuple(stages)
        self.calls: List[Tuple[List[Optional[Tensor]], Tuple[int, int]]] = []
        self._handle = None

    def _hook(self, module: nn.Module, inputs: tuple, output) -> None:
        outs = list(output) if isinstance(output, (tuple, list)) else [output]
        missing = [s for s in self.stages if s >= len(outs)]
        if missing:
            raise IndexError(f'AnomalyTestLoop: scorers ask for backbone stage(s) {missing}, but '
                             f'{type(module).__name__} returns {len(outs)} stage outputs (indices 0..{len(outs) - 1}, '
                             f'set by the backbone\'s out_indices); fix the scorers\' feature stage in the config')
        kept = [o if i in self.stages else None for i, o in enumerate(outs)]
        self.calls.append((kept, tuple(inputs[0].shape[-2:])))

    def pop(self) -> List[Tuple[List[Optional[Tensor]], Tuple[int, int]]]:
        calls, self.calls = self.calls, []
        return calls

    def __enter__(self) -> 'BackboneFeatureCapture':
        if self.stages:
            self._handle = self.backbone.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self.calls = []


def sample_features(feats: Tensor, input_hw: Tuple[int, int], meta: dict) -> Tensor:
    """Slice one sample's ``(C, h, w)`` stage features to its image, as mmseg's ``postprocess_result`` does.

    The padding added by the data preprocessor (``img_padding_size`` / ``padding_size`` in input pixels,
    ``(left, right, top, bottom)``) is removed in proportion ``h / H_in`` and a flipped test image is
    flipped back, so that the feature map covers exactly the image whose logits it goes with.
    """
    h, w = feats.shape[-2:]
    pad = meta.get('img_padding_size', meta.get('padding_size', None)) or (0, 0, 0, 0)
    left, right, top, bottom = (int(p) for p in pad)
    sy, sx = h / input_hw[0], w / input_hw[1]
    feats = feats[:, round(top * sy):h - round(bottom * sy), round(left * sx):w - round(right * sx)]
    if meta.get('flip', False):
        feats = feats.flip(dims=(2, ) if meta.get('flip_direction') == 'horizontal' else (1, ))
    return feats


@LOOPS.register_module()
class AnomalyTestLoop(TestLoop):
    """mmengine ``TestLoop`` that also serves the anomaly scorers of ``AnomalyMetric`` from the same pass.

    The scorers are the ``scorers`` of every test metric that has such an attribute. During each test
    step a forward hook on ``model.backbone`` captures the stages the scorers list in ``feature_stages``
    (their union); every output data sample gets ``backbone_feats``: a list indexed by stage holding
    that sample's ``(C_s, h_s, w_s)`` features (padding removed) for the captured stages and ``None``
    elsewhere. They are dropped once the metrics have processed the batch.

    Before testing, scorers that need fitting (``requires_fit`` and not yet fitted) are

    1. loaded from ``<work_dir>/<stats_file>`` when that file was written for the same model weights
       (a hash of the state dict), the same fit data and the same scorer (``fit_signature()``), or else
    2. fitted: the fit dataloader (``fit_dataloader``, by default the config's ``val_dataloader``) is run
       through ``model.test_step`` with the same feature capture, every scorer gets
       ``fit_step(seg_logits, feats, gt_sem_seg)`` per batch (logits at ground-truth resolution, as
       mmseg's ``predict`` returns them) and ``fit_end()`` after the pass; passes repeat while a scorer
       is still unfitted (a z-score fusion needs its children fitted first). The statistics are then
       saved to the stats file (main process).

    Works with any mmseg segmentor that has a ``backbone`` (``EncoderDecoder``,
    ``CascadeEncoderDecoder``; DDP / TTA wrappers are unwrapped via ``.module``). Scorers that need
    features require whole-image inference (one backbone call per batch): sliding-window inference
    raises an error naming ``test_cfg.mode``.

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
                 stats_file: Optional[str] = 'anomaly_scorer_stats.pth',
                 max_fit_passes: int = 3) -> None:
        super().__init__(runner, dataloader, evaluator, fp16)
        self._fit_dataloader = fit_dataloader
        self._fit_loader: Optional[DataLoader] = None
        self._fit_loader_origin = 'test_cfg.fit_dataloader' if fit_dataloader is not None else 'val_dataloader'
        self.stats_file = stats_file
        self.max_fit_passes = int(max_fit_passes)
        self.scorers = self.find_scorers(self.evaluator)
        self.feature_stages = tuple(sorted({s for sc in self.scorers for s in sc.feature_stages}))
        self.capture = self.feature_capture()
        if not self.scorers:
            print_log('AnomalyTestLoop: no test metric has anomaly scorers (e.g. AnomalyMetric); running as a '
                      'plain TestLoop', logger='current')

    @staticmethod
    def find_scorers(evaluator: Evaluator) -> List[BaseAnomalyScorer]:
        """The scorers of every metric with a ``scorers`` attribute, in order, without duplicates."""
        found: List[BaseAnomalyScorer] = []
        for metric in evaluator.metrics:
            for scorer in getattr(metric, 'scorers', None) or []:
                if not any(scorer is s for s in found):
                    found.append(scorer)
        return found

    # ----- model access -----
    @property
    def segmentor(self) -> nn.Module:
        """The runner's model with DDP / TTA wrappers removed."""
        model = self.runner.model
        while not hasattr(model, 'backbone') and (is_model_wrapper(model) or hasattr(model, 'module')):
            model = model.module
        return model

    def feature_capture(self) -> BackboneFeatureCapture:
        model = self.segmentor
        if self.feature_stages and not isinstance(getattr(model, 'backbone', None), nn.Module):
            raise AttributeError(f'AnomalyTestLoop: scorers need backbone stages {list(self.feature_stages)}, but the '
                                 f'model ({type(model).__name__}) has no `backbone` module; use feature-free scorers '
                                 f'or a segmentor with a backbone (EncoderDecoder, CascadeEncoderDecoder)')
        return BackboneFeatureCapture(getattr(model, 'backbone', None), self.feature_stages)

    def predict(self, data_batch, capture: BackboneFeatureCapture) -> list:
        """``model.test_step`` under autocast; attaches ``backbone_feats`` to each output sample."""
        with autocast(enabled=self.fp16):
            outputs = self.runner.model.test_step(data_batch)
        calls = capture.pop()
        if not self.feature_stages:
            return outputs
        if len(calls) != 1:
            test_cfg = getattr(self.segmentor, 'test_cfg', None)
            raise RuntimeError(f'AnomalyTestLoop: the backbone ran {len(calls)} times for one batch (model test_cfg '
                               f'{test_cfg}); scorers using backbone features '
                               f'({", ".join(s.name for s in self.scorers if s.feature_stages)}) need whole-image '
                               f"inference: set model.test_cfg.mode='whole' and no test-time augmentation")
        stage_outputs, input_hw = calls[0]
        batch_size = stage_outputs[self.feature_stages[0]].shape[0]
        for i, sample in enumerate(outputs[:batch_size]):
            sample.backbone_feats = [None if f is None else sample_features(f[i], input_hw, sample.metainfo)
                                     for f in stage_outputs]
        return outputs

    # ----- test -----
    def run(self) -> dict:
        """Fit (or load) the scorers, then test as mmengine's ``TestLoop`` does."""
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        self.runner.model.eval()
        self.test_loss.clear()
        self.prepare_scorers()
        for scorer in self.scorers:
            scorer.reset()
        with self.capture:
            for idx, data_batch in enumerate(self.dataloader):
                self.run_iter(idx, data_batch)
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        if self.test_loss:
            metrics.update(_parse_losses(self.test_loss, 'test'))
        self.runner.call_hook('after_test_epoch', metrics=metrics)
        self.runner.call_hook('after_test')
        return metrics

    @torch.no_grad()
    def run_iter(self, idx, data_batch: Sequence[dict]) -> None:
        self.runner.call_hook('before_test_iter', batch_idx=idx, data_batch=data_batch)
        outputs = self.predict(data_batch, self.capture)
        outputs, self.test_loss = _update_losses(outputs, self.test_loss)
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

    @staticmethod
    def describe_data(loader: DataLoader) -> str:
        """What identifies the fit data: dataset class, length, root, prefixes and annotation file."""
        ds = loader.dataset
        keys = ('data_root', 'data_prefix', 'ann_file')
        parts = [f'{k}={getattr(ds, k)!r}' for k in keys if getattr(ds, k, None)]
        return f'{type(ds).__name__}(len={len(ds)}, {", ".join(parts)})'

    @staticmethod
    def model_fingerprint(model: nn.Module) -> str:
        """SHA-1 of the model's state dict (names, shapes, dtypes and bytes): the fitted stats depend on it."""
        digest = hashlib.sha1()
        for key, value in model.state_dict().items():
            if not isinstance(value, Tensor):
                continue
            digest.update(f'{key}:{tuple(value.shape)}:{value.dtype};'.encode())
            digest.update(value.detach().reshape(-1).contiguous().cpu().view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

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
        meta = dict(format=STATS_FORMAT, model=self.model_fingerprint(self.segmentor),
                    fit_data=None if loader is None else self.describe_data(loader))
        loaded = self.load_stats(todo, meta)
        todo = [s for s in todo if s.name not in loaded]
        if not todo:
            return
        if loader is None:
            raise RuntimeError(
                f'AnomalyTestLoop: scorer(s) {", ".join(s.name for s in todo)} need fitting, but there is no fit data: '
                f'test_cfg has no `fit_dataloader` and the config has no `val_dataloader`'
                + (f', and {self.stats_path} holds no matching statistics' if self.stats_path else '')
                + '. Add `fit_dataloader=dict(batch_size=1, num_workers=2, sampler=dict(type=\'DefaultSampler\', '
                'shuffle=False), dataset=dict(...))` (a labelled split, e.g. validation) to '
                "`test_cfg = dict(type='AnomalyTestLoop', ...)`, or remove these scorers.")
        self.fit(todo, loader)
        self.save_stats(meta)

    def load_stats(self, todo: List[BaseAnomalyScorer], meta: dict) -> List[str]:
        """Load matching statistics from the stats file; returns the names of the scorers loaded."""
        path = self.stats_path
        decision: List = [[]]
        if is_main_process() and path is not None and osp.isfile(path):
            decision[0] = self._matching_entries(path, todo, meta)
        broadcast_object_list(decision)
        names = decision[0]
        if names:
            stored = safe_torch_load(path, map_location='cpu')['scorers']
            for scorer in todo:
                if scorer.name in names:
                    scorer.load_state_dict(stored[scorer.name]['state_dict'])
            print_log(f'AnomalyTestLoop: loaded the fitted statistics of {", ".join(names)} from {path} '
                      f'(same model weights, fit data and scorer settings); delete the file to refit',
                      logger='current')
        return names

    def _matching_entries(self, path: str, todo: List[BaseAnomalyScorer], meta: dict) -> List[str]:
        try:
            stored = safe_torch_load(path, map_location='cpu')
            stored_meta, entries = stored['meta'], stored['scorers']
        except Exception as exc:  # unreadable or foreign file: refit and overwrite it
            print_log(f'AnomalyTestLoop: cannot read {path} ({exc}); refitting the scorers', logger='current')
            return []
        for key in ('format', 'model', 'fit_data'):
            if key == 'fit_data' and meta[key] is None:
                continue  # no fit data configured: the file is all there is
            if stored_meta.get(key) != meta[key]:
                print_log(f'AnomalyTestLoop: {path} was written for another {key.replace("_", " ")} '
                          f'({stored_meta.get(key)!r} vs now {meta[key]!r}); refitting the scorers', logger='current')
                return []
        names = []
        for scorer in todo:
            entry = entries.get(scorer.name)
            if entry is not None and entry.get('signature') == scorer.fit_signature():
                names.append(scorer.name)
            else:
                print_log(f'AnomalyTestLoop: {path} has no statistics for {scorer.fit_signature()}; fitting it',
                          logger='current')
        return names

    def save_stats(self, meta: dict) -> None:
        """Write the statistics of every fitted scorer; entries of other scorers fitted for the same model and
        data (another scorer set tested in this work dir) are kept."""
        path = self.stats_path
        if path is None or not is_main_process():
            return
        entries = {}
        if osp.isfile(path):
            try:
                stored = safe_torch_load(path, map_location='cpu')
                if stored['meta'] == meta:
                    entries = stored['scorers']
            except Exception:  # unreadable: overwrite
                pass
        fitted = {
            s.name: dict(signature=s.fit_signature(),
                         state_dict={k: v.detach().cpu() for k, v in s.state_dict().items()})
            for s in self.scorers if s.requires_fit
        }
        entries.update(fitted)
        torch.save(dict(meta=meta, scorers=entries), path)
        print_log(f'AnomalyTestLoop: saved the fitted statistics of {", ".join(fitted)} to {path}', logger='current')

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
                feats = [None if f is None else torch.stack([it[1][s] for it in group])
                         for s, f in enumerate(group[0][1])]
            yield torch.stack([it[0] for it in group]), feats, torch.stack([it[2] for it in group])

    @torch.no_grad()
    def fit(self, scorers: List[BaseAnomalyScorer], loader: DataLoader) -> None:
        """Run ``loader`` through the model and fit ``scorers`` (several passes while one stays unfitted)."""
        num_batches = len(loader)
        log_every = max(1, num_batches // 20)
        with self.capture:
            for pass_idx in range(1, self.max_fit_passes + 1):
                todo = [s for s in scorers if not s.is_fitted]
                if not todo:
                    return
                what = ', '.join(s.name for s in todo)
                print_log(f'AnomalyTestLoop: fitting {what} on {self._fit_loader_origin} '
                          f'({len(loader.dataset)} images, {num_batches} batches), pass {pass_idx}', logger='current')
                for scorer in todo:
                    scorer.reset()
                    scorer.fit_begin()
                start = time.time()
                for idx, data_batch in enumerate(loader):
                    outputs = self.predict(data_batch, self.capture)
                    for logits, feats, gt in self.fit_batches(outputs):
                        for scorer in todo:
                            scorer.fit_step(logits, feats, gt)
                    if (idx + 1) % log_every == 0 or idx + 1 == num_batches:
                        elapsed = time.time() - start
                        eta = elapsed / (idx + 1) * (num_batches - idx - 1)
                        print_log(f'AnomalyTestLoop: fitting {what}: {idx + 1}/{num_batches} batches, '
                                  f'{elapsed:.0f} s elapsed, ETA {eta:.0f} s', logger='current')
                for scorer in todo:
                    scorer.fit_end()
        unfitted = [s.name for s in scorers if not s.is_fitted]
        if unfitted:
            raise RuntimeError(f'AnomalyTestLoop: {", ".join(unfitted)} still not fitted after {self.max_fit_passes} '
                               f'passes over the fit data; raise test_cfg.max_fit_passes')
