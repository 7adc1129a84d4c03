"""Tests written to kill surviving mutants of anomseg_plugins/datasets/transforms (tools/mutation/EQUIVALENT.md
lists the ones that cannot be killed). Each asserts a behaviour a user relies on."""
import cv2
import numpy as np
import pytest
from mmengine import fileio

from anomseg_plugins.datasets.transforms import LoadImageFromFileWithRetry


@pytest.fixture
def png(tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (6, 9, 3), dtype=np.uint8)
    path = str(tmp_path / 'a.png')
    cv2.imwrite(path, img)
    return path, img


def test_deprecated_file_client_args_still_read_the_file(png):
    path, img = png
    t = LoadImageFromFileWithRetry(file_client_args=dict(backend='disk'), max_retries=0)
    out = t(dict(img_path=path))
    np.testing.assert_array_equal(out['img'], img)
    assert out['img_shape'] == out['ori_shape'] == (6, 9)


class _MemoryBackend(fileio.backends.BaseStorageBackend):
    """A storage backend serving registered bytes: only backend_args can route a read here."""
    files = {}

    def get(self, filepath):
        return self.files[str(filepath)]

    def get_text(self, filepath, encoding='utf-8'):
        return self.get(filepath).decode(encoding)


def test_backend_args_route_the_read(png):
    path, img = png
    fileio.register_backend('anomseg_test_memory', _MemoryBackend, force=True)
    _MemoryBackend.files['nowhere/b.png'] = open(path, 'rb').read()
    t = LoadImageFromFileWithRetry(backend_args=dict(backend='anomseg_test_memory'), max_retries=0)
    out = t(dict(img_path='nowhere/b.png'))  # no such file on disk: the bytes come from the backend
    np.testing.assert_array_equal(out['img'], img)


def test_configured_decoder_and_colour_flag_reach_the_decoder(png, monkeypatch):
    """imdecode_backend / color_type of the config are what decodes the bytes (a spy on mmcv.imfrombytes)."""
    import anomseg_plugins.datasets.transforms.load_image_from_file_with_retry as mod
    seen = []
    real = mod.mmcv.imfrombytes

    def spy(content, flag='color', channel_order='bgr', backend=None):
        seen.append((flag, backend))
        return real(content, flag=flag, backend=backend)

    monkeypatch.setattr(mod.mmcv, 'imfrombytes', spy)
    path, img = png
    out = LoadImageFromFileWithRetry(
        imdecode_backend='pillow', color_type='grayscale', max_retries=0)(
            dict(img_path=path))
    assert seen == [('grayscale', 'pillow')]
    assert out['img'].shape == (6, 9)  # one channel


def test_to_float32(png):
    path, img = png
    out = LoadImageFromFileWithRetry(to_float32=True, max_retries=0)(dict(img_path=path))
    assert out['img'].dtype == np.float32
    np.testing.assert_array_equal(out['img'], img.astype(np.float32))


def test_errors_name_the_transform_and_retries_wait_the_configured_delays(tmp_path, monkeypatch):
    import anomseg_plugins.datasets.transforms.load_image_from_file_with_retry as mod
    sleeps = []
    monkeypatch.setattr(mod.time, 'sleep', sleeps.append)
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'not an image')
    with pytest.raises(
            mod.ImageReadError, match=r'^LoadImageFromFileWithRetry: cannot read image .*bad\.png.*'
            r'failed 3 attempt'):
        LoadImageFromFileWithRetry(max_retries=2, retry_delay=0.125)(dict(img_path=str(bad)))
    assert sleeps == [0.125, 0.25]
    with pytest.raises(mod.ImageReadError, match=r'^LoadImageFromFileWithRetry: image .*missing\.png does not exist'):
        LoadImageFromFileWithRetry(max_retries=2)(dict(img_path=str(tmp_path / 'missing.png')))


def test_default_retry_schedule(tmp_path, monkeypatch):
    """Defaults as documented: 3 retries after the first attempt, waiting 0.5, 1 and 2 s."""
    import anomseg_plugins.datasets.transforms.load_image_from_file_with_retry as mod
    sleeps = []
    monkeypatch.setattr(mod.time, 'sleep', sleeps.append)
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'not an image')
    with pytest.raises(mod.ImageReadError, match='failed 4 attempt'):
        LoadImageFromFileWithRetry()(dict(img_path=str(bad)))
    assert sleeps == [0.5, 1.0, 2.0]


def test_blur_kernel_size_one_is_valid_and_the_identity():
    """The smallest odd kernel (1) is accepted; a 1x1 Gaussian leaves the image as it is. Even or < 1: refused."""
    from anomseg_plugins.datasets.transforms import RandomGaussianBlur
    img = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    out = RandomGaussianBlur(prob=1.0, kernel_size=1, sigma_range=(1.0, 1.0))(dict(img=img.copy()))
    np.testing.assert_array_equal(out['img'], img)
    assert out['blur_sigma'] == 1.0
    for bad in (0, 2, -1):
        with pytest.raises(ValueError, match='kernel_size must be a positive odd int'):
            RandomGaussianBlur(kernel_size=bad)


@pytest.mark.parametrize('bad', [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0), (0.5, 0.4)])
def test_blur_sigma_range_refused_with_its_message(bad):
    from anomseg_plugins.datasets.transforms import RandomGaussianBlur
    with pytest.raises(ValueError, match=r'^RandomGaussianBlur: sigma_range must satisfy 0 < min <= max, got'):
        RandomGaussianBlur(sigma_range=bad)


def test_blur_sigma_drawn_over_the_whole_range():
    from anomseg_plugins.datasets.transforms import RandomGaussianBlur
    t = RandomGaussianBlur(prob=1.0, sigma_range=(0.2, 1.8))
    assert t.sigma_range == (0.2, 1.8)
    np.random.seed(0)
    sigmas = [t(dict(img=np.zeros((4, 4, 3), np.uint8)))['blur_sigma'] for _ in range(200)]
    assert 0.2 <= min(sigmas) < 0.4 and 1.6 < max(sigmas) <= 1.8


def test_annotation_reads_retry_on_the_documented_schedule(tmp_path, monkeypatch):
    """LoadStreetHazardsAnnotations retries like images: by default 3 retries after 0.5, 1 and 2 s."""
    import anomseg_plugins.datasets.transforms.load_image_from_file_with_retry as mod
    from anomseg_plugins.datasets.transforms import LoadStreetHazardsAnnotations
    sleeps = []
    monkeypatch.setattr(mod.time, 'sleep', sleeps.append)
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'not a png')
    with pytest.raises(mod.ImageReadError, match='LoadStreetHazardsAnnotations: cannot read annotation .*failed 4'):
        LoadStreetHazardsAnnotations()(dict(seg_map_path=str(bad), seg_fields=[], reduce_zero_label=None))
    assert sleeps == [0.5, 1.0, 2.0]


def test_annotation_backend_args_and_decoder_are_honoured(tmp_path, monkeypatch):
    import anomseg_plugins.datasets.transforms.load_annotations_with_retry as mod
    from anomseg_plugins.datasets.transforms import LoadStreetHazardsAnnotations
    raw = np.array([[1, 14, 13], [2, 3, 14]], np.uint8)
    path = str(tmp_path / 'ann.png')
    cv2.imwrite(path, raw)
    fileio.register_backend('anomseg_test_memory', _MemoryBackend, force=True)
    _MemoryBackend.files['nowhere/ann.png'] = open(path, 'rb').read()
    seen = []
    real = mod.mmcv.imfrombytes

    def spy(content, flag='color', channel_order='bgr', backend=None):
        seen.append(backend)
        return real(content, flag=flag, backend=backend)

    monkeypatch.setattr(mod.mmcv, 'imfrombytes', spy)
    t = LoadStreetHazardsAnnotations(backend_args=dict(backend='anomseg_test_memory'), imdecode_backend='cv2')
    out = t(dict(seg_map_path='nowhere/ann.png', seg_fields=[], reduce_zero_label=None))
    assert seen == ['cv2']
    np.testing.assert_array_equal(out['gt_seg_map'], [[0, 255, 12], [1, 2, 255]])
    np.testing.assert_array_equal(out['gt_anomaly_map'], [[0, 1, 0], [0, 0, 1]])
    assert LoadStreetHazardsAnnotations().imdecode_backend == 'pillow'  # mmseg's default, as documented


# ------------------------------------------------------------------------------------------------ call_with_retry
HINT = ('Check the whole dataset with `python tools/dataset/check_integrity.py DATA_ROOT` '
        '(or tools/train.py --check-data) to list every bad file.')


@pytest.fixture
def log_records():
    """(level, message) of every record the current MMLogger gets (print_log(logger='current'))."""
    import logging

    from mmengine.logging import MMLogger

    class Records(logging.Handler):

        def __init__(self):
            super().__init__(level=logging.DEBUG)
            self.records = []

        def emit(self, record):
            self.records.append((record.levelno, record.getMessage()))

    logger = MMLogger.get_current_instance()
    handler = Records()
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_call_with_retry_defaults_name_an_image_read_by_anomseg():
    import re

    from anomseg_plugins.datasets.transforms.load_image_from_file_with_retry import ImageReadError, call_with_retry

    def missing():
        raise FileNotFoundError(2, 'No such file or directory', 'p.png')

    with pytest.raises(ImageReadError) as info:
        call_with_retry(missing, 'p.png')
    assert str(info.value) == f'anomseg: image p.png does not exist (No such file or directory). {HINT}'

    def no_strerror():
        raise FileNotFoundError('gone')

    with pytest.raises(ImageReadError, match=re.escape('anomseg: image q.png does not exist (gone). ')):
        call_with_retry(no_strerror, 'q.png')


def test_call_with_retry_default_schedule_and_final_message(monkeypatch):
    import anomseg_plugins.datasets.transforms.load_image_from_file_with_retry as mod
    sleeps = []
    monkeypatch.setattr(mod.time, 'sleep', sleeps.append)
    with pytest.raises(mod.ImageReadError) as info:
        mod.call_with_retry(lambda: None, 'x.png')
    assert str(info.value) == ('anomseg: cannot read image x.png: the bytes do not decode as an image (truncated, '
                               f'empty or not an image file) (failed 4 attempt(s)). {HINT}')
    assert sleeps == [0.5, 1.0, 2.0]


def test_call_with_retry_names_the_exception_type_and_warns_per_retry(monkeypatch, log_records):
    import logging

    import anomseg_plugins.datasets.transforms.load_image_from_file_with_retry as mod
    monkeypatch.setattr(mod.time, 'sleep', lambda s: None)

    def broken():
        raise OSError('boom')

    with pytest.raises(mod.ImageReadError) as info:
        mod.call_with_retry(broken, 'y.png', what='label', max_retries=1, retry_delay=0.25, caller='Me')
    assert str(info.value) == f'Me: cannot read label y.png: OSError: boom (failed 2 attempt(s)). {HINT}'
    assert log_records == [(logging.WARNING, 'Me: reading label y.png failed (OSError: boom); retry 1/1 in 0.25 s')]


def test_call_with_retry_logs_a_late_success_only(monkeypatch, log_records):
    import logging

    import anomseg_plugins.datasets.transforms.load_image_from_file_with_retry as mod
    monkeypatch.setattr(mod.time, 'sleep', lambda s: None)
    assert mod.call_with_retry(lambda: 7, 'z.png', caller='Me') == 7
    assert log_records == []  # first-attempt success: silent
    calls = []

    def flaky():
        calls.append(1)
        return None if len(calls) == 1 else 8

    assert mod.call_with_retry(flaky, 'z.png', max_retries=2, caller='Me') == 8
    assert len(log_records) == 2 and log_records[0][0] == logging.WARNING
    assert log_records[1] == (logging.INFO, 'Me: read image z.png on attempt 2/3')


# ------------------------------------------------------------------------------------------------ StreetHazards
def test_street_hazards_error_lists_at_most_ten_values_and_defaults_source():
    from anomseg_plugins.datasets.transforms.load_street_hazards_annotations import map_street_hazards_labels
    raw = np.arange(15, 27, dtype=np.uint8).reshape(2, 6)  # 12 bad values
    with pytest.raises(
            ValueError,
            match=r'^StreetHazards annotation <array> holds label value\(s\) '
            r'\[15, 16, 17, 18, 19, 20, 21, 22, 23, 24\] at 12 pixel\(s\)'):
        map_street_hazards_labels(raw)


@pytest.fixture
def street_png(tmp_path):

    def write(raw, name='ann.png'):
        path = str(tmp_path / name)
        assert cv2.imwrite(path, raw)
        return path

    return write


def test_street_hazards_configured_retries_delay_and_path_in_errors(tmp_path, monkeypatch):
    import anomseg_plugins.datasets.transforms.load_image_from_file_with_retry as mod
    from anomseg_plugins.datasets.transforms import LoadStreetHazardsAnnotations
    sleeps = []
    monkeypatch.setattr(mod.time, 'sleep', sleeps.append)
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'not a png')
    t = LoadStreetHazardsAnnotations(max_retries=1, retry_delay=0.125)
    with pytest.raises(mod.ImageReadError, match=r'cannot read annotation .*bad\.png: .*failed 2 attempt'):
        t(dict(seg_map_path=str(bad), seg_fields=[]))
    assert sleeps == [0.125]
    with pytest.raises(mod.ImageReadError, match=r'^LoadStreetHazardsAnnotations: annotation .*gone\.png does not'):
        t(dict(seg_map_path=str(tmp_path / 'gone.png'), seg_fields=[]))


def test_street_hazards_bad_value_and_sizes_name_the_files(street_png):
    from anomseg_plugins.datasets.transforms import LoadStreetHazardsAnnotations
    t = LoadStreetHazardsAnnotations()
    with pytest.raises(ValueError, match=r'^StreetHazards annotation .*zero\.png holds label value\(s\) \[0\]'):
        t(dict(seg_map_path=street_png(np.zeros((2, 3), np.uint8), 'zero.png'), seg_fields=[]))
    ok = street_png(np.ones((2, 3), np.uint8))
    with pytest.raises(ValueError, match=r'^StreetHazards annotation .*ann\.png is 3x2 but its image \? is 4x2; '):
        t(dict(seg_map_path=ok, seg_fields=[], ori_shape=(2, 4)))
    with pytest.raises(
            ValueError,
            match=r'^StreetHazards annotation .*ann\.png is 3x2 but its image i\.png is 4x2; '
            r"a label map must have its image's size \(check the pair, or run "
            r'tools/dataset/check_integrity\.py\)\.$'):
        t(dict(seg_map_path=ok, seg_fields=[], ori_shape=(2, 4), img_path='i.png'))


def test_street_hazards_colour_annotation_refused_and_colour_ori_shape_accepted(street_png):
    from anomseg_plugins.datasets.transforms import LoadStreetHazardsAnnotations
    t = LoadStreetHazardsAnnotations()
    rgb = street_png(np.ones((2, 3, 3), np.uint8), 'rgb.png')
    with pytest.raises(ValueError, match=r'has shape \(2, 3, 3\); expected a single-channel'):
        t(dict(seg_map_path=rgb, seg_fields=[], ori_shape=(2, 3)))
    out = t(dict(seg_map_path=street_png(np.array([[1, 14, 2]], np.uint8)), seg_fields=[], ori_shape=(1, 3, 3)))
    np.testing.assert_array_equal(out['gt_seg_map'], [[0, 255, 1]])


def test_street_hazards_ignore_index_reaches_the_map(street_png):
    from anomseg_plugins.datasets.transforms import LoadStreetHazardsAnnotations
    out = LoadStreetHazardsAnnotations(ignore_index=250)(
        dict(seg_map_path=street_png(np.array([[1, 14, 13]], np.uint8)), seg_fields=[]))
    np.testing.assert_array_equal(out['gt_seg_map'], [[0, 250, 12]])
    np.testing.assert_array_equal(out['gt_anomaly_map'], [[0, 1, 0]])


# ------------------------------------------------------------------------------------------------ MultiScaleSquareCrop
def test_square_crop_output_size_one_gives_the_window_pixel():
    from anomseg_plugins.datasets.transforms import MultiScaleSquareCrop
    img = np.random.default_rng(1).integers(0, 255, (4, 6, 3), dtype=np.uint8)
    t = MultiScaleSquareCrop(output_size=1, scale_range=(1.0, 1.0))
    np.random.seed(0)
    out = t(dict(img=img.copy(), seg_fields=[]))
    y1, y2, x1, x2 = out['crop_bbox']
    assert (y2 - y1, x2 - x1) == (1, 1)
    assert out['img'].shape[:2] == out['img_shape'] == (1, 1)
    np.testing.assert_array_equal(out['img'].reshape(-1), img[y1, x1])


def test_square_crop_keep_scale_tiny_output_keeps_one_pixel():
    """keep_scale on a 2-pixel-high image with a 9-pixel square and output 2: the height becomes round(2*2/9) = 0,
    kept at 1 pixel (not more)."""
    from anomseg_plugins.datasets.transforms import MultiScaleSquareCrop
    img = np.random.default_rng(2).integers(0, 255, (2, 20, 3), dtype=np.uint8)
    t = MultiScaleSquareCrop(output_size=2, scale_range=(4.5, 4.5), keep_scale=True)
    out = t(dict(img=img.copy()))
    assert out['img'].shape[:2] == (1, 2)
    img_t = np.ascontiguousarray(img.transpose(1, 0, 2))  # same with the axes swapped: the width is kept at 1
    assert t(dict(img=img_t))['img'].shape[:2] == (2, 1)


def test_square_crop_scale_range_from_zero_refused():
    from anomseg_plugins.datasets.transforms import MultiScaleSquareCrop
    with pytest.raises(ValueError, match=r'scale_range must satisfy 0 < min <= max, got \(0\.0, 1\.0\)'):
        MultiScaleSquareCrop(scale_range=(0.0, 1.0))


def test_square_crop_uses_the_configured_interpolation_and_needs_no_seg_fields():
    from anomseg_plugins.datasets.transforms import MultiScaleSquareCrop
    img = np.random.default_rng(3).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    t = MultiScaleSquareCrop(output_size=16, scale_range=(0.5, 0.5), base_size=10, interpolation='nearest')
    np.random.seed(0)
    out = t(dict(img=img.copy()))  # no seg_fields key: only the image is cropped
    y1, y2, x1, x2 = out['crop_bbox']
    assert (y2 - y1, x2 - x1) == (5, 5)
    expected = cv2.resize(img[y1:y2, x1:x2], (16, 16), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(out['img'], expected)
    assert 'seg_fields' not in out
