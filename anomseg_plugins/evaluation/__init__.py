"""Anomaly segmentation evaluation: the ``AnomalyMetric`` (mmseg ``METRICS``) and its pure math
(:mod:`anomseg_plugins.evaluation.functional`)."""
from .functional import ScoreHistogram, exact_anomaly_metrics
from .metrics import AnomalyMetric

__all__ = ['AnomalyMetric', 'ScoreHistogram', 'exact_anomaly_metrics']
