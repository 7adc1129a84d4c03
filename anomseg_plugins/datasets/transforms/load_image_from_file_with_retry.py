"""Image loading that survives transient read errors and names the file when it cannot."""
import logging
import time
from typing import Callable, Optional, TypeVar

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmengine.logging import print_log
from mmseg.registry import TRANSFORMS

T = TypeVar('T')


class ImageReadError(OSError):
    """An image (or annotation) that could not be read or decoded; the message names the file and the problem."""


def check_retry_args(caller: str, max_retries: int, retry_delay: float) -> None:
    """Refuse a negative ``max_retries`` or ``retry_delay`` (the loaders call it when built, ``call_with_retry`` again).

    Raises:
        ValueError: naming ``caller`` and both values.
    """
    if max_retries < 0 or retry_delay < 0:
        raise ValueError(f'{caller}: max_retries and retry_delay must be >= 0, got {max_retries} and {retry_delay}')


def call_with_retry(fn: Callable[[], T],
                    path: str,
                    what: str = 'image',
                    max_retries: int = 3,
                    retry_delay: float = 0.5,
                    caller: str = 'anomseg') -> T:
    """Run ``fn()`` (read + decode ``path``), retrying transient failures a bounded number of times.

    ``fn`` raises (``OSError`` on a failed read from a network file system or a busy disk, a decoder error)
    or returns ``None`` for bytes that do not decode (a file still being written, a truncated copy). Both
    are retried up to ``max_retries`` times with exponential backoff (``retry_delay * 2**k`` seconds), each
    retry logged as a warning naming the file. A missing file (``FileNotFoundError``) is not retried.

    Returns:
        ``fn()``'s result.

    Raises:
        ImageReadError: the file is missing, or still unreadable / undecodable after the retries; the
            message names ``path``, the problem, the attempts and how to find every bad file.
        ValueError: a negative ``max_retries`` or ``retry_delay``.
    """
    check_retry_args(caller, max_retries, retry_delay)
    attempts = max_retries + 1
    hint = ('Check the whole dataset with `python tools/dataset/check_integrity.py DATA_ROOT` '
            '(or tools/train.py --check-data) to list every bad file.')
    attempt = 0
    while True:  # leaves by returning the result or raising at the last attempt
        attempt += 1
        try:
            result = fn()
            if result is not None:
                if attempt > 1:
                    print_log(f'{caller}: read {what} {path} on attempt {attempt}/{attempts}', logger='current')
                return result
            problem = 'the bytes do not decode as an image (truncated, empty or not an image file)'
        except FileNotFoundError as exc:
            raise ImageReadError(f'{caller}: {what} {path} does not exist ({exc.strerror or exc}). {hint}') from None
        except Exception as exc:  # noqa: BLE001  read errors (OSError) and any cv2 / pillow decode error
            problem = f'{type(exc).__name__}: {exc}'
        if attempt == attempts:
            raise ImageReadError(f'{caller}: cannot read {what} {path}: {problem} (failed {attempts} attempt(s)). '
                                 f'{hint}')
        delay = retry_delay * 2**(attempt - 1)
        print_log(
            f'{caller}: reading {what} {path} failed ({problem}); retry {attempt}/{max_retries} in '
            f'{delay:.2g} s',
            logger='current',
            level=logging.WARNING)
        time.sleep(delay)


@TRANSFORMS.register_module()
class LoadImageFromFileWithRetry(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` with bounded retries of transient read errors and errors naming the file.

    A training run should not die at epoch 12 because one read on a network file system failed once, and
    when a file is truly broken the error must say which file and why. Reading and decoding are retried
    (``max_retries`` times, waiting ``retry_delay * 2**k`` s) when the read raises ``OSError`` or the
    bytes do not decode; every retry is logged with the path. A missing file, or one still unreadable
    after the retries, raises :class:`ImageReadError` naming the file and the problem (inside a
    DataLoader worker torch re-raises it in the main process with that message).

    Colour handling is mmcv's: ``color_type='color'`` gives ``(H, W, 3)`` uint8 BGR for grayscale, RGB,
    RGBA (alpha dropped) and 16-bit files alike.

    Required keys: ``img_path``. Added keys: ``img`` (``(H, W, 3)`` uint8, or float32 with
    ``to_float32``), ``img_shape``, ``ori_shape``.

    Args:
        max_retries: retries after the first failed attempt (0 = fail at once).
        retry_delay: seconds before the first retry; doubled for each further one.
        **kwargs: mmcv ``LoadImageFromFile`` arguments (``to_float32``, ``color_type``,
            ``imdecode_backend``, ``ignore_empty``, ``backend_args``).
    """

    def __init__(self, max_retries: int = 3, retry_delay: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        check_retry_args('LoadImageFromFileWithRetry', max_retries, retry_delay)
        self.max_retries = int(max_retries)
        self.retry_delay = float(retry_delay)

    def _read(self, filename: str) -> Optional[np.ndarray]:
        if self.file_client_args is not None:
            img_bytes = fileio.FileClient.infer_client(self.file_client_args, filename).get(filename)
        else:
            img_bytes = fileio.get(filename, backend_args=self.backend_args)
        if not img_bytes:
            return None
        return mmcv.imfrombytes(img_bytes, flag=self.color_type, backend=self.imdecode_backend)

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        try:
            img = call_with_retry(
                lambda: self._read(filename),
                filename,
                'image',
                self.max_retries,
                self.retry_delay,
                caller=type(self).__name__)
        except ImageReadError:
            if self.ignore_empty:
                return None
            raise
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(max_retries={self.max_retries}, retry_delay={self.retry_delay}, '
                f'ignore_empty={self.ignore_empty}, to_float32={self.to_float32}, '
                f"color_type='{self.color_type}', imdecode_backend='{self.imdecode_backend}', "
                f'backend_args={self.backend_args})')
