"""mmengine metrics of anomseg (registered in mmseg's ``METRICS``)."""
from .anomaly_metric import AnomalyMetric

__all__ = ['AnomalyMetric']
