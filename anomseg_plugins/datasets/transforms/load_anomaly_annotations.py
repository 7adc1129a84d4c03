"""Loads the ground truth of a road-anomaly benchmark (any label encoding) as ``gt_anomaly_map``."""
from typing import Any, Mapping, Optional

from mmseg.registry import TRANSFORMS

from ..anomaly_labels import map_anomaly_labels, normalize_label_encoding
from .load_annotations_with_retry import LoadAnnotationsWithRetry


@TRANSFORMS.register_module()
class LoadAnomalyAnnotations(LoadAnnotationsWithRetry):
    """Read a benchmark's label PNG and map it to ``gt_anomaly_map`` (1 = anomaly, 0 = normal, 255 = void).

    The road-anomaly benchmarks (:mod:`anomseg_plugins.datasets.road_anomaly_benchmarks`) have no class labels,
    only anomaly ground truth, each in its own encoding; the dataset puts that encoding on every data_info
    (``anomaly_label_map``), so this one transform serves all of them (see
    :mod:`anomseg_plugins.datasets.anomaly_labels`). No ``gt_seg_map`` is written: packing then gives no
    ``gt_sem_seg`` (mIoU does not apply to these sets).

    Required keys: ``seg_map_path`` (``None``: an image of a hidden test split; nothing is added and the sample is
    scored but not evaluated), ``anomaly_label_map`` unless ``label_encoding`` is given. Optional: ``ori_shape``
    (checked against the label's size), ``benchmark`` (named in errors). Added keys: ``gt_anomaly_map`` (uint8
    ``(H, W)``), appended to ``seg_fields`` so mmseg's ``Resize`` / ``RandomFlip`` / crops move it (nearest).

    Args:
        label_encoding: an encoding that overrides the data_info's (for a dataset that carries none).
        on_unknown: ``'error'`` (default): a value the encoding does not name raises a ``ValueError`` naming the
            file, the values and the expected encoding; ``'void'``: such pixels become 255, as the official
            evaluation code treats them.
        max_retries / retry_delay: bounded retries of transient read failures (as images).
        imdecode_backend / backend_args: as in mmseg's ``LoadAnnotations`` (``pillow`` reads palette PNGs as
            their indices).
    """

    def __init__(self,
                 label_encoding: Optional[Mapping[str, Any]] = None,
                 on_unknown: str = 'error',
                 max_retries: int = 3,
                 retry_delay: float = 0.5,
                 imdecode_backend: str = 'pillow',
                 backend_args: Optional[dict] = None) -> None:
        super().__init__(max_retries, retry_delay, imdecode_backend, backend_args)
        if on_unknown not in ('error', 'void'):
            raise ValueError(f"LoadAnomalyAnnotations: on_unknown must be 'error' or 'void', got {on_unknown!r}")
        if label_encoding is not None:
            normalize_label_encoding(label_encoding, where='LoadAnomalyAnnotations.label_encoding')
        self.label_encoding = label_encoding
        self.on_unknown = on_unknown

    def _load_seg_map(self, results: dict) -> None:
        path = results.get('seg_map_path')
        if path is None:
            return
        benchmark = results.get('benchmark', 'anomaly')
        encoding = self.label_encoding if self.label_encoding is not None else results.get('anomaly_label_map')
        if encoding is None:
            raise KeyError(f'LoadAnomalyAnnotations: the data_info of {path} has no `anomaly_label_map` (the label '
                           f'encoding, e.g. dict(normal=[0], anomaly=[1], void=[255])); use a road-anomaly '
                           f'benchmark dataset (RoadAnomaly21Dataset, ...) or give label_encoding=...')
        raw = self.read_label(path, what=f'{benchmark} label')
        self.check_label_size(raw, path, results, what=f'{benchmark} label', hint='check the pair')
        results['gt_anomaly_map'] = map_anomaly_labels(
            raw, encoding, source=f'{path} ({benchmark})', on_unknown=self.on_unknown)
        self.add_seg_field(results, 'gt_anomaly_map')

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(label_encoding={self.label_encoding}, on_unknown={self.on_unknown!r}, '
                f"max_retries={self.max_retries}, imdecode_backend='{self.imdecode_backend}', "
                f'backend_args={self.backend_args})')
