"""Backbone features of a test forward pass, per predicted sample: the one feature-capture path of anomseg.

Scorers that read backbone features (``feature_stages``) get them from the forward pass that made the logits:
a forward hook on the segmentor's ``backbone`` keeps the requested stage outputs of every call
(:class:`BackboneFeatureCapture`), and :func:`batch_sample_features` slices them to each predicted sample
(padding removed, flips undone, test-time-augmentation views merged). ``AnomalyTestLoop`` (test and fit passes),
``AnomalyPanelHook`` and ``tools/infer.py`` all capture through :meth:`BackboneFeatureCapture.for_model` and
:meth:`BackboneFeatureCapture.per_sample`.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseTTAModel, is_model_wrapper
from torch import Tensor, nn

from anomseg_plugins.models.segmentors.logit_seg_tta_model import TTA_VIEW_METAS

#: One backbone call: the kept stage outputs (``None`` for stages nobody asked for) and the input's ``(H, W)``.
BackboneCall = Tuple[List[Optional[Tensor]], Tuple[int, int]]


def unwrap_model(model: nn.Module) -> nn.Module:
    """The segmentor inside ``model``: DDP / TTA wrappers (``.module``) removed down to the module with a
    ``backbone`` (or the innermost wrapped module when none has one)."""
    while not hasattr(model, 'backbone') and (is_model_wrapper(model) or hasattr(model, 'module')):
        model = model.module
    return model


def find_tta_model(model: nn.Module) -> Optional[BaseTTAModel]:
    """The test-time-augmentation wrapper (e.g. ``LogitSegTTAModel``) around the segmentor in ``model``, if any."""
    while not hasattr(model, 'backbone'):
        if isinstance(model, BaseTTAModel):
            return model
        if not (is_model_wrapper(model) or hasattr(model, 'module')):
            break
        model = model.module
    return None


def feature_stages(scorers: Sequence[nn.Module]) -> Tuple[int, ...]:
    """The union of the backbone stages ``scorers`` read (their ``feature_stages``), sorted."""
    return tuple(sorted({int(s) for scorer in scorers for s in getattr(scorer, 'feature_stages', ())}))


def batched_features(feats: Sequence[Optional[Tensor]]) -> List[Optional[Tensor]]:
    """One sample's ``(C_s, h_s, w_s)`` stage features as the ``(1, C_s, h_s, w_s)`` batch a scorer takes."""
    return [None if f is None else f[None] for f in feats]


class BackboneFeatureCapture:
    """Forward hook on ``backbone`` that keeps the outputs of the requested stages of every call.

    ``backbone`` returns a tuple/list of stage outputs (mmseg backbones, indexed as by ``out_indices``);
    a backbone returning a single tensor counts as one stage. Use as a context manager around the forward pass
    (the hook is registered only when there are stages to keep); ``pop()`` returns and clears
    ``[(stage_outputs, input_hw), ...]`` (one entry per backbone call), :meth:`per_sample` slices them.

    Args:
        backbone: the segmentor's backbone (``None`` is allowed without stages).
        stages: stage indices to keep.
        owner: who captures, named first in error messages (e.g. ``'AnomalyTestLoop'``).
    """

    def __init__(self,
                 backbone: Optional[nn.Module],
                 stages: Sequence[int],
                 owner: str = 'BackboneFeatureCapture') -> None:
        self.backbone = backbone
        self.stages = tuple(stages)
        self.owner = owner
        self.calls: List[BackboneCall] = []
        self._handle = None
        self._model: Optional[nn.Module] = None  # named (test_cfg, TTA wrapper) when the calls do not line up
        self._users: List[str] = []  # the scorers reading the features, for the same message

    @classmethod
    def for_model(cls, model: nn.Module, scorers: Sequence[nn.Module], owner: str) -> 'BackboneFeatureCapture':
        """The capture of the stages ``scorers`` read, on the backbone of ``model`` (DDP / TTA wrappers removed).

        Raises:
            AttributeError: the scorers need stages and the model has no ``backbone`` module.
        """
        stages = feature_stages(scorers)
        segmentor = unwrap_model(model)
        users = [scorer.name for scorer in scorers if getattr(scorer, 'feature_stages', ())]
        if stages and not isinstance(getattr(segmentor, 'backbone', None), nn.Module):
            raise AttributeError(f'{owner}: scorers {users} need backbone stages {list(stages)}, but the model '
                                 f'({type(segmentor).__name__}) has no `backbone` module; use feature-free scorers '
                                 'or a segmentor with a backbone (EncoderDecoder, CascadeEncoderDecoder)')
        capture = cls(getattr(segmentor, 'backbone', None), stages, owner)
        capture._model, capture._users = model, users
        return capture

    def _hook(self, module: nn.Module, inputs: tuple, output) -> None:
        outs = list(output) if isinstance(output, (tuple, list)) else [output]
        missing = [s for s in self.stages if s >= len(outs)]
        if missing:
            raise IndexError(f'{self.owner}: scorers ask for backbone stage(s) {missing}, but '
                             f'{type(module).__name__} returns {len(outs)} stage outputs (indices 0..{len(outs) - 1}, '
                             f'set by the backbone\'s out_indices); fix the scorers\' feature stage in the config')
        kept = [o if i in self.stages else None for i, o in enumerate(outs)]
        self.calls.append((kept, tuple(inputs[0].shape[-2:])))

    def pop(self) -> List[BackboneCall]:
        calls, self.calls = self.calls, []
        return calls

    def per_sample(self, samples: Sequence) -> Optional[List[List[Optional[Tensor]]]]:
        """Pop the backbone calls of one test step and slice them to its predicted ``samples``.

        Returns:
            :func:`batch_sample_features` of the calls; ``None`` when no stage is captured.

        Raises:
            RuntimeError: the calls do not line up with the samples (e.g. sliding-window inference runs the
                backbone once per window), naming the model's ``test_cfg`` and the fix.
        """
        calls = self.pop()
        if not self.stages:
            return None
        feats = batch_sample_features(calls, samples)
        if feats is None:
            raise RuntimeError(self._mismatch(len(calls)))
        return feats

    def _mismatch(self, num_calls: int) -> str:
        model = self._model
        tta = None if model is None else find_tta_model(model)
        test_cfg = None if model is None else getattr(unwrap_model(model), 'test_cfg', None)
        views = '' if tta is None else f' under {type(tta).__name__}, whose views each run it once'
        return (f'{self.owner}: the backbone ran {num_calls} times for one batch{views} (model test_cfg {test_cfg}); '
                f'scorers using backbone features ({", ".join(self._users)}) need whole-image inference: set '
                "model.test_cfg.mode='whole' (test-time augmentation with LogitSegTTAModel is fine)")

    def __enter__(self) -> 'BackboneFeatureCapture':
        if self.stages and self._handle is None:
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


def batch_sample_features(calls: Sequence[BackboneCall], samples: Sequence) -> Optional[List[List[Optional[Tensor]]]]:
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
