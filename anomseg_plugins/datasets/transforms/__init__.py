"""Data transforms of anomseg (registered in mmseg's TRANSFORMS)."""
from .load_anomaly_annotations import LoadAnomalyAnnotations
from .load_image_from_file_with_retry import ImageReadError, LoadImageFromFileWithRetry, call_with_retry
from .load_street_hazards_annotations import LoadStreetHazardsAnnotations, map_street_hazards_labels
from .multi_scale_square_crop import MultiScaleSquareCrop
from .pack_anomaly_seg_inputs import PackAnomalySegInputs
from .paste_outliers import PasteOutliers
from .photo_metric_distortion_no_hue import PhotoMetricDistortionNoHue
from .random_gaussian_blur import RandomGaussianBlur

__all__ = [
    'ImageReadError', 'LoadImageFromFileWithRetry', 'call_with_retry', 'LoadStreetHazardsAnnotations',
    'map_street_hazards_labels', 'MultiScaleSquareCrop', 'PackAnomalySegInputs', 'RandomGaussianBlur', 'PasteOutliers',
    'PhotoMetricDistortionNoHue', 'LoadAnomalyAnnotations'
]
