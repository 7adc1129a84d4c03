"""RandomGaussianBlur: applied with its probability, blurs the image only."""
import numpy as np
import pytest

from anomseg_plugins.datasets.transforms import RandomGaussianBlur


def _results():
    img = np.zeros((32, 32, 3), np.uint8)
    img[:, 16:] = 255
    return dict(img=img, gt_seg_map=(img[..., 0] > 0).astype(np.uint8), seg_fields=['gt_seg_map'])


def test_always_blurs_image_not_labels():
    res = RandomGaussianBlur(prob=1.0, kernel_size=5, sigma_range=(1.5, 1.5))(_results())
    assert res['blur_sigma'] == 1.5
    edge = res['img'][0, 14:18, 0]
    assert 0 < edge[1] < 255 and 0 < edge[2] < 255  # the step edge is smoothed
    assert set(np.unique(res['gt_seg_map'])) == {0, 1}


def test_never_blurs_with_prob_zero():
    src = _results()
    res = RandomGaussianBlur(prob=0.0)(dict(src, img=src['img'].copy()))
    np.testing.assert_array_equal(res['img'], src['img'])
    assert res['blur_sigma'] == 0.0


def test_probability_is_respected():
    np.random.seed(0)
    t = RandomGaussianBlur(prob=0.5)
    applied = sum(t(_results())['blur_sigma'] > 0 for _ in range(400))
    assert 150 < applied < 250


def test_bad_arguments():
    with pytest.raises(ValueError, match='kernel_size'):
        RandomGaussianBlur(kernel_size=4)
    with pytest.raises(ValueError, match='prob'):
        RandomGaussianBlur(prob=1.5)
