"""What people look at: qualitative anomaly panels (:class:`AnomalyPanelHook`, mmseg ``HOOKS``), the
figure functions behind them, and the charts of the analysis tools."""
from .anomaly_panel_hook import AnomalyPanelHook, histogram_quantile, rates_at_threshold, threshold_at_recall
from .panels import (PanelData, blend, colorize, detection_map, detection_outcomes, draw_anomaly_panel, draw_panel_grid,
                     draw_scorer_grid, error_map, image_statistics, save_rgb, score_range, softmax_confidence)

__all__ = [
    'AnomalyPanelHook', 'PanelData', 'blend', 'colorize', 'detection_map', 'detection_outcomes', 'draw_anomaly_panel',
    'draw_panel_grid', 'draw_scorer_grid', 'error_map', 'image_statistics', 'save_rgb', 'score_range',
    'softmax_confidence', 'histogram_quantile', 'rates_at_threshold', 'threshold_at_recall'
]
