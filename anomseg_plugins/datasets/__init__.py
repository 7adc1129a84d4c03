"""Datasets and transforms of anomseg."""
from .street_hazards import SPLIT_PREFIXES, StreetHazardsDataset
from .transforms import (LoadStreetHazardsAnnotations, MultiScaleSquareCrop, PackAnomalySegInputs,
                         RandomGaussianBlur)

__all__ = ['StreetHazardsDataset', 'SPLIT_PREFIXES', 'LoadStreetHazardsAnnotations', 'MultiScaleSquareCrop',
           'PackAnomalySegInputs', 'RandomGaussianBlur']
