"""Datasets, transforms and data integrity checks of anomseg."""
from .integrity import (DataIntegrityError, IntegrityReport, check_config_data, check_dataset_cfg, check_pairs,
                        check_street_hazards)
from .street_hazards import SPLIT_PREFIXES, DataPathError, DataPathProblem, StreetHazardsDataset, data_path_problems
from .transforms import (ImageReadError, LoadImageFromFileWithRetry, LoadStreetHazardsAnnotations, MultiScaleSquareCrop,
                         PackAnomalySegInputs, RandomGaussianBlur)

__all__ = [
    'StreetHazardsDataset', 'SPLIT_PREFIXES', 'DataPathError', 'DataPathProblem', 'data_path_problems',
    'LoadStreetHazardsAnnotations', 'MultiScaleSquareCrop', 'PackAnomalySegInputs', 'RandomGaussianBlur',
    'ImageReadError', 'LoadImageFromFileWithRetry', 'DataIntegrityError', 'IntegrityReport', 'check_config_data',
    'check_dataset_cfg', 'check_pairs', 'check_street_hazards'
]
