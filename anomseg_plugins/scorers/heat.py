"""HEAT: smoothed energy with running (EMA) per-image normalisation, plus an optional feature term."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from anomseg_plugins.registry import ANOMALY_SCORERS
from .base_scorer import BaseAnomalyScorer, Feats, check_logits, logsumexp_classes, stage_feature


@ANOMALY_SCORERS.register_module()
class HEAT(BaseAnomalyScorer):
    """Spatially smoothed energy, normalised by running per-image statistics (the study's HEAT).

    Exact definition, for the images in the order they are scored (``reset()`` starts over):

    1. Energy with ``T = 1``: ``e = -logsumexp_c(z_c)`` for every pixel.
    2. Spatial smoothing with a ``k x k`` box kernel (``k = kernel_size = 3``): ``s = mean of e over the
       k x k neighbourhood``; at the border only the neighbours inside the image are averaged
       (``avg_pool2d`` with ``count_include_pad=False``).
    3. Adaptive normalisation: for image ``i`` take ``m_i = mean(s_i)`` and ``d_i = std(s_i)`` over its
       pixels and update the running threshold and scale as exponential moving averages,
       ``M <- alpha * M + (1 - alpha) * m_i``, ``D <- alpha * D + (1 - alpha) * d_i`` (``alpha = 0.9``;
       the first image sets ``M = m_1``, ``D = d_1``). The image's score is ``(s_i - M) / max(D, eps)``:
       how far above the running typical energy level ``M`` (the adaptive threshold) a pixel lies, in
       running standard deviations. The current image enters ``M``, ``D`` before it is normalised.
    4. Optional feature term (``feature_stage`` set; the study used ResNet ``layer3``, which is stage index
       ``2`` of a backbone with ``out_indices=(0, 1, 2, 3)``, see ``configs/_base_/anomaly/study_scorers.py``):
       ``g = -||f||_2``, the negated L2 norm over channels of the stage's feature vector at each feature
       pixel (unfamiliar content activates the backbone weakly), upsampled bilinearly to ``(H, W)`` and
       normalised exactly like step 3 with its own running ``M_g``, ``D_g``; the score becomes
       ``(s_i - M) / D + feature_weight * (g_i - M_g) / D_g``.

    The per-image statistics pass from image to image through the EMA only, so the score of an image
    depends on the images scored before it:

    - without the feature term, step 3 is an increasing affine map within an image (``(s_i - M) / D``),
      so per-image metrics (AUROC, AUPR, FPR95 of one image) do not depend on the running state; pooled
      metrics, which rank pixels of different images against each other, do;
    - with the feature term, the image's score is ``s_i / D + w * g_i / D_g + const``: two maps added with
      weights set by the *two different* running scales ``D`` and ``D_g``. Their ratio, and so the ranking
      of the pixels *within* the image, changes with the images scored before: per-image metrics depend
      on the order too (one image scored AUROC 0.4867 after other images, 0.4853 scored fresh).

    Under distributed testing every rank keeps its own running statistics, so with the feature term both
    protocols, without it the pooled one, depend on the number of processes. The running statistics are
    not saved (no fitting).

    Args:
        alpha: EMA weight of the past (0.9).
        kernel_size: side of the box kernel (odd).
        feature_stage: backbone stage of the optional feature term; ``None`` disables it.
        feature_weight: weight of the feature term.
        eps: floor of the running standard deviations.
        name: display name; defaults to ``'HEAT'``.

    Input ``(N, C, H, W)`` logits (and ``feats[feature_stage]`` ``(N, C_s, h, w)`` when used), output
    ``(N, H, W)`` float32.

    Reference: the StreetHazards study this project reproduces (energy smoothing and adaptive
    normalisation as in Liu et al., NeurIPS 2020, and the spatial smoothing of Jung et al., ICCV 2021).
    """

    def __init__(self,
                 alpha: float = 0.9,
                 kernel_size: int = 3,
                 feature_stage: Optional[int] = None,
                 feature_weight: float = 1.0,
                 eps: float = 1e-6,
                 name: Optional[str] = None) -> None:
        super().__init__(name=name, feature_stages=() if feature_stage is None else (feature_stage, ))
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f'HEAT: alpha must be in [0, 1), got {alpha}')
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f'HEAT: kernel_size must be a positive odd number, got {kernel_size}')
        self.alpha = float(alpha)
        self.kernel_size = int(kernel_size)
        self.feature_stage = feature_stage
        self.feature_weight = float(feature_weight)
        self.eps = float(eps)
        # running [M, D, M_g, D_g]; empty until the first image (not saved)
        self.register_buffer('_running', torch.empty(0, dtype=torch.float64), persistent=False)

    def reset(self) -> None:
        self._running = self._running.new_empty(0)

    def _smoothed_energy(self, logits: Tensor) -> Tensor:
        energy = -logsumexp_classes(logits)[:, None]
        k = self.kernel_size
        return F.avg_pool2d(energy, k, stride=1, padding=k // 2, count_include_pad=False)[:, 0]

    def _feature_term(self, feats: Feats, size) -> Tensor:
        feat = stage_feature(self, feats, self.feature_stage)
        g = -feat.norm(dim=1, keepdim=True)
        return F.interpolate(g, size=size, mode='bilinear', align_corners=False)[:, 0]

    def _normalise(self, x: Tensor, running: Tensor) -> Tensor:
        """Update ``running = [M, D]`` in place with image ``x`` and return ``(x - M) / max(D, eps)``."""
        stats = torch.stack([x.mean(), x.std(correction=0)]).double()
        if torch.isnan(running).any():
            running.copy_(stats)
        else:
            running.mul_(self.alpha).add_(stats, alpha=1.0 - self.alpha)
        return (x - running[0].float()) / running[1].clamp(min=self.eps).float()

    def score(self, logits: Tensor, feats: Feats = None) -> Tensor:
        logits = check_logits(logits)
        smoothed = self._smoothed_energy(logits)
        feat_term = None if self.feature_stage is None else self._feature_term(feats, logits.shape[-2:])
        if self._running.numel() == 0:
            self._running = torch.full((4, ), float('nan'), dtype=torch.float64, device=logits.device)
        running = self._running.to(logits.device)
        out = torch.empty_like(smoothed)
        for i in range(logits.shape[0]):
            out[i] = self._normalise(smoothed[i], running[0:2])
            if feat_term is not None:
                out[i] += self.feature_weight * self._normalise(feat_term[i], running[2:4])
        self._running = running
        return out

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, alpha={self.alpha}, kernel_size={self.kernel_size}, '
                f'feature_stage={self.feature_stage}, feature_weight={self.feature_weight}, eps={self.eps}')
