"""Energy-margin loss of energy-based OOD fine-tuning (Liu et al., "Energy-based Out-of-distribution Detection",
NeurIPS 2020), applied per pixel as in PEBAL (Tian et al., ECCV 2022).

Outlier pixels are found through the label path of :mod:`anomseg_plugins.models.losses.outlier_labels`.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor, nn

from .outlier_labels import OUTLIER_INDEX, check_loss_name, check_outlier_index, inlier_mask, outlier_mask


def free_energy(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Free energy ``E(x) = -T * logsumexp(logits / T)`` over the class dim 1: ``(N, C, *)`` -> ``(N, *)``."""
    return -temperature * torch.logsumexp(logits.float() / temperature, dim=1)


def _masked_mean(values: Tensor, mask: Tensor, weight: Optional[Tensor]) -> Tensor:
    """Mean of ``values`` over ``mask`` (weighted by ``weight`` when given); 0 (with a graph) for an empty mask."""
    w = mask.float() if weight is None else mask.float() * weight.float()
    total = w.sum()
    if total <= 0:
        return (values * 0.0).sum()
    return (values * w).sum() / total


def energy_margin_loss(logits: Tensor,
                       label: Tensor,
                       m_in: float,
                       m_out: float,
                       temperature: float = 1.0,
                       outlier_index: int = OUTLIER_INDEX,
                       weight: Optional[Tensor] = None) -> Tensor:
    """``mean_in relu(E - m_in)^2 + mean_out relu(m_out - E)^2`` (Liu et al. 2020, eq. 8).

    Inliers are pixels with ``label < C``, outliers those with ``label == outlier_index``; other pixels (ignore)
    count in neither mean. Each mean is 0 when its set is empty.
    """
    energy = free_energy(logits, temperature)
    inl = inlier_mask(label, logits.shape[1])
    out = outlier_mask(label, outlier_index)
    loss_in = _masked_mean(F.relu(energy - m_in).pow(2), inl, weight)
    loss_out = _masked_mean(F.relu(m_out - energy).pow(2), out, weight)
    return loss_in + loss_out


@MODELS.register_module()
class EnergyMarginLoss(nn.Module):
    """Squared hinges on the free energy: inliers below ``m_in``, outliers above ``m_out``.

    ``E(x) = -T logsumexp(logits / T)`` is low on pixels the model is confident about. Liu et al. (NeurIPS 2020)
    fine-tune a classifier with ``L = mean_in relu(E - m_in)^2 + mean_out relu(m_out - E)^2`` (their weight 0.1
    next to cross-entropy) so the energy separates inliers from exposed outliers by at least ``m_out - m_in``;
    the Energy scorer then reads the same quantity at test time. Put it next to the (wrapped) cross-entropy::

        loss_decode=[dict(type='InlierLoss', loss=dict(type='CrossEntropyLoss')),
                     dict(type='EnergyMarginLoss', m_in=-8.0, m_out=-2.0, loss_weight=0.1)]

    The margins are in logit units and depend on the model's logit scale: pick ``m_in`` near the inlier energies
    the closed-set model already has (so the inlier term does not fight cross-entropy) and ``m_out`` a few units
    above. Outlier pixels are ``label == outlier_index`` (see :mod:`.outlier_labels`).

    Args:
        m_in: inlier energy margin (energies above it are penalised). Default -8.
        m_out: outlier energy margin (energies below it are penalised). Default -2.
        temperature: ``T`` of the free energy. Default 1.
        outlier_index: label of outlier pixels. Default 254.
        loss_weight: multiplier. Default 0.1 (Liu et al.).
        loss_name: key in the loss dict, must start with ``loss_``. Default ``'loss_energy_margin'``.
    """

    def __init__(self,
                 m_in: float = -8.0,
                 m_out: float = -2.0,
                 temperature: float = 1.0,
                 outlier_index: int = OUTLIER_INDEX,
                 loss_weight: float = 0.1,
                 loss_name: str = 'loss_energy_margin') -> None:
        super().__init__()
        if not m_in < m_out:
            raise ValueError(f'EnergyMarginLoss: need m_in < m_out (inliers low, outliers high energy), got '
                             f'm_in={m_in}, m_out={m_out}')
        if temperature <= 0:
            raise ValueError(f'EnergyMarginLoss: temperature must be > 0, got {temperature}')
        self.m_in, self.m_out, self.temperature = float(m_in), float(m_out), float(temperature)
        self.outlier_index = check_outlier_index(outlier_index, 'EnergyMarginLoss')
        self.loss_weight = loss_weight
        self._loss_name = check_loss_name(loss_name, 'EnergyMarginLoss')

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        """Loss of ``pred`` (N, C, H, W) logits against ``target`` (N, H, W); ``ignore_index`` pixels are skipped
        (they are neither ``< C`` nor ``outlier_index``)."""
        _check_classes(pred, self.outlier_index, type(self).__name__)
        return self.loss_weight * energy_margin_loss(pred, target, self.m_in, self.m_out, self.temperature,
                                                     self.outlier_index, weight)

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def extra_repr(self) -> str:
        return (f'm_in={self.m_in}, m_out={self.m_out}, temperature={self.temperature}, '
                f'loss_weight={self.loss_weight}')


def _check_classes(pred: Tensor, outlier_index: int, owner: str) -> None:
    if pred.shape[1] > outlier_index:
        raise ValueError(f'{owner}: the model predicts {pred.shape[1]} classes, so outlier_index={outlier_index} '
                         'is a known class; set outlier_index >= num_classes in the transform and the losses')
