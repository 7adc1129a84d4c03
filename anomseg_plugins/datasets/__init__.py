"""Datasets, transforms and data integrity checks of anomseg."""
from .anomaly_labels import (FISHYSCAPES_LAF_ENCODING, LOST_AND_FOUND_ENCODING, ROAD_ANOMALY21_ENCODING,
                             ROAD_OBSTACLE21_ENCODING, describe_label_encoding, map_anomaly_labels,
                             normalize_label_encoding)
from .integrity import (DataIntegrityError, IntegrityReport, check_config_data, check_dataset_cfg, check_pairs,
                        check_street_hazards)
from .road_anomaly_benchmarks import (LOST_AND_FOUND_SUBSETS, ROAD_OBSTACLE21_SUBSETS, FishyscapesLAFDataset,
                                      LostAndFoundDataset, RoadAnomaly21Dataset, RoadAnomalyBenchmarkDataset,
                                      RoadObstacle21Dataset)
from .street_hazards import SPLIT_PREFIXES, DataPathError, DataPathProblem, StreetHazardsDataset, data_path_problems
from .transforms import (ImageReadError, LoadAnomalyAnnotations, LoadImageFromFileWithRetry,
                         LoadStreetHazardsAnnotations, MultiScaleSquareCrop, PackAnomalySegInputs, RandomGaussianBlur)

__all__ = [
    'StreetHazardsDataset', 'SPLIT_PREFIXES', 'DataPathError', 'DataPathProblem', 'data_path_problems',
    'LoadStreetHazardsAnnotations', 'MultiScaleSquareCrop', 'PackAnomalySegInputs', 'RandomGaussianBlur',
    'ImageReadError', 'LoadImageFromFileWithRetry', 'DataIntegrityError', 'IntegrityReport', 'check_config_data',
    'check_dataset_cfg', 'check_pairs', 'check_street_hazards', 'RoadAnomaly21Dataset', 'RoadObstacle21Dataset',
    'LostAndFoundDataset', 'FishyscapesLAFDataset', 'RoadAnomalyBenchmarkDataset', 'ROAD_OBSTACLE21_SUBSETS',
    'LOST_AND_FOUND_SUBSETS', 'LoadAnomalyAnnotations', 'ROAD_ANOMALY21_ENCODING', 'ROAD_OBSTACLE21_ENCODING',
    'LOST_AND_FOUND_ENCODING', 'FISHYSCAPES_LAF_ENCODING', 'map_anomaly_labels', 'normalize_label_encoding',
    'describe_label_encoding'
]
