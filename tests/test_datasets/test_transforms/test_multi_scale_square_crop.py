"""MultiScaleSquareCrop: output size, crop side follows the drawn scale, never padded, labels nearest.

The geometry tests read the crop off the output itself: the image encodes its own coordinates
(channel 0 = y, channel 1 = x, float32), so a bilinear resize of the window reproduces the source
coordinate of every output pixel exactly (a linear ramp is interpolated without error), and the
window's offset and side, hence the scale actually used, can be measured independently of what the
transform reports.
"""
import numpy as np
import pytest

from anomseg_plugins.datasets.transforms import MultiScaleSquareCrop

BLOCK = 64  # label blocks of 64x64 source pixels


def _results(h=300, w=500):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    seg = rng.integers(0, 13, (h, w), dtype=np.uint8)
    anomaly = (rng.random((h, w)) < 0.1).astype(np.uint8)
    return dict(
        img=img, gt_seg_map=seg, gt_anomaly_map=anomaly, seg_fields=['gt_seg_map', 'gt_anomaly_map'], img_shape=(h, w))


def _label_of(y, x):
    """Odd labels 1..13 by 64x64 block: an interpolated (non-nearest) resize would create even values."""
    return (2 * ((x // BLOCK + 3 * (y // BLOCK)) % 7) + 1).astype(np.uint8)


def _coordinate_results(h, w):
    """Image channels = (y, x, 0); label maps: block classes and the exact source y / x of every pixel."""
    ys, xs = np.mgrid[0:h, 0:w]
    img = np.stack([ys, xs, np.zeros_like(ys)], axis=-1).astype(np.float32)
    return dict(
        img=img,
        img_shape=(h, w),
        gt_seg_map=_label_of(ys, xs),
        gt_y=ys.astype(np.uint16),
        gt_x=xs.astype(np.uint16),
        seg_fields=['gt_seg_map', 'gt_y', 'gt_x'])


def _measured_window(coord, out_len):
    """Offset and length of the source window along one axis, from the bilinear-resized coordinate ramp.

    cv2 samples output pixel i at source position (i + 0.5) * r - 0.5 (r = window / output, clamped at the
    window border); the two central pixels are never clamped, so their difference is r.
    """
    i = out_len // 2
    r = float(coord[i] - coord[i - 1])
    start = float(coord[i]) - ((i + 0.5) * r - 0.5)
    return start, r * out_len


@pytest.mark.parametrize('seed', range(20))
def test_crop_properties(seed):
    np.random.seed(seed)
    t = MultiScaleSquareCrop(output_size=128, scale_range=(0.5, 2.0), base_size=128)
    src = _results()
    res = t(dict(src, seg_fields=list(src['seg_fields'])))
    assert res['img'].shape == (128, 128, 3)
    assert res['gt_seg_map'].shape == (128, 128) and res['gt_anomaly_map'].shape == (128, 128)
    assert res['img_shape'] == (128, 128)
    s = res['crop_scale']
    assert 0.5 <= s <= 2.0
    y1, y2, x1, x2 = res['crop_bbox']
    side = y2 - y1
    assert side == x2 - x1 == min(round(128 * s), 300)
    assert res['effective_crop_scale'] == side / 128
    # never padded: the crop lies inside the image
    assert 0 <= y1 and y2 <= 300 and 0 <= x1 and x2 <= 500
    # nearest for labels: only values of the source crop appear
    assert set(np.unique(res['gt_seg_map'])) <= set(np.unique(src['gt_seg_map'][y1:y2, x1:x2]))
    assert set(np.unique(res['gt_anomaly_map'])) <= {0, 1}


@pytest.mark.parametrize('seed', range(12))
def test_effective_scale_measured_from_pixels_on_street_hazards_frame(seed):
    """On a 1280x720 frame (the real size) with the headline's settings, the scale recorded as effective is the
    one the pixels show: window side measured from the coordinate ramp / base_size, capped at 720 / 512."""
    np.random.seed(seed)
    t = MultiScaleSquareCrop(output_size=512, scale_range=(0.5, 2.0), base_size=512)
    res = t(_coordinate_results(720, 1280))
    img = res['img']
    assert img.shape == (512, 512, 3)
    y_start, y_len = _measured_window(img[:, 256, 0], 512)
    x_start, x_len = _measured_window(img[256, :, 1], 512)
    assert abs(y_len - x_len) < 1e-2  # square window
    eff = res['effective_crop_scale']
    assert eff == pytest.approx(y_len / 512, abs=1e-4)
    assert eff == pytest.approx(min(round(512 * res['crop_scale']), 720) / 512, abs=1e-12)
    assert eff <= 720 / 512
    if res['crop_scale'] > 721 / 512:
        assert eff == 720 / 512 < res['crop_scale']  # clamped: the recorded scale says so
    y1, y2, x1, x2 = res['crop_bbox']
    assert y1 == pytest.approx(y_start, abs=1e-2) and x1 == pytest.approx(x_start, abs=1e-2)
    assert y2 - y1 == x2 - x1 == pytest.approx(y_len, abs=1e-2)


@pytest.mark.parametrize('keep_scale', [False, True])
@pytest.mark.parametrize('seed', range(8))
def test_labels_aligned_with_image_and_values_preserved(seed, keep_scale):
    """Every label map is cut from the image's window and resized with nearest: its source coordinates agree with
    the image's to within half an output pixel's footprint, and its values are a subset of the input's."""
    np.random.seed(seed)
    t = MultiScaleSquareCrop(output_size=256, scale_range=(0.3, 3.0), base_size=256, keep_scale=keep_scale)
    src = _coordinate_results(270, 480)
    res = t(dict(src))  # a copy: the transform replaces the maps in the dict it gets
    img, gy, gx, lab = res['img'], res['gt_y'].astype(float), res['gt_x'].astype(float), res['gt_seg_map']
    assert img.shape[:2] == gy.shape == gx.shape == lab.shape == res['img_shape']
    y1, y2, x1, x2 = res['crop_bbox']
    # label coordinates lie in the window ...
    assert gy.min() >= y1 and gy.max() < y2 and gx.min() >= x1 and gx.max() < x2
    # ... and point where the image pixel points: with r = window / output (source pixels per output pixel),
    # nearest samples floor(i * r), bilinear (i + 0.5) * r - 0.5: they differ by less than r / 2 + 1 / 2
    r_y, r_x = (y2 - y1) / lab.shape[0], (x2 - x1) / lab.shape[1]
    assert r_y == pytest.approx(res['effective_crop_scale'], rel=0.02)  # base_size = output side here
    assert np.abs(img[..., 0] - gy).max() < 0.5 * r_y + 0.5 + 1e-3
    assert np.abs(img[..., 1] - gx).max() < 0.5 * r_x + 0.5 + 1e-3
    # the class map travels with its coordinates, and no value is invented
    np.testing.assert_array_equal(lab, _label_of(res['gt_y'].astype(int), res['gt_x'].astype(int)))
    assert set(np.unique(lab)) <= set(np.unique(src['gt_seg_map'][y1:y2, x1:x2])) <= set(range(1, 14, 2))


def test_keep_scale_keeps_the_drawn_scale_with_a_smaller_output():
    """s = 2 on 1280x720 with base 512: the 1024 window keeps its width, is cut to the 720 rows, and is
    resized by 1/2 on both axes to 360x512; the effective scale is the drawn one."""
    np.random.seed(0)
    t = MultiScaleSquareCrop(output_size=512, scale_range=(2.0, 2.0), base_size=512, keep_scale=True)
    res = t(_coordinate_results(720, 1280))
    assert res['img'].shape[:2] == (360, 512) and res['gt_seg_map'].shape == (360, 512)
    assert res['img_shape'] == (360, 512)
    assert res['crop_scale'] == res['effective_crop_scale'] == 2.0
    y1, y2, x1, x2 = res['crop_bbox']
    assert (y1, y2) == (0, 720) and x2 - x1 == 1024
    _, y_len = _measured_window(res['img'][:, 256, 0], 360)
    _, x_len = _measured_window(res['img'][180, :, 1], 512)
    assert y_len == pytest.approx(720, abs=1e-2) and x_len == pytest.approx(1024, abs=1e-2)


def test_clamped_by_default_with_the_cap_recorded():
    np.random.seed(0)
    t = MultiScaleSquareCrop(output_size=512, scale_range=(2.0, 2.0), base_size=512)
    res = t(_coordinate_results(720, 1280))
    assert res['img'].shape[:2] == (512, 512)
    assert res['crop_scale'] == 2.0 and res['effective_crop_scale'] == 720 / 512


def test_keep_scale_draws_the_same_windows_when_the_square_fits():
    """Below the cap both modes draw identically (same random calls), so keep_scale changes only clamped draws."""
    for seed in range(10):
        np.random.seed(seed)
        a = MultiScaleSquareCrop(output_size=64, scale_range=(0.5, 1.0), base_size=64)(_results(100, 180))
        np.random.seed(seed)
        b = MultiScaleSquareCrop(
            output_size=64, scale_range=(0.5, 1.0), base_size=64, keep_scale=True)(
                _results(100, 180))
        assert a['crop_bbox'] == b['crop_bbox'] and a['effective_crop_scale'] == b['effective_crop_scale']
        np.testing.assert_array_equal(a['img'], b['img'])


def test_crop_side_clamped_to_short_side():
    np.random.seed(0)
    t = MultiScaleSquareCrop(output_size=64, scale_range=(4.0, 4.0), base_size=64)
    res = t(_results(h=100, w=180))
    y1, y2, x1, x2 = res['crop_bbox']
    assert y2 - y1 == 100 and x2 - x1 == 100 and res['crop_scale'] == 4.0
    assert res['effective_crop_scale'] == 100 / 64


def test_identity_crop_keeps_content():
    np.random.seed(1)
    t = MultiScaleSquareCrop(output_size=50, scale_range=(1.0, 1.0), base_size=50)
    src = _results(h=50, w=50)
    img = src['img'].copy()
    res = t(src)
    np.testing.assert_array_equal(res['img'], img)
    assert res['effective_crop_scale'] == 1.0


def test_bad_arguments_and_repr():
    with pytest.raises(ValueError, match='scale_range'):
        MultiScaleSquareCrop(scale_range=(2.0, 0.5))
    with pytest.raises(ValueError, match='output_size'):
        MultiScaleSquareCrop(output_size=(0, 3))
    text = repr(MultiScaleSquareCrop(keep_scale=True))
    assert 'scale_range=(0.5, 2.0)' in text and 'base_size=512' in text and 'keep_scale=True' in text
