"""Bad inputs to the test pipeline: grayscale / RGBA / 16-bit / huge images, empty folders, non-image files.

(``tools/infer.py`` is covered by its own tests once it exists.)
"""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmseg.registry import DATASETS, MODELS
from tool_runner import DEMO_CONFIG

from anomseg_plugins.datasets.transforms.load_image_from_file_with_retry import ImageReadError


@pytest.fixture(scope='module')
def demo_cfg(repo_root):
    return Config.fromfile(osp.join(repo_root, DEMO_CONFIG))


def image_pipeline(cfg, loader: str = 'LoadImageFromFile'):
    """The config's test pipeline for images without annotations (as inference uses it)."""
    steps = [dict(t) for t in cfg.test_pipeline if t['type'] != 'LoadStreetHazardsAnnotations']
    steps[0]['type'] = loader
    return Compose(steps)


def write_images(folder) -> dict:
    rng = np.random.default_rng(0)
    images = {
        'gray.png': rng.integers(0, 256, (90, 120), dtype=np.uint8),
        'rgba.png': rng.integers(0, 256, (90, 120, 4), dtype=np.uint8),
        'gray16.png': rng.integers(0, 65536, (90, 120), dtype=np.uint16),
        'rgb.jpg': rng.integers(0, 256, (90, 120, 3), dtype=np.uint8),
    }
    paths = {}
    for name, arr in images.items():
        paths[name] = str(folder / name)
        assert cv2.imwrite(paths[name], arr)
    return paths


@pytest.mark.parametrize('loader', ['LoadImageFromFile', 'LoadImageFromFileWithRetry'])
def test_gray_rgba_16bit_become_3_channel_uint8_and_predict(demo_cfg, tmp_path, loader):
    paths = write_images(tmp_path)
    pipeline = image_pipeline(demo_cfg, loader)
    model = MODELS.build(demo_cfg.model).eval()
    for name, path in paths.items():
        packed = pipeline(dict(img_path=path))
        img = packed['inputs']
        assert img.dtype == torch.uint8 and img.shape[0] == 3, name  # (3, H, W) whatever the file held
        assert packed['data_samples'].ori_shape == (90, 120)
        with torch.no_grad():
            (pred, ) = model.test_step(pseudo_collate([packed]))
        # logits and prediction come back at the original image size
        assert tuple(pred.seg_logits.data.shape) == (13, 90, 120), name
        assert tuple(pred.pred_sem_seg.data.shape) == (1, 90, 120)
        assert torch.isfinite(pred.seg_logits.data).all()


def test_alpha_is_dropped_not_blended(demo_cfg, tmp_path):
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[..., 3] = 0  # fully transparent: the colour is still what the model sees
    path = str(tmp_path / 'transparent.png')
    cv2.imwrite(path, rgba)
    results = Compose([dict(type='LoadImageFromFile')])(dict(img_path=path))
    assert results['img'].shape == (10, 10, 3) and (results['img'] == (10, 20, 30)).all()


def test_huge_image_is_resized_to_the_test_scale(demo_cfg, tmp_path):
    path = str(tmp_path / 'huge.png')
    cv2.imwrite(path, np.full((2250, 4000), 128, np.uint8))  # 9 Mpx grayscale
    packed = image_pipeline(demo_cfg)(dict(img_path=path))
    scale = demo_cfg.img_scale  # (480, 270): the longer side fits 480, the shorter 270, aspect kept
    h, w = packed['inputs'].shape[-2:]
    assert (h, w) == (270, 480)
    assert packed['data_samples'].ori_shape == (2250, 4000)
    assert packed['data_samples'].scale_factor == pytest.approx((w / 4000, h / 2250))
    assert max(h, w) <= max(scale) and min(h, w) <= min(scale)


def test_empty_folder_names_the_split(tmp_path):
    (tmp_path / 'train/images/training/t1-3').mkdir(parents=True)
    (tmp_path / 'train/annotations/training/t1-3').mkdir(parents=True)
    (tmp_path / 'train/images/training/t1-3/readme.txt').write_text('not data')
    with pytest.raises(FileNotFoundError, match=r"holds no \*\.png images"):
        DATASETS.build(
            dict(
                type='StreetHazardsDataset',
                data_root=str(tmp_path),
                pipeline=[],
                data_prefix=dict(img_path='train/images/training', seg_map_path='train/annotations/training')))


def test_non_image_files(tmp_path):
    folder = tmp_path / 'imgs'
    folder.mkdir()
    (folder / 'notes.txt').write_text('ignored: wrong suffix')
    (folder / 'fake.png').write_text('a text file named .png')
    ds = DATASETS.build(
        dict(
            type='StreetHazardsDataset',
            data_root=str(tmp_path),
            data_prefix=dict(img_path='imgs'),
            pipeline=[dict(type='LoadImageFromFileWithRetry', max_retries=0)]))
    assert len(ds) == 1 and osp.basename(ds.get_data_info(0)['img_path']) == 'fake.png'  # only *.png is listed
    with pytest.raises(ImageReadError, match='fake.png: the bytes do not decode as an image'):
        ds[0]
