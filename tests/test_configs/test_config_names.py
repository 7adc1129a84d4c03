"""Model config names follow mmseg's pattern and say what the config does (issue 11, item 5).

``{algorithm}_{backbone}[_{component}]_{gpus}xb{batch}[-{variant}]-{schedule}_{dataset}-{h}x{w}.py``, as mmseg's
``pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py``: each field is checked against the loaded config (batch size,
epochs or iterations, dataset, training input size, the variant tag, the folder's head). ``configs/ablations/``,
``configs/demo/`` and ``configs/outlier_exposure/`` keep descriptive names (checked by their own tests).
Parametrised over the files, so a new model config is covered without touching this file.
"""
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DESCRIPTIVE = ('_base_', 'ablations', 'cityscapes_demo', 'demo', 'outlier_exposure')
NAMED = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '*', '*.py')) if osp.basename(osp.dirname(p)) not in DESCRIPTIVE)

#: the decode head (the last stage of a cascade) each algorithm folder holds
FOLDER_HEAD = {
    'deeplabv3': 'ASPPHead',
    'deeplabv3plus': 'DepthwiseSeparableASPPHead',
    'hiera': 'UPerHead',
    'light_deeplab': 'LightDeepLabHead',
    'lraspp': 'LRASPPHead',
    'ocrnet': 'OCRHead',
    'pspnet': 'PSPHead',
    'segformer': 'SegformerHead',
}
DATASET = {'StreetHazardsDataset': 'streethazards', 'CityscapesDataset': 'cityscapes', 'PascalVOCDataset': 'voc12'}
CROPS = ('MultiScaleSquareCrop', 'RandomCrop')
SETTINGS = re.compile(r'(?P<gpus>\d+)xb(?P<batch>\d+)(?:-(?P<variant>[a-z0-9.-]+))?-(?P<length>\d+)(?P<unit>e|k)')


def _train_input(cfg):
    """(h, w) the training pipeline feeds the model: the crop output, else the whole-frame resize."""
    pipeline = cfg.train_dataloader.dataset.pipeline
    for t in pipeline:
        if t['type'] == 'MultiScaleSquareCrop':
            return tuple(t['output_size'])
        if t['type'] == 'RandomCrop':
            return tuple(t['crop_size'])
    [resize] = [t for t in pipeline if t['type'] == 'Resize']
    w, h = resize['scale']
    return h, w


def _losses(head):
    losses = head.loss_decode
    return {loss['type'] for loss in (losses if isinstance(losses, list) else [losses])}


def test_model_configs_found_and_none_left_at_the_top():
    assert len(NAMED) >= 20, NAMED
    assert not glob.glob(osp.join(REPO, 'configs', '*.py')), 'model configs live in their algorithm folder'


@pytest.mark.parametrize('path', NAMED, ids=lambda p: osp.relpath(p, osp.join(REPO, 'configs')))
def test_config_name_says_what_the_config_does(path):
    folder, name = osp.basename(osp.dirname(path)), osp.splitext(osp.basename(path))[0]
    *model_fields, settings, data = name.split('_')
    assert len(model_fields) >= 2, f'{name}: expected {{algorithm}}_{{backbone}}_...'
    # the first field names the folder: the algorithm (pspnet_...), or in a backbone folder the backbone (hiera-base_)
    assert model_fields[0] == folder.replace('_', '-') or model_fields[0].startswith(folder + '-'), (folder, name)
    cfg = Config.fromfile(path)
    head = cfg.model.decode_head[-1] if isinstance(cfg.model.decode_head, list) else cfg.model.decode_head
    assert head.type == FOLDER_HEAD[folder]

    match = SETTINGS.fullmatch(settings)
    assert match, f'{name}: training settings {settings!r} are not {{gpus}}xb{{batch}}[-variant]-{{n}}e|k'
    assert int(match['gpus']) >= 1 and int(match['batch']) == cfg.train_dataloader.batch_size
    if match['unit'] == 'e':
        assert cfg.train_cfg.type == 'EpochBasedTrainLoop' and cfg.train_cfg.max_epochs == int(match['length'])
    else:
        assert cfg.train_cfg.type == 'IterBasedTrainLoop' and cfg.train_cfg.max_iters == 1000 * int(match['length'])
    variant = match['variant'] or ''
    assert re.fullmatch(r'((basic|focal-dice)(-|$))*', variant), f'{name}: unknown variant {variant!r}'
    pipeline = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert ('basic' in variant) == (not any(t in CROPS for t in pipeline)), 'basic = the whole frame, no crop'
    assert ('focal-dice' in variant) == ({'SoftmaxFocalLoss', 'DiceLoss'} <= _losses(head))

    dataset, h, w = re.fullmatch(r'([a-z0-9-]+)-(\d+)x(\d+)', data).groups()
    assert dataset == DATASET[cfg.train_dataloader.dataset.type]
    assert (int(h), int(w)) == _train_input(cfg), f'{name}: crop is the training input (h x w)'

    backbone = re.fullmatch(r'r(\d+)-d8', model_fields[1])
    if backbone:
        assert cfg.model.backbone.type == 'ResNetV1c' and cfg.model.backbone.depth == int(backbone[1])
