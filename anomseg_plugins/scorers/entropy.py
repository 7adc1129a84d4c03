"""Softmax-entropy anomaly scorer."""
from typing import Optional

from torch import Tensor

from anomseg_plugins.registry import ANOMALY_SCORERS
from .base_scorer import BaseAnomalyScorer, Feats, check_logits


@ANOMALY_SCORERS.register_module()
class Entropy(BaseAnomalyScorer):
    """Shannon entropy of the softmax: ``score = -sum_c p_c log p_c`` with ``p = softmax(z)``.

    Computed from ``log_softmax`` so that saturated probabilities give ``0 * log 0 = 0`` without NaNs.
    Range ``[0, log C]``: 0 for a one-hot prediction, ``log C`` for a uniform one.

    Input ``(N, C, H, W)`` logits, output ``(N, H, W)`` float32.

    Reference: a standard uncertainty baseline, e.g. Chan et al., "Entropy Maximization and Meta
    Classification for Out-of-Distribution Detection in Semantic Segmentation", ICCV 2021.
    """

    def __init__(self, name: Optional[str] = None) -> None:
        super().__init__(name=name)

    def score(self, logits: Tensor, feats: Feats = None) -> Tensor:
        log_p = check_logits(logits).log_softmax(dim=1)
        return -(log_p.exp() * log_p).sum(dim=1)
