"""A scorer defined outside anomseg, registered into ANOMALY_SCORERS (see test_custom_scorer.py)."""
from torch import Tensor

from anomseg_plugins.registry import ANOMALY_SCORERS
from anomseg_plugins.scorers import BaseAnomalyScorer


@ANOMALY_SCORERS.register_module()
class SecondBestMargin(BaseAnomalyScorer):
    """``score = -(z_(1) - z_(2))``: a small gap between the two largest logits is anomalous."""

    def score(self, logits: Tensor, feats=None) -> Tensor:
        top2 = logits.float().topk(2, dim=1).values
        return -(top2[:, 0] - top2[:, 1])
