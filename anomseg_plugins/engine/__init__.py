"""Runner components of anomseg: the anomaly test loop, and the one feature-capture / stats-key path it uses."""
from .anomaly_test_loop import (AnomalyTestLoop, BackboneFeatureCapture, batch_sample_features, merge_view_features,
                                model_stats_key, sample_features)

__all__ = [
    'AnomalyTestLoop', 'BackboneFeatureCapture', 'batch_sample_features', 'merge_view_features', 'model_stats_key',
    'sample_features'
]
