"""Outlier-exposure loss: cross-entropy to the uniform distribution on outlier pixels (Hendrycks et al.,
"Deep Anomaly Detection with Outlier Exposure", ICLR 2019; per pixel as in Chan et al., "Entropy Maximization and
Meta Classification for Out-of-Distribution Detection in Semantic Segmentation" (Meta-OoD), ICCV 2021).

Outlier pixels are found through the label path of :mod:`anomseg_plugins.models.losses.outlier_labels`.
"""
from typing import Optional

import torch
from mmseg.registry import MODELS
from torch import Tensor, nn

from .energy_margin_loss import _check_classes, _masked_mean
from .outlier_labels import OUTLIER_INDEX, check_loss_name, check_outlier_index, outlier_mask


def uniform_cross_entropy(logits: Tensor) -> Tensor:
    """Per-pixel ``H(U, p) = -(1/C) sum_c log softmax(logits)_c = logsumexp(logits) - mean_c(logits)``, ``(N, *)``.

    Its minimum, ``log C``, is reached by the uniform prediction; its gradient is that of ``-entropy`` at the
    uniform point and pushes every class's probability towards ``1/C``.
    """
    logits = logits.float()
    return torch.logsumexp(logits, dim=1) - logits.mean(dim=1)


@MODELS.register_module()
class OutlierEntropyLoss(nn.Module):
    """``mean_out H(U, softmax(logits))``: outlier pixels are trained towards the uniform prediction.

    Hendrycks et al. (2019) add ``lambda * E_out[H(U; p)]`` (lambda 0.5) to the classifier's cross-entropy; Meta-OoD
    fine-tunes segmentation networks with the same term on pasted COCO objects (lambda 0.9 in a convex mix). MSP
    and Entropy scorers then read high uncertainty on outliers. Inlier pixels are not touched (the wrapped
    cross-entropy trains them); the loss is 0 when a batch has no outlier pixel. ``loss_weight`` x the value,
    whose minimum over logits is ``log C`` per outlier pixel (the uniform point), not 0.

    Args:
        outlier_index: label of outlier pixels (see :mod:`.outlier_labels`). Default 254.
        loss_weight: multiplier. Default 0.5 (Hendrycks et al.).
        loss_name: key in the loss dict, must start with ``loss_``. Default ``'loss_outlier_entropy'``.
    """

    def __init__(self,
                 outlier_index: int = OUTLIER_INDEX,
                 loss_weight: float = 0.5,
                 loss_name: str = 'loss_outlier_entropy') -> None:
        super().__init__()
        self.outlier_index = check_outlier_index(outlier_index, 'OutlierEntropyLoss')
        self.loss_weight = loss_weight
        self._loss_name = check_loss_name(loss_name, 'OutlierEntropyLoss')

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        """Mean over ``target == outlier_index`` pixels of the cross-entropy of ``softmax(pred)`` to uniform."""
        _check_classes(pred, self.outlier_index, type(self).__name__)
        return self.loss_weight * _masked_mean(
            uniform_cross_entropy(pred), outlier_mask(target, self.outlier_index), weight)

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def extra_repr(self) -> str:
        return f'loss_weight={self.loss_weight}'
