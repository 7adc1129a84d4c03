"""Standardized max logit (SML) anomaly scorer."""
from typing import Optional

import torch
from torch import Tensor

from anomseg_plugins.registry import ANOMALY_SCORERS
from .base_scorer import BaseAnomalyScorer, Feats, all_reduce_sum_, check_gt, check_logits

FALLBACKS = ('shrink', 'global')


@ANOMALY_SCORERS.register_module()
class SML(BaseAnomalyScorer):
    """Standardized max logit: ``score = -(max_c z_c - mu_k) / sigma_k`` with ``k = argmax_c z_c``.

    ``mu_k`` and ``sigma_k`` are the mean and (population) standard deviation of the max logit over the
    fit pixels the model *predicts* as class ``k`` (the fit split is the validation set by default, see
    ``AnomalyTestLoop``). Pixels whose label is ``ignore_index`` are left out of the fit.

    Rarely predicted classes. With ``n_k`` fit pixels predicted ``k``, ``m_k`` / ``v_k`` their max-logit
    mean / variance and ``m`` / ``v`` those over *all* fit pixels (the global statistics)::

        w_k     = min(1, n_k / min_pixels)            (fallback='shrink', the default)
        mu_k    = w_k * m_k + (1 - w_k) * m
        sigma_k = sqrt(w_k * v_k + (1 - w_k) * v)

    A class predicted on at least ``min_pixels`` fit pixels keeps its own statistics exactly (the paper's
    SML); below that they are shrunk linearly towards the global ones, reaching them at ``n_k = 0``
    (``w_k`` is continuous in ``n_k``, so a class does not jump between its own and the global statistics
    when one more pixel is predicted). ``fallback='global'`` uses ``w_k = 0`` below ``min_pixels`` (a hard
    switch). Every ``sigma`` is floored at ``eps``.

    Why ``min_pixels = 4096``: a standard deviation estimated from ``n`` independent values has a relative
    standard error of about ``1 / sqrt(2 n)``. The max logit is not independent from pixel to pixel: the
    logits are predicted at output stride 8 (4 for a DeepLabV3+ decoder) and upsampled, so a block of
    about 8 x 8 = 64 pixels carries one independent value. 4096 pixels are then ~64 independent values,
    ``sigma`` to within ~9 % and ``mu`` to within ~0.13 ``sigma``; fewer pixels (typically one blob in one
    image) give the unstable ``sigma`` that inflates or flattens a whole class's scores. On StreetHazards
    4096 pixels are 0.0004 % of the validation pixels (1031 x 1280 x 720): only classes the model almost
    never predicts are shrunk.

    Standardizing per predicted class removes the class-dependent offset of the max logit (a large,
    frequent class like road has much larger logits than a pole), which is what MaxLogit suffers from.
    This is the standardization step of the paper only: its boundary suppression and dilated smoothing
    are not applied.

    Args:
        min_pixels: number of fit pixels predicted ``k`` from which class ``k`` uses its own statistics alone.
        eps: floor of ``sigma``.
        ignore_index: label of pixels excluded from the fit.
        name: display name; defaults to ``'SML'``.
        fallback: below ``min_pixels``: ``'shrink'`` (weight ``n_k / min_pixels`` on the class statistics,
            the rest on the global ones) or ``'global'`` (the global statistics).

    Fitted buffers: ``mu`` and ``sigma``, both ``(C,)`` float32 (empty before fitting).
    Input ``(N, C, H, W)`` logits, output ``(N, H, W)`` float32.

    Reference: Jung et al., "Standardized Max Logits: A Simple yet Effective Approach for Identifying
    Unexpected Road Obstacles in Urban-Scene Segmentation", ICCV 2021.
    """

    requires_fit = True

    def __init__(self,
                 min_pixels: int = 4096,
                 eps: float = 1e-6,
                 ignore_index: int = 255,
                 name: Optional[str] = None,
                 fallback: str = 'shrink') -> None:
        super().__init__(name=name)
        if fallback not in FALLBACKS:
            raise ValueError(f'SML: fallback must be one of {FALLBACKS}, got {fallback!r}')
        if int(min_pixels) < 1:
            raise ValueError(f'SML: min_pixels must be >= 1, got {min_pixels}')
        self.min_pixels = int(min_pixels)
        self.fallback = fallback
        self.eps = float(eps)
        self.ignore_index = int(ignore_index)
        self.register_buffer('mu', torch.empty(0))
        self.register_buffer('sigma', torch.empty(0))
        # running sums over the fit pixels, per predicted class (float64, not saved)
        for name_ in ('_count', '_sum', '_sumsq'):
            self.register_buffer(name_, torch.empty(0, dtype=torch.float64), persistent=False)

    @property
    def is_fitted(self) -> bool:
        return self.mu.numel() > 0

    def fit_begin(self) -> None:
        for name_ in ('_count', '_sum', '_sumsq'):
            setattr(self, name_, getattr(self, name_).new_empty(0))

    def fit_step(self, logits: Tensor, feats: Feats, gt_sem_seg: Tensor) -> None:
        logits = check_logits(logits)
        valid = check_gt(gt_sem_seg, logits) != self.ignore_index
        num_classes = logits.shape[1]
        if self._count.numel() == 0:
            for name_ in ('_count', '_sum', '_sumsq'):
                setattr(self, name_, torch.zeros(num_classes, dtype=torch.float64, device=logits.device))
        elif self._count.numel() != num_classes:
            raise ValueError(f'{self.name}: fit batches disagree on the number of classes '
                             f'({self._count.numel()} then {num_classes})')
        max_logit, pred = logits.max(dim=1)
        m = max_logit[valid].double()
        k = pred[valid]
        self._count += torch.bincount(k, minlength=num_classes).to(self._count)
        self._sum += torch.bincount(k, weights=m, minlength=num_classes)
        self._sumsq += torch.bincount(k, weights=m * m, minlength=num_classes)

    def fit_end(self) -> None:
        count, total, total_sq = all_reduce_sum_([self._count, self._sum, self._sumsq])
        n = count.sum()
        if count.numel() == 0 or n == 0:
            raise RuntimeError(f'{self.name}: no fit pixels (every label was ignore_index={self.ignore_index} or the '
                               f'fit dataloader was empty); check the fit dataloader of AnomalyTestLoop')
        global_mu = total.sum() / n
        global_var = (total_sq.sum() / n - global_mu**2).clamp(min=0)
        mu = total / count.clamp(min=1)
        var = (total_sq / count.clamp(min=1) - mu**2).clamp(min=0)
        weight = (count / self.min_pixels).clamp(max=1.0)
        if self.fallback == 'global':
            weight = (weight >= 1.0).to(weight)
        mu = weight * mu + (1.0 - weight) * global_mu
        var = weight * var + (1.0 - weight) * global_var
        self.mu = mu.float()
        self.sigma = var.sqrt().clamp(min=self.eps).float()
        self.fit_begin()  # free the running sums

    def score(self, logits: Tensor, feats: Feats = None) -> Tensor:
        logits = check_logits(logits)
        self.check_fitted()
        if self.mu.numel() != logits.shape[1]:
            raise ValueError(f'{self.name} was fitted for {self.mu.numel()} classes but the logits have '
                             f'{logits.shape[1]}; refit it (delete the stats file) for this model')
        max_logit, pred = logits.max(dim=1)
        mu = self.mu.to(logits.device)[pred]
        sigma = self.sigma.to(logits.device)[pred]
        return -(max_logit - mu) / sigma

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, min_pixels={self.min_pixels}, fallback={self.fallback!r}, '
                f'eps={self.eps}, ignore_index={self.ignore_index}')
