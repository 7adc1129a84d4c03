"""Every config under configs/ loads, builds and runs on a small CPU input; declared aux heads contribute a loss.

Parametrised over the directory, so a new config is covered without touching this file.
"""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.structures import PixelData
from mmseg.registry import MODELS, TRANSFORMS
from mmseg.structures import SegDataSample

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if f'{osp.sep}_base_{osp.sep}' not in p)

# Smallest input a head accepts: LR-ASPP average-pools its stride-8 features with a 49x49 kernel.
MIN_INPUT = {'LRASPPHead': 400}


def _input_size(cfg):
    head = cfg.model.decode_head
    return max([64] + [MIN_INPUT.get(h.type, 0) for h in (head if isinstance(head, list) else [head])])


def _rel(path):
    return osp.relpath(path, REPO)


def _build(cfg, size):
    cfg.model.pretrained = None
    if cfg.model.get('backbone', {}).get('init_cfg') is not None:
        cfg.model.backbone.init_cfg = None
    if cfg.model.get('backbone', {}).get('img_size') is not None:  # built for one input size (Hiera)
        cfg.model.backbone.img_size = (size, size)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    return model


def _num_classes(cfg):
    head = cfg.model.decode_head
    return (head[-1] if isinstance(head, list) else head).num_classes


def _aux_prefixes(cfg):
    """Loss-key prefixes of the auxiliary heads a config declares."""
    if cfg.model.get('auxiliary_head') is not None:
        return ['aux.']
    if isinstance(cfg.model.decode_head, list):  # cascade: every stage but the last is auxiliary
        return [f'decode_{i}.' for i in range(len(cfg.model.decode_head) - 1)]
    return []


def test_configs_found():
    assert len(CONFIGS) >= 30, CONFIGS


@pytest.mark.parametrize('path', CONFIGS, ids=_rel)
def test_config_builds_runs_and_trains_its_aux_heads(path):
    """One build per config (R50/R101/B5 builds dominate the cost): forward, then the training losses."""
    cfg = Config.fromfile(path)
    for t in cfg.train_pipeline:
        TRANSFORMS.build(t)
    size = _input_size(cfg)
    model = _build(cfg, size).eval()
    n = _num_classes(cfg)
    with torch.no_grad():
        out = model(torch.rand(1, 3, size, size), mode='tensor')
    assert out.shape[:2] == (1, n) and torch.isfinite(out).all()

    prefixes = _aux_prefixes(cfg)
    if not prefixes:
        return
    model.train()
    samples = []
    for _ in range(2):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.randint(0, n, (1, 64, 64)))
        s.set_metainfo(dict(img_shape=(64, 64), pad_shape=(64, 64)))
        samples.append(s)
    losses = model.loss(torch.rand(2, 3, 64, 64), samples)
    for prefix in prefixes:
        aux = {k: v for k, v in losses.items() if k.startswith(prefix) and 'loss' in k}
        assert aux, f'{_rel(path)}: declares an auxiliary head but no {prefix}* loss is computed: {sorted(losses)}'
        total = sum(v for v in aux.values())
        assert total.requires_grad and total.item() > 0
