"""StreetHazardsDataset + LoadStreetHazardsAnnotations: layout, label mapping and errors."""
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest

import anomseg_plugins  # noqa: F401
from anomseg_plugins.datasets import SPLIT_PREFIXES, StreetHazardsDataset
from anomseg_plugins.datasets.transforms import (LoadStreetHazardsAnnotations, PackAnomalySegInputs,
                                                 map_street_hazards_labels)

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadStreetHazardsAnnotations'),
    dict(type='PackAnomalySegInputs')
]


def test_label_mapping_every_class():
    raw = np.arange(1, 15, dtype=np.uint8).reshape(2, 7)
    seg, anomaly = map_street_hazards_labels(raw)
    expected = np.arange(0, 14).reshape(2, 7)
    expected[expected == 13] = 255
    np.testing.assert_array_equal(seg, expected)
    np.testing.assert_array_equal(anomaly, (raw == 14).astype(np.uint8))
    assert seg.dtype == np.uint8 and anomaly.dtype == np.uint8


@pytest.mark.parametrize('bad', [0, 15, 255])
def test_label_mapping_out_of_range_names_file_and_value(bad):
    raw = np.full((4, 4), 3, dtype=np.uint8)
    raw[1, 2] = bad
    with pytest.raises(ValueError, match=rf'x\.png holds label value\(s\) \[{bad}\].*expected values in 1\.\.14'):
        map_street_hazards_labels(raw, source='x.png')


def test_label_mapping_rejects_colour_annotation():
    with pytest.raises(ValueError, match='single-channel'):
        map_street_hazards_labels(np.ones((4, 4, 3), np.uint8), source='c.png')


def test_load_transform_reads_png(tmp_path):
    raw = np.array([[1, 14], [7, 13]], dtype=np.uint8)
    path = str(tmp_path / 'a.png')
    cv2.imwrite(path, raw)
    results = LoadStreetHazardsAnnotations()(dict(seg_map_path=path, seg_fields=[], reduce_zero_label=False))
    np.testing.assert_array_equal(results['gt_seg_map'], [[0, 255], [6, 12]])
    np.testing.assert_array_equal(results['gt_anomaly_map'], [[0, 1], [0, 0]])
    assert results['seg_fields'] == ['gt_seg_map', 'gt_anomaly_map']


def test_pack_carries_anomaly_mask():
    results = dict(
        img=np.zeros((2, 3, 3), np.uint8),
        gt_seg_map=np.array([[0, 255, 3], [1, 2, 3]], np.uint8),
        gt_anomaly_map=np.array([[0, 1, 0], [0, 0, 0]], np.uint8),
        seg_fields=[])
    sample = PackAnomalySegInputs()(results)['data_samples']
    assert sample.gt_anomaly_map.data.shape == (1, 2, 3)
    assert sample.gt_anomaly_map.data.sum().item() == 1
    assert sample.gt_sem_seg.data[0, 0, 1].item() == 255


@pytest.mark.parametrize('split,expected', [('train', 8), ('val', 4), ('test', 6)])
def test_dataset_reads_generated_layout(tiny_street_hazards, split, expected):
    ds = StreetHazardsDataset(data_root=tiny_street_hazards, data_prefix=SPLIT_PREFIXES[split], pipeline=PIPELINE)
    assert len(ds) == expected
    assert ds.metainfo['classes'][0] == 'unlabeled' and len(ds.metainfo['classes']) == 13
    assert len(ds.metainfo['palette']) == 13
    sample = ds[0]['data_samples']
    gt = sample.gt_sem_seg.data.numpy()
    assert set(np.unique(gt)) <= set(range(13)) | {255}
    anomaly = sample.gt_anomaly_map.data.numpy()
    # anomaly pixels and only they are ignored in the closed-set map
    np.testing.assert_array_equal(anomaly == 1, gt == 255)
    if split != 'test':
        assert anomaly.sum() == 0


def test_dataset_test_split_has_anomalies(tiny_street_hazards):
    ds = StreetHazardsDataset(data_root=tiny_street_hazards, data_prefix=SPLIT_PREFIXES['test'], pipeline=PIPELINE)
    total = sum(int(ds[i]['data_samples'].gt_anomaly_map.data.sum()) for i in range(len(ds)))
    assert total > 0


def test_missing_root_is_named(tmp_path):
    root = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError, match='nowhere.*does not exist.*generate_streethazards'):
        StreetHazardsDataset(data_root=root, data_prefix=SPLIT_PREFIXES['train'])


def test_empty_split_is_named(tmp_path):
    for sub in ('train/images/training/t1-3', 'train/annotations/training/t1-3'):
        os.makedirs(tmp_path / sub)
    with pytest.raises(FileNotFoundError, match=r'train/images/training.*holds no \*\.png images'):
        StreetHazardsDataset(data_root=str(tmp_path), data_prefix=SPLIT_PREFIXES['train'])


def test_image_without_annotation_is_named(tiny_street_hazards, tmp_path):
    root = str(tmp_path / 'copy')
    shutil.copytree(tiny_street_hazards, root)
    ann_dir = osp.join(root, 'train/annotations/validation/t4')
    victim = sorted(os.listdir(ann_dir))[0]
    os.remove(osp.join(ann_dir, victim))
    with pytest.raises(FileNotFoundError, match=rf'(?s)1 of 4 images .* no annotation.*{victim}'):
        StreetHazardsDataset(data_root=root, data_prefix=SPLIT_PREFIXES['val'])


def test_load_transform_rejects_annotation_of_other_size(tmp_path):
    path = str(tmp_path / 'small.png')
    cv2.imwrite(path, np.ones((4, 5), np.uint8))
    results = dict(seg_map_path=path, seg_fields=[], reduce_zero_label=False, ori_shape=(8, 10), img_path='img.png')
    with pytest.raises(ValueError, match=r'small\.png is 5x4 but its image img\.png is 10x8'):
        LoadStreetHazardsAnnotations()(results)


def test_missing_prefix_folder_names_key_and_path(tiny_street_hazards):
    """The dataset raises the message of the shared path check (also used by config and integrity checks)."""
    from anomseg_plugins.datasets import DataPathError, data_path_problems
    prefix = dict(SPLIT_PREFIXES['val'], seg_map_path='train/annotations/validaton')
    with pytest.raises(DataPathError) as info:
        StreetHazardsDataset(data_root=tiny_street_hazards, data_prefix=prefix)
    assert str(info.value) == str(data_path_problems(tiny_street_hazards, prefix)[0])
    assert str(info.value).startswith("data_prefix.seg_map_path = 'train/annotations/validaton': folder "
                                      f"'{tiny_street_hazards}/train/annotations/validaton' does not exist.")


def test_check_files_off_lists_pairs_as_found(tiny_street_hazards, tmp_path):
    """``check_files=False`` (the integrity check) lists images without annotation instead of raising."""
    root = str(tmp_path / 'copy')
    shutil.copytree(tiny_street_hazards, root)
    os.remove(osp.join(root, 'train/annotations/validation/t4', '0.png'))
    ds = StreetHazardsDataset(data_root=root, data_prefix=SPLIT_PREFIXES['val'], check_files=False)
    assert len(ds) == 4 and not osp.exists(ds.get_data_info(0)['seg_map_path'])
