"""AnchoredEncoderDecoder: the distillation term equals its formula on inlier pixels only, the anchor is the model
as it was at the first training step (and stays so through training, checkpoints and --resume), and inference is
mmseg's EncoderDecoder's."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from anomseg_plugins.models.segmentors import AnchoredEncoderDecoder, anchor_kl

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
OE_CONFIG = osp.join(REPO, 'configs', 'outlier_exposure', 'deeplab_r18_tiny_demo_oe.py')


def _kl_by_hand(student, anchor, label, t):
    """Per-pixel T^2 KL(p_anchor || p_student) with explicit loops over the inlier pixels."""
    total, count = 0.0, 0
    n, c, h, w = student.shape
    for i in range(n):
        for y in range(h):
            for x in range(w):
                if 0 <= int(label[i, y, x]) < c:
                    p = torch.softmax(anchor[i, :, y, x].double() / t, 0)
                    q = torch.softmax(student[i, :, y, x].double() / t, 0)
                    total += float((p * (p.log() - q.log())).sum()) * t * t
                    count += 1
    return total / count


@pytest.mark.parametrize('t', [1.0, 2.5])
def test_anchor_kl_is_the_mean_kl_over_inlier_pixels(t):
    torch.manual_seed(0)
    student, anchor = torch.randn(2, 4, 5, 6), torch.randn(2, 4, 5, 6)
    label = torch.randint(0, 4, (2, 5, 6))
    label[0, 0] = 255
    label[1, :, :2] = 254
    assert float(anchor_kl(student, anchor, label, t)) == pytest.approx(_kl_by_hand(student, anchor, label, t), 1e-6)


def test_anchor_kl_ignores_outlier_and_ignore_pixels_and_is_zero_at_the_anchor():
    torch.manual_seed(1)
    student, anchor = torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    label = torch.zeros(1, 4, 4, dtype=torch.long)
    label[0, :2] = 254
    label[0, 3, 3] = 255
    base = anchor_kl(student, anchor, label)
    changed = student.clone()
    changed[0, :, :2] = 50.0  # only outlier pixels change
    changed[0, :, 3, 3] = -50.0  # and the ignored one
    assert float(anchor_kl(changed, anchor, label)) == pytest.approx(float(base), abs=1e-7)
    assert float(anchor_kl(anchor + 3.0, anchor, label)) == pytest.approx(0.0, abs=1e-6)  # shift-invariant softmax
    assert float(anchor_kl(student, anchor, label)) > 0


def test_anchor_kl_without_inliers_is_zero_with_a_gradient_path():
    student = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = anchor_kl(student, torch.randn(1, 3, 2, 2), torch.full((1, 2, 2), 254))
    assert float(loss) == 0.0
    loss.backward()
    assert student.grad is not None and float(student.grad.abs().sum()) == 0.0


def test_anchor_kl_rejects_mismatched_logits():
    with pytest.raises(ValueError, match='differ'):
        anchor_kl(torch.randn(1, 3, 4, 4), torch.randn(1, 4, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))


def _model(**kwargs) -> AnchoredEncoderDecoder:
    cfg = Config.fromfile(OE_CONFIG)
    cfg.model.update(type='AnchoredEncoderDecoder', **kwargs)
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def _batch(n=2, size=64):
    torch.manual_seed(3)
    samples = []
    for _ in range(n):
        label = torch.randint(0, 13, (1, size, size))
        label[:, :8] = 254
        s = SegDataSample(gt_sem_seg=PixelData(data=label))
        s.set_metainfo(dict(img_shape=(size, size), pad_shape=(size, size), ori_shape=(size, size)))
        samples.append(s)
    return torch.randn(n, 3, size, size), samples


def _part_state(model, name):
    return {k: v.clone() for k, v in getattr(model, name).state_dict().items()}


def _equal_states(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_first_training_step_snapshots_the_model_and_training_leaves_the_anchor_alone():
    model = _model(anchor_weight=1.0)
    model.train()
    inputs, samples = _batch()
    start = _part_state(model, 'decode_head')
    assert int(model.anchor_ready) == 0
    optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        losses = model.loss(inputs, samples)
        assert set(losses) >= {'decode.loss_ce', 'decode.loss_anchor', 'decode.loss_outlier_entropy'}
        optim.zero_grad()
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        optim.step()
    assert int(model.anchor_ready) == 1
    assert _equal_states(
        _part_state(model.anchor['decode_head'], 'conv_seg'), {
            k[len('conv_seg.'):]: v
            for k, v in start.items() if k.startswith('conv_seg.')
        })
    assert not _equal_states(_part_state(model, 'decode_head'), start)  # the student moved
    assert all(p.grad is None for p in model.anchor.parameters())
    assert not model.anchor.training and model.training  # the anchor's BN statistics never update


def test_the_loss_term_is_the_weighted_kl_to_the_anchor_logits():
    model = _model(anchor_weight=0.7, anchor_temperature=2.0)
    model.train()
    inputs, samples = _batch()
    torch.manual_seed(5)  # the same dropout mask in the head both times
    losses = model.loss(inputs, samples)
    with torch.no_grad():
        anchor = model.anchor_logits(inputs)  # eval mode: no dropout, no random draw
    torch.manual_seed(5)
    student = model.decode_head(model.extract_feat(inputs))  # train-mode BN: the same batch gives the same stats
    label = torch.stack([s.gt_sem_seg.data for s in samples]).squeeze(1)
    up = dict(size=label.shape[-2:], mode='bilinear', align_corners=False)
    expected = 0.7 * anchor_kl(F.interpolate(student, **up), F.interpolate(anchor, **up), label, 2.0)
    assert float(losses['decode.loss_anchor']) == pytest.approx(float(expected), rel=1e-5)


def test_a_checkpoint_keeps_its_anchor_and_a_closed_set_checkpoint_starts_a_new_one():
    trained = _model()
    trained.train()
    inputs, samples = _batch()
    trained.loss(inputs, samples)  # snapshot
    with torch.no_grad():
        trained.decode_head.conv_seg.weight.add_(1.0)  # the student drifts from its anchor
    resumed = _model()
    resumed.load_state_dict(trained.state_dict())
    resumed.train()
    resumed.loss(inputs, samples)
    assert torch.equal(resumed.anchor['decode_head'].conv_seg.weight, trained.anchor['decode_head'].conv_seg.weight)
    assert not torch.equal(resumed.anchor['decode_head'].conv_seg.weight, resumed.decode_head.conv_seg.weight)

    closed_set = {k: v for k, v in trained.state_dict().items() if not k.startswith('anchor')}
    fine_tuned = _model()
    missing, _ = fine_tuned.load_state_dict(closed_set, strict=False)  # what load_from does
    assert 'anchor_ready' in missing
    fine_tuned.train()
    fine_tuned.loss(inputs, samples)
    assert torch.equal(fine_tuned.anchor['decode_head'].conv_seg.weight, trained.decode_head.conv_seg.weight)


def test_inference_is_mmseg_encoder_decoder_inference():
    model = _model()
    cfg = Config.fromfile(OE_CONFIG)
    plain = MODELS.build(cfg.model)
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith('anchor')})
    model.eval(), plain.eval()
    inputs, samples = _batch(1)
    with torch.no_grad():
        assert torch.equal(
            model.encode_decode(inputs, [s.metainfo for s in samples]),
            plain.encode_decode(inputs, [s.metainfo for s in samples]))
    assert type(plain).__name__ == 'EncoderDecoder'


@pytest.mark.parametrize('kwargs, match', [(dict(anchor_weight=-1), 'anchor_weight'),
                                           (dict(anchor_temperature=0), 'anchor_temperature'),
                                           (dict(anchor_loss_name='anchor'), 'loss_')])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _model(**kwargs)
