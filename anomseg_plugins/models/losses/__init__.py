"""Losses registered in mmseg's ``MODELS`` (use mmseg's own ``DiceLoss`` for Dice).

Outlier exposure (``InlierLoss``, ``EnergyMarginLoss``, ``OutlierEntropyLoss``): the outlier label path is
documented in :mod:`anomseg_plugins.models.losses.outlier_labels`.
"""
from .energy_margin_loss import EnergyMarginLoss, energy_margin_loss, free_energy
from .inlier_loss import InlierLoss
from .outlier_entropy_loss import OutlierEntropyLoss, uniform_cross_entropy
from .outlier_labels import OUTLIER_INDEX
from .softmax_focal_loss import SoftmaxFocalLoss, softmax_focal_loss

__all__ = [
    'SoftmaxFocalLoss', 'softmax_focal_loss', 'InlierLoss', 'EnergyMarginLoss', 'energy_margin_loss', 'free_energy',
    'OutlierEntropyLoss', 'uniform_cross_entropy', 'OUTLIER_INDEX'
]
