"""Every config under configs/ loads, builds and runs on a small CPU input; its training losses are the configured
ones, summed, and declared aux heads contribute theirs, by value.

Parametrised over the directory, so a new config is covered without touching this file.
"""
import glob
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.structures import PixelData
from mmseg.registry import MODELS, TRANSFORMS
from mmseg.structures import SegDataSample

pytestmark = pytest.mark.slow  # builds every config and runs a train step on each

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


def _loss_heads(model):
    """``(loss-key prefix, head)`` of every head computing losses, as mmseg's segmentors prefix their terms."""
    if isinstance(model.decode_head, torch.nn.ModuleList):  # cascade
        return [(f'decode_{i}.', head) for i, head in enumerate(model.decode_head)]
    heads = [('decode.', model.decode_head)]
    if getattr(model, 'auxiliary_head', None) is not None:
        heads.append(('aux.', model.auxiliary_head))
    return heads


def _loss_modules(head):
    losses = head.loss_decode
    return list(losses) if isinstance(losses, torch.nn.ModuleList) else [losses]


def _loss_reference(loss, logits, gt):
    """The value of a head's loss module on ``(N, C, H, W)`` logits and ``(N, H, W)`` labels without ignored pixels,
    by its formula: cross-entropy (mean over pixels), softmax focal (mean of ``alpha (1 - p_t)^gamma (-log p_t)``),
    ``InlierLoss`` as its inner loss (no outlier label here); times ``loss_weight``. ``None`` for other kinds."""
    kind = type(loss).__name__
    if kind == 'InlierLoss':
        return _loss_reference(loss.loss, logits, gt)
    if kind == 'CrossEntropyLoss' and not loss.use_sigmoid and not loss.use_mask and loss.class_weight is None:
        return loss.loss_weight * F.cross_entropy(logits, gt).item()
    if kind == 'SoftmaxFocalLoss' and loss.class_weight is None:
        log_p_t = logits.log_softmax(1).gather(1, gt.unsqueeze(1)).squeeze(1)
        return loss.loss_weight * (loss.alpha * (1 - log_p_t.exp())**loss.gamma * -log_p_t).mean().item()
    return None


def test_configs_found():
    assert len(CONFIGS) >= 30, CONFIGS


@pytest.mark.parametrize('path', CONFIGS, ids=_rel)
def test_config_builds_runs_and_trains_its_aux_heads(path):
    """One build per config (R50/R101/B5 builds dominate the cost): forward, then the training losses: every
    configured head / loss name reported (and nothing else), the optimised total equal to the sum of the terms, and
    each auxiliary term computed from that head's logits (non-zero gradient on its classifier) and equal to its
    formula (cross-entropy, focal, inlier cross-entropy) on them, loss weight included."""
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
    heads = _loss_heads(model)
    logits = {}  # each head's classifier output in this forward pass
    handles = [
        head.conv_seg.register_forward_hook(lambda m, i, o, prefix=prefix: logits.setdefault(prefix, o))
        for prefix, head in heads if isinstance(getattr(head, 'conv_seg', None), torch.nn.Module)
    ]
    gt = torch.stack([s.gt_sem_seg.data[0] for s in samples])
    losses = model.loss(torch.rand(2, 3, 64, 64), samples)
    for handle in handles:
        handle.remove()
    # every configured loss of every head is reported under the head's prefix and the loss's name, and nothing else
    configured = {prefix + loss.loss_name for prefix, head in heads for loss in _loss_modules(head)}
    if getattr(model, 'anchor_weight', 0) > 0:  # AnchoredEncoderDecoder adds its distillation term to the decode head
        configured.add('decode.' + model.anchor_loss_name)
    assert {k for k in losses if 'loss' in k} == configured, (_rel(path), sorted(losses), sorted(configured))
    # the optimised total is the sum of the reported terms
    total, _ = model.parse_losses(losses)
    assert total.item() == pytest.approx(sum(v.item() for k, v in losses.items() if 'loss' in k), rel=1e-6)
    for prefix, head in heads:
        if prefix not in prefixes:
            continue
        aux = {k: v for k, v in losses.items() if k.startswith(prefix) and 'loss' in k}
        assert aux, f'{_rel(path)}: declares an auxiliary head but no {prefix}* loss is computed: {sorted(losses)}'
        # the aux terms are this head's: they reach its classifier with a non-zero gradient ...
        (grad, ) = torch.autograd.grad(sum(aux.values()), head.conv_seg.weight, retain_graph=True)
        assert grad.abs().sum() > 0, f'{_rel(path)}: the {prefix}* losses do not depend on that head'
        # ... and equal their formulas on its logits, resized to the labels as the head does
        resized = F.interpolate(logits[prefix], size=gt.shape[-2:], mode='bilinear', align_corners=head.align_corners)
        want = {}
        for loss in _loss_modules(head):  # losses sharing a name are summed into one term
            want.setdefault(prefix + loss.loss_name, []).append(_loss_reference(loss, resized.detach(), gt))
        for key, values in want.items():
            if None not in values and head.sampler is None:
                assert aux[key].item() == pytest.approx(sum(values), rel=1e-5), (_rel(path), key)
