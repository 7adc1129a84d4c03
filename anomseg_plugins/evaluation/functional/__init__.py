"""Pure numpy/torch math of the anomaly metrics (no mmengine): exact per-array metrics, the pooled,
memory-flat score histogram and SegmentMeIfYouCan's component-level metrics."""
from .component_metrics import (COMPONENT_METRIC_NAMES, COMPONENT_TRACKS, NUM_STATS, SIOU_THRESHOLDS, STAT_FIELDS,
                                ComponentAccumulator, aggregate_component_stats, component_sizes, image_component_stats,
                                image_components, official_threshold)
from .exact_metrics import (auroc, average_precision, best_f1, exact_anomaly_metrics, exact_level_counts, fpr_at_recall,
                            valid_scores_and_labels)
from .level_metrics import (BOUND_NAMES, FPR_RULES, METRIC_NAMES, check_ignore_index, curves_from_level_counts,
                            fpr_bin_bound, metrics_from_level_counts, thin_curve)
from .pooled_histogram import ScoreHistogram, bin_lower_edges, score_bins

__all__ = [
    'auroc', 'average_precision', 'best_f1', 'exact_anomaly_metrics', 'exact_level_counts', 'fpr_at_recall',
    'valid_scores_and_labels', 'BOUND_NAMES', 'FPR_RULES', 'METRIC_NAMES', 'check_ignore_index',
    'curves_from_level_counts', 'fpr_bin_bound', 'metrics_from_level_counts', 'thin_curve', 'ScoreHistogram',
    'bin_lower_edges', 'score_bins', 'COMPONENT_METRIC_NAMES', 'COMPONENT_TRACKS', 'NUM_STATS', 'SIOU_THRESHOLDS',
    'STAT_FIELDS', 'ComponentAccumulator', 'aggregate_component_stats', 'component_sizes', 'image_component_stats',
    'image_components', 'official_threshold'
]
