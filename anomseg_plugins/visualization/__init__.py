"""What people look at: the figure functions behind the qualitative anomaly panels (drawn during testing by
:class:`anomseg_plugins.engine.hooks.AnomalyPanelHook`) and the charts of the analysis tools."""
from .panels import (PanelData, blend, colorize, detection_map, detection_outcomes, draw_anomaly_panel, draw_panel_grid,
                     draw_scorer_grid, error_map, image_statistics, save_rgb, score_range, softmax_confidence)

__all__ = [
    'PanelData', 'blend', 'colorize', 'detection_map', 'detection_outcomes', 'draw_anomaly_panel', 'draw_panel_grid',
    'draw_scorer_grid', 'error_map', 'image_statistics', 'save_rgb', 'score_range', 'softmax_confidence'
]
