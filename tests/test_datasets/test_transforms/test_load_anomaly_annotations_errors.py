"""LoadAnomalyAnnotations: configuration reaching the read, retries, error messages and ``seg_fields`` bookkeeping
(written against surviving mutants; each asserts a documented behaviour)."""
import cv2
import numpy as np
import pytest
from mmengine import fileio
from mmseg.registry import TRANSFORMS

import anomseg_plugins.datasets.transforms.load_annotations_with_retry as base_mod
import anomseg_plugins.datasets.transforms.load_image_from_file_with_retry as retry_mod
from anomseg_plugins.datasets.transforms import ImageReadError, LoadAnomalyAnnotations
from anomseg_plugins.datasets.transforms.load_image_from_file_with_retry import call_with_retry

ENC = dict(normal=[0], anomaly=[1], void=[255])
RAW = np.array([[0, 1, 255], [1, 0, 0]], np.uint8)


class _MemoryBackend(fileio.backends.BaseStorageBackend):
    """Serves registered bytes: only ``backend_args`` can route a read here."""
    files = {}

    def get(self, filepath):
        return self.files[str(filepath)]

    def get_text(self, filepath, encoding='utf-8'):
        return self.get(filepath).decode(encoding)


@pytest.fixture
def label(tmp_path):
    path = str(tmp_path / 'label.png')
    assert cv2.imwrite(path, RAW)
    return path


@pytest.fixture
def sleeps(monkeypatch):
    waited = []
    monkeypatch.setattr(retry_mod.time, 'sleep', waited.append)
    return waited


@pytest.fixture
def bad_file(tmp_path):
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'not a png')
    return str(bad)


def test_backend_args_and_decoder_reach_the_read(label, monkeypatch):
    fileio.register_backend('anomseg_test_memory_ann', _MemoryBackend, force=True)
    _MemoryBackend.files['nowhere/label.png'] = open(label, 'rb').read()
    seen = []
    real = base_mod.mmcv.imfrombytes

    def spy(content, flag='color', channel_order='bgr', backend=None):
        seen.append((flag, backend))
        return real(content, flag=flag, backend=backend)

    monkeypatch.setattr(base_mod.mmcv, 'imfrombytes', spy)
    t = LoadAnomalyAnnotations(backend_args=dict(backend='anomseg_test_memory_ann'), imdecode_backend='cv2')
    assert t.imdecode_backend == 'cv2'
    out = t(dict(seg_map_path='nowhere/label.png', anomaly_label_map=ENC))  # not on disk: only the backend has it
    assert seen == [('unchanged', 'cv2')]
    np.testing.assert_array_equal(out['gt_anomaly_map'], RAW)


def test_default_retry_schedule_and_error_names_caller_and_benchmark(bad_file, sleeps):
    with pytest.raises(
            ImageReadError, match=r'^LoadAnomalyAnnotations: cannot read RA21 label .*bad\.png: .*failed 4 attempt'):
        LoadAnomalyAnnotations()(dict(seg_map_path=bad_file, anomaly_label_map=ENC, benchmark='RA21'))
    assert sleeps == [0.5, 1.0, 2.0]


def test_configured_retries_and_delay(bad_file, sleeps):
    with pytest.raises(ImageReadError, match=r'failed 2 attempt'):
        LoadAnomalyAnnotations(max_retries=1, retry_delay=0.125)(dict(seg_map_path=bad_file, anomaly_label_map=ENC))
    assert sleeps == [0.125]


def test_benchmark_defaults_to_anomaly_in_errors(bad_file, label, sleeps):
    with pytest.raises(ImageReadError, match=r'^LoadAnomalyAnnotations: cannot read anomaly label '):
        LoadAnomalyAnnotations(max_retries=0)(dict(seg_map_path=bad_file, anomaly_label_map=ENC))
    with pytest.raises(ValueError, match=r'^anomaly label .*label\.png is 3x2 but its image \? is 4x2; '):
        LoadAnomalyAnnotations()(dict(seg_map_path=label, anomaly_label_map=ENC, ori_shape=(2, 4)))


def test_size_mismatch_names_both_files_and_sizes(label):
    with pytest.raises(
            ValueError,
            match=r'^LAF label .*label\.png is 3x2 but its image img\.png is 3x5; a label map '
            r"must have its image's size \(check the pair\)\.$"):
        LoadAnomalyAnnotations()(
            dict(seg_map_path=label, anomaly_label_map=ENC, benchmark='LAF', img_path='img.png', ori_shape=(5, 3)))


def test_ori_shape_of_a_colour_image_is_compared_by_height_and_width(label):
    out = LoadAnomalyAnnotations()(dict(seg_map_path=label, anomaly_label_map=ENC, ori_shape=(2, 3, 3)))
    np.testing.assert_array_equal(out['gt_anomaly_map'], RAW)


def test_colour_label_is_refused_as_not_single_channel(tmp_path):
    path = str(tmp_path / 'rgb.png')
    assert cv2.imwrite(path, np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(ValueError, match=r'has shape \(2, 3, 3\) .*expected a single-channel'):
        LoadAnomalyAnnotations()(dict(seg_map_path=path, anomaly_label_map=ENC, ori_shape=(2, 3)))


def test_seg_fields_created_when_missing_and_never_duplicated(label):
    out = LoadAnomalyAnnotations()(dict(seg_map_path=label, anomaly_label_map=ENC))
    assert out['seg_fields'] == ['gt_anomaly_map']
    out = LoadAnomalyAnnotations()(dict(seg_map_path=label, anomaly_label_map=ENC, seg_fields=['gt_anomaly_map']))
    assert out['seg_fields'] == ['gt_anomaly_map']
    out = LoadAnomalyAnnotations()(out)  # loading twice keeps one entry
    assert out['seg_fields'] == ['gt_anomaly_map']


@pytest.mark.parametrize('loader',
                         ['LoadImageFromFileWithRetry', 'LoadStreetHazardsAnnotations', 'LoadAnomalyAnnotations'])
@pytest.mark.parametrize('max_retries, retry_delay', [(-1, 0.5), (0, -0.1)])
def test_loaders_refuse_negative_retry_settings_when_built(loader, max_retries, retry_delay):
    """A negative max_retries once made both annotation loaders fail every read with a bare AssertionError
    ('unreachable'): no attempt was made. Now every loader refuses it when built, naming itself and both values."""
    with pytest.raises(
            ValueError,
            match=rf'^{loader}: max_retries and retry_delay must be >= 0, got {max_retries} '
            rf'and {retry_delay}$'):
        TRANSFORMS.build(dict(type=loader, max_retries=max_retries, retry_delay=retry_delay))


def test_call_with_retry_refuses_negative_retries_without_calling():
    calls = []
    with pytest.raises(ValueError, match='^reader: max_retries and retry_delay must be >= 0, got -2 and 0.5$'):
        call_with_retry(lambda: calls.append(1), 'x.png', max_retries=-2, caller='reader')
    assert calls == []
