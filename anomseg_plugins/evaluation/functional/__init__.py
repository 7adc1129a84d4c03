"""Pure numpy/torch math of the anomaly metrics (no mmengine): exact per-array metrics and the pooled,
memory-flat score histogram."""
from .exact_metrics import (auroc, average_precision, best_f1, exact_anomaly_metrics, exact_level_counts, fpr_at_recall,
                            valid_scores_and_labels)
from .level_metrics import (BOUND_NAMES, FPR_RULES, METRIC_NAMES, curves_from_level_counts, fpr_bin_bound,
                            metrics_from_level_counts, thin_curve)
from .pooled_histogram import ScoreHistogram, bin_lower_edges, score_bins

__all__ = [
    'auroc', 'average_precision', 'best_f1', 'exact_anomaly_metrics', 'exact_level_counts', 'fpr_at_recall',
    'valid_scores_and_labels', 'BOUND_NAMES', 'FPR_RULES', 'METRIC_NAMES', 'curves_from_level_counts', 'fpr_bin_bound',
    'metrics_from_level_counts', 'thin_curve', 'ScoreHistogram', 'bin_lower_edges', 'score_bins'
]
