"""Mahalanobis-distance anomaly scorer on backbone features."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from anomseg_plugins.registry import ANOMALY_SCORERS
from .base_scorer import BaseAnomalyScorer, Feats, all_reduce_sum_, check_gt, check_logits, stage_feature


@ANOMALY_SCORERS.register_module()
class Mahalanobis(BaseAnomalyScorer):
    """Distance of a pixel's backbone feature to the nearest class Gaussian (shared covariance).

    Fit (streaming, on the fit split): features ``f`` ``(D,)`` of backbone stage ``feature_stage`` at
    feature resolution ``(h, w)``; labels downsampled to ``(h, w)`` by ``label_downsample``
    (``'nearest'``: nearest-neighbour sampling; ``'mode'``: the most frequent label of the pixels each
    feature cell covers, ignore counting as a label); feature pixels labelled ``ignore_index`` (or
    ``>= C``) are left out. Per class ``c`` with ``n_c > 0`` pixels ``mu_c = mean of f over class c``;
    the shared covariance is the pooled within-class covariance
    ``Sigma = 1/n * sum_c sum_{i in c} (f_i - mu_c)(f_i - mu_c)^T`` plus a ridge
    ``ridge * trace(Sigma) / D * I`` (relative to the mean variance, so it is scale free). Only sums,
    per-class sums and the sum of outer products are accumulated (in float64, after subtracting a fixed
    reference vector for conditioning), so memory does not grow with the fit set; ranks are summed in
    ``fit_end``.

    Score: ``d(f) = min_{c : n_c > 0} sqrt((f - mu_c)^T Sigma^-1 (f - mu_c))`` at feature resolution,
    upsampled bilinearly (``align_corners=False``) to the logits' ``(H, W)``. Classes never seen in the
    fit labels are left out of the minimum.

    Args:
        feature_stage: backbone stage whose output is used (``2`` = ResNet stage 3, the aux-head input).
        ridge: relative ridge added to the covariance.
        label_downsample: ``'nearest'`` or ``'mode'``.
        ignore_index: label of pixels excluded from the fit.
        name: display name; defaults to ``'Mahalanobis'``.

    Fitted buffers: ``means`` ``(C, D)``, ``precision`` ``(D, D)`` (``Sigma^-1``), ``class_valid`` ``(C,)``.
    Input ``(N, C, H, W)`` logits and ``feats[feature_stage]`` ``(N, D, h, w)``; output ``(N, H, W)``
    float32.

    Reference: Lee et al., "A Simple Unified Framework for Detecting Out-of-Distribution Samples and
    Adversarial Attacks", NeurIPS 2018 (class-conditional Gaussians with a tied covariance), applied per
    pixel to segmentation features.
    """

    requires_fit = True
    _RUNNING = ('_count', '_sum', '_outer', '_ref')

    def __init__(self,
                 feature_stage: int = 2,
                 ridge: float = 1e-3,
                 label_downsample: str = 'nearest',
                 ignore_index: int = 255,
                 name: Optional[str] = None) -> None:
        super().__init__(name=name, feature_stages=(feature_stage, ))
        if label_downsample not in ('nearest', 'mode'):
            raise ValueError(f"Mahalanobis: label_downsample must be 'nearest' or 'mode', got {label_downsample!r}")
        if ridge < 0:
            raise ValueError(f'Mahalanobis: ridge must be >= 0, got {ridge}')
        self.feature_stage = int(feature_stage)
        self.ridge = float(ridge)
        self.label_downsample = label_downsample
        self.ignore_index = int(ignore_index)
        self.register_buffer('means', torch.empty(0))
        self.register_buffer('precision', torch.empty(0))
        self.register_buffer('class_valid', torch.empty(0, dtype=torch.bool))
        for name_ in self._RUNNING:
            self.register_buffer(name_, torch.empty(0, dtype=torch.float64), persistent=False)

    @property
    def is_fitted(self) -> bool:
        return self.precision.numel() > 0

    # ----- fitting -----
    def fit_begin(self) -> None:
        for name_ in self._RUNNING:
            setattr(self, name_, getattr(self, name_).new_empty(0))

    def downsample_labels(self, gt_sem_seg: Tensor, size: Tuple[int, int], num_classes: int) -> Tensor:
        """``(N, H, W)`` labels -> ``(N, h, w)``; labels outside ``[0, num_classes)`` become ``ignore_index``."""
        gt = gt_sem_seg.clone()
        gt[(gt < 0) | (gt >= num_classes)] = num_classes  # one extra 'ignore' label
        if self.label_downsample == 'nearest':
            small = F.interpolate(gt[:, None].float(), size=size, mode='nearest')[:, 0].long()
        else:
            one_hot = F.one_hot(gt, num_classes + 1).permute(0, 3, 1, 2).float()
            small = F.adaptive_avg_pool2d(one_hot, size).argmax(dim=1)
        small[small == num_classes] = self.ignore_index
        return small

    def fit_step(self, logits: Tensor, feats: Feats, gt_sem_seg: Tensor) -> None:
        logits = check_logits(logits)
        gt = check_gt(gt_sem_seg, logits)
        feat = stage_feature(self, feats, self.feature_stage)
        num_classes, dim = logits.shape[1], feat.shape[1]
        labels = self.downsample_labels(gt, feat.shape[-2:], num_classes).flatten()
        x = feat.permute(0, 2, 3, 1).reshape(-1, dim)
        keep = labels != self.ignore_index
        x, labels = x[keep], labels[keep]
        if self._count.numel() == 0:
            if x.shape[0] == 0:
                return
            device = feat.device
            self._count = torch.zeros(num_classes, dtype=torch.float64, device=device)
            self._sum = torch.zeros(num_classes, dim, dtype=torch.float64, device=device)
            self._outer = torch.zeros(dim, dim, dtype=torch.float64, device=device)
            self._ref = x.mean(dim=0).double()
        elif self._sum.shape != (num_classes, dim):
            raise ValueError(f'{self.name}: fit batches disagree on (classes, channels): '
                             f'{tuple(self._sum.shape)} then {(num_classes, dim)}')
        # float32 products on reference-centred features, float64 running totals
        xc = x - self._ref.float()
        self._count += torch.bincount(labels, minlength=num_classes).double()
        self._sum.index_add_(0, labels, xc.double())
        self._outer += (xc.T @ xc).double()

    def fit_end(self) -> None:
        count, total, outer, ref = self._count, self._sum, self._outer, self._ref
        if count.numel() > 0:
            # undo the rank-local centring so that ranks can be summed: sum f and sum f f^T
            s = total.sum(dim=0)
            n = count.sum()
            total = total + count[:, None] * ref[None]
            outer = outer + torch.outer(s, ref) + torch.outer(ref, s) + n * torch.outer(ref, ref)
        count, total, outer = all_reduce_sum_([count, total, outer])
        if count.numel() == 0 or count.sum() == 0:
            raise RuntimeError(f'{self.name}: no labelled fit pixels at feature resolution (all labels were '
                               f'ignore_index={self.ignore_index} or the fit dataloader was empty); check the fit '
                               f'dataloader of AnomalyTestLoop')
        n = count.sum()
        valid = count > 0
        means = torch.zeros_like(total)
        means[valid] = total[valid] / count[valid, None]
        # pooled within-class covariance: (sum f f^T - sum_c n_c mu_c mu_c^T) / n
        cov = (outer - (means * count[:, None]).T @ means) / n
        cov = (cov + cov.T) / 2
        dim = cov.shape[0]
        scale = (cov.diagonal().sum() / dim).clamp(min=1e-12)
        cov += (self.ridge * scale + 1e-12) * torch.eye(dim, dtype=cov.dtype, device=cov.device)
        chol = torch.linalg.cholesky(cov)
        self.precision = torch.cholesky_inverse(chol).float()
        self.means = means.float()
        self.class_valid = valid
        self.fit_begin()  # free the running sums

    # ----- scoring -----
    def score(self, logits: Tensor, feats: Feats = None) -> Tensor:
        logits = check_logits(logits)
        self.check_fitted()
        feat = stage_feature(self, feats, self.feature_stage)
        n, dim, h, w = feat.shape
        if dim != self.precision.shape[0]:
            raise ValueError(f'{self.name} was fitted on {self.precision.shape[0]}-channel features of stage '
                             f'{self.feature_stage}, got {dim} channels; refit it (delete the stats file)')
        device = feat.device
        precision = self.precision.to(device)
        means = self.means[self.class_valid].to(device)  # (K, D)
        centre = means.mean(dim=0)  # distances are shift invariant; centring keeps float32 accurate
        means = means - centre
        x = feat.flatten(2) - centre[:, None]  # (N, D, M), no transpose copy
        xp = precision @ x  # (N, D, M); the precision matrix is symmetric
        mp = means @ precision  # (K, D)
        d2 = (xp * x).sum(dim=1, keepdim=True) - 2 * (mp @ x) + (mp * means).sum(dim=1)[None, :, None]
        dist = d2.amin(dim=1).clamp(min=0).sqrt().reshape(n, 1, h, w)
        return F.interpolate(dist, size=logits.shape[-2:], mode='bilinear', align_corners=False)[:, 0]

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, ridge={self.ridge}, label_downsample={self.label_downsample!r}, '
                f'ignore_index={self.ignore_index}')
