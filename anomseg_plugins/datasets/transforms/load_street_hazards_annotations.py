"""Loads a StreetHazards annotation and splits it into the closed-set map and the anomaly mask."""
from typing import Optional

import numpy as np
from mmseg.registry import TRANSFORMS

from ..street_hazards import ANOMALY_FILE_VALUE, LABEL_OFFSET, NUM_KNOWN_CLASSES
from .load_annotations_with_retry import LoadAnnotationsWithRetry


def map_street_hazards_labels(raw: np.ndarray, ignore_index: int = 255, source: str = '<array>') -> tuple:
    """Map on-disk StreetHazards values to training labels and an anomaly mask.

    Args:
        raw: ``(H, W)`` integer array with values in ``1..14``.
        ignore_index: value written to ``gt_seg_map`` at anomaly pixels.
        source: file name used in the error message.

    Returns:
        ``(gt_seg_map, gt_anomaly_map)``, both ``(H, W)`` uint8: ``gt_seg_map`` holds ``raw - 1`` for the
        13 known classes (0..12) and ``ignore_index`` at anomaly pixels; ``gt_anomaly_map`` is 1 at
        anomaly pixels (``raw == 14``) and 0 elsewhere.

    Raises:
        ValueError: a value outside ``1..14`` or a map that is not single-channel, naming ``source``.
    """
    if raw.ndim != 2:
        raise ValueError(f'StreetHazards annotation {source} has shape {raw.shape}; expected a single-channel '
                         f'(H, W) label map with values 1..{ANOMALY_FILE_VALUE}.')
    lo, hi = LABEL_OFFSET, ANOMALY_FILE_VALUE
    bad = (raw < lo) | (raw > hi)
    if bad.any():
        values = np.unique(raw[bad])
        raise ValueError(f'StreetHazards annotation {source} holds label value(s) {values.tolist()[:10]} '
                         f'at {int(bad.sum())} pixel(s); expected values in {lo}..{hi} '
                         f'({lo}..{NUM_KNOWN_CLASSES} known classes, {hi} = anomaly).')
    anomaly = raw == ANOMALY_FILE_VALUE
    gt_seg_map = (raw - LABEL_OFFSET).astype(np.uint8)
    gt_seg_map[anomaly] = ignore_index
    return gt_seg_map, anomaly.astype(np.uint8)


@TRANSFORMS.register_module()
class LoadStreetHazardsAnnotations(LoadAnnotationsWithRetry):
    """Load a StreetHazards annotation PNG (values 1..14), validate it and map it.

    Required keys: ``seg_map_path``. Added keys: ``gt_seg_map`` (uint8 ``(H, W)``, 0..12 known classes,
    ``ignore_index`` at anomaly pixels), ``gt_anomaly_map`` (uint8 ``(H, W)``, 1 = anomaly, 0 = normal),
    both appended to ``seg_fields`` so mmseg's geometric transforms (resize, crop, flip) move them
    together. Reads are retried like images (``LoadImageFromFileWithRetry``). A value outside 1..14, or an
    annotation whose size differs from the image's (``ori_shape``), raises a ``ValueError`` naming the files.

    Args:
        ignore_index: value given to anomaly pixels in ``gt_seg_map`` (mmseg's 255).
        max_retries / retry_delay: bounded retries of transient read failures.
        imdecode_backend / backend_args: as in mmseg's ``LoadAnnotations``.
    """

    def __init__(self,
                 ignore_index: int = 255,
                 max_retries: int = 3,
                 retry_delay: float = 0.5,
                 imdecode_backend: str = 'pillow',
                 backend_args: Optional[dict] = None) -> None:
        super().__init__(max_retries, retry_delay, imdecode_backend, backend_args)
        self.ignore_index = ignore_index

    def _load_seg_map(self, results: dict) -> None:
        path = results['seg_map_path']
        raw = self.read_label(path, what='annotation')
        self.check_label_size(
            raw,
            path,
            results,
            what='StreetHazards annotation',
            hint='check the pair, or run tools/dataset/check_integrity.py')
        gt_seg_map, gt_anomaly_map = map_street_hazards_labels(raw, self.ignore_index, source=path)
        results['gt_seg_map'] = gt_seg_map
        results['gt_anomaly_map'] = gt_anomaly_map
        for key in ('gt_seg_map', 'gt_anomaly_map'):
            self.add_seg_field(results, key)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(ignore_index={self.ignore_index}, max_retries={self.max_retries}, '
                f"imdecode_backend='{self.imdecode_backend}', backend_args={self.backend_args})")
