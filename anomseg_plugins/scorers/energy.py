"""Free-energy anomaly scorer."""
from typing import Optional

from torch import Tensor

from anomseg_plugins.registry import ANOMALY_SCORERS
from .base_scorer import BaseAnomalyScorer, Feats, check_logits, logsumexp_classes


@ANOMALY_SCORERS.register_module()
class Energy(BaseAnomalyScorer):
    """Free energy of the logits: ``score = -T * logsumexp_c(z_c / T)``.

    Low energy (a large log-partition) means in-distribution; the energy itself is the anomaly score.
    As ``T -> 0`` it tends to MaxLogit; ``T = 1`` (the default, as in the study) is the usual choice.

    Args:
        temperature: ``T > 0``.
        name: display name; defaults to ``'Energy'``.

    Input ``(N, C, H, W)`` logits, output ``(N, H, W)`` float32.

    Reference: Liu et al., "Energy-based Out-of-distribution Detection", NeurIPS 2020.
    """

    def __init__(self, temperature: float = 1.0, name: Optional[str] = None) -> None:
        super().__init__(name=name)
        if temperature <= 0:
            raise ValueError(f'Energy: temperature must be > 0, got {temperature}')
        self.temperature = float(temperature)

    def score(self, logits: Tensor, feats: Feats = None) -> Tensor:
        logits, t = check_logits(logits), self.temperature
        return -t * logsumexp_classes(logits if t == 1.0 else logits / t)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, temperature={self.temperature}'
