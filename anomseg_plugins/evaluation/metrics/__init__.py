"""mmengine metrics of anomseg (registered in mmseg's ``METRICS``) and the submission-file helpers."""
from .anomaly_metric import DEFAULT_PROTOCOLS, PROTOCOLS, AnomalyMetric
from .anomaly_results_writer import submission_fid, submission_path, write_submission_map

__all__ = [
    'AnomalyMetric', 'PROTOCOLS', 'DEFAULT_PROTOCOLS', 'submission_fid', 'submission_path', 'write_submission_map'
]
