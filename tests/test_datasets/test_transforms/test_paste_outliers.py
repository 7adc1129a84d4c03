"""PasteOutliers: each source pastes and marks what it says (label 254 exactly on pasted pixels, soft blending,
perspective sizes, road placement, untouched pixels outside the paste, K range); folder errors name the file."""
import os.path as osp

import cv2
import numpy as np
import pytest
from mmseg.registry import TRANSFORMS

from anomseg_plugins.datasets.transforms.paste_outliers import STREET_HAZARDS_ROAD as ROAD
from anomseg_plugins.models.losses import OUTLIER_INDEX as O  # noqa: E741

H, W = 96, 128


def _scene(seed=0):
    """A textured image (no two neighbouring pixels alike) over a label map: road (7) in the bottom-left quarter
    and below row 60, sidewalk (8) elsewhere."""
    rng = np.random.RandomState(seed)
    img = rng.randint(0, 256, (H, W, 3)).astype(np.uint8)
    label = np.full((H, W), 8, np.uint8)
    label[48:, :64] = ROAD
    return img, label


def _paste(seed=0, img=None, label=None, **kw):
    t = TRANSFORMS.build(dict(type='PasteOutliers', **kw))
    if img is None:
        img, label = _scene(seed)
    np.random.seed(seed)
    res = t(dict(img=img.copy(), gt_seg_map=label.copy(), gt_anomaly_map=np.zeros_like(label)))
    return t, img, label, res


@pytest.mark.parametrize('source', ['procedural', 'cutpaste'])
def test_hard_mask_marks_exactly_the_changed_pixels_and_nothing_outside(source):
    for seed in range(5):
        _, img, label, res = _paste(
            seed, sources=source, num_outliers=(2, 3), soft_prob=0.0, min_contrast=0, size_range=(0.2, 0.4))
        changed = (res['img'] != img).any(-1)
        marked = res['gt_seg_map'] == O
        assert res['pasted_outliers'] and all(r['source'] == source for r in res['pasted_outliers'])
        assert marked.sum() > 20
        # hard masks: every changed pixel is marked, and a marked pixel keeps the scene value only by chance
        assert not (changed & ~marked).any()
        assert (changed[marked]).mean() > 0.9
        # labels: 254 on pasted pixels, the original label everywhere else; gt_anomaly_map follows
        np.testing.assert_array_equal(res['gt_seg_map'][~marked], label[~marked])
        np.testing.assert_array_equal(res['gt_anomaly_map'], marked.astype(np.uint8))
        # outside the boxes the image is untouched
        inside = np.zeros((H, W), bool)
        for r in res['pasted_outliers']:
            x0, y0, x1, y1 = r['bbox']
            inside[y0:y1, x0:x1] = True
        assert not changed[~inside].any()
        assert set(np.unique(res['gt_seg_map'])) <= set(np.unique(label)) | {O}


@pytest.fixture
def solid_cutout_folder(tmp_path):
    """One RGBA cut-out: grey 200 everywhere (so resizing keeps the colour), alpha 255 on a disc, 0 outside."""
    rgba = np.full((40, 40, 4), 200, np.uint8)
    rgba[..., 3] = 0
    cv2.circle(rgba, (20, 20), 18, (200, 200, 200, 255), -1)
    cv2.imwrite(str(tmp_path / 'disc.png'), rgba)
    return str(tmp_path)


def test_soft_mask_blends_the_edge_and_labels_alpha_at_least_half(solid_cutout_folder):
    black = np.zeros((H, W, 3), np.uint8)
    label = np.full((H, W), ROAD, np.uint8)
    _, _, _, res = _paste(
        0,
        img=black,
        label=label,
        sources='folder',
        folder=solid_cutout_folder,
        num_outliers=(1, 1),
        soft_prob=1.0,
        edge_sigma=(2.0, 2.0),
        size_range=(0.5, 0.5),
        min_depth=1.0,
        min_contrast=0)
    v = res['img'][..., 0].astype(int)  # alpha * 200 on black
    blended = (v > 0) & (v < 200)
    assert blended.sum() > 20, 'a soft edge blends the object into the scene'
    # label 254 exactly where alpha >= 0.5, i.e. where the blend reaches half the object's value
    np.testing.assert_array_equal(res['gt_seg_map'] == O, v >= 100)
    hard = _paste(
        0,
        img=black,
        label=label,
        sources='folder',
        folder=solid_cutout_folder,
        num_outliers=(1, 1),
        soft_prob=0.0,
        size_range=(0.5, 0.5),
        min_depth=1.0,
        min_contrast=0)[3]
    assert set(np.unique(hard['img'])) == {0, 200}
    np.testing.assert_array_equal(hard['gt_seg_map'] == O, hard['img'][..., 0] == 200)


def test_sizes_follow_the_range_and_grow_towards_the_bottom():
    label = np.full((H, W), ROAD, np.uint8)  # road from row 0: horizon = top row, depth = cy / H
    img = np.zeros((H, W, 3), np.uint8)
    records = []
    for seed in range(40):
        records += _paste(
            seed,
            img=img,
            label=label,
            num_outliers=(3, 3),
            size_range=(0.2, 0.4),
            min_depth=0.1,
            min_size=1,
            soft_prob=0,
            min_contrast=0)[3]['pasted_outliers']
    for r in records:
        depth = np.clip(r['center'][1] / (H - 0.0), 0.1, 1.0)
        assert r['depth'] == pytest.approx(depth)
        assert 0.2 <= r['scale'] <= 0.4
        assert r['height'] == min(H, max(1, round(r['scale'] * H * depth)))
    low = [r['height'] for r in records if r['center'][1] >= 0.75 * H]
    high = [r['height'] for r in records if r['center'][1] < 0.4 * H]
    assert low and high and np.mean(low) > 2 * np.mean(high)


def test_placement_is_mostly_on_road():
    hits = []
    for seed in range(30):
        t, _, label, res = _paste(seed, num_outliers=(2, 2), road_prob=0.9)
        for r in res['pasted_outliers']:
            cx, cy = r['center']
            hits.append(label[cy, cx] == ROAD)
            assert r['on_road'] == (label[cy, cx] == ROAD)
    assert np.mean(hits) >= 0.8  # road is a third of the frame: uniform placement would give ~0.35
    off = []
    for seed in range(30):
        res = _paste(seed, num_outliers=(2, 2), road_prob=0.0)[3]
        off += [r['on_road'] for r in res['pasted_outliers']]
    assert np.mean(off) < 0.7


def test_k_range_and_prob():
    counts = [len(_paste(s, num_outliers=(1, 3))[3]['pasted_outliers']) for s in range(40)]
    assert set(counts) == {1, 2, 3}
    assert [len(_paste(s, num_outliers=(0, 0))[3]['pasted_outliers']) for s in range(3)] == [0, 0, 0]
    none = _paste(0, num_outliers=(2, 2), prob=0.0)
    assert none[3]['pasted_outliers'] == [] and (none[3]['img'] == none[1]).all()
    assert not (none[3]['gt_seg_map'] == O).any()
    with pytest.raises(ValueError, match='num_outliers'):
        TRANSFORMS.build(dict(type='PasteOutliers', num_outliers=(3, 1)))
    with pytest.raises(ValueError, match='unknown source'):
        TRANSFORMS.build(dict(type='PasteOutliers', sources=['coco']))


def test_cutpaste_cuts_from_recently_seen_images():
    t = TRANSFORMS.build(
        dict(
            type='PasteOutliers',
            sources='cutpaste',
            num_outliers=(1, 1),
            soft_prob=0.0,
            pool_size=2,
            min_contrast=0,
            size_range=(0.3, 0.3),
            min_depth=1.0))
    red = np.zeros((H, W, 3), np.uint8)
    red[..., 2] = 255
    label = np.full((H, W), ROAD, np.uint8)
    np.random.seed(0)
    t(dict(img=red.copy(), gt_seg_map=label.copy()))
    assert len(t.sources['cutpaste'].pool) == 1 and (t.sources['cutpaste'].pool[0] == red).all()  # clean copy
    black = np.zeros_like(red)
    seen_red = False
    for _ in range(10):
        res = t(dict(img=black.copy(), gt_seg_map=label.copy()))
        marked = res['gt_seg_map'] == O
        seen_red |= bool((res['img'][marked][:, 2] == 255).all())
    assert seen_red and len(t.sources['cutpaste'].pool) == 2


def test_folder_source_reads_image_and_mask_pairs(tmp_path):
    cv2.imwrite(str(tmp_path / 'obj.jpg'), np.full((20, 30, 3), 90, np.uint8))
    mask = np.zeros((20, 30), np.uint8)
    mask[5:15, 5:25] = 255
    cv2.imwrite(str(tmp_path / 'obj_mask.png'), mask)
    t = TRANSFORMS.build(dict(type='PasteOutliers', sources='folder', folder=str(tmp_path)))
    patch, alpha = t.sources['folder'].items[0]
    assert patch.shape == (10, 20, 3) and alpha.min() == 1.0  # cropped to the mask's box


def test_folder_source_errors_name_the_folder_or_file(tmp_path):
    with pytest.raises(ValueError, match=f'{tmp_path}.*holds no image'):
        TRANSFORMS.build(dict(type='PasteOutliers', sources='folder', folder=str(tmp_path)))
    with pytest.raises(FileNotFoundError, match='missing'):
        TRANSFORMS.build(dict(type='PasteOutliers', sources='folder', folder=str(tmp_path / 'missing')))
    with pytest.raises(ValueError, match='needs folder'):
        TRANSFORMS.build(dict(type='PasteOutliers', sources='folder'))
    bad = tmp_path / 'broken.png'
    bad.write_bytes(b'not a png')
    with pytest.raises(ValueError, match=f'cannot read {bad}'):
        TRANSFORMS.build(dict(type='PasteOutliers', sources='folder', folder=str(tmp_path)))
    bad.unlink()
    cv2.imwrite(str(tmp_path / 'rgb.png'), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=f'{osp.join(tmp_path, "rgb.png")} has no alpha channel'):
        TRANSFORMS.build(dict(type='PasteOutliers', sources='folder', folder=str(tmp_path)))


def test_outlier_label_survives_the_rest_of_the_train_pipeline():
    """Flip, photometric distortion, blur and packing keep 254 exactly on the pasted pixels."""
    img, label = _scene(0)
    pipeline = [
        TRANSFORMS.build(t) for t in [
            dict(type='PasteOutliers', num_outliers=(2, 2), soft_prob=0.0),
            dict(type='RandomFlip', prob=1.0),
            dict(type='PhotoMetricDistortion'),
            dict(type='RandomGaussianBlur', prob=1.0),
            dict(type='PackAnomalySegInputs')
        ]
    ]
    np.random.seed(0)
    res = dict(
        img=img.copy(),
        gt_seg_map=label.copy(),
        gt_anomaly_map=np.zeros_like(label),
        seg_fields=['gt_seg_map', 'gt_anomaly_map'],
        img_shape=(H, W),
        ori_shape=(H, W),
        img_path='x',
        seg_map_path='y')
    marked = None
    for i, t in enumerate(pipeline):
        res = t(res)
        if i == 0:
            marked = (res['gt_seg_map'] == O)[:, ::-1]
    packed = res['data_samples'].gt_sem_seg.data[0].numpy()
    assert marked.any()
    np.testing.assert_array_equal(packed == O, marked)
    np.testing.assert_array_equal(packed[~marked], label[:, ::-1][~marked])
