"""RoadAnomaly21 / RoadObstacle21 / LostAndFound / Fishyscapes L&F datasets on hand-built official layouts.

Every tree is written here in the layout of the official release (road-anomaly-benchmark ``datasets/tracks.py``,
``tracks_extra.py``) with 16x32 frames. A frame's image and label both encode the frame's number ``code``: the image is
grey ``10 * code + 5`` and bright (250) exactly on the anomaly, which covers ``code + 1`` columns of rows 4..11 in
the label, so a pair that is not the right image with the right label shows at once.
"""
import functools
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmseg.registry import DATASETS

import anomseg_plugins  # noqa: F401  (registers the datasets and transforms)
from anomseg_plugins import datasets
from anomseg_plugins.datasets import LOST_AND_FOUND_SUBSETS, DataPathError
from anomseg_plugins.datasets.road_anomaly_benchmarks import (LOST_AND_FOUND_INVALID_TEST_FRAMES,
                                                              LOST_AND_FOUND_KNOWN_PREFIXES)

H, W = 16, 32
# mmengine's serialization runs gc.collect() per dataset (~0.4 s with torch loaded): off, data_infos stay the same
RoadAnomaly21Dataset = functools.partial(datasets.RoadAnomaly21Dataset, serialize_data=False)
RoadObstacle21Dataset = functools.partial(datasets.RoadObstacle21Dataset, serialize_data=False)
LostAndFoundDataset = functools.partial(datasets.LostAndFoundDataset, serialize_data=False)
FishyscapesLAFDataset = functools.partial(datasets.FishyscapesLAFDataset, serialize_data=False)
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PIPELINE = [
    dict(type='LoadImageFromFileWithRetry'),
    dict(type='LoadAnomalyAnnotations'),
    dict(type='PackAnomalySegInputs')
]


# ------------------------------------------------------------------------------------------------ trees
def infos(ds) -> list:
    """The data_infos of a dataset (``data_list`` is emptied when mmengine serializes it)."""
    return [ds.get_data_info(i) for i in range(len(ds))]


def anomaly_mask(code: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[4:12, :code + 1] = True
    return mask


def write_image(path: str, code: int) -> None:
    """Grey (no chroma for JPEG to subsample): 250 on the anomaly, ``10 * code + 5`` elsewhere."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    grey = np.where(anomaly_mask(code), 250, 10 * code + 5).astype(np.uint8)
    img = np.repeat(grey[..., None], 3, axis=-1)
    params = {'.webp': [cv2.IMWRITE_WEBP_QUALITY, 101], '.jpg': [cv2.IMWRITE_JPEG_QUALITY, 100]}  # 101: lossless
    params = params.get(osp.splitext(path)[1], [])
    assert cv2.imwrite(path, img, params), path


def write_label(path: str, code: int, normal: int, anomaly: int, void: int) -> None:
    """A label of frame ``code``: ``anomaly`` on its mask, ``void`` on row 0, ``normal`` elsewhere."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    label = np.full((H, W), normal, np.uint8)
    label[anomaly_mask(code)] = anomaly
    label[0] = void
    assert cv2.imwrite(path, label), path


def expected_gt(code: int) -> np.ndarray:
    gt = anomaly_mask(code).astype(np.uint8)
    gt[0] = 255
    return gt


def code_of(sample) -> int:
    """The frame number the packed image encodes (the median: the anomaly covers less than half the frame)."""
    green = sample['inputs'][1].numpy()
    return int(round((float(np.median(green)) - 5) / 10))


def smiyc_tree(root: str, fids: dict, ext: str) -> None:
    """``images/{fid}{ext}``; ``labels_masks/{fid}_labels_semantic.png`` for the fids whose value is True."""
    for code, (fid, labelled) in enumerate(sorted(fids.items())):
        write_image(osp.join(root, 'images', fid + ext), code)
        if labelled:
            write_label(osp.join(root, 'labels_masks', f'{fid}_labels_semantic.png'), code, 0, 1, 255)


RA_FIDS = {'zebra0000': False, 'validation0001': True, 'cow0001': False, 'validation0000': True}


@pytest.fixture
def ra21_root(tmp_path) -> str:
    root = str(tmp_path / 'dataset_AnomalyTrack')
    smiyc_tree(root, RA_FIDS, '.jpg')
    return root


RO_FIDS = {
    'curvy-street_boot_1': False,
    'gravel_log_2': False,
    'snowstorm1_00_00_51.868': False,
    'driveway_cone_1': False,
    'validation_1': True,
    'validation_2': True,
    'validation_19': True,
    'validation_21': True,
}


@pytest.fixture
def ro21_root(tmp_path) -> str:
    root = str(tmp_path / 'dataset_ObstacleTrack')
    smiyc_tree(root, RO_FIDS, '.webp')
    return root


LAF_FIDS = [
    '04_Maurener_Weg_8_000002_000120', '01_Hanns_Klemm_Str_45_000006_000080', '01_Hanns_Klemm_Str_45_000000_000200',
    '15_Rechbergstr_Deckenpfronn_000001_000050', '01_Hanns_Klemm_Str_45_000000_000080'
]


def laf_scene(fid: str) -> str:
    return fid[:-len('_000000_000000')]


def laf_tree(root: str, fids, split: str = 'test', labels: bool = True, code0: int = 0) -> dict:
    """The LostAndFound layout; label values 1 = free space, 2 + code = obstacle id, 0 = void. ``{fid: code}``."""
    codes = {}
    for code, fid in enumerate(sorted(fids), start=code0):
        scene = laf_scene(fid)
        write_image(osp.join(root, 'leftImg8bit', split, scene, f'{fid}_leftImg8bit.png'), code)
        if labels:
            write_label(osp.join(root, 'gtCoarse', split, scene, f'{fid}_gtCoarse_labelIds.png'), code, 1, 2 + code, 0)
        codes[fid] = code
    return codes


# ------------------------------------------------------------------------------------------------ RoadAnomaly21
def test_road_anomaly21_pairs_sorted_and_hidden_test_listed(ra21_root):
    ds = datasets.RoadAnomaly21Dataset(data_root=ra21_root, pipeline=PIPELINE)  # serialized, as in a run
    fids = sorted(RA_FIDS)
    assert [d['fid'] for d in infos(ds)] == fids
    for i, fid in enumerate(fids):
        info = ds.get_data_info(i)
        assert info['img_path'] == osp.join(ra21_root, 'images', fid + '.jpg')
        assert info['seg_map_path'] == (
            osp.join(ra21_root, 'labels_masks', f'{fid}_labels_semantic.png') if RA_FIDS[fid] else None)
        assert info['benchmark'] == 'RoadAnomaly21'
        assert info['anomaly_label_map'] == dict(normal=[0], anomaly=[1], void=[255])
        sample = ds[i]
        assert code_of(sample) == i  # the right image
        if RA_FIDS[fid]:  # the right label, mapped by value
            np.testing.assert_array_equal(sample['data_samples'].gt_anomaly_map.data[0].numpy(), expected_gt(i))
        else:  # hidden test frame: scored, not evaluated
            assert 'gt_anomaly_map' not in sample['data_samples']
        assert 'gt_sem_seg' not in sample['data_samples']
    assert 'classes' not in ds.metainfo and ds.metainfo['anomaly_classes'] == ('normal', 'anomaly')
    assert ds.metainfo['label_encoding'] == dict(normal=[0], anomaly=[1], void=[255])


def test_road_anomaly21_require_labels_keeps_the_labelled(ra21_root):
    ds = RoadAnomaly21Dataset(data_root=ra21_root, require_labels=True)
    assert [d['fid'] for d in infos(ds)] == ['validation0000', 'validation0001']
    assert all(d['seg_map_path'].endswith(d['fid'] + '_labels_semantic.png') for d in infos(ds))


def test_road_anomaly21_without_labels_folder_lists_images(tmp_path):
    root = str(tmp_path / 'ra')
    smiyc_tree(root, {'a0000': False, 'b0000': False}, '.jpg')
    ds = RoadAnomaly21Dataset(data_root=root)
    assert [(d['fid'], d['seg_map_path']) for d in infos(ds)] == [('a0000', None), ('b0000', None)]
    with pytest.raises(DataPathError, match=r"labels_masks.*does not exist.*labels_semantic\.png"):
        RoadAnomaly21Dataset(data_root=root, require_labels=True)


def test_road_anomaly21_require_labels_without_any_label_is_named(tmp_path):
    root = str(tmp_path / 'ra')
    smiyc_tree(root, {'a0000': False}, '.jpg')
    os.makedirs(osp.join(root, 'labels_masks'))
    with pytest.raises(FileNotFoundError, match=r"none of the 1 selected images has its label file .*labels_masks"):
        RoadAnomaly21Dataset(data_root=root, require_labels=True)


def test_road_anomaly21_exclude_prefixes(ra21_root):
    ds = RoadAnomaly21Dataset(data_root=ra21_root, exclude_prefixes=['validation', 'zeb'])
    assert [d['fid'] for d in infos(ds)] == ['cow0001']


def test_missing_root_names_path_and_layout(tmp_path):
    root = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError, match=r"(?s)data_root = '.*nowhere' does not exist.*images/\{fid\}\.jpg"):
        RoadAnomaly21Dataset(data_root=root)


def test_missing_images_folder_is_named(tmp_path):
    os.makedirs(tmp_path / 'labels_masks')
    with pytest.raises(FileNotFoundError, match=r"data_prefix\.img_path = 'images': folder '.*/images' does not"):
        RoadObstacle21Dataset(data_root=str(tmp_path))


def test_no_images_found_is_named(tmp_path):
    os.makedirs(tmp_path / 'images')
    write_image(str(tmp_path / 'images' / 'x.png'), 0)  # a RoadAnomaly21 image is a .jpg
    with pytest.raises(FileNotFoundError, match=r"no \*\.jpg images in '.*/images'.*images/\{fid\}\.jpg"):
        RoadAnomaly21Dataset(data_root=str(tmp_path))


# ------------------------------------------------------------------------------------------------ RoadObstacle21
def test_road_obstacle21_default_is_every_scene(ro21_root):
    ds = RoadObstacle21Dataset(data_root=ro21_root, pipeline=PIPELINE)
    fids = sorted(RO_FIDS)
    assert [d['fid'] for d in infos(ds)] == fids
    assert [d['scene'] for d in infos(ds)] == [f.split('_')[0] for f in fids]
    for i, fid in enumerate(fids):
        sample = ds[i]
        assert code_of(sample) == i
        assert sample['data_samples'].img_path.endswith(fid + '.webp')
        if RO_FIDS[fid]:
            np.testing.assert_array_equal(sample['data_samples'].gt_anomaly_map.data[0].numpy(), expected_gt(i))
        else:
            assert 'gt_anomaly_map' not in sample['data_samples']


@pytest.mark.parametrize('kwargs,expected', [
    (dict(subset='ObstacleTrack-validation'), ['validation_1', 'validation_2']),
    (dict(subset='ObstacleTrack-test'), ['curvy-street_boot_1', 'gravel_log_2']),
    (dict(subset='ObstacleTrack-snowstorm'), ['snowstorm1_00_00_51.868']),
    (dict(subset='ObstacleTrack-night'), ['driveway_cone_1']),
    (dict(subset='ObstacleTrack-noNight'), sorted(set(RO_FIDS) - {'driveway_cone_1'})),
    (dict(subset='ObstacleTrack-all'), sorted(RO_FIDS)),
    (dict(scenes=['gravel', 'driveway']), ['driveway_cone_1', 'gravel_log_2']),
    (dict(scenes='validation', exclude_prefixes=['validation_2']), ['validation_1', 'validation_19']),
    (dict(require_labels=True, exclude_prefixes=['validation_1']), ['validation_2', 'validation_21']),
])
def test_road_obstacle21_subsets(ro21_root, kwargs, expected):
    ds = RoadObstacle21Dataset(data_root=ro21_root, **kwargs)
    assert [d['fid'] for d in infos(ds)] == expected


def test_road_obstacle21_bad_subset_options(ro21_root):
    with pytest.raises(ValueError, match=r"unknown subset 'ObstacleTrack-x'.*ObstacleTrack-validation"):
        RoadObstacle21Dataset(data_root=ro21_root, subset='ObstacleTrack-x')
    with pytest.raises(ValueError, match='not both'):
        RoadObstacle21Dataset(data_root=ro21_root, subset='ObstacleTrack-test', scenes=['gravel'])
    with pytest.raises(FileNotFoundError, match=r"none of the 8 images .* scenes=\['nowhere'\]"):
        RoadObstacle21Dataset(data_root=ro21_root, scenes=['nowhere'])


# ------------------------------------------------------------------------------------------------ LostAndFound
def test_lost_and_found_pairs_by_fid_and_encoding(tmp_path):
    root = str(tmp_path / 'laf')
    codes = laf_tree(root, LAF_FIDS)
    ds = LostAndFoundDataset(data_root=root, pipeline=PIPELINE)
    assert [d['fid'] for d in infos(ds)] == sorted(LAF_FIDS)
    for i, info in enumerate(infos(ds)):
        fid, scene = info['fid'], laf_scene(info['fid'])
        assert info['scene'] == scene and info['split'] == 'test'
        assert info['img_path'] == osp.join(root, 'leftImg8bit', 'test', scene, f'{fid}_leftImg8bit.png')
        assert info['seg_map_path'] == osp.join(root, 'gtCoarse', 'test', scene, f'{fid}_gtCoarse_labelIds.png')
        sample = ds[i]
        assert code_of(sample) == codes[fid] == i
        # on disk: 1 free space, 2 + code obstacle, 0 void -> 0 / 1 / 255
        np.testing.assert_array_equal(sample['data_samples'].gt_anomaly_map.data[0].numpy(), expected_gt(i))


def test_lost_and_found_accepts_webp_images(tmp_path):
    root = str(tmp_path / 'laf')
    fid = LAF_FIDS[0]
    write_image(osp.join(root, 'leftImg8bit', 'test', laf_scene(fid), f'{fid}_leftImg8bit.webp'), 3)
    write_label(osp.join(root, 'gtCoarse', 'test', laf_scene(fid), f'{fid}_gtCoarse_labelIds.png'), 3, 1, 200, 0)
    ds = LostAndFoundDataset(data_root=root, pipeline=PIPELINE)
    assert [d['fid'] for d in infos(ds)] == [fid]
    sample = ds[0]
    assert code_of(sample) == 3
    np.testing.assert_array_equal(sample['data_samples'].gt_anomaly_map.data[0].numpy(), expected_gt(3))


def _empty_laf_tree(root: str, n: int) -> list:
    """``n`` frames (zero-byte files: listing never reads them) over a few scenes, incl. the 'known' prefixes."""
    scenes = ['01_Hanns_Klemm_Str_45', '10_Schlossberg_9', '15_Rechbergstr_Deckenpfronn', '04_Maurener_Weg_8']
    fids = [f'{scenes[i % 4]}_{i % 11:06d}_{i:06d}' for i in range(n)]
    for fid in fids:
        for folder, suffix in (('leftImg8bit', '_leftImg8bit.png'), ('gtCoarse', '_gtCoarse_labelIds.png')):
            path = osp.join(root, folder, 'test', laf_scene(fid), fid + suffix)
            os.makedirs(osp.dirname(path), exist_ok=True)
            open(path, 'wb').close()
    return sorted(fids)


def test_lost_and_found_official_subsets_exclude_by_sorted_index_then_prefix(tmp_path):
    root = str(tmp_path / 'laf')
    fids = _empty_laf_tree(root, 800)
    invalid = set(LOST_AND_FOUND_INVALID_TEST_FRAMES)
    valid = [f for i, f in enumerate(fids) if i not in invalid]
    ds = LostAndFoundDataset(data_root=root, subset='LostAndFound-testValid')
    assert [d['fid'] for d in infos(ds)] == valid and len(valid) == 800 - 17
    no_known = [f for f in valid if not f.startswith(LOST_AND_FOUND_KNOWN_PREFIXES)]
    assert len(no_known) < len(valid) - 200  # the tree holds every 4th frame in 15_Rechbergstr_Deckenpfronn
    ds = LostAndFoundDataset(data_root=root, subset='LostAndFound-testNoKnown')
    assert [d['fid'] for d in infos(ds)] == no_known
    assert not any(d['fid'].startswith('10_Schlossberg_9_000004') for d in infos(ds))
    assert any(d['fid'].startswith('10_Schlossberg_9_000003') for d in infos(ds))
    assert len(LostAndFoundDataset(data_root=root, subset='LostAndFound-test')) == 800
    assert LOST_AND_FOUND_SUBSETS['LostAndFound-testNoKnown']['expected_length'] == 1043


def test_lost_and_found_explicit_exclusions(tmp_path):
    root = str(tmp_path / 'laf')
    laf_tree(root, LAF_FIDS)
    fids = sorted(LAF_FIDS)
    ds = LostAndFoundDataset(data_root=root, exclude_frame_indices=[0, 3], exclude_prefixes=['15_'])
    assert [d['fid'] for d in infos(ds)] == [fids[1], fids[2]]
    with pytest.raises(
            ValueError, match=r'exclude_frame_indices \[17, 37, 55, .*, 793\] are beyond the 5 frames found'):
        LostAndFoundDataset(data_root=root, subset='LostAndFound-testValid')
    with pytest.raises(ValueError, match="subset 'LostAndFound-test' is of split 'test', not split='train'"):
        LostAndFoundDataset(data_root=root, subset='LostAndFound-test', split='train')
    with pytest.raises(ValueError, match='not both'):
        LostAndFoundDataset(data_root=root, subset='LostAndFound-test', exclude_prefixes=['01'])


def test_lost_and_found_train_split(tmp_path):
    root = str(tmp_path / 'laf')
    laf_tree(root, LAF_FIDS[:2], split='train')
    ds = LostAndFoundDataset(data_root=root, split='train')
    assert [d['split'] for d in infos(ds)] == ['train', 'train']
    with pytest.raises(FileNotFoundError, match=r"split 'test': folder '.*leftImg8bit/test' does not exist"):
        LostAndFoundDataset(data_root=root)


def test_lost_and_found_image_without_label_is_named(tmp_path):
    root = str(tmp_path / 'laf')
    laf_tree(root, LAF_FIDS)
    fid = sorted(LAF_FIDS)[2]
    victim = osp.join(root, 'gtCoarse', 'test', laf_scene(fid), f'{fid}_gtCoarse_labelIds.png')
    os.remove(victim)
    with pytest.raises(FileNotFoundError, match=rf'(?s)1 of 5 images .* no label file.*{victim}.*gtCoarse_labelIds'):
        LostAndFoundDataset(data_root=root)
    # the integrity check lists it instead (check_files=False): the path is kept for it to report
    ds = LostAndFoundDataset(data_root=root, check_files=False)
    assert ds.get_data_info(2)['seg_map_path'] == victim


def test_lost_and_found_bad_fid_is_named(tmp_path):
    root = str(tmp_path / 'laf')
    write_image(osp.join(root, 'leftImg8bit', 'test', '01_x', 'frame1_leftImg8bit.png'), 0)
    os.makedirs(osp.join(root, 'gtCoarse', 'test'))
    with pytest.raises(ValueError, match=r"frame1_leftImg8bit\.png'.*'frame1' is not a LostAndFound id"):
        LostAndFoundDataset(data_root=root)


# ------------------------------------------------------------------------------------------------ Fishyscapes L&F
FISHY_FIDS = {  # fid -> LostAndFound split holding the image
    '01_Hanns_Klemm_Str_45_000000_000080': 'test',
    '04_Maurener_Weg_8_000001_000030': 'test',
    '13_Elly_Beinhorn_Str_000002_000030': 'train',
}


def fishy_tree(tmp_path) -> tuple:
    fishy, laf = str(tmp_path / 'dataset_FishyLAF'), str(tmp_path / 'dataset_LostAndFound')
    for code, fid in enumerate(sorted(FISHY_FIDS)):
        write_image(osp.join(laf, 'leftImg8bit', FISHY_FIDS[fid], laf_scene(fid), f'{fid}_leftImg8bit.png'), code)
        write_label(osp.join(fishy, 'labels', 'val', f'{fid}_fishy-labels.png'), code, 0, 1, 255)
    # a LostAndFound frame without a Fishyscapes label is not in the set
    laf_tree(laf, ['02_Hanns_Klemm_Str_44_000000_000010'], split='test', code0=9)
    return fishy, laf


def test_fishyscapes_pairs_labels_with_laf_images(tmp_path):
    fishy, laf = fishy_tree(tmp_path)
    ds = FishyscapesLAFDataset(data_root=fishy, laf_root=laf, pipeline=PIPELINE)
    assert [d['fid'] for d in infos(ds)] == sorted(FISHY_FIDS)
    for i, info in enumerate(infos(ds)):
        fid = info['fid']
        assert info['laf_split'] == FISHY_FIDS[fid]
        assert info['img_path'] == osp.join(laf, 'leftImg8bit', FISHY_FIDS[fid], laf_scene(fid),
                                            f'{fid}_leftImg8bit.png')
        assert info['seg_map_path'] == osp.join(fishy, 'labels', 'val', f'{fid}_fishy-labels.png')
        sample = ds[i]
        assert code_of(sample) == i
        np.testing.assert_array_equal(sample['data_samples'].gt_anomaly_map.data[0].numpy(), expected_gt(i))


def test_fishyscapes_prefers_the_train_copy(tmp_path):
    fishy, laf = fishy_tree(tmp_path)
    fid = '04_Maurener_Weg_8_000001_000030'
    write_image(osp.join(laf, 'leftImg8bit', 'train', laf_scene(fid), f'{fid}_leftImg8bit.png'), 7)
    ds = FishyscapesLAFDataset(data_root=fishy, laf_root=laf)
    info = [d for d in infos(ds) if d['fid'] == fid][0]
    assert info['laf_split'] == 'train' and '/leftImg8bit/train/' in info['img_path']


def test_fishyscapes_label_without_laf_image_is_named(tmp_path):
    fishy, laf = fishy_tree(tmp_path)
    fid = '01_Hanns_Klemm_Str_45_000000_000080'
    os.remove(osp.join(laf, 'leftImg8bit', 'test', laf_scene(fid), f'{fid}_leftImg8bit.png'))
    label = osp.join(fishy, 'labels', 'val', f'{fid}_fishy-labels.png')
    expected = osp.join(laf, 'leftImg8bit', 'train', laf_scene(fid), f'{fid}_leftImg8bit.png')
    with pytest.raises(
            FileNotFoundError, match=rf"(?s)1 of 3 labels .* no LostAndFound image.*{label}: no image "
            rf"{expected}"):
        FishyscapesLAFDataset(data_root=fishy, laf_root=laf)


def test_fishyscapes_missing_laf_root_and_labels_are_named(tmp_path):
    fishy, laf = fishy_tree(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"laf_root = '.*nowhere'.*leftImg8bit' does not exist"):
        FishyscapesLAFDataset(data_root=fishy, laf_root=str(tmp_path / 'nowhere'))
    with pytest.raises(FileNotFoundError, match='laf_root is not set'):
        FishyscapesLAFDataset(data_root=fishy)
    with pytest.raises(FileNotFoundError, match=r"split 'test': folder '.*labels/test' does not exist"):
        FishyscapesLAFDataset(data_root=fishy, laf_root=laf, split='test')


# ------------------------------------------------------------------------------------------------ base configs
def _dataset_from_config(name: str, **overrides):
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', f'{name}.py'))
    loader = cfg[f'{name}_test_dataloader']
    assert loader.sampler.shuffle is False and loader.batch_size == 1
    assert [t['type'] for t in loader.dataset.pipeline
            ] == ['LoadImageFromFileWithRetry', 'Resize', 'LoadAnomalyAnnotations', 'PackAnomalySegInputs']
    return DATASETS.build(dict(loader.dataset, serialize_data=False, **overrides)), cfg


def assert_aligned_after_resize(sample, code: int) -> None:
    """The packed image (resized) and ``gt_anomaly_map`` (original size) show the same anomaly, by value."""
    meta = sample['data_samples'].metainfo
    gt = sample['data_samples'].gt_anomaly_map.data[0].numpy()
    np.testing.assert_array_equal(gt, expected_gt(code))
    assert tuple(meta['ori_shape']) == gt.shape == (H, W)
    img = sample['inputs'].numpy()
    h, w = img.shape[1:]
    assert (h, w) == tuple(meta['img_shape']) == (640, 1280)  # 16x32 fitted into (1280, 720), keep_ratio: x40
    # the centre of every source pixel in the resized image: bright (anomaly) exactly where gt says so
    ys = (np.arange(H) * h // H + h // (2 * H))
    xs = (np.arange(W) * w // W + w // (2 * W))
    bright = img[0][np.ix_(ys, xs)] > 135
    np.testing.assert_array_equal(bright, anomaly_mask(code))


@pytest.mark.parametrize('name', ['road_anomaly21', 'road_obstacle21'])
def test_smiyc_base_configs_pipeline(tmp_path, name):
    root = str(tmp_path / name)
    smiyc_tree(root, {'validation_0': True, 'validation_1': False}, '.jpg' if name == 'road_anomaly21' else '.webp')
    ds, cfg = _dataset_from_config(name, data_root=root)
    assert len(ds) == 2
    assert_aligned_after_resize(ds[0], 0)
    hidden = ds[1]
    assert code_of(hidden) == 1 and 'gt_anomaly_map' not in hidden['data_samples']


def test_lost_and_found_base_config_pipeline(tmp_path):
    root = str(tmp_path / 'laf')
    laf_tree(root, LAF_FIDS[:2])
    ds, cfg = _dataset_from_config('lost_and_found', data_root=root, subset=None)
    assert cfg.lost_and_found_test_dataloader.dataset.subset == 'LostAndFound-testNoKnown'
    assert len(ds) == 2
    for i in range(2):
        assert_aligned_after_resize(ds[i], i)


def test_fishyscapes_base_config_pipeline(tmp_path):
    fishy, laf = fishy_tree(tmp_path)
    ds, _ = _dataset_from_config('fishyscapes_laf', data_root=fishy, laf_root=laf)
    assert len(ds) == 3
    assert_aligned_after_resize(ds[2], 2)


def test_the_four_base_configs_inherit_together(tmp_path):
    """One config can take all four bases: no key is defined twice."""
    names = ('road_anomaly21', 'road_obstacle21', 'fishyscapes_laf', 'lost_and_found')
    path = tmp_path / 'all_four.py'
    path.write_text(f"_base_ = {[osp.join(REPO, 'configs/_base_/datasets', n + '.py') for n in names]}\n")
    cfg = Config.fromfile(str(path))
    assert {cfg[f'{n}_test_dataloader'].dataset.type
            for n in names
            } == {'RoadAnomaly21Dataset', 'RoadObstacle21Dataset', 'FishyscapesLAFDataset', 'LostAndFoundDataset'}
