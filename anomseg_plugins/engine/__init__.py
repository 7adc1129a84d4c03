"""Runner components of anomseg: the anomaly test loop and the panel hook, and the paths they share: backbone
feature capture (:mod:`.feature_capture`), scorer lookup (:mod:`.scorer_lookup`), fitted scorer statistics
(:mod:`.scorer_stats`) and the test sets of a multi-set run (:mod:`.test_sets`)."""
from .anomaly_test_loop import AnomalyTestLoop, TestSet
from .feature_capture import (BackboneFeatureCapture, batch_sample_features, batched_features, feature_stages,
                              find_tta_model, merge_view_features, sample_features, unwrap_model)
from .hooks import AnomalyPanelHook, PerEpochSeedHook, epoch_seed
from .scorer_lookup import config_scorers, metric_scorers, resolve_scorer
from .scorer_stats import STATS_FILE, find_stats_file, key_changes, model_stats_key, read_stats, stats_key
from .test_sets import (TestSetConfigError, TestSetSpec, config_test_sets, parse_test_sets, set_metric_key,
                        split_set_metrics)

__all__ = [
    'AnomalyTestLoop', 'AnomalyPanelHook', 'PerEpochSeedHook', 'epoch_seed', 'BackboneFeatureCapture',
    'batch_sample_features', 'batched_features', 'feature_stages', 'find_tta_model', 'merge_view_features',
    'sample_features', 'unwrap_model', 'config_scorers', 'metric_scorers', 'resolve_scorer', 'STATS_FILE',
    'find_stats_file', 'key_changes', 'model_stats_key', 'read_stats', 'stats_key', 'TestSet', 'TestSetConfigError',
    'TestSetSpec', 'config_test_sets', 'set_metric_key', 'split_set_metrics', 'parse_test_sets'
]
