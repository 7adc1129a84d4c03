"""Softmax (multi-class) focal loss for semantic segmentation."""
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmseg.models.losses.utils import get_class_weight, weight_reduce_loss
from mmseg.registry import MODELS
from torch import Tensor, nn


def softmax_focal_loss(pred: Tensor,
                       target: Tensor,
                       weight: Optional[Tensor] = None,
                       alpha: float = 0.25,
                       gamma: float = 2.0,
                       class_weight: Optional[Tensor] = None,
                       reduction: str = 'mean',
                       avg_factor: Optional[float] = None,
                       ignore_index: Optional[int] = 255) -> Tensor:
    """Softmax focal loss of ``(N, C, *)`` logits against ``(N, *)`` integer labels.

    Per pixel ``i`` with label ``y_i`` and ``p_t = softmax(pred_i)[y_i]``::

        l_i = -alpha * w_{y_i} * (1 - p_t) ** gamma * log(p_t)       (l_i = 0 where y_i == ignore_index)

    ``w`` is ``class_weight`` (all ones when ``None``). ``reduction='mean'`` divides ``sum_i s_i * l_i``
    (``s`` = the optional per-pixel ``weight``) by ``avg_factor``, which defaults to ``sum_i w_{y_i}`` over
    the non-ignored pixels: the plain mean over non-ignored pixels without class weights, and the same
    weighted mean as ``F.cross_entropy(weight=class_weight, ignore_index=...)`` with them, so that
    ``gamma = 0`` gives exactly ``alpha * cross_entropy``. ``'sum'`` sums, ``'none'`` returns the ``(N, *)``
    map ``s_i * l_i``.

    Raises:
        ValueError: when the shapes do not match, or a label is neither in ``0..C-1`` nor ``ignore_index``.
    """
    if pred.dim() < 2 or target.shape != pred.shape[:1] + pred.shape[2:]:
        raise ValueError(f'softmax_focal_loss: pred must be (N, C, *) and target (N, *); got pred '
                         f'{tuple(pred.shape)} and target {tuple(target.shape)}')
    num_classes = pred.shape[1]
    target = target.long()
    valid = target != ignore_index if ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
    out_of_range = valid & ((target < 0) | (target >= num_classes))
    if out_of_range.any():
        bad = torch.unique(target[out_of_range]).tolist()
        raise ValueError(f'softmax_focal_loss: labels {bad[:10]} are outside 0..{num_classes - 1} and are not '
                         f'ignore_index={ignore_index}; check the label mapping of the dataset or num_classes')
    safe_target = torch.where(valid, target, torch.zeros_like(target))

    log_pt = F.log_softmax(pred.float(), dim=1).gather(1, safe_target.unsqueeze(1)).squeeze(1)
    loss = -alpha * (1.0 - log_pt.exp()).pow(gamma) * log_pt

    pixel_weight = valid.float()
    if class_weight is not None:
        pixel_weight = pixel_weight * class_weight.to(loss)[safe_target]
    loss = loss * pixel_weight
    if avg_factor is None and reduction == 'mean':
        avg_factor = pixel_weight.sum()
    if weight is not None:
        weight = weight.float()
    return weight_reduce_loss(loss, weight=weight, reduction=reduction, avg_factor=avg_factor)


@MODELS.register_module()
class SoftmaxFocalLoss(nn.Module):
    """Softmax focal loss (`Lin et al., ICCV 2017 <https://arxiv.org/abs/1708.02002>`_), multi-class form.

    ``loss = loss_weight * mean_i[ -alpha * w_{y_i} * (1 - p_t) ** gamma * log p_t ]`` over the pixels whose
    label is not ``ignore_index`` (see :func:`softmax_focal_loss` for the weighted mean with ``class_weight``).
    Down-weights well-classified pixels (``p_t`` near 1) so training concentrates on hard ones; ``gamma = 0``
    is ``alpha`` times cross-entropy. The Lightweight DeepLab study (README "Configs") trained with alpha 0.25,
    gamma 2, alone or summed with Dice through mmseg's list of losses::

        loss_decode=[dict(type='SoftmaxFocalLoss', alpha=0.25, gamma=2.0, loss_weight=1.0),
                     dict(type='DiceLoss', use_sigmoid=False, loss_weight=1.0)]

    Unlike mmseg's ``FocalLoss`` (one sigmoid per class), the probabilities here are a softmax over classes.

    Args:
        alpha: constant factor of the loss. Default 0.25.
        gamma: focusing exponent (>= 0). Default 2.0.
        class_weight: per-class weights ``w`` (length C), or a ``.npy``/json/yaml/pkl file holding them.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``. Default ``'mean'``.
        loss_weight: multiplier of the loss. Default 1.0.
        ignore_index: label ignored when ``forward`` is called without one. Default 255.
        loss_name: key of the loss in the loss dict; must start with ``loss_`` to be optimised.
            Default ``'loss_focal'``.

    Shapes: ``forward(pred (N, C, H, W), target (N, H, W))`` -> scalar (``(N, H, W)`` for ``'none'``).
    """

    def __init__(self,
                 alpha: float = 0.25,
                 gamma: float = 2.0,
                 class_weight: Union[Sequence[float], str, None] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 ignore_index: Optional[int] = 255,
                 loss_name: str = 'loss_focal') -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f'SoftmaxFocalLoss: gamma must be >= 0, got {gamma}')
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError(f"SoftmaxFocalLoss: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.class_weight = get_class_weight(class_weight)
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self._loss_name = loss_name

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                ignore_index: Optional[int] = None,
                **kwargs) -> Tensor:
        """Loss of ``pred`` (N, C, H, W) logits against ``target`` (N, H, W) labels.

        Args:
            weight: optional per-pixel weight ``(N, H, W)`` (e.g. from an OHEM sampler).
            avg_factor: denominator of the mean instead of the (class-weighted) count of valid pixels.
            reduction_override: ``'none'``, ``'mean'`` or ``'sum'`` for this call.
            ignore_index: label to ignore for this call (mmseg's decode heads pass theirs); defaults to
                ``self.ignore_index``.
        """
        assert reduction_override in (None, 'none', 'mean', 'sum')
        reduction = reduction_override if reduction_override else self.reduction
        class_weight = None
        if self.class_weight is not None:
            class_weight = pred.new_tensor(self.class_weight, dtype=torch.float32)
            if class_weight.numel() != pred.shape[1]:
                raise ValueError(f'SoftmaxFocalLoss: class_weight has {class_weight.numel()} entries but the '
                                 f'prediction has {pred.shape[1]} classes; give one weight per class')
        return self.loss_weight * softmax_focal_loss(
            pred,
            target,
            weight,
            alpha=self.alpha,
            gamma=self.gamma,
            class_weight=class_weight,
            reduction=reduction,
            avg_factor=avg_factor,
            ignore_index=self.ignore_index if ignore_index is None else ignore_index)

    @property
    def loss_name(self) -> str:
        """Name of the loss item; ``loss_``-prefixed names are summed into the optimised total."""
        return self._loss_name

    def extra_repr(self) -> str:
        return f'alpha={self.alpha}, gamma={self.gamma}, loss_weight={self.loss_weight}'
