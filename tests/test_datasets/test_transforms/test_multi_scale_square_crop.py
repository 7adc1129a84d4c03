"""MultiScaleSquareCrop: output size, crop side follows the drawn scale, never padded, labels nearest."""
import numpy as np
import pytest

from anomseg_plugins.datasets.transforms import MultiScaleSquareCrop


def _results(h=300, w=500):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    seg = rng.integers(0, 13, (h, w), dtype=np.uint8)
    anomaly = (rng.random((h, w)) < 0.1).astype(np.uint8)
    return dict(img=img, gt_seg_map=seg, gt_anomaly_map=anomaly, seg_fields=['gt_seg_map', 'gt_anomaly_map'],
                img_shape=(h, w))


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
    # never padded: the crop lies inside the image
    assert 0 <= y1 and y2 <= 300 and 0 <= x1 and x2 <= 500
    # nearest for labels: only values of the source crop appear
    assert set(np.unique(res['gt_seg_map'])) <= set(np.unique(src['gt_seg_map'][y1:y2, x1:x2]))
    assert set(np.unique(res['gt_anomaly_map'])) <= {0, 1}


def test_crop_side_clamped_to_short_side():
    np.random.seed(0)
    t = MultiScaleSquareCrop(output_size=64, scale_range=(4.0, 4.0), base_size=64)
    res = t(_results(h=100, w=180))
    y1, y2, x1, x2 = res['crop_bbox']
    assert y2 - y1 == 100 and x2 - x1 == 100 and res['crop_scale'] == 4.0


def test_identity_crop_keeps_content():
    np.random.seed(1)
    t = MultiScaleSquareCrop(output_size=50, scale_range=(1.0, 1.0), base_size=50)
    src = _results(h=50, w=50)
    img = src['img'].copy()
    res = t(src)
    np.testing.assert_array_equal(res['img'], img)


def test_bad_arguments():
    with pytest.raises(ValueError, match='scale_range'):
        MultiScaleSquareCrop(scale_range=(2.0, 0.5))
    with pytest.raises(ValueError, match='output_size'):
        MultiScaleSquareCrop(output_size=(0, 3))
    assert 'scale_range=(0.5, 2.0)' in repr(MultiScaleSquareCrop())
