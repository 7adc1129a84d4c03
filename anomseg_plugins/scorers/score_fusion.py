"""Fusion of several anomaly scorers into one score."""
from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from anomseg_plugins.registry import ANOMALY_SCORERS
from .base_scorer import BaseAnomalyScorer, Feats, all_reduce_sum_, check_gt, check_logits


@ANOMALY_SCORERS.register_module()
class ScoreFusion(BaseAnomalyScorer):
    """Weighted combination of child scorers, made comparable by ranks or by standardisation.

    With child scores ``s_1 .. s_K`` (each ``(N, H, W)``, higher = more anomalous) and weights
    ``w_k`` (default 1, normalised to sum to 1):

    - ``mode='rank'``: ``score = sum_k w_k * r_k`` where ``r_k`` is the rank of a pixel's ``s_k`` among
      the pixels of *its own image*, scaled to ``[0, 1]`` (``(rank - 1) / (H*W - 1)``, ties get their
      average rank). Needs no statistics of its own, but the result ignores how anomalous an image is
      as a whole: every image spans ``[0, 1]``, which matters for the pooled protocol.
    - ``mode='zscore'``: ``score = sum_k w_k * (s_k - mu_k) / sigma_k`` with ``mu_k``, ``sigma_k`` the
      mean and (population) standard deviation of ``s_k`` over the fit pixels (labels other than
      ``ignore_index``), fitted on the fit split like SML. Children that need fitting are fitted first;
      the fusion then collects its statistics in a second pass over the fit data with the fitted
      children (the test loop runs passes until every scorer is fitted). ``sigma`` is floored at ``eps``.

    The feature stages needed are the union of the children's. Children are built from configs in
    ``ANOMALY_SCORERS`` (or passed as scorer objects); their fitted statistics are part of this module's
    ``state_dict``.

    Args:
        scorers: child scorer configs or objects (at least two).
        mode: ``'rank'`` or ``'zscore'``.
        weights: one weight per child; ``None`` = equal weights.
        ignore_index: label of pixels excluded from the z-score fit.
        eps: floor of ``sigma``.
        name: display name; defaults to e.g. ``'RankFusion(MaxLogit+Energy)'``.

    Fitted buffers (``zscore``): ``mu``, ``sigma`` ``(K,)``.
    Input ``(N, C, H, W)`` logits (+ the children's features), output ``(N, H, W)`` float32.
    """

    def __init__(self,
                 scorers: Sequence[Union[dict, BaseAnomalyScorer]],
                 mode: str = 'rank',
                 weights: Optional[Sequence[float]] = None,
                 ignore_index: int = 255,
                 eps: float = 1e-6,
                 name: Optional[str] = None) -> None:
        if mode not in ('rank', 'zscore'):
            raise ValueError(f"ScoreFusion: mode must be 'rank' or 'zscore', got {mode!r}")
        if len(scorers) < 2:
            raise ValueError(f'ScoreFusion needs at least two child scorers, got {len(scorers)}')
        children = [s if isinstance(s, nn.Module) else ANOMALY_SCORERS.build(s) for s in scorers]
        weights = [1.0] * len(children) if weights is None else [float(w) for w in weights]
        if len(weights) != len(children) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f'ScoreFusion: weights must be one non-negative weight per child ({len(children)}) '
                             f'with a positive sum, got {weights}')
        stages = sorted({s for c in children for s in c.feature_stages})
        default_name = f"{dict(rank='Rank', zscore='ZScore')[mode]}Fusion({'+'.join(c.name for c in children)})"
        super().__init__(name=name or default_name, feature_stages=stages)
        self.children_scorers = nn.ModuleList(children)
        self.mode = mode
        self.weights = [w / sum(weights) for w in weights]
        self.ignore_index = int(ignore_index)
        self.eps = float(eps)
        self.requires_fit = mode == 'zscore' or any(c.requires_fit for c in children)
        self.register_buffer('mu', torch.empty(0))
        self.register_buffer('sigma', torch.empty(0))
        self.register_buffer('_moments', torch.empty(0, dtype=torch.float64), persistent=False)
        self._fitting: List[BaseAnomalyScorer] = []
        self._own_pass = False

    @property
    def is_fitted(self) -> bool:
        children_fitted = all(c.is_fitted for c in self.children_scorers)
        return children_fitted and (self.mode != 'zscore' or self.mu.numel() > 0)

    def reset(self) -> None:
        for c in self.children_scorers:
            c.reset()

    def fit_begin(self) -> None:
        self._fitting = [c for c in self.children_scorers if not c.is_fitted]
        for c in self._fitting:
            c.fit_begin()
        # own statistics need fitted children: collect them in the pass after the children's
        self._own_pass = self.mode == 'zscore' and not self._fitting
        self._moments = self._moments.new_empty(0)

    def fit_step(self, logits: Tensor, feats: Feats, gt_sem_seg: Tensor) -> None:
        for c in self._fitting:
            c.fit_step(logits, feats, gt_sem_seg)
        if not self._own_pass:
            return
        valid = check_gt(gt_sem_seg, logits) != self.ignore_index
        scores = torch.stack([c.score(logits, feats)[valid].double() for c in self.children_scorers])
        count = scores.new_full((scores.shape[0], ), scores.shape[1])
        moments = torch.stack([count, scores.sum(dim=1), (scores * scores).sum(dim=1)])
        self._moments = moments if self._moments.numel() == 0 else self._moments + moments

    def fit_end(self) -> None:
        for c in self._fitting:
            c.fit_end()
        self._fitting = []
        if not self._own_pass:
            return
        self._own_pass = False
        (moments, ) = all_reduce_sum_([self._moments])
        if moments.numel() == 0 or moments[0, 0] == 0:
            raise RuntimeError(f'{self.name}: no fit pixels (every label was ignore_index={self.ignore_index} or the '
                               f'fit dataloader was empty); check the fit dataloader of AnomalyTestLoop')
        count, total, total_sq = moments
        mu = total / count
        self.mu = mu.float()
        self.sigma = (total_sq / count - mu**2).clamp(min=0).sqrt().clamp(min=self.eps).float()
        self._moments = self._moments.new_empty(0)

    @staticmethod
    def image_ranks(scores: Tensor) -> Tensor:
        """Average ranks of every image's pixels, scaled to ``[0, 1]``: ``(N, H, W)`` -> ``(N, H, W)``."""
        flat = scores.flatten(1)
        n = flat.shape[1]
        sorted_, _ = flat.sort(dim=1)
        low = torch.searchsorted(sorted_, flat, right=False)
        high = torch.searchsorted(sorted_, flat, right=True)
        ranks = (low + high - 1).float() / 2
        return (ranks / max(n - 1, 1)).view_as(scores)

    def score(self, logits: Tensor, feats: Feats = None) -> Tensor:
        logits = check_logits(logits)
        self.check_fitted()
        out = torch.zeros(logits.shape[0], *logits.shape[-2:], device=logits.device)
        for k, (child, w) in enumerate(zip(self.children_scorers, self.weights)):
            s = child.score(logits, feats)
            if self.mode == 'rank':
                out += w * self.image_ranks(s)
            else:
                out += w * (s - self.mu[k].to(s.device)) / self.sigma[k].to(s.device)
        return out

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, mode={self.mode!r}, weights={self.weights}, '
                f'ignore_index={self.ignore_index}, eps={self.eps}')
