"""``InlierLoss``: any mmseg loss, trained on the known classes only (outlier pixels ignored).

Part of the outlier label path documented in :mod:`anomseg_plugins.models.losses.outlier_labels`.
"""
from typing import Optional

import torch
from mmseg.registry import MODELS
from torch import Tensor, nn

from .outlier_labels import OUTLIER_INDEX, check_loss_name, check_outlier_index


@MODELS.register_module()
class InlierLoss(nn.Module):
    """Wrap a closed-set loss so that pasted outlier pixels are ignored by it.

    Pasted outliers carry the label ``outlier_index`` (254) in ``gt_seg_map``; mmseg's losses would crash on it
    (``F.cross_entropy`` accepts only ``[0, C)`` and ``ignore_index``) or, worse, train it as a class. This wrapper
    maps ``outlier_index`` to the head's ``ignore_index`` and calls the wrapped loss with everything else
    unchanged, so ``InlierLoss(loss=CE)`` equals CE on the label with 254 replaced by 255, exactly (including
    the wrapped loss's own averaging rule, e.g. mmseg CE's ``avg_non_ignore``)::

        loss_decode=[dict(type='InlierLoss', loss=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
                     dict(type='EnergyMarginLoss', loss_weight=0.1)]

    Args:
        loss: config of the wrapped mmseg loss (any ``MODELS`` loss taking ``(pred, target, weight=...,
            ignore_index=...)``).
        outlier_index: label of the outlier pixels. Default 254.
        loss_name: key in the loss dict; ``None`` keeps the wrapped loss's own name (``loss_ce`` for CE), so logs
            and plots read as in closed-set training.
    """

    def __init__(self, loss: dict, outlier_index: int = OUTLIER_INDEX, loss_name: Optional[str] = None) -> None:
        super().__init__()
        if not isinstance(loss, dict) or 'type' not in loss:
            raise ValueError(f"InlierLoss: `loss` must be a loss config dict with a 'type' key, e.g. "
                             f"dict(type='CrossEntropyLoss'), got {loss!r}")
        if loss.get('type') == 'InlierLoss':
            raise ValueError('InlierLoss: wrapping an InlierLoss in another does nothing; wrap the mmseg loss')
        self.loss = MODELS.build(loss)
        self.outlier_index = check_outlier_index(outlier_index, 'InlierLoss')
        self._loss_name = None if loss_name is None else check_loss_name(loss_name, 'InlierLoss')

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        """The wrapped loss of ``pred`` (N, C, H, W) against ``target`` (N, H, W) with outliers -> ignore."""
        target = torch.where(target == self.outlier_index, torch.full_like(target, ignore_index), target)
        return self.loss(pred, target, weight=weight, ignore_index=ignore_index, **kwargs)

    @property
    def loss_name(self) -> str:
        """The configured name, or the wrapped loss's (``loss_``-prefixed names are optimised by mmseg)."""
        return self._loss_name if self._loss_name is not None else self.loss.loss_name

    def extra_repr(self) -> str:
        return f'outlier_index={self.outlier_index}'
