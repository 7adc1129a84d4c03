"""Base class of every anomaly scorer.

A scorer turns the per-pixel class logits of a segmentation model (and, when it asks for them, the
feature maps of backbone stages) into a per-pixel anomaly score, *higher = more anomalous*.

Contract (shared by the scorers, the fitting loop and ``AnomalyMetric``):

- ``score(logits, feats)``: ``logits`` is ``(N, C, H, W)`` float; ``feats`` is ``None`` or a list indexed by
  backbone stage with ``(N, C_s, h_s, w_s)`` tensors (entries of stages nobody asked for are ``None``).
  Returns ``(N, H, W)`` float32 on the logits' device. A scorer that works at feature resolution
  upsamples its map to ``(H, W)`` itself.
- ``feature_stages``: the backbone stage indices whose outputs the scorer needs (empty for logit-only
  scorers). The test loop captures exactly the union of these, from the same forward pass.
- Scorers with ``requires_fit = True`` gather statistics with ``fit_step(logits, feats, gt_sem_seg)``
  (``gt_sem_seg`` ``(N, H, W)`` long, ignore pixels = ``ignore_index``) between ``fit_begin()`` and
  ``fit_end()``; the fitted statistics live in registered buffers, so ``state_dict()`` /
  ``load_state_dict()`` save and restore them. ``is_fitted`` says whether they are present. A scorer
  that is still not fitted after ``fit_end()`` (e.g. a fusion whose own statistics need its children's
  fitted scores) gets another pass over the fit data.
- Buffers whose size depends on the data (number of classes, feature channels) start empty and take
  their shape from the first fit batch; ``load_state_dict`` resizes them to the stored shapes.
- ``reset()`` clears state carried from image to image (e.g. HEAT's running normalisation); the test
  loop calls it before every pass over a dataset.
- ``fit_signature()`` describes everything that determines the fitted statistics besides the model and
  the data (class and hyper-parameters); the test loop stores it with the statistics and refits when it
  changes.
"""
from typing import List, Optional, Sequence

import torch
from mmengine.dist import all_gather_object, all_reduce, get_world_size
from torch import Tensor, nn

Feats = Optional[List[Optional[Tensor]]]


class BaseAnomalyScorer(nn.Module):
    """Per-pixel anomaly scorer (higher = more anomalous).

    Args:
        name: display name in tables, figures and metric keys; defaults to the class name.
        feature_stages: backbone stage indices the scorer consumes (empty: logits only).
    """

    requires_fit: bool = False

    def __init__(self, name: Optional[str] = None, feature_stages: Sequence[int] = ()) -> None:
        super().__init__()
        self.name = name or type(self).__name__
        self.feature_stages = tuple(int(s) for s in feature_stages)

    def score(self, logits: Tensor, feats: Feats = None) -> Tensor:
        """Return the ``(N, H, W)`` anomaly map of ``(N, C, H, W)`` logits."""
        raise NotImplementedError

    def forward(self, logits: Tensor, feats: Feats = None) -> Tensor:
        return self.score(logits, feats)

    def reset(self) -> None:
        """Clear state carried across images (none by default)."""

    # ----- fitting (only scorers with requires_fit = True override these) -----
    @property
    def is_fitted(self) -> bool:
        return not self.requires_fit

    def check_fitted(self) -> None:
        """Raise a RuntimeError naming the scorer and the two ways to fit it when its statistics are missing."""
        if not self.is_fitted:
            raise RuntimeError(f'{self.name} is not fitted: run it through AnomalyTestLoop (which fits it on the fit '
                               f'dataloader) or call fit_begin / fit_step / fit_end, or load its state_dict')

    def fit_begin(self) -> None:
        """Reset the running statistics before a fitting pass."""

    def fit_step(self, logits: Tensor, feats: Feats, gt_sem_seg: Tensor) -> None:
        """Accumulate statistics from one batch of the fit dataloader."""

    def fit_end(self) -> None:
        """Turn the running statistics into the fitted parameters (and all-reduce them across ranks)."""

    def fit_signature(self) -> str:
        """What, besides model and data, determines the fitted statistics: the module's repr."""
        return repr(self)

    def extra_repr(self) -> str:
        return f'name={self.name!r}, feature_stages={self.feature_stages}'

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        # Data-dependent buffers (classes, channels) are empty until fitted: take the stored shape.
        for name, buf in self._buffers.items():
            key = prefix + name
            if buf is not None and key in state_dict and state_dict[key].shape != buf.shape:
                self._buffers[name] = buf.new_empty(state_dict[key].shape)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


def check_logits(logits: Tensor) -> Tensor:
    """Validate the ``(N, C, H, W)`` logits a scorer receives and return them as float32."""
    if logits.dim() != 4:
        raise ValueError(f'anomaly scorers expect logits of shape (N, C, H, W), got {tuple(logits.shape)}')
    return logits if logits.dtype == torch.float32 else logits.float()


def logsumexp_classes(logits: Tensor) -> Tensor:
    """``logsumexp`` over the class dimension of ``(N, C, H, W)`` logits, returned as ``(N, H, W)``.

    Computed as ``max_c z_c - max_c log_softmax(z)_c`` (exact: ``log_softmax(z) = z - logsumexp(z)``, and the
    maximum of ``log_softmax`` lies in ``[-log C, 0]``, so nothing large cancels). On CPU this is several
    times faster than ``torch.logsumexp`` over the strided class dimension, because ``log_softmax`` is a
    fused kernel.
    """
    return logits.amax(dim=1) - logits.log_softmax(dim=1).amax(dim=1)


def check_gt(gt_sem_seg: Tensor, logits: Tensor) -> Tensor:
    """Validate the ``(N, H, W)`` labels given to ``fit_step`` against ``(N, C, H, W)`` logits."""
    if gt_sem_seg.dim() != 3 or gt_sem_seg.shape[0] != logits.shape[0] or \
            gt_sem_seg.shape[-2:] != logits.shape[-2:]:
        raise ValueError(f'fit_step expects gt_sem_seg of shape (N, H, W) = {(logits.shape[0], *logits.shape[-2:])} '
                         f'matching the logits {tuple(logits.shape)}, got {tuple(gt_sem_seg.shape)}')
    return gt_sem_seg.long()


def stage_feature(scorer: BaseAnomalyScorer, feats: Feats, stage: int) -> Tensor:
    """Return ``feats[stage]`` as float32 ``(N, C_s, h_s, w_s)``, or raise naming the scorer and the stage."""
    if feats is None or stage >= len(feats) or feats[stage] is None:
        available = [] if feats is None else [i for i, f in enumerate(feats) if f is not None]
        raise ValueError(f'{scorer.name} needs the output of backbone stage {stage}, but the features given hold '
                         f'stages {available}. Run it through AnomalyTestLoop (which captures the stages listed '
                         f'in the scorers\' feature_stages) or pass feats[{stage}] yourself.')
    feat = feats[stage]
    if feat.dim() != 4:
        raise ValueError(f'{scorer.name}: backbone stage {stage} features must be (N, C, h, w), '
                         f'got {tuple(feat.shape)}')
    return feat.float()


def all_reduce_sum_(tensors: List[Tensor]) -> List[Tensor]:
    """Sum running statistics over all ranks (no-op when not distributed); returns the reduced tensors.

    A rank that saw no fit data still holds empty (not yet sized) tensors; they are replaced by zeros
    of the shape the other ranks agree on before the reduction.
    """
    if get_world_size() == 1:
        return tensors
    shapes = all_gather_object([tuple(t.shape) for t in tensors])
    out = []
    for i, t in enumerate(tensors):
        sized = {s[i] for s in shapes if 0 not in s[i]}
        if len(sized) > 1:
            raise RuntimeError(f'ranks disagree on the shape of a fit statistic: {sorted(sized)}')
        if sized:
            shape = sized.pop()
            if tuple(t.shape) != shape:
                t = t.new_zeros(shape)
            all_reduce(t, op='sum')
        out.append(t)
    return out
