"""The shared base of the annotation loaders: mmseg's ``LoadAnnotations`` with bounded read retries and checks."""
from typing import Optional

import mmcv
import numpy as np
from mmengine import fileio
from mmseg.datasets.transforms import LoadAnnotations

from .load_image_from_file_with_retry import call_with_retry, check_retry_args


class LoadAnnotationsWithRetry(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` whose label reads are retried like images (``LoadImageFromFileWithRetry``).

    Not registered: the dataset-specific loaders (``LoadStreetHazardsAnnotations``, ``LoadAnomalyAnnotations``)
    derive from it and implement ``_load_seg_map`` with :meth:`read_label`, :meth:`check_label_size` and
    :meth:`add_seg_field`, so the retry, size-check and ``seg_fields`` rules live in one place.

    Args (no defaults here: each subclass states its own, as mmseg's ``LoadAnnotations`` signature does):
        max_retries / retry_delay: bounded retries of transient read failures (see ``call_with_retry``); negative
            values raise a ``ValueError`` naming the loader.
        imdecode_backend / backend_args: as in mmseg's ``LoadAnnotations`` (``pillow`` reads palette PNGs as their
            indices). ``reduce_zero_label`` is not offered: each subclass maps its own label encoding.
    """

    def __init__(self, max_retries: int, retry_delay: float, imdecode_backend: str,
                 backend_args: Optional[dict]) -> None:
        super().__init__(reduce_zero_label=None, backend_args=backend_args, imdecode_backend=imdecode_backend)
        check_retry_args(type(self).__name__, max_retries, retry_delay)
        self.max_retries = max_retries
        self.retry_delay = retry_delay

    def _read(self, path: str) -> np.ndarray:
        img_bytes = fileio.get(path, backend_args=self.backend_args)
        return mmcv.imfrombytes(img_bytes, flag='unchanged', backend=self.imdecode_backend)

    def read_label(self, path: str, what: str) -> np.ndarray:
        """Read and decode the label file ``path`` unchanged (``what`` names it in retry warnings and errors).

        Raises:
            ImageReadError: the file is missing, or still unreadable after the retries.
        """
        return call_with_retry(
            lambda: self._read(path),
            path,
            what=what,
            max_retries=self.max_retries,
            retry_delay=self.retry_delay,
            caller=type(self).__name__)

    @staticmethod
    def check_label_size(raw: np.ndarray, path: str, results: dict, what: str, hint: str) -> None:
        """Refuse a label map whose size differs from its image's (``results['ori_shape']``, when present).

        Raises:
            ValueError: naming both files, both sizes (width x height) and ``hint`` (what to do about it).
        """
        ori_shape = results.get('ori_shape')
        if ori_shape is not None and tuple(raw.shape[:2]) != tuple(ori_shape[:2]):
            raise ValueError(f'{what} {path} is {raw.shape[1]}x{raw.shape[0]} but its image '
                             f'{results.get("img_path", "?")} is {ori_shape[1]}x{ori_shape[0]}; a label map must '
                             f"have its image's size ({hint}).")

    @staticmethod
    def add_seg_field(results: dict, key: str) -> None:
        """Append ``key`` to ``results['seg_fields']`` once, so mmseg's geometric transforms move it (nearest)."""
        fields = results.setdefault('seg_fields', [])
        if key not in fields:
            fields.append(key)
