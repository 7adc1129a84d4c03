"""The headline config (DeepLabV3+ R50, aux head 0.4, multi-scale crop, Adam + plateau) builds and runs."""
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import anomseg_plugins  # noqa: F401

HEADLINE = 'configs/deeplabv3plus/deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py'


def test_headline_recipe_values(repo_root):
    cfg = Config.fromfile(f'{repo_root}/{HEADLINE}')
    assert cfg.model.decode_head.type == 'DepthwiseSeparableASPPHead'
    assert cfg.model.backbone.depth == 50
    assert cfg.model.decode_head.num_classes == 13 and cfg.model.auxiliary_head.num_classes == 13
    assert cfg.model.auxiliary_head.loss_decode.loss_weight == 0.4
    assert cfg.model.auxiliary_head.in_index == 2  # stage-3 features
    assert cfg.optim_wrapper.optimizer.type == 'Adam' and cfg.optim_wrapper.optimizer.lr == 1e-4
    assert cfg.train_dataloader.batch_size == 4 and cfg.train_cfg.max_epochs == 40
    [plateau] = cfg.param_scheduler
    assert (plateau.type, plateau.monitor, plateau.factor, plateau.patience) == ('ReduceOnPlateauLR', 'mIoU', 0.5, 3)
    crop = [t for t in cfg.train_pipeline if t.type == 'MultiScaleSquareCrop'][0]
    assert tuple(crop.output_size) == (512, 512) and tuple(crop.scale_range) == (0.5, 2.0)
    assert 'anomseg_plugins' in cfg.custom_imports.imports


def test_headline_forward_small_input(repo_root):
    cfg = Config.fromfile(f'{repo_root}/{HEADLINE}')
    init_default_scope('mmseg')
    cfg.model.pretrained = None
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64), mode='tensor')
    assert out.shape == (1, 13, 16, 16)  # DeepLabV3+ predicts at stride 4
    assert torch.isfinite(out).all()
