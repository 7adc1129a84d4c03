"""Maximum logit anomaly scorer."""
from typing import Optional

from torch import Tensor

from anomseg_plugins.registry import ANOMALY_SCORERS
from .base_scorer import BaseAnomalyScorer, Feats, check_logits


@ANOMALY_SCORERS.register_module()
class MaxLogit(BaseAnomalyScorer):
    """Negated maximum logit: ``score = -max_c z_c``.

    Unlike MSP it is not normalised across classes, so a pixel where *no* class fires strongly scores
    high even when one class still wins the softmax.

    Input ``(N, C, H, W)`` logits, output ``(N, H, W)`` float32.

    Reference: Hendrycks et al., "Scaling Out-of-Distribution Detection for Real-World Settings",
    ICML 2022 (which also introduced StreetHazards).
    """

    def __init__(self, name: Optional[str] = None) -> None:
        super().__init__(name=name)

    def score(self, logits: Tensor, feats: Feats = None) -> Tensor:
        return -check_logits(logits).amax(dim=1)
