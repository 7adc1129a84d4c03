"""SoftmaxFocalLoss against a formula written out here, and focal + Dice through mmseg's list of losses."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import anomseg_plugins.models  # noqa: F401  (registers SoftmaxFocalLoss)
from anomseg_plugins.models import SoftmaxFocalLoss

init_default_scope('mmseg')

# (N=2, C=3, H=2, W=3) logits and labels with ignore pixels (255), written by hand.
LOGITS = torch.tensor([
    [[[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]], [[0.1, 1.5, 0.5], [1.0, -1.0, 0.3]], [[-1.0, 0.2, 2.5], [0.0, 0.0, 1.7]]],
    [[[0.3, 0.3, -0.4], [4.0, 1.0, 0.0]], [[1.2, -2.0, 0.9], [-0.5, 2.2, 0.1]], [[0.0, 0.8, 0.2], [0.6, -1.0, 0.9]]],
])
LABELS = torch.tensor([
    [[0, 1, 2], [255, 0, 2]],
    [[1, 255, 0], [0, 1, 255]],
])


def reference(logits, labels, alpha=0.25, gamma=2.0, class_weight=None, ignore_index=255):
    """Pixel by pixel in plain Python: sum_i w_y alpha (1-p_t)^gamma (-log p_t) / sum_i w_y."""
    n, c, h, w = logits.shape
    num, den = 0.0, 0.0
    for b in range(n):
        for y in range(h):
            for x in range(w):
                t = int(labels[b, y, x])
                if t == ignore_index:
                    continue
                z = [float(logits[b, k, y, x]) for k in range(c)]
                p_t = math.exp(z[t]) / sum(math.exp(v) for v in z)
                wt = 1.0 if class_weight is None else class_weight[t]
                num += wt * alpha * (1 - p_t)**gamma * -math.log(p_t)
                den += wt
    return num / den


def focal_map(logits, labels, alpha=0.25, gamma=2.0, ignore_index=255):
    """The same formula per pixel in torch: ``alpha (1 - p_t)^gamma (-log p_t)``, 0 at ignored pixels."""
    valid = labels != ignore_index
    log_p_t = logits.log_softmax(1).gather(1, torch.where(valid, labels, 0).unsqueeze(1)).squeeze(1)
    return torch.where(valid, alpha * (1 - log_p_t.exp())**gamma * -log_p_t, torch.zeros_like(log_p_t))


def dice_reference(logits, labels, eps=1e-3, loss_weight=1.0):
    """mmseg 1.x ``DiceLoss(use_sigmoid=False)`` written out: ``p = softmax(logits)``, ``t`` one-hot of the label
    (no class for an ignored label, whose pixel still counts in ``sum p^2``), per image
    ``1 - 2 sum(p t) / (sum p^2 + eps + sum t^2 + eps)``, averaged over the images, times ``loss_weight``."""
    p = logits.softmax(1)
    t = torch.stack([labels == c for c in range(logits.shape[1])], 1).float()
    inter = (p * t).flatten(1).sum(1)
    denominator = (p * p).flatten(1).sum(1) + eps + t.flatten(1).sum(1) + eps
    return loss_weight * (1 - 2 * inter / denominator).mean()


def test_default_matches_reference_and_registry():
    loss = MODELS.build(dict(type='SoftmaxFocalLoss'))
    assert isinstance(loss, SoftmaxFocalLoss)
    assert (loss.alpha, loss.gamma, loss.loss_name) == (0.25, 2.0, 'loss_focal')
    value = loss(LOGITS, LABELS)
    assert value.ndim == 0
    assert value.item() == pytest.approx(reference(LOGITS, LABELS), rel=1e-5)


def test_ignore_pixels_do_not_contribute():
    loss = SoftmaxFocalLoss()
    changed = LOGITS.clone()
    changed[0, :, 1, 0] = torch.tensor([9.0, -9.0, 3.0])  # an ignored pixel
    assert loss(changed, LABELS).item() == pytest.approx(loss(LOGITS, LABELS).item(), rel=1e-6)
    changed[0, :, 0, 0] = torch.tensor([9.0, -9.0, 3.0])  # a labelled pixel
    assert loss(changed, LABELS).item() != pytest.approx(loss(LOGITS, LABELS).item(), rel=1e-3)


def test_class_weight_alpha_gamma_loss_weight():
    cw = [0.5, 2.0, 1.5]
    loss = SoftmaxFocalLoss(alpha=0.6, gamma=1.5, class_weight=cw, loss_weight=3.0)
    expected = 3.0 * reference(LOGITS, LABELS, alpha=0.6, gamma=1.5, class_weight=cw)
    assert loss(LOGITS, LABELS).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize('class_weight', [None, [0.5, 2.0, 1.5]])
def test_gamma_zero_is_alpha_times_cross_entropy(class_weight):
    loss = SoftmaxFocalLoss(alpha=0.25, gamma=0.0, class_weight=class_weight)
    weight = None if class_weight is None else torch.tensor(class_weight)
    ce = F.cross_entropy(LOGITS, LABELS, weight=weight, ignore_index=255)
    assert loss(LOGITS, LABELS).item() == pytest.approx(0.25 * ce.item(), rel=1e-5)


def test_reductions_avg_factor_and_pixel_weight():
    """``reduction='none'`` gives the formula at every pixel; sum, mean (over labelled pixels), ``avg_factor`` and a
    per-pixel weight reduce that map."""
    loss = SoftmaxFocalLoss()
    per_pixel = loss(LOGITS, LABELS, reduction_override='none')
    assert per_pixel.shape == LABELS.shape
    # every pixel's value is the formula's (0 where ignored), not just the mean
    torch.testing.assert_close(per_pixel, focal_map(LOGITS, LABELS), rtol=1e-5, atol=1e-7)
    assert torch.all(per_pixel[LABELS == 255] == 0)
    n_valid = int((LABELS != 255).sum())
    assert loss(LOGITS, LABELS, reduction_override='sum').item() == pytest.approx(per_pixel.sum().item(), rel=1e-6)
    assert loss(LOGITS, LABELS).item() == pytest.approx(per_pixel.sum().item() / n_valid, rel=1e-5)
    assert loss(LOGITS, LABELS, avg_factor=4.0).item() == pytest.approx(per_pixel.sum().item() / 4.0, rel=1e-5)
    # a per-pixel weight (what an OHEM sampler passes) masks pixels without changing the denominator
    weight = torch.zeros_like(LABELS, dtype=torch.float)
    weight[0, 0, 0] = 1.0
    masked = loss(LOGITS, LABELS, weight=weight)
    assert masked.item() == pytest.approx(per_pixel[0, 0, 0].item() / n_valid, rel=1e-5)


def test_ignore_index_argument_overrides_default():
    labels = LABELS.clone()
    labels[labels == 255] = 7
    loss = SoftmaxFocalLoss(ignore_index=255)
    assert loss(LOGITS, labels, ignore_index=7).item() == pytest.approx(reference(LOGITS, LABELS), rel=1e-5)


def test_gradient_matches_autograd_of_plain_formula():
    logits = LOGITS.clone().requires_grad_(True)
    SoftmaxFocalLoss()(logits, LABELS).backward()
    ref_logits = LOGITS.clone().requires_grad_(True)
    p = ref_logits.exp() / ref_logits.exp().sum(1, keepdim=True)
    valid = LABELS != 255
    p_t = p.gather(1, torch.where(valid, LABELS, 0).unsqueeze(1)).squeeze(1)[valid]
    (0.25 * (1 - p_t)**2 * -torch.log(p_t)).mean().backward()
    torch.testing.assert_close(logits.grad, ref_logits.grad, rtol=1e-4, atol=1e-7)


def test_all_ignored_gives_zero_and_finite_gradient():
    logits = LOGITS.clone().requires_grad_(True)
    value = SoftmaxFocalLoss()(logits, torch.full_like(LABELS, 255))
    assert value.item() == 0.0
    value.backward()
    assert torch.all(torch.isfinite(logits.grad)) and torch.all(logits.grad == 0)


def test_errors_name_the_problem():
    bad = LABELS.clone()
    bad[0, 0, 0] = 5
    with pytest.raises(ValueError, match=r'labels \[5\] are outside 0..2'):
        SoftmaxFocalLoss()(LOGITS, bad)
    with pytest.raises(ValueError, match='class_weight has 2 entries but the prediction has 3 classes'):
        SoftmaxFocalLoss(class_weight=[1.0, 2.0])(LOGITS, LABELS)
    with pytest.raises(ValueError, match='pred must be'):
        SoftmaxFocalLoss()(LOGITS, LABELS[:, :1])
    with pytest.raises(ValueError, match='gamma must be >= 0'):
        SoftmaxFocalLoss(gamma=-1)


# ----- focal + Dice through mmseg's list-of-losses mechanism -----

FOCAL_DICE = [
    dict(type='SoftmaxFocalLoss', alpha=0.25, gamma=2.0, loss_weight=1.0),
    dict(type='DiceLoss', use_sigmoid=False, loss_weight=0.5)
]


def _sample(gt: torch.Tensor) -> SegDataSample:
    h, w = gt.shape[-2:]
    sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
    sample.gt_sem_seg = PixelData(data=gt.view(1, h, w))
    return sample


def test_decode_head_with_focal_and_dice_reports_both():
    """A head with [focal, Dice]: both terms under their names, each equal to its formula (Dice at its weight)."""
    head = MODELS.build(
        dict(type='FCNHead', in_channels=4, channels=4, num_convs=1, num_classes=3, loss_decode=FOCAL_DICE))
    seg_logits = LOGITS.clone()
    losses = head.loss_by_feat(seg_logits, [_sample(LABELS[0]), _sample(LABELS[1])])
    assert set(losses) == {'loss_focal', 'loss_dice', 'acc_seg'}
    assert losses['loss_focal'].item() == pytest.approx(reference(LOGITS, LABELS), rel=1e-5)
    dice = MODELS.build(FOCAL_DICE[1])(LOGITS, LABELS, ignore_index=255)
    assert losses['loss_dice'].item() == pytest.approx(dice.item(), rel=1e-6)
    # and mmseg's Dice by its formula, at the configured loss_weight 0.5
    assert losses['loss_dice'].item() == pytest.approx(dice_reference(LOGITS, LABELS, loss_weight=0.5).item(), rel=1e-5)


class _RecordingOptimWrapper(OptimWrapper):
    """Records the loss the model hands to the optimiser."""

    def update_params(self, loss, **kwargs):
        self.seen_loss = loss.detach().clone()
        super().update_params(loss, **kwargs)


def test_model_optimises_the_sum_of_focal_and_dice():
    """One train step with focal + Dice on the head: the optimised loss is the sum of the two logged terms, and each
    term equals its formula on the logits the head produced in that step."""
    norm = dict(type='BN', requires_grad=True)
    model = MODELS.build(
        ConfigDict(
            type='EncoderDecoder',
            data_preprocessor=dict(
                type='SegDataPreProcessor', mean=[0., 0., 0.], std=[255., 255., 255.], size=(32, 32)),
            backbone=dict(
                type='MobileNetV2',
                widen_factor=0.25,
                strides=(1, 2, 2, 1, 1, 1, 1),
                dilations=(1, 1, 1, 2, 2, 4, 4),
                out_indices=(2, 6),
                norm_cfg=norm),
            decode_head=dict(
                type='FCNHead',
                in_channels=80,
                in_index=1,
                channels=8,
                num_convs=1,
                num_classes=3,
                norm_cfg=norm,
                loss_decode=FOCAL_DICE),
            train_cfg=dict(),
            test_cfg=dict(mode='whole')))
    gen = torch.Generator().manual_seed(0)
    data = dict(
        inputs=[torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=gen) for _ in range(2)],
        data_samples=[_sample(torch.randint(0, 3, (32, 32), generator=gen)) for _ in range(2)])
    optim = _RecordingOptimWrapper(torch.optim.SGD(model.parameters(), lr=0.0))
    model.train()
    seen = []  # the head's logits of this very step (after its dropout), from the classifier's output
    handle = model.decode_head.conv_seg.register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))
    log_vars = {k: float(torch.as_tensor(v).detach()) for k, v in model.train_step(data, optim).items()}
    handle.remove()
    assert {'decode.loss_focal', 'decode.loss_dice', 'loss'} <= set(log_vars)
    total = log_vars['decode.loss_focal'] + log_vars['decode.loss_dice']
    assert log_vars['loss'] == pytest.approx(total, rel=1e-6)
    assert optim.seen_loss.item() == pytest.approx(total, rel=1e-6)
    # each term by its formula on the head's logits, resized to the labels as the head does
    (logits, ) = seen
    logits = F.interpolate(logits, size=(32, 32), mode='bilinear', align_corners=False)
    labels = torch.stack([s.gt_sem_seg.data[0] for s in data['data_samples']])
    assert log_vars['decode.loss_focal'] == pytest.approx(reference(logits, labels), rel=1e-5)
    assert log_vars['decode.loss_dice'] == pytest.approx(
        dice_reference(logits, labels, loss_weight=0.5).item(), rel=1e-5)
