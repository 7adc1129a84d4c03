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
    import anomseg_plugins.datasets.transforms.load_street_hazards_annotations as mod
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
