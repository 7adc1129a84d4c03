"""The study's full-resolution Hiera-Base row: timm's Hiera through mmseg's TIMMBackbone, UPerHead + aux FCN head.

Hiera is built for one input size (``img_size``). The recipe's 1280x736 model is checked on the meta device (shapes
only, no compute); a 96x64 copy of the same config runs for real on the CPU: prediction at the image size through
the padding, and the training losses with the aux head's weighted term.
"""
import copy
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import anomseg_plugins  # noqa: F401  (registers the transforms the config names)

init_default_scope('mmseg')
CONFIG = 'configs/hiera/hiera-base_upernet_1xb1-basic-20e_streethazards-720x1280.py'
SMALL = (64, 96)  # (h, w): multiples of 32, a 2x3 map at stride 32
# timm's hiera_base_224: 51,524,968 parameters, of which the classifier head 770,536 and the 56x56 pos_embed 301,056
HIERA_BASE_CORE_PARAMS = 51_524_968 - 770_536 - 301_056


@pytest.fixture(scope='module')
def cfg(repo_root):
    return Config.fromfile(osp.join(repo_root, CONFIG))


def small_model_cfg(cfg):
    model = copy.deepcopy(cfg.model)
    model.backbone.img_size = SMALL
    model.data_preprocessor.size = SMALL
    model.data_preprocessor.test_cfg = dict(size=SMALL)
    return model


def test_recipe_of_the_study_row(cfg):
    """Whole frames at 1280x720 in training, validation and testing, padded to 1280x736 for Hiera; batch 1,
    20 epochs; UPerHead on the four stages, FCN aux head on stage 3 at loss weight 0.4."""
    assert cfg.model.backbone.type == 'TIMMBackbone' and cfg.model.backbone.model_name == 'hiera_base_224'
    assert cfg.model.backbone.pretrained is False and cfg.model.pretrained is None
    assert tuple(cfg.model.backbone.img_size) == (736, 1280)
    assert tuple(cfg.model.data_preprocessor.size) == tuple(cfg.model.data_preprocessor.test_cfg.size) == (736, 1280)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        resizes = [t for t in cfg[loader].dataset.pipeline if t.type == 'Resize']
        assert [(tuple(t.scale), t.keep_ratio) for t in resizes] == [((1280, 720), True)], loader
    assert [t.type for t in cfg.train_dataloader.dataset.pipeline
            ][2:5] == ['Resize', 'RandomFlip', 'PhotoMetricDistortionNoHue']
    # --tta views may only shrink the frame: a larger view would not fit the model's fixed 1280x736 input
    (tta, ) = [t for t in cfg.tta_pipeline if t.type == 'TestTimeAug']
    assert [t.scale_factor for t in tta.transforms[1]] == [0.5, 0.75, 1.0]
    assert cfg.train_dataloader.batch_size == 1 and cfg.train_cfg.max_epochs == 20
    assert cfg.model.decode_head.type == 'UPerHead' and list(cfg.model.decode_head.in_index) == [0, 1, 2, 3]
    aux = cfg.model.auxiliary_head
    assert (aux.type, aux.in_index, aux.in_channels, aux.loss_decode.loss_weight) == ('FCNHead', 2, 384, 0.4)
    assert cfg.model.decode_head.num_classes == aux.num_classes == 13
    assert cfg.model.test_cfg.mode == 'whole'


def test_full_resolution_shapes(cfg):
    """The configured model on the meta device: a 1280x720 frame padded to 1280x736, four stages at strides 4..32,
    predictions cropped back to the frame."""
    # what the data preprocessor's test_cfg padding records for a 1280x720 frame
    meta = dict(ori_shape=(720, 1280), img_shape=(720, 1280), pad_shape=(736, 1280), img_padding_size=(0, 0, 0, 16))
    with torch.device('meta'):
        model = MODELS.build(copy.deepcopy(cfg.model)).eval()
        x = torch.empty(1, 3, 736, 1280)
        feats = model.extract_feat(x)
        aux = model.auxiliary_head(feats)
        logits = model(x, mode='tensor')  # the decode head's output, stride 4
        (result, ) = model.predict(x, [SegDataSample(metainfo=meta)])
    assert [tuple(f.shape) for f in feats] == [(1, 96, 184, 320), (1, 192, 92, 160), (1, 384, 46, 80), (1, 768, 23, 40)]
    assert tuple(logits.shape) == (1, 13, 184, 320) and tuple(aux.shape) == (1, 13, 46, 80)
    assert tuple(result.seg_logits.shape) == (720, 1280) and tuple(result.seg_logits.data.shape) == (13, 720, 1280)
    backbone_params = sum(p.numel() for p in model.backbone.parameters())
    # hiera_base_224 without its classifier, with a position embedding for 184x320 patches instead of 56x56
    pos_embed = model.backbone.timm_model.model.pos_embed
    assert tuple(pos_embed.shape) == (1, 184 * 320, 96)
    assert backbone_params - pos_embed.numel() == HIERA_BASE_CORE_PARAMS


def test_predictions_come_back_at_image_size(cfg):
    """An image smaller than the model's input is padded for Hiera and its logits cropped back to the image."""
    torch.manual_seed(0)
    model = MODELS.build(small_model_cfg(cfg)).eval()
    image = torch.randint(0, 256, (3, 60, 90), dtype=torch.uint8)

    def data():
        return dict(inputs=[image], data_samples=[SegDataSample(metainfo=dict(ori_shape=(60, 90), img_shape=(60, 90)))])

    with torch.no_grad():
        (result, ) = model.test_step(data())
        batch = model.data_preprocessor(data(), False)
        padded = model.encode_decode(batch['inputs'], [s.metainfo for s in batch['data_samples']])
    assert tuple(batch['inputs'].shape) == (1, 3) + SMALL
    assert tuple(batch['data_samples'][0].img_padding_size) == (0, 6, 0, 4)  # (left, right, top, bottom)
    assert tuple(result.seg_logits.data.shape) == (13, 60, 90)
    assert tuple(result.pred_sem_seg.data.shape) == (1, 60, 90)
    # the image's own part of the padded input's logits: cropped, not squashed
    assert torch.allclose(result.seg_logits.data, padded[0, :, :60, :90], atol=1e-5)


def test_training_losses_include_the_weighted_aux_head(cfg):
    """``aux.loss_ce`` is 0.4 x the cross-entropy of the stage-3 FCN head, and its gradient reaches that head."""
    torch.manual_seed(0)
    model = MODELS.build(small_model_cfg(cfg)).eval()  # eval: no dropout, so the loss can be recomputed
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=SMALL, pad_shape=SMALL))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 13, (1, ) + SMALL))
        samples.append(sample)
    inputs = torch.randn(2, 3, *SMALL)
    losses = model.loss(inputs, samples)
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg', 'aux.loss_ce', 'aux.acc_seg'}
    with torch.no_grad():
        aux_logits = F.interpolate(
            model.auxiliary_head(model.extract_feat(inputs)), size=SMALL, mode='bilinear', align_corners=False)
        expected = 0.4 * F.cross_entropy(
            aux_logits, torch.stack([s.gt_sem_seg.data[0] for s in samples]), ignore_index=255)
    assert losses['aux.loss_ce'].item() == pytest.approx(expected.item(), rel=1e-4)
    (losses['decode.loss_ce'] + losses['aux.loss_ce']).backward()
    assert model.auxiliary_head.conv_seg.weight.grad.abs().sum() > 0
    assert model.backbone.timm_model.model.patch_embed.proj.weight.grad.abs().sum() > 0
