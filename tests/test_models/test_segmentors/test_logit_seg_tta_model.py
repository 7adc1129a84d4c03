"""LogitSegTTAModel: test-time augmentation that averages logits; and ``tools/test.py --tta``."""
import importlib.util
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from tiny_models import tiny_segmentor_cfg

from anomseg_plugins.models import LogitSegTTAModel
from anomseg_plugins.models.segmentors.logit_seg_tta_model import TTA_VIEW_METAS
from anomseg_plugins.scorers import MSP, MaxLogit

H, W, NUM_CLASSES = 24, 40, 3


def segmentor_cfg():
    """The shared tiny segmentor, whole-image inference, with this file's classes."""
    return tiny_segmentor_cfg(NUM_CLASSES)


def sample(flip=False, logits=None, gt=None):
    """A data sample of one view, as PackSegInputs (and, with ``logits``, the segmentor) give it."""
    meta = dict(
        img_path='a.png',
        ori_shape=(H, W),
        img_shape=(H, W),
        scale_factor=(1.0, 1.0),
        flip=flip,
        flip_direction='horizontal' if flip else None)
    out = SegDataSample(metainfo=meta)
    out.gt_sem_seg = PixelData(data=torch.arange(H * W).reshape(1, H, W) % NUM_CLASSES if gt is None else gt)
    out.gt_anomaly_map = PixelData(data=(torch.arange(H * W).reshape(1, H, W) % 7 == 0).to(torch.uint8))
    if logits is not None:
        out.seg_logits = PixelData(data=logits)
        out.pred_sem_seg = PixelData(data=logits.argmax(0, keepdim=True))
    return out


@pytest.fixture(scope='module')
def tta_model():
    torch.manual_seed(0)
    model = MODELS.build(dict(type='LogitSegTTAModel', module=segmentor_cfg()))
    model.module.init_weights()
    with torch.no_grad():  # logits of a few units: softmax and logits rank pixels differently
        model.module.decode_head.conv_seg.weight.mul_(20)
    return model.eval()


def test_merge_preds_averages_logits_not_probabilities():
    g = torch.Generator().manual_seed(0)
    z = [torch.randn(NUM_CLASSES, H, W, generator=g) * 4 for _ in range(3)]
    views = [sample(flip=i == 1, logits=z[i]) for i in range(3)]
    merged = LogitSegTTAModel(module=MODELS.build(segmentor_cfg())).merge_preds([views])[0]
    mean = torch.stack(z).mean(0)
    torch.testing.assert_close(merged.seg_logits.data, mean)
    assert not torch.allclose(merged.seg_logits.data, torch.stack([v.softmax(0) for v in z]).mean(0))
    torch.testing.assert_close(merged.pred_sem_seg.data, mean.argmax(0, keepdim=True))
    # ground truth of the first view; geometry of the merged maps; each view's metainfo kept, in order
    torch.testing.assert_close(merged.gt_sem_seg.data, views[0].gt_sem_seg.data)
    torch.testing.assert_close(merged.gt_anomaly_map.data, views[0].gt_anomaly_map.data)
    assert merged.img_path == 'a.png' and merged.img_shape == (H, W) and merged.flip is False
    assert [m['flip'] for m in merged.metainfo[TTA_VIEW_METAS]] == [False, True, False]


def test_merge_preds_refuses_annotations_loaded_before_the_augmentations():
    z = torch.zeros(NUM_CLASSES, H, W)
    views = [sample(logits=z, gt=torch.zeros(1, H // 2, W // 2, dtype=torch.long)), sample(flip=True, logits=z)]
    with pytest.raises(
            ValueError,
            match=r'gt_sem_seg of a.png is \(12, 20\) but the merged logits are \(24, 40\); '
            r'load the annotations after the augmentations in tta_pipeline'):
        LogitSegTTAModel(module=MODELS.build(segmentor_cfg())).merge_preds([views])


def test_flip_tta_gives_the_mean_of_the_unflipped_logits_and_max_logit_of_it(tta_model):
    g = torch.Generator().manual_seed(1)
    img = torch.randint(0, 256, (3, H, W), generator=g, dtype=torch.uint8)
    batch = dict(inputs=[[img], [img.flip(-1)]], data_samples=[[sample()], [sample(flip=True)]])
    with torch.no_grad():
        merged = tta_model.test_step(batch)[0]
        # by hand: the bare segmentor on the image and on its mirror image (told nothing), mirrored back
        z0 = tta_model.module.test_step(dict(inputs=[img], data_samples=[sample()]))[0].seg_logits.data
        z1_mirrored = tta_model.module.test_step(dict(inputs=[img.flip(-1)], data_samples=[sample()]))[0]
    z1 = z1_mirrored.seg_logits.data.flip(-1)
    expected = (z0 + z1) / 2
    assert not torch.allclose(z0, z1, atol=1e-3)  # the flip matters to this network
    torch.testing.assert_close(merged.seg_logits.data, expected)
    assert not torch.allclose(merged.seg_logits.data, (z0 + z1_mirrored.seg_logits.data) / 2, atol=1e-3)
    probs = (z0.softmax(0) + z1.softmax(0)) / 2  # what mmseg's SegTTAModel stores as seg_logits
    assert not torch.allclose(merged.seg_logits.data, probs, atol=1e-3)
    torch.testing.assert_close(merged.pred_sem_seg.data, expected.argmax(0, keepdim=True))

    # MaxLogit under TTA = minus the max of the averaged logits; MSP stays -max softmax of those logits
    torch.testing.assert_close(MaxLogit()(merged.seg_logits.data[None])[0], -expected.max(0).values)
    assert not torch.allclose(MaxLogit()(merged.seg_logits.data[None])[0], -probs.max(0).values, atol=1e-3)
    torch.testing.assert_close(
        MSP(log_space=False)(merged.seg_logits.data[None])[0], -expected.softmax(0).max(0).values)


# ---------------------------------------------------------------------------------------- tools/test.py --tta
def load_test_tool(repo_root):
    spec = importlib.util.spec_from_file_location('anomseg_tools_test', osp.join(repo_root, 'tools', 'test.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tool_cfg(**extra):
    """A test config as tools/test.py has it after loading (model, test and val data, the anomaly loop)."""

    def loader():
        return dict(
            batch_size=1, dataset=dict(type='StreetHazardsDataset', pipeline=[dict(type='PackAnomalySegInputs')]))

    cfg = dict(
        model=segmentor_cfg(), test_dataloader=loader(), val_dataloader=loader(), test_cfg=dict(type='AnomalyTestLoop'))
    cfg.update(extra)
    return Config(cfg)


def test_tool_tta_without_tta_keys_exits_with_what_to_add(repo_root):
    use_tta = load_test_tool(repo_root).use_tta
    expected = (r'(?s)--tta needs `tta_model` and `tta_pipeline` in the config, and my_cfg.py has no `tta_pipeline`\. '
                r"Inherit .*tta_model = dict\(type='LogitSegTTAModel'\)\ntta_pipeline = \[\n.*dict\(type='TestTimeAug'")
    with pytest.raises(SystemExit, match=expected):
        use_tta(tool_cfg(tta_model=dict(type='LogitSegTTAModel')), 'my_cfg.py')
    with pytest.raises(SystemExit, match=r'has no `tta_model` and no `tta_pipeline`'):
        use_tta(tool_cfg(), 'my_cfg.py')
    with pytest.raises(SystemExit, match=r"tta_model.type='SegTTAModel', which averages softmax probabilities"):
        use_tta(tool_cfg(tta_model=dict(type='SegTTAModel'), tta_pipeline=[dict(type='TestTimeAug')]), 'my_cfg.py')


def test_tool_tta_wraps_the_model_and_gives_test_and_fit_data_the_tta_pipeline(repo_root):
    use_tta = load_test_tool(repo_root).use_tta
    tta_pipeline = [dict(type='LoadImageFromFile'), dict(type='TestTimeAug', transforms=[[dict(type='Resize')]])]
    cfg = use_tta(tool_cfg(tta_model=dict(type='LogitSegTTAModel'), tta_pipeline=tta_pipeline), 'my_cfg.py')
    assert cfg.model.type == 'LogitSegTTAModel' and cfg.model.module == segmentor_cfg()
    assert cfg.test_dataloader.dataset.pipeline == tta_pipeline
    assert cfg.val_dataloader.dataset.pipeline == tta_pipeline  # AnomalyTestLoop fits the scorers on it
    fit = dict(dataset=dict(type='RepeatDataset', times=2, dataset=dict(type='StreetHazardsDataset', pipeline=[])))
    cfg = use_tta(
        tool_cfg(
            tta_model=dict(type='LogitSegTTAModel'),
            tta_pipeline=tta_pipeline,
            test_cfg=dict(type='AnomalyTestLoop', fit_dataloader=fit)), 'my_cfg.py')
    assert cfg.test_cfg.fit_dataloader.dataset.dataset.pipeline == tta_pipeline
    assert cfg.val_dataloader.dataset.pipeline == [dict(type='PackAnomalySegInputs')]
