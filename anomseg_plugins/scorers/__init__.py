"""Per-pixel anomaly scorers (registry ``anomseg_plugins.registry.ANOMALY_SCORERS``)."""
from .base_scorer import BaseAnomalyScorer
from .energy import Energy
from .entropy import Entropy
from .heat import HEAT
from .mahalanobis import Mahalanobis
from .max_logit import MaxLogit
from .msp import MSP
from .score_fusion import ScoreFusion
from .sml import SML

__all__ = ['BaseAnomalyScorer', 'MSP', 'MaxLogit', 'Energy', 'Entropy', 'SML', 'HEAT', 'Mahalanobis', 'ScoreFusion']
