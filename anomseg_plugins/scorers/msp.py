"""Maximum softmax probability (MSP) anomaly scorer."""
from typing import Optional

from torch import Tensor

from anomseg_plugins.registry import ANOMALY_SCORERS
from .base_scorer import BaseAnomalyScorer, Feats, check_logits


@ANOMALY_SCORERS.register_module()
class MSP(BaseAnomalyScorer):
    """Negated maximum softmax probability: ``-max_c softmax(z)_c``, by default in log space.

    - ``log_space=True`` (default): ``score = -log max_c p_c = log1p(sum_{c != k} exp(z_c - z_k))`` with
      ``k = argmax z`` (= ``logsumexp(z) - max z``), in ``[0, log C]``.
    - ``log_space=False``: ``score = -max_c p_c``, in ``[-1, -1/C]`` (the formula as usually written).

    Both rank pixels identically (``-log`` is increasing in ``-p``), so AUROC / AUPR / FPR95 are the same in
    exact arithmetic. The log form is the default because confident pixels have ``max p`` within float32
    rounding of 1: ``-max p`` then collapses thousands of distinct pixels onto -1.0 (ties), while
    ``-log max p`` keeps them apart (e.g. 1e-9 vs 1e-10). Only reported thresholds differ in scale.

    Input ``(N, C, H, W)`` logits, output ``(N, H, W)`` float32; a flat pixel scores higher than a peaked one.

    Reference: Hendrycks & Gimpel, "A Baseline for Detecting Misclassified and Out-of-Distribution
    Examples in Neural Networks", ICLR 2017.
    """

    def __init__(self, name: Optional[str] = None, log_space: bool = True) -> None:
        super().__init__(name=name)
        self.log_space = bool(log_space)

    def score(self, logits: Tensor, feats: Feats = None) -> Tensor:
        logits = check_logits(logits)
        if not self.log_space:
            return -logits.softmax(dim=1).amax(dim=1)
        # -log max p = log(sum_c exp(z_c - z_max)) = log1p(sum over the *other* classes): summing the other
        # classes first keeps full precision where they are tiny (log_softmax would round 1 + 1e-9 to 1).
        z_max, arg = logits.max(dim=1, keepdim=True)
        rel = (logits - z_max).exp().scatter_(1, arg, 0.0)
        return rel.sum(dim=1).log1p()

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, log_space={self.log_space}'
