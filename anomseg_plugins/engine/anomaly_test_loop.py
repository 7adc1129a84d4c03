"""Test loop that feeds anomaly scorers from the test forward pass and fits them beforehand."""
import difflib
import hashlib
import os.path as osp
import re
import sys
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner.amp import autocast
from mmengine.runner.base_loop import BaseLoop
from mmengine.runner.loops import TestLoop, _parse_losses, _update_losses
from mmengine.utils import ProgressBar
from mmseg.registry import LOOPS
from torch import Tensor, nn
from torch.utils.data import DataLoader

from anomseg_plugins.models.segmentors.logit_seg_tta_model import TTA_VIEW_METAS
from anomseg_plugins.scorers.base_scorer import BaseAnomalyScorer
from anomseg_plugins.utils import safe_torch_load

#: Version of the stats file layout; 2 keys the statistics on the fit pipeline, the model's test_cfg,
#: data preprocessor and settings and the TTA wrapper too.
STATS_FORMAT = 2

#: The parts of the stats key, as the log names them when they changed.
STATS_KEY_PARTS = {
    'format': 'the stats file format',
    'model': 'the model weights',
    'test_cfg': 'the model test_cfg',
    'data_preprocessor': 'the data preprocessor',
    'model_settings': 'the model settings',
    'tta': 'the test-time augmentation wrapper',
    'fit_data': 'the fit data',
    'fit_pipeline': 'the fit pipeline',
}

#: Module attributes that do not change what a trained model computes at test time: training-only switches, the
#: SyncBN / BN choice (``norm_cfg``, ``process_group``), which a CPU or single-process run swaps at the same
#: outputs (another norm type shows in the weights), and the class names and palette (``dataset_meta``, which
#: ``mmseg.apis.init_model`` attaches to the model but the Runner does not).
_UNKEYED_ATTRIBUTES = ('training', 'init_cfg', 'train_cfg', 'pretrained', 'with_cp', 'frozen_stages', 'norm_eval',
                       'zero_init_residual', 'norm_cfg', 'process_group', 'dataset_meta')

_NOT_PLAIN = object()


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


def merge_view_features(views: Sequence[Tensor]) -> Tensor:
    """Average one image's ``(C, h_v, w_v)`` stage features of several test-time-augmentation views.

    Each map (already sliced to its view's image and un-flipped by :func:`sample_features`) is resized
    bilinearly to the largest of them (the view with the most feature pixels, the first on ties), so no
    view's detail is lost; the result is the feature counterpart of ``LogitSegTTAModel``'s averaged logits.
    A single view is returned as it is.
    """
    if len(views) == 1:
        return views[0]
    size = max((tuple(v.shape[-2:]) for v in views), key=lambda hw: hw[0] * hw[1])
    resized = [
        v if tuple(v.shape[-2:]) == size else F.interpolate(v[None], size=size, mode='bilinear', align_corners=False)[0]
        for v in views
    ]
    return torch.stack(resized).mean(dim=0)


def batch_sample_features(calls: Sequence[Tuple[List[Optional[Tensor]], Tuple[int, int]]],
                          samples: Sequence) -> Optional[List[List[Optional[Tensor]]]]:
    """Each predicted sample's backbone stage features, from the backbone calls of one test step.

    ``calls`` is :meth:`BackboneFeatureCapture.pop` after ``model.test_step``; ``samples`` its outputs.

    - Whole-image inference (one call): sample ``i`` gets :func:`sample_features` of row ``i``.
    - Test-time augmentation (one call per view; the samples were merged by ``LogitSegTTAModel`` and carry
      their views' metainfo in ``tta_view_metas``, in the order the views ran): each view's row ``i`` is
      sliced and un-flipped with that view's metainfo, and the views are merged by
      :func:`merge_view_features`, as their logits were averaged.

    Returns:
        Per sample, a list indexed by stage: ``(C_s, h_s, w_s)`` for the captured stages, ``None`` elsewhere;
        ``None`` when the calls do not line up with the samples (e.g. sliding-window inference runs the
        backbone once per window), for the caller to report.
    """
    if not calls or not samples:
        return None
    view_metas = [s.metainfo.get(TTA_VIEW_METAS) for s in samples]
    if any(m is not None for m in view_metas):
        if any(m is None or len(m) != len(calls) for m in view_metas):
            return None
    elif len(calls) != 1:
        return None
    first_outputs = calls[0][0]
    batch_size = next(f.shape[0] for f in first_outputs if f is not None)
    result = []
    for i, sample in enumerate(samples[:batch_size]):
        metas = view_metas[i] or [sample.metainfo]
        feats: List[Optional[Tensor]] = []
        for stage, captured in enumerate(first_outputs):
            if captured is None:
                feats.append(None)
                continue
            feats.append(
                merge_view_features([
                    sample_features(stage_outputs[stage][i], input_hw, meta)
                    for (stage_outputs, input_hw), meta in zip(calls, metas)
                ]))
        result.append(feats)
    return result


def _plain(value: Any) -> Any:
    """``value`` as str / int / float / bool / None in lists and dicts (what a weights-only stats file can hold
    and ``==`` compares), or ``_NOT_PLAIN`` for objects without a stable value (tensors, modules, handles)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple, torch.Size)):
        return [_plain_item(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain_item(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, type) or (callable(value) and hasattr(value, '__qualname__')):
        return f'{getattr(value, "__module__", "")}.{value.__qualname__}'
    return _NOT_PLAIN


def _plain_item(value: Any) -> Any:
    plain = _plain(value)
    return type(value).__name__ if plain is _NOT_PLAIN else plain


def module_settings(model: nn.Module, skip: Sequence[str] = ()) -> Dict[str, Any]:
    """What, besides its weights, decides what ``model`` computes: ``{'<module path>.<attribute>': value}``.

    Every plain attribute (numbers, strings, flags, tuples, config dicts) of every submodule, e.g.
    ``decode_head.align_corners``, ``backbone.out_indices``, ``backbone.layer3.1.conv1.dilation``,
    ``data_preprocessor.size_divisor``, ``test_cfg``, and the values of buffers that are not in the state
    dict (``data_preprocessor.mean`` / ``std``). Private attributes, ``_UNKEYED_ATTRIBUTES`` and losses (they do
    not change a trained model's test outputs) are left out, and so are the submodules under a path in ``skip``.
    """
    settings: Dict[str, Any] = {}
    skipped = tuple(f'{p}.' for p in skip)
    for path, module in model.named_modules():
        if path in skip or path.startswith(skipped) or any(p.startswith('loss') for p in path.split('.')):
            continue  # skipped, or a loss (decode_head.loss_decode[.i]): training only
        for key, value in vars(module).items():
            if key.startswith('_') or key in _UNKEYED_ATTRIBUTES:
                continue
            plain = _plain(value)
            if plain is not _NOT_PLAIN:
                settings[f'{path}.{key}' if path else key] = plain
    persistent = set(model.state_dict().keys())
    for path, buffer in model.named_buffers():
        if path not in persistent and not path.startswith(skipped):
            settings[path] = buffer.detach().cpu().reshape(-1).tolist()
    return settings


def model_fingerprint(model: nn.Module) -> str:
    """SHA-1 of the model's state dict (names, shapes, dtypes and bytes): the fitted stats depend on it."""
    digest = hashlib.sha1()
    for key, value in model.state_dict().items():
        if not isinstance(value, Tensor):
            continue
        digest.update(f'{key}:{tuple(value.shape)}:{value.dtype};'.encode())
        digest.update(value.detach().reshape(-1).contiguous().cpu().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def model_stats_key(segmentor: nn.Module, tta: Optional[nn.Module] = None) -> Dict[str, Any]:
    """The model's part of the stats key: everything of the model that changes the logits or features the scorers
    see (``STATS_KEY_PARTS`` but the fit data): weights (:func:`model_fingerprint`), ``test_cfg`` (mode, crop size,
    stride), data preprocessor (mean, std, size, padding), the other settings (:func:`module_settings`) and the
    type of the test-time-augmentation wrapper (``None`` without). A tool that loads fitted statistics for a model
    (e.g. ``tools/infer.py``) compares these parts with the stats file's ``meta``."""
    settings = module_settings(segmentor, skip=('data_preprocessor', ))
    test_cfg = settings.pop('test_cfg', None)
    preprocessor = getattr(segmentor, 'data_preprocessor', None)
    return dict(
        format=STATS_FORMAT,
        model=model_fingerprint(segmentor),
        test_cfg=test_cfg,
        data_preprocessor=dict(type=type(preprocessor).__name__, **module_settings(preprocessor)) if isinstance(
            preprocessor, nn.Module) else None,
        model_settings=settings,
        tta=None if tta is None else type(tta).__name__)


def describe_change(old: Any, new: Any, limit: int = 4) -> str:
    """A short description of what differs between two values of one part of the stats key."""
    if isinstance(old, dict) and isinstance(new, dict):
        unset = '<unset>'
        changed = [k for k in sorted(set(old) | set(new)) if old.get(k, unset) != new.get(k, unset)]
        parts = [f'{k}: {old.get(k, unset)!r} -> {new.get(k, unset)!r}' for k in changed[:limit]]
        more = f'; ... ({len(changed)} changed)' if len(changed) > limit else ''
        return '; '.join(parts) + more
    if isinstance(old, str) and isinstance(new, str) and ('\n' in old or '\n' in new):
        lines = [
            line[0] + ' ' + line[2:].strip() for line in difflib.ndiff(old.splitlines(), new.splitlines())
            if line[:1] in '+-'
        ]
        more = f'; ... ({len(lines)} lines differ)' if len(lines) > 2 * limit else ''
        return '; '.join(lines[:2 * limit]) + more if lines else f'{old!r} -> {new!r}'
    return f'{old!r} -> {new!r}'


@LOOPS.register_module()
class AnomalyTestLoop(TestLoop):
    """mmengine ``TestLoop`` that also serves the anomaly scorers of ``AnomalyMetric`` from the same pass.

    The scorers are the ``scorers`` of every test metric that has such an attribute. During each test
    step a forward hook on ``model.backbone`` captures the stages the scorers list in ``feature_stages``
    (their union); every output data sample gets ``backbone_feats``: a list indexed by stage holding
    that sample's ``(C_s, h_s, w_s)`` features (padding removed) for the captured stages and ``None``
    elsewhere (:func:`batch_sample_features`). They are dropped once the metrics have processed the batch.

    Before testing, scorers that need fitting (``requires_fit`` and not yet fitted) are

    1. loaded from ``<work_dir>/<stats_file>`` when that file was written for the same scorer
       (``fit_signature()``) and the same key (:meth:`stats_key`): everything that changes the logits or
       features the scorers see, i.e. the model weights (a hash of the state dict), the model's ``test_cfg``
       (mode, crop size, stride), its data preprocessor (mean, std, size, padding), its other settings
       (e.g. ``align_corners``, dilations), the test-time-augmentation wrapper, and the fit data and its
       pipeline; the log names the part that changed; or else
    2. fitted: the fit dataloader (``fit_dataloader``, by default the config's ``val_dataloader``) is run
       through ``model.test_step`` (the same model, TTA wrapper included, as the test) with the same
       feature capture, every scorer gets ``fit_step(seg_logits, feats, gt_sem_seg)`` per batch (logits at
       ground-truth resolution, as mmseg's ``predict`` returns them) and ``fit_end()`` after the pass; passes
       repeat while a scorer is still unfitted (a z-score fusion needs its children fitted first). The main
       process draws one mmengine ``ProgressBar`` per pass. The statistics are then saved to the stats file
       (main process).

    Works with any mmseg segmentor that has a ``backbone`` (``EncoderDecoder``,
    ``CascadeEncoderDecoder``; DDP / TTA wrappers are unwrapped via ``.module``). Scorers that need
    features require one backbone call per batch, or under test-time augmentation (``LogitSegTTAModel``,
    ``tools/test.py --tta``) one per view, whose features are merged like the logits
    (:func:`merge_view_features`): sliding-window inference raises an error naming ``test_cfg.mode``.
    Under TTA the fit dataloader must give augmented batches too (``tools/test.py --tta`` gives it the
    ``tta_pipeline``).

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
            print_log(
                'AnomalyTestLoop: no test metric has anomaly scorers (e.g. AnomalyMetric); running as a '
                'plain TestLoop',
                logger='current')

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

    @property
    def tta_model(self) -> Optional[BaseTTAModel]:
        """The test-time-augmentation wrapper (e.g. ``LogitSegTTAModel``) around the segmentor, if any."""
        model = self.runner.model
        while not hasattr(model, 'backbone'):
            if isinstance(model, BaseTTAModel):
                return model
            if not (is_model_wrapper(model) or hasattr(model, 'module')):
                break
            model = model.module
        return None

    def predict(self, data_batch, capture: BackboneFeatureCapture, source: str = 'test_dataloader') -> list:
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
        with autocast(enabled=self.fp16):
            outputs = self.runner.model.test_step(data_batch)
        calls = capture.pop()
        if not self.feature_stages:
            return outputs
        feats = batch_sample_features(calls, outputs)
        if feats is None:
            test_cfg = getattr(self.segmentor, 'test_cfg', None)
            views = '' if tta is None else f' under {type(tta).__name__}, whose views each run it once'
            raise RuntimeError(f'AnomalyTestLoop: the backbone ran {len(calls)} times for one batch{views} (model '
                               f'test_cfg {test_cfg}); scorers using backbone features '
                               f'({", ".join(s.name for s in self.scorers if s.feature_stages)}) need whole-image '
                               f"inference: set model.test_cfg.mode='whole' (test-time augmentation with "
                               f'LogitSegTTAModel is fine)')
        for sample, sample_feats in zip(outputs, feats):
            sample.backbone_feats = sample_feats
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
    def describe_pipeline(dataset) -> Optional[str]:
        """The transforms the fit data runs through, as their ``repr`` (one per line, memory addresses removed);
        through dataset wrappers (``dataset`` / ``datasets``); ``None`` for a dataset without a pipeline.

        mmcv / mmseg / anomseg transforms print their parameters (e.g. ``Resize(scale=(1280, 720), ...)``,
        ``TestTimeAug`` its sub-pipelines); a transform without a ``__repr__`` is keyed by its class only.
        """
        pipeline = getattr(dataset, 'pipeline', None)
        if pipeline is not None:
            return re.sub(r' at 0x[0-9a-fA-F]+', '', repr(pipeline))
        inner = getattr(dataset, 'datasets', None) or \
            ([dataset.dataset] if isinstance(getattr(dataset, 'dataset', None), torch.utils.data.Dataset) else [])
        parts = [AnomalyTestLoop.describe_pipeline(d) for d in inner]
        return '\n'.join(p for p in parts if p) or None

    def stats_key(self, loader: Optional[DataLoader]) -> dict:
        """What the fitted statistics depend on besides the scorer's own settings (see ``STATS_KEY_PARTS``).

        The fit runs the same model as the test (with its TTA wrapper, if any), so this is also what makes
        the statistics valid for the test: :func:`model_stats_key` of the segmentor and its TTA wrapper, and
        the fit data with its pipeline.
        """
        return dict(
            model_stats_key(self.segmentor, self.tta_model),
            fit_data=None if loader is None else self.describe_data(loader),
            fit_pipeline=None if loader is None else self.describe_pipeline(loader.dataset))

    @staticmethod
    def model_fingerprint(model: nn.Module) -> str:
        """SHA-1 of the model's state dict (names, shapes, dtypes and bytes): the fitted stats depend on it."""
        return model_fingerprint(model)

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
        loaded = self.load_stats(todo, meta)
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
            print_log(
                f'AnomalyTestLoop: loaded the fitted statistics of {", ".join(names)} from {path} '
                f'(same model weights and settings, test_cfg, data preprocessor, TTA, fit data and pipeline, '
                f'and scorer settings); delete the file to refit',
                logger='current')
        return names

    def _matching_entries(self, path: str, todo: List[BaseAnomalyScorer], meta: dict) -> List[str]:
        try:
            stored = safe_torch_load(path, map_location='cpu')
            stored_meta, entries = stored['meta'], stored['scorers']
        except Exception as exc:  # unreadable or foreign file: refit and overwrite it
            print_log(f'AnomalyTestLoop: cannot read {path} ({exc}); refitting the scorers', logger='current')
            return []
        changed = [
            f'{what} changed ({describe_change(stored_meta.get(key), meta[key])})'
            for key, what in STATS_KEY_PARTS.items()
            if stored_meta.get(key) != meta[key] and not (key in ('fit_data', 'fit_pipeline') and meta[key] is None)
        ]  # no fit data: use the file
        if changed:
            print_log(
                f'AnomalyTestLoop: {path} does not match this run: {", ".join(changed)}; refitting the scorers',
                logger='current')
            return []
        names = []
        for scorer in todo:
            entry = entries.get(scorer.name)
            if entry is not None and entry.get('signature') == scorer.fit_signature():
                names.append(scorer.name)
            else:
                print_log(
                    f'AnomalyTestLoop: {path} has no statistics for {scorer.fit_signature()}; fitting it',
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
            s.name:
            dict(signature=s.fit_signature(), state_dict={
                k: v.detach().cpu()
                for k, v in s.state_dict().items()
            })
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
                feats = [
                    None if f is None else torch.stack([it[1][s] for it in group]) for s, f in enumerate(group[0][1])
                ]
            yield torch.stack([it[0] for it in group]), feats, torch.stack([it[2] for it in group])

    @torch.no_grad()
    def fit(self, scorers: List[BaseAnomalyScorer], loader: DataLoader) -> None:
        """Run ``loader`` through the model and fit ``scorers`` (several passes while one stays unfitted)."""
        num_batches = len(loader)
        with self.capture:
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
                    outputs = self.predict(data_batch, self.capture, source=self._fit_loader_origin)
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
