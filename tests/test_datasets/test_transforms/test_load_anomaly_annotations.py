"""LoadAnomalyAnnotations and the label encodings: mapping by value, errors, mmseg's transforms without gt_seg_map."""
import cv2
import numpy as np
import pytest
from mmseg.datasets.transforms import PackSegInputs
from mmseg.registry import TRANSFORMS
from PIL import Image

import anomseg_plugins  # noqa: F401  (registers the transforms)
from anomseg_plugins.datasets import (FISHYSCAPES_LAF_ENCODING, LOST_AND_FOUND_ENCODING, ROAD_ANOMALY21_ENCODING,
                                      ROAD_OBSTACLE21_ENCODING, describe_label_encoding, map_anomaly_labels,
                                      normalize_label_encoding)
from anomseg_plugins.datasets.transforms import ImageReadError, LoadAnomalyAnnotations, PackAnomalySegInputs


def write(tmp_path, raw: np.ndarray, name: str = 'label.png') -> str:
    path = str(tmp_path / name)
    assert cv2.imwrite(path, raw)
    return path


def results_for(path, encoding=None, **extra) -> dict:
    res = dict(seg_map_path=path, seg_fields=[], reduce_zero_label=False, benchmark='TestSet', **extra)
    if encoding is not None:
        res['anomaly_label_map'] = encoding
    return res


# ------------------------------------------------------------------------------------------------ encodings
@pytest.mark.parametrize('encoding', [ROAD_ANOMALY21_ENCODING, ROAD_OBSTACLE21_ENCODING, FISHYSCAPES_LAF_ENCODING])
def test_zero_one_void_encodings_map_by_value(encoding):
    raw = np.array([[0, 1, 255], [1, 0, 0]], np.uint8)
    out = map_anomaly_labels(raw, encoding)
    np.testing.assert_array_equal(out, [[0, 1, 255], [1, 0, 0]])
    assert out.dtype == np.uint8


def test_lost_and_found_encoding_maps_every_obstacle_id():
    raw = np.array([[0, 1, 2, 3], [37, 100, 199, 200]], np.uint8)
    out = map_anomaly_labels(raw, LOST_AND_FOUND_ENCODING)
    np.testing.assert_array_equal(out, [[255, 0, 1, 1], [1, 1, 1, 1]])
    full = np.arange(0, 201, dtype=np.uint8).reshape(1, -1)
    np.testing.assert_array_equal(map_anomaly_labels(full, LOST_AND_FOUND_ENCODING)[0], [255, 0] + [1] * 199)


@pytest.mark.parametrize('bad', [201, 254, 255])
def test_value_outside_encoding_names_file_values_and_encoding(bad):
    raw = np.ones((3, 4), np.uint8)
    raw[1, 1] = raw[2, 3] = bad
    with pytest.raises(
            ValueError,
            match=rf"x\.png holds value\(s\) \[{bad}\] at 2 pixel\(s\) outside its encoding; "
            r'expected normal = 1, anomaly = 2\.\.200, void = 0'):
        map_anomaly_labels(raw, LOST_AND_FOUND_ENCODING, source='x.png')


def test_unknown_values_as_void_like_the_official_code():
    raw = np.array([[0, 1, 7]], np.uint8)
    np.testing.assert_array_equal(map_anomaly_labels(raw, ROAD_ANOMALY21_ENCODING, on_unknown='void'), [[0, 1, 255]])


def test_sixteen_bit_label_maps():
    raw = np.array([[0, 1, 300]], np.uint16)
    enc = dict(normal=[0], anomaly=[[1, 1000]])
    np.testing.assert_array_equal(map_anomaly_labels(raw, enc), [[0, 1, 1]])


@pytest.mark.parametrize('encoding,match', [
    (dict(normal=[0]), r"missing \['anomaly'\]"),
    (dict(normal=[0], anomaly=[1], ignore=[255]), r"unknown \['ignore'\]"),
    (dict(normal=[[0, 5]], anomaly=[3]), r'values 3\.\.3 are both normal and anomaly'),
    (dict(normal=[0], anomaly=[[5, 2]]), r'anomaly entry \[5, 2\] is neither'),
    (dict(normal=[-1], anomaly=[1]), r'normal entry -1 is neither'),
    (dict(normal='0', anomaly=[1]), r"normal = '0'; expected a list"),
])
def test_bad_encodings_are_named(encoding, match):
    with pytest.raises(ValueError, match=match):
        normalize_label_encoding(encoding)


def test_encoding_forms():
    assert normalize_label_encoding(dict(normal=1, anomaly=[(2, 200)], void=[0])) == dict(
        normal=((1, 1), ), anomaly=((2, 200), ), void=((0, 0), ))
    assert describe_label_encoding(dict(normal=[0, 3], anomaly=[1])) == 'normal = 0, 3, anomaly = 1'


# ------------------------------------------------------------------------------------------------ transform
def test_transform_reads_and_maps_by_the_data_info_encoding(tmp_path):
    raw = np.array([[0, 1, 2], [200, 1, 0]], np.uint8)
    path = write(tmp_path, raw)
    res = LoadAnomalyAnnotations()(results_for(path, LOST_AND_FOUND_ENCODING, ori_shape=(2, 3)))
    np.testing.assert_array_equal(res['gt_anomaly_map'], [[255, 0, 1], [1, 0, 255]])
    assert res['gt_anomaly_map'].dtype == np.uint8
    assert res['seg_fields'] == ['gt_anomaly_map'] and 'gt_seg_map' not in res


def test_transform_label_encoding_overrides(tmp_path):
    path = write(tmp_path, np.array([[5, 6]], np.uint8))
    res = LoadAnomalyAnnotations(label_encoding=dict(normal=[5], anomaly=[6]))(
        results_for(path, ROAD_ANOMALY21_ENCODING))
    np.testing.assert_array_equal(res['gt_anomaly_map'], [[0, 1]])


def test_transform_without_label_adds_nothing():
    res = LoadAnomalyAnnotations()(results_for(None, ROAD_ANOMALY21_ENCODING))
    assert 'gt_anomaly_map' not in res and res['seg_fields'] == []


def test_transform_unknown_value_names_the_file(tmp_path):
    path = write(tmp_path, np.array([[0, 1, 3]], np.uint8), 'frame7_labels_semantic.png')
    with pytest.raises(
            ValueError,
            match=r'frame7_labels_semantic\.png \(TestSet\) holds value\(s\) \[3\] at 1 '
            r'pixel\(s\).*expected normal = 0, anomaly = 1, void = 255'):
        LoadAnomalyAnnotations()(results_for(path, ROAD_ANOMALY21_ENCODING))
    res = LoadAnomalyAnnotations(on_unknown='void')(results_for(path, ROAD_ANOMALY21_ENCODING))
    np.testing.assert_array_equal(res['gt_anomaly_map'], [[0, 1, 255]])


def test_transform_size_mismatch_names_both_files(tmp_path):
    path = write(tmp_path, np.zeros((4, 5), np.uint8), 'small.png')
    with pytest.raises(ValueError, match=r'TestSet label .*small\.png is 5x4 but its image img\.jpg is 10x8'):
        LoadAnomalyAnnotations()(results_for(path, ROAD_ANOMALY21_ENCODING, ori_shape=(8, 10), img_path='img.jpg'))


def test_transform_needs_an_encoding(tmp_path):
    path = write(tmp_path, np.zeros((2, 2), np.uint8))
    with pytest.raises(KeyError, match='no `anomaly_label_map`'):
        LoadAnomalyAnnotations()(results_for(path))


def test_transform_rejects_colour_labels(tmp_path):
    path = write(tmp_path, np.zeros((2, 2, 3), np.uint8), 'rgb.png')
    with pytest.raises(ValueError, match=r'rgb\.png \(TestSet\) has shape \(2, 2, 3\).*single-channel'):
        LoadAnomalyAnnotations()(results_for(path, ROAD_ANOMALY21_ENCODING))


def test_transform_reads_palette_png_indices(tmp_path):
    path = str(tmp_path / 'palette.png')
    img = Image.fromarray(np.array([[0, 1], [255, 0]], np.uint8), mode='P')
    img.putpalette([0, 0, 0, 255, 255, 255] + [9, 9, 9] * 254)
    img.save(path)
    res = LoadAnomalyAnnotations()(results_for(path, FISHYSCAPES_LAF_ENCODING))
    np.testing.assert_array_equal(res['gt_anomaly_map'], [[0, 1], [255, 0]])


def test_transform_missing_file_names_it(tmp_path):
    path = str(tmp_path / 'gone.png')
    with pytest.raises(ImageReadError, match=r'TestSet label .*gone\.png does not exist'):
        LoadAnomalyAnnotations(max_retries=0)(results_for(path, ROAD_ANOMALY21_ENCODING))


def test_transform_rejects_bad_options():
    with pytest.raises(ValueError, match="on_unknown must be 'error' or 'void'"):
        LoadAnomalyAnnotations(on_unknown='ignore')
    with pytest.raises(ValueError, match=r"LoadAnomalyAnnotations\.label_encoding: .*missing \['anomaly'\]"):
        LoadAnomalyAnnotations(label_encoding=dict(normal=[0]))


# ------------------------------------------------------------------------------------------------ mmseg transforms
def loaded_sample(tmp_path, h: int = 6, w: int = 8) -> dict:
    """An image whose blue channel is its column index, a label with the anomaly on columns 0..2, void on row 0."""
    raw = np.zeros((h, w), np.uint8)
    raw[:, :3] = 1
    raw[0] = 255
    path = write(tmp_path, raw)
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.arange(w)[None, :] * 10
    results = results_for(path, ROAD_ANOMALY21_ENCODING, img=img, img_shape=(h, w), ori_shape=(h, w))
    return LoadAnomalyAnnotations()(results)


def test_mmseg_resize_moves_the_anomaly_map_nearest(tmp_path):
    res = loaded_sample(tmp_path)
    out = TRANSFORMS.build(dict(type='Resize', scale=(16, 12), keep_ratio=True))(res)
    gt = out['gt_anomaly_map']
    assert gt.shape == out['img'].shape[:2] == (12, 16)
    assert set(np.unique(gt)) == {0, 1, 255}  # nearest: no interpolated values
    expected = np.zeros((12, 16), np.uint8)
    expected[:, :6] = 1
    expected[:2] = 255
    np.testing.assert_array_equal(gt, expected)


def test_mmseg_random_flip_flips_the_anomaly_map(tmp_path):
    res = loaded_sample(tmp_path)
    before = res['gt_anomaly_map'].copy()
    out = TRANSFORMS.build(dict(type='RandomFlip', prob=1.0, direction='horizontal'))(res)
    np.testing.assert_array_equal(out['gt_anomaly_map'], before[:, ::-1])
    np.testing.assert_array_equal(out['img'][0, :, 0], np.arange(8)[::-1] * 10)


@pytest.mark.parametrize('pack', [PackAnomalySegInputs, PackSegInputs])
def test_packing_without_gt_seg_map(tmp_path, pack):
    res = loaded_sample(tmp_path)
    sample = pack()(res)['data_samples']
    assert 'gt_sem_seg' not in sample
    if pack is PackAnomalySegInputs:
        data = sample.gt_anomaly_map.data
        assert tuple(data.shape) == (1, 6, 8) and str(data.dtype) == 'torch.uint8'
        np.testing.assert_array_equal(data[0].numpy(), res['gt_anomaly_map'])
    else:
        assert 'gt_anomaly_map' not in sample
    assert sample.metainfo['seg_map_path'] == res['seg_map_path']


def test_packing_a_hidden_test_frame():
    res = LoadAnomalyAnnotations()(
        results_for(None, ROAD_ANOMALY21_ENCODING, img=np.zeros((4, 4, 3), np.uint8), img_shape=(4, 4)))
    sample = PackAnomalySegInputs()(res)['data_samples']
    assert 'gt_anomaly_map' not in sample and 'gt_sem_seg' not in sample
    assert sample.metainfo['seg_map_path'] is None
