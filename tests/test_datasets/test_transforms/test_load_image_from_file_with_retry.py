"""LoadImageFromFileWithRetry: transient read errors are retried and logged, permanent ones name the file."""
import logging
import os.path as osp
from typing import List

import pytest
import torch
from mmengine.logging import MMLogger
from mmseg.registry import TRANSFORMS
from torch.utils.data import DataLoader, Dataset

from anomseg_plugins.datasets.transforms import load_image_from_file_with_retry as module
from anomseg_plugins.datasets.transforms.load_image_from_file_with_retry import (ImageReadError,
                                                                                 LoadImageFromFileWithRetry)

TRAIN_IMG = 'train/images/training/t1-3'


class Records(logging.Handler):

    def __init__(self) -> None:
        super().__init__()
        self.messages: List[str] = []

    def emit(self, record) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def log_records():
    logger = MMLogger.get_current_instance()
    handler = Records()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def flaky_get(monkeypatch, failures: int, exc=None):
    """Make the transform's ``fileio.get`` fail ``failures`` times per path (per process), then work."""
    real_get = module.fileio.get
    calls = {}

    def get(path, backend_args=None):
        calls[path] = calls.get(path, 0) + 1
        if calls[path] <= failures:
            raise exc or OSError(5, 'Input/output error', path)
        return real_get(path, backend_args=backend_args)

    monkeypatch.setattr(module.fileio, 'get', get)
    return calls


def test_registered_and_repr():
    t = TRANSFORMS.build(dict(type='LoadImageFromFileWithRetry', max_retries=2, retry_delay=0.0))
    assert isinstance(t, LoadImageFromFileWithRetry)
    assert 'max_retries=2' in repr(t)
    with pytest.raises(ValueError, match='max_retries and retry_delay must be >= 0'):
        LoadImageFromFileWithRetry(max_retries=-1)


def test_transient_error_is_retried_and_logged(tiny_street_hazards, monkeypatch, log_records):
    path = osp.join(tiny_street_hazards, TRAIN_IMG, '0.png')
    calls = flaky_get(monkeypatch, failures=2)
    results = LoadImageFromFileWithRetry(max_retries=3, retry_delay=0.0)(dict(img_path=path))
    assert results['img'].shape == (96, 160, 3) and results['ori_shape'] == (96, 160)
    assert calls[path] == 3
    retries = [m for m in log_records if 'retry' in m]
    assert len(retries) == 2 and all(path in m for m in retries)
    assert 'retry 1/3' in retries[0] and 'Input/output error' in retries[0]
    assert any(f'read image {path} on attempt 3/4' in m for m in log_records)


def test_persistent_error_fails_after_bounded_retries(tiny_street_hazards, monkeypatch, log_records):
    path = osp.join(tiny_street_hazards, TRAIN_IMG, '1.png')
    calls = flaky_get(monkeypatch, failures=100)
    with pytest.raises(ImageReadError) as info:
        LoadImageFromFileWithRetry(max_retries=2, retry_delay=0.0)(dict(img_path=path))
    assert calls[path] == 3  # first attempt + 2 retries, then stop
    msg = str(info.value)
    assert f'cannot read image {path}' in msg and 'Input/output error' in msg and 'failed 3 attempt(s)' in msg
    assert 'check_integrity.py' in msg


def test_truncated_image_names_file_and_problem(tmp_path, tiny_street_hazards):
    data = open(osp.join(tiny_street_hazards, TRAIN_IMG, '0.png'), 'rb').read()
    path = str(tmp_path / 'truncated.png')
    open(path, 'wb').write(data[:len(data) // 3])
    with pytest.raises(ImageReadError, match='truncated.png: the bytes do not decode as an image'):
        LoadImageFromFileWithRetry(max_retries=1, retry_delay=0.0)(dict(img_path=path))


def test_missing_file_is_not_retried(tmp_path, log_records):
    path = str(tmp_path / 'gone.png')
    with pytest.raises(ImageReadError, match=f'image {path} does not exist'):
        LoadImageFromFileWithRetry(max_retries=3, retry_delay=10.0)(dict(img_path=path))  # would sleep if retried
    assert not [m for m in log_records if 'retry' in m]


def test_ignore_empty_returns_none(tmp_path):
    path = str(tmp_path / 'empty.png')
    open(path, 'wb').close()
    assert LoadImageFromFileWithRetry(max_retries=0, ignore_empty=True)(dict(img_path=path)) is None


class Images(Dataset):

    def __init__(self, paths) -> None:
        self.paths = paths
        self.load = LoadImageFromFileWithRetry(max_retries=2, retry_delay=0.0)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        return torch.from_numpy(self.load(dict(img_path=self.paths[i]))['img'])


def test_transient_error_in_dataloader_worker_is_survived(tiny_street_hazards, monkeypatch):
    paths = [osp.join(tiny_street_hazards, TRAIN_IMG, f'{i}.png') for i in range(4)]
    flaky_get(monkeypatch, failures=1)  # the first read of every file fails, in the worker process
    batches = list(DataLoader(Images(paths), batch_size=2, num_workers=1))
    assert [tuple(b.shape) for b in batches] == [(2, 96, 160, 3)] * 2


def test_permanent_error_in_dataloader_worker_names_the_file(tiny_street_hazards, tmp_path):
    bad = str(tmp_path / 'not_an_image.png')
    open(bad, 'w').write('plain text')
    paths = [osp.join(tiny_street_hazards, TRAIN_IMG, '0.png'), bad]
    with pytest.raises(ImageReadError) as info:
        list(DataLoader(Images(paths), batch_size=1, num_workers=1))
    msg = str(info.value)
    assert 'DataLoader worker process 0' in msg  # torch re-raises the worker's error in the main process ...
    assert f'cannot read image {bad}: the bytes do not decode' in msg  # ... with our message naming the file
