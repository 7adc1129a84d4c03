"""Runner components of anomseg: the anomaly test loop."""
from .anomaly_test_loop import AnomalyTestLoop

__all__ = ['AnomalyTestLoop']
