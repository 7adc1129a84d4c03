"""The outlier-exposure configs: OE inherits onto two model families (DeepLabV3+, PSPNet), every head that sees
labels ignores outliers, only training pastes (validation / IoUMetric never see 254), and a few iterations train
with the OE losses in the log."""
import glob
import json
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OE_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'outlier_exposure', '*.py')))
CROPS = ('MultiScaleSquareCrop', 'RandomCrop')
OE_LOSSES = ('loss_energy_margin', 'loss_outlier_entropy')


def _heads(model):
    heads = []
    for key in ('decode_head', 'auxiliary_head'):
        head = model.get(key)
        if head is not None:
            heads += head if isinstance(head, list) else [head]
    return heads


def _losses(head):
    loss = head['loss_decode']
    return loss if isinstance(loss, list) else [loss]


@pytest.mark.parametrize('path', OE_CONFIGS, ids=lambda p: osp.relpath(p, REPO))
def test_oe_config_pastes_only_in_training_and_wraps_every_label_loss(path):
    cfg = Config.fromfile(path)
    train = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert train.count('PasteOutliers') == 1
    assert train[train.index('PasteOutliers') - 1] in CROPS, f'PasteOutliers must follow the crop: {train}'
    for split in ('val_dataloader', 'test_dataloader'):
        assert 'PasteOutliers' not in [t['type'] for t in cfg[split].dataset.pipeline], split
    assert 'PasteOutliers' not in str(cfg.get('tta_pipeline'))
    for head in _heads(cfg.model):
        losses = _losses(head)
        # a bare closed-set loss would see the label 254 (CE crashes on it): every one is wrapped
        assert all(loss['type'] in ('InlierLoss', 'EnergyMarginLoss', 'OutlierEntropyLoss') for loss in losses), losses
        assert any(loss['type'] == 'InlierLoss' for loss in losses)
        assert {loss.get('outlier_index', 254)
                for loss in losses
                } == {cfg.train_dataloader.dataset.pipeline[train.index('PasteOutliers')]['outlier_index']}
    decode = _heads(cfg.model)[0]
    assert {'EnergyMarginLoss', 'OutlierEntropyLoss'} <= {loss['type'] for loss in _losses(decode)}
    assert cfg.load_from, 'outlier exposure fine-tunes a closed-set checkpoint (load_from)'


def test_oe_changes_nothing_but_the_losses_pipeline_and_schedule(repo_root):
    """The OE demo config is the demo model: same architecture, same val/test pipelines."""
    base = Config.fromfile(osp.join(repo_root, 'configs/demo/deeplab_r18_tiny_demo.py'))
    oe = Config.fromfile(osp.join(repo_root, 'configs/outlier_exposure/deeplab_r18_tiny_demo_oe.py'))
    for key in ('decode_head', 'auxiliary_head'):
        base.model[key].pop('loss_decode')
        oe.model[key].pop('loss_decode')
    assert oe.model.to_dict() == base.model.to_dict()
    assert oe.test_dataloader.to_dict() == base.test_dataloader.to_dict()
    assert oe.val_dataloader.to_dict() == base.val_dataloader.to_dict()
    anomaly = Config.fromfile(osp.join(repo_root, 'configs/outlier_exposure/deeplab_r18_tiny_demo_oe_anomaly.py'))
    assert [e['type'] for e in anomaly.test_evaluator] == ['IoUMetric', 'AnomalyMetric']


def _train(repo_root, config, data_root, work_dir):
    opts = [f'{s}_dataloader.dataset.data_root={data_root}' for s in ('train', 'val', 'test')]
    opts += [
        'load_from=None', 'model.pretrained=None', 'train_dataloader.dataset.pipeline.2.output_size=(64,64)',
        'model.data_preprocessor.size=(64,64)', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=100',
        'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=100', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False'
    ]
    proc = subprocess.run([sys.executable, 'tools/train.py', config, '--work-dir', work_dir, '--cfg-options', *opts],
                          cwd=repo_root,
                          capture_output=True,
                          text=True,
                          timeout=900)
    assert proc.returncode == 0, f'{config} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    [scalars] = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    return [json.loads(line) for line in open(scalars)]


@pytest.mark.slow  # trains two models
@pytest.mark.parametrize('config', [
    'configs/outlier_exposure/deeplab_r18_tiny_demo_oe.py',
    'configs/outlier_exposure/pspnet_r18-d8_1xb4-oe-4e_streethazards-512x512.py'
])
def test_oe_trains_two_model_families_with_the_oe_losses(repo_root, tiny_street_hazards, tmp_path, config):
    rows = [r for r in _train(repo_root, config, tiny_street_hazards, str(tmp_path)) if 'loss' in r]
    assert len(rows) == 2  # 8 train images, batch 4, 1 epoch
    for row in rows:
        for key in ('decode.loss_ce', 'aux.loss_ce') + tuple(f'decode.{k}' for k in OE_LOSSES):
            assert key in row, sorted(row)
        # every crop gets at least one outlier: the outlier terms are active, and summed into the total
        assert row['decode.loss_outlier_entropy'] > 0
        parts = sum(v for k, v in row.items() if k.split('.')[-1].startswith('loss_'))
        assert row['loss'] == pytest.approx(parts, rel=1e-3)
