"""AnomalyTestLoop on a tiny hand-built mmseg EncoderDecoder and a toy dataset."""
import copy
import os.path as osp
import re
import uuid

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform
from mmengine.config import ConfigDict
from mmengine.dataset import Compose
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.registry import DATASETS, HOOKS, METRICS, TRANSFORMS
from mmseg.structures import SegDataSample
from tiny_models import tiny_segmentor_cfg
from torch import nn

import anomseg_plugins  # noqa: F401  (registers the loop and the scorers)
from anomseg_plugins.engine import AnomalyTestLoop
from anomseg_plugins.registry import ANOMALY_SCORERS
from anomseg_plugins.scorers import SML

NUM_CLASSES = 3


@DATASETS.register_module(force=True)
class ToyAnomalyLoopDataset(torch.utils.data.Dataset):
    """Random images with random labels (some ignored), already packed like mmseg's PackSegInputs."""

    metainfo = dict(classes=('a', 'b', 'c'), palette=[[0, 0, 0], [1, 1, 1], [2, 2, 2]])

    def __init__(self, num=4, size=(24, 40), seed=0):
        g = torch.Generator().manual_seed(seed)
        self.items = []
        for i in range(num):
            img = torch.randint(0, 256, (3, *size), generator=g, dtype=torch.uint8)
            gt = torch.randint(0, NUM_CLASSES, (1, *size), generator=g)
            gt[:, :2] = 255
            self.items.append((img, gt, f'img{i}.png'))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        img, gt, path = self.items[idx]
        sample = SegDataSample(
            metainfo=dict(img_path=path, img_shape=tuple(img.shape[1:]), ori_shape=tuple(img.shape[1:])))
        sample.gt_sem_seg = PixelData(data=gt.clone())
        return dict(inputs=img.clone(), data_samples=sample)


@TRANSFORMS.register_module(force=True)
class ToyLoadAnnotations(BaseTransform):
    """Puts the item's label map (``toy_gt``) into ``gt_seg_map``, like LoadAnnotations reading it from disk: after
    Resize / RandomFlip in a pipeline, the ground truth stays at the original size and orientation."""

    def transform(self, results):
        results['gt_seg_map'] = results['toy_gt'].copy()
        results.setdefault('seg_fields', []).append('gt_seg_map')
        return results


@DATASETS.register_module(force=True)
class ToyPipelineDataset(torch.utils.data.Dataset):
    """Random ``(H, W, 3)`` images and labels (some ignored) run through a pipeline of mmcv / mmseg transforms."""

    metainfo = ToyAnomalyLoopDataset.metainfo

    def __init__(self, pipeline, num=4, size=(24, 40), seed=0):
        self.pipeline = Compose(pipeline)
        rng = np.random.default_rng(seed)
        self.items = []
        for _ in range(num):
            gt = rng.integers(0, NUM_CLASSES, size).astype(np.uint8)
            gt[:2] = 255
            self.items.append((rng.integers(0, 256, (*size, 3)).astype(np.uint8), gt))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        img, gt = self.items[idx]
        return self.pipeline(
            dict(
                img=img.copy(),
                toy_gt=gt,
                img_path=f'img{idx}.png',
                img_shape=img.shape[:2],
                ori_shape=img.shape[:2],
                reduce_zero_label=False))


def plain_pipeline(scale=(40, 24)):
    """The test pipeline of the toy data: resize, then load the labels (at the original size), pack."""
    return [
        dict(type='Resize', scale=scale, keep_ratio=False),
        dict(type='ToyLoadAnnotations'),
        dict(type='PackSegInputs')
    ]


def pipeline_loader(pipeline, seed, num=4, batch_size=2):
    return dict(
        batch_size=batch_size,
        num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(type='ToyPipelineDataset', pipeline=pipeline, num=num, seed=seed))


@METRICS.register_module(force=True)
class ToyScorerMetric(BaseMetric):
    """Stand-in for AnomalyMetric: builds scorers, scores each sample, keeps what it was given."""

    def __init__(self, scorers, collect_device='cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.scorers = nn.ModuleList([ANOMALY_SCORERS.build(s) for s in scorers])
        self.seen_feats = []

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            logits = sample['seg_logits']['data'][None]
            feats = sample.get('backbone_feats')
            self.seen_feats.append(feats)
            batched = None if feats is None else [None if f is None else f[None] for f in feats]
            self.results.append({s.name: s.score(logits, batched).mean().item() for s in self.scorers})

    def compute_metrics(self, results):
        return {name: float(np.mean([r[name] for r in results])) for name in results[0]}


@HOOKS.register_module(force=True)
class RecordOutputKeysHook(Hook):
    """Remembers whether ``backbone_feats`` was still on the outputs after the metrics ran."""

    def __init__(self):
        self.leftover = []

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.leftover += ['backbone_feats' in o for o in outputs]


def model_cfg(mode='whole', size_divisor=None, stride=(12, 12)):
    """The shared tiny segmentor with this file's classes."""
    return tiny_segmentor_cfg(NUM_CLASSES, mode, size_divisor, stride)


SCORERS = [
    dict(type='MaxLogit'),
    dict(type='SML'),
    dict(type='Mahalanobis', feature_stage=2),
    dict(type='HEAT', feature_stage=1)
]


def loader(seed, size=(24, 40), num=4, batch_size=2):
    return dict(
        batch_size=batch_size,
        num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(type='ToyAnomalyLoopDataset', num=num, size=size, seed=seed))


def make_runner(work_dir,
                seed=0,
                scorers=SCORERS,
                with_val=True,
                test_cfg=None,
                val_loader=None,
                test_loader=None,
                tta=False,
                **model_kwargs):
    """A runner testing in ``work_dir``; ``test_cfg`` defaults to AnomalyTestLoop with ``work_dir/../stats.pth``;
    ``tta`` wraps the model in ``LogitSegTTAModel``."""
    val = dict(
        val_dataloader=val_loader or loader(seed=1), val_cfg=dict(type='ValLoop'), val_evaluator=dict(
            type='IoUMetric')) if with_val else {}
    model = model_cfg(**model_kwargs)
    return Runner(
        model=ConfigDict(type='LogitSegTTAModel', module=model) if tta else model,
        work_dir=str(work_dir),
        test_dataloader=test_loader or loader(seed=2),
        test_cfg=test_cfg or dict(type='AnomalyTestLoop', stats_file=osp.join(osp.dirname(str(work_dir)), 'stats.pth')),
        test_evaluator=[dict(type='IoUMetric', iou_metrics=['mIoU']),
                        dict(type='ToyScorerMetric', scorers=scorers)],
        custom_hooks=[dict(type='RecordOutputKeysHook')],
        default_scope='mmseg',
        randomness=dict(seed=seed),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1)),
        experiment_name=uuid.uuid4().hex,  # own logger / visualizer instances, hence own log file
        **val)


def log_text(runner):
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        return f.read()


def toy_metric(runner):
    return runner.test_loop.evaluator.metrics[1]


def test_loop_attaches_features_fits_and_saves_stats(tmp_path):
    runner = make_runner(tmp_path / 'run')
    metrics = runner.test()
    loop = runner.test_loop
    assert isinstance(loop, AnomalyTestLoop)
    assert loop.feature_stages == (1, 2)
    assert {'mIoU', 'MaxLogit', 'SML', 'Mahalanobis', 'HEAT'} <= set(metrics)

    # backbone_feats: stage outputs of the same forward pass, sliced per sample, None where not requested
    model = runner.model
    batch = loop.dataloader.collate_fn([loop.dataloader.dataset[i] for i in range(2)])
    with torch.no_grad():
        stage_out = model.backbone(model.data_preprocessor(copy.deepcopy(batch), False)['inputs'])
    seen = toy_metric(runner).seen_feats
    assert len(seen) == 4
    assert seen[0][0] is None and seen[0][3] is None
    torch.testing.assert_close(seen[1][1], stage_out[1][1])
    torch.testing.assert_close(seen[1][2], stage_out[2][1])
    recorder = [h for h in runner.hooks if isinstance(h, RecordOutputKeysHook)][0]
    assert recorder.leftover == [False] * 4  # freed after the metrics' process

    # fitted on the val dataloader with logits at gt resolution: same as fitting SML by hand
    manual = SML()
    manual.fit_begin()
    val_set = runner.build_dataloader(loader(seed=1)).dataset
    for i in range(len(val_set)):
        with torch.no_grad():
            out = model.test_step(loop.dataloader.collate_fn([val_set[i]]))[0]
        manual.fit_step(out.seg_logits.data[None], None, out.gt_sem_seg.data)
    manual.fit_end()
    sml = toy_metric(runner).scorers[1]
    torch.testing.assert_close(sml.mu, manual.mu)
    torch.testing.assert_close(sml.sigma, manual.sigma)

    stats = torch.load(tmp_path / 'stats.pth', weights_only=True)
    assert set(stats['scorers']) == {'SML', 'Mahalanobis'}
    assert stats['meta']['fit_data'].startswith('ToyAnomalyLoopDataset(len=4')
    text = log_text(runner)
    assert 'fitting SML, Mahalanobis on val_dataloader (4 images, 2 batches), pass 1' in text
    assert 'fitting SML, Mahalanobis: 2 batches in' in text
    assert 'saved the fitted statistics of SML, Mahalanobis' in text


def test_loop_reuses_matching_stats_and_refits_for_other_weights(tmp_path, monkeypatch):
    first = make_runner(tmp_path / 'first').test()

    def no_fit(*args, **kwargs):
        raise AssertionError('the stats file should have been reused')

    with monkeypatch.context() as m:
        m.setattr(AnomalyTestLoop, 'fit', no_fit)
        again = make_runner(tmp_path / 'again')
        second = again.test()
    assert 'loaded the fitted statistics of SML, Mahalanobis from' in log_text(again)
    for key in ('SML', 'Mahalanobis', 'MaxLogit'):
        assert second[key] == pytest.approx(first[key], rel=1e-5)

    other = make_runner(tmp_path / 'other', seed=1)  # other weights: the file must not be reused
    other.test()
    text = log_text(other)
    assert 'does not match this run: the model weights changed' in text and 'pass 1' in text

    # another scorer set in the same work dir: matching entries are reused, new ones fitted and added
    changed = make_runner(
        tmp_path / 'changed',
        seed=1,
        scorers=[dict(type='SML', min_pixels=5, name='SML5'),
                 dict(type='Mahalanobis', feature_stage=2)])
    changed.test()
    text = log_text(changed)
    assert 'loaded the fitted statistics of Mahalanobis' in text
    assert 'fitting SML5 on val_dataloader' in text
    stats = torch.load(tmp_path / 'stats.pth', weights_only=True)
    assert set(stats['scorers']) == {'SML', 'Mahalanobis', 'SML5'}


def test_loop_uses_explicit_fit_dataloader_and_two_passes_for_zscore_fusion(tmp_path):
    fusion = dict(type='ScoreFusion', mode='zscore', scorers=[dict(type='MaxLogit'), dict(type='SML')], name='fz')
    runner = make_runner(
        tmp_path / 'run',
        scorers=[fusion],
        with_val=False,
        test_cfg=dict(type='AnomalyTestLoop', fit_dataloader=loader(seed=3, num=2)))
    metrics = runner.test()
    assert 'fz' in metrics and np.isfinite(metrics['fz'])
    text = log_text(runner)
    assert 'fitting fz on test_cfg.fit_dataloader (2 images, 1 batches), pass 2' in text


def test_loop_crops_padding_from_features(tmp_path):
    runner = make_runner(tmp_path / 'run', size_divisor=16)  # 24x40 images padded to 32x48
    runner.test()
    feats = toy_metric(runner).seen_feats[0]
    assert feats[2].shape[-2:] == (3, 5)  # stride 8: padded 4x6 -> image 3x5
    assert feats[1].shape[-2:] == (3, 5)


def test_loop_errors(tmp_path):
    with pytest.raises(RuntimeError, match=r"need fitting, but there is no fit data.*Add `fit_dataloader="):
        make_runner(tmp_path / 'a', with_val=False).test()
    with pytest.raises(RuntimeError, match=r"backbone ran 6 times for one batch.*mode='whole'"):
        make_runner(tmp_path / 'b', scorers=[dict(type='HEAT', feature_stage=1)], mode='slide').test()
    with pytest.raises(IndexError, match=r'backbone stage\(s\) \[7\].*returns 4 stage outputs'):
        make_runner(tmp_path / 'c', scorers=[dict(type='HEAT', feature_stage=7)]).test()


def test_loop_without_scorers_is_a_plain_test_loop(tmp_path):
    runner = Runner(
        model=model_cfg(),
        work_dir=str(tmp_path),
        test_dataloader=loader(seed=2),
        test_cfg=dict(type='AnomalyTestLoop'),
        test_evaluator=dict(type='IoUMetric'),
        default_scope='mmseg')
    assert set(runner.test()) == {'aAcc', 'mIoU', 'mAcc'}
    assert runner.test_loop.scorers == []


def test_stats_are_refitted_when_the_fit_pipeline_test_cfg_or_preprocessor_change(tmp_path, monkeypatch):
    """The stats key covers what changes the scorers' logits / features besides the weights; unchanged, it loads."""
    sml = [dict(type='SML')]

    def run(name, scale=(40, 24), **model_kwargs):
        runner = make_runner(
            tmp_path / name,
            scorers=sml,
            val_loader=pipeline_loader(plain_pipeline(scale), seed=1),
            test_loader=pipeline_loader(plain_pipeline(), seed=2),
            **model_kwargs)
        runner.test()
        return runner, log_text(runner), toy_metric(runner).scorers[0]

    first, text, first_sml = run('first')
    assert 'fitting SML on val_dataloader (4 images, 2 batches), pass 1' in text
    meta = torch.load(tmp_path / 'stats.pth', weights_only=True)['meta']

    with monkeypatch.context() as m:
        m.setattr(AnomalyTestLoop, 'fit', lambda *a, **k: pytest.fail('unchanged: the stats file must be reused'))
        _, text, same_sml = run('same')
    assert 'loaded the fitted statistics of SML from' in text
    torch.testing.assert_close(same_sml.mu, first_sml.mu)

    # the model's test_cfg (sliding-window inference, its stride) changes the logits
    _, text, _ = run('slide', mode='slide')
    assert "does not match this run: the model test_cfg changed (mode: 'whole' -> 'slide'); refitting" in text
    _, text, _ = run('stride', mode='slide', stride=(8, 8))
    assert 'does not match this run: the model test_cfg changed (stride: [12, 12] -> [8, 8]); refitting' in text

    # and so does the data preprocessor's test-time padding
    _, text, _ = run('padded', mode='slide', stride=(8, 8), size_divisor=16)
    assert ("does not match this run: the data preprocessor changed (test_cfg: None -> {'size_divisor': 16}); "
            'refitting' in text)

    # another Resize scale in the fit pipeline: other logits at gt resolution, other statistics
    _, text, rescaled_sml = run('rescaled', scale=(32, 20), mode='slide', stride=(8, 8), size_divisor=16)
    assert 'does not match this run: the fit pipeline changed (- Resize(scale=(40, 24)' in text
    assert '+ Resize(scale=(32, 20)' in text and 'refitting' in text and 'pass 1' in text
    _, _, padded_sml = run('padded_again', mode='slide', stride=(8, 8), size_divisor=16)
    assert not torch.allclose(rescaled_sml.mu, padded_sml.mu)

    # what the first run stored as its key
    assert 'Resize(scale=(40, 24)' in meta['fit_pipeline'] and 'ToyLoadAnnotations' in meta['fit_pipeline']
    assert meta['test_cfg'] == dict(mode='whole', crop_size=[16, 16], stride=[12, 12])
    assert meta['data_preprocessor']['mean'] == pytest.approx([123.7, 116.3, 103.5])
    assert meta['model_settings']['decode_head.align_corners'] is False
    assert meta['tta'] is None


def test_stats_key_names_old_format_and_model_settings(tmp_path):
    runner = make_runner(tmp_path / 'a', scorers=[dict(type='SML')])
    runner.test()
    loop = runner.test_loop
    key = loop.stats_key(loop.fit_dataloader())
    assert key['format'] == 2 and key['fit_pipeline'] is None  # the toy dataset packs its items itself
    assert key['model_settings']['backbone.out_indices'] == [0, 1, 2, 3]
    assert key['model_settings']['backbone.layer3.1.conv1.dilation'] == [2, 2]
    stored = torch.load(tmp_path / 'stats.pth', weights_only=True)
    stored['meta']['format'] = 1
    stored['meta']['model_settings']['decode_head.align_corners'] = True
    torch.save(stored, tmp_path / 'stats.pth')
    again = make_runner(tmp_path / 'b', scorers=[dict(type='SML')])
    again.test()
    assert ('does not match this run: the stats file format changed (1 -> 2), the model settings changed ('
            in log_text(again))
    stored['meta']['format'] = 2
    torch.save(stored, tmp_path / 'stats.pth')
    third = make_runner(tmp_path / 'c', scorers=[dict(type='SML')])
    third.test()
    assert ("does not match this run: the model settings changed (decode_head.align_corners: True -> False); refitting"
            in log_text(third))


def test_fitting_draws_one_progress_bar_instead_of_a_line_per_batch(tmp_path, capsys):
    runner = make_runner(
        tmp_path / 'run',
        scorers=[dict(type='SML')],
        val_loader=pipeline_loader(plain_pipeline(), seed=1, num=5, batch_size=1))
    runner.test()
    text = log_text(runner)
    fit_lines = [line for line in text.splitlines() if 'AnomalyTestLoop: fitting' in line]
    assert len(fit_lines) == 2, fit_lines  # "fitting SML on ... (5 images, 5 batches), pass 1" and the total
    assert 'fitting SML on val_dataloader (5 images, 5 batches), pass 1' in fit_lines[0]
    assert 'fitting SML: 5 batches in' in fit_lines[1]
    out = capsys.readouterr().out
    counts = [int(c) for c in re.findall(r'\] (\d+)/5, ', out)]
    assert counts == [0, 1, 2, 3, 4, 5]  # mmengine's ProgressBar: drawn at 0/5, updated once per batch, up to 5/5


def tta_pipeline(ratios=(1.0, 0.5)):
    """mmseg's TTA pipeline for the toy data: ratios x (no flip, flip), labels loaded after the augmentations."""
    return [
        dict(
            type='TestTimeAug',
            transforms=[[dict(type='Resize', scale_factor=r, keep_ratio=True) for r in ratios],
                        [
                            dict(type='RandomFlip', prob=0., direction='horizontal'),
                            dict(type='RandomFlip', prob=1., direction='horizontal')
                        ], [dict(type='ToyLoadAnnotations')], [dict(type='PackSegInputs')]])
    ]


def test_tta_feeds_scorers_the_mean_logits_and_the_merged_features_of_the_views(tmp_path):
    runner = make_runner(
        tmp_path / 'tta',
        tta=True,
        val_loader=pipeline_loader(tta_pipeline(), seed=1),
        test_loader=pipeline_loader(tta_pipeline(), seed=2))
    metrics = runner.test()
    loop, segmentor = runner.test_loop, runner.model.module
    assert type(loop.tta_model).__name__ == 'LogitSegTTAModel' and loop.segmentor is segmentor

    # by hand: every view through the bare segmentor; logits come back un-flipped at the original size (mmseg's
    # postprocess_result), stage features are un-flipped here, resized to the largest view (ratio 1.0), averaged
    dataset, seen = loop.dataloader.dataset, toy_metric(runner).seen_feats
    max_logit = []
    for idx in range(len(dataset)):
        views = dataset[idx]
        assert [s.flip for s in views['data_samples']] == [False, True, False, True]
        logits, feats = [], {1: [], 2: []}
        with torch.no_grad():
            for img, sample in zip(views['inputs'], views['data_samples']):
                logits.append(segmentor.test_step(dict(inputs=[img], data_samples=[sample]))[0].seg_logits.data)
                inputs = segmentor.data_preprocessor(dict(inputs=[img], data_samples=[sample]), False)['inputs']
                stages = segmentor.backbone(inputs)
                for s in feats:
                    feats[s].append(stages[s][0].flip(-1) if sample.flip else stages[s][0])
        max_logit.append(-torch.stack(logits).mean(0).max(0).values.mean().item())
        for s, maps in feats.items():
            size = maps[0].shape[-2:]
            assert all(m.shape[-2] <= size[0] and m.shape[-1] <= size[1] for m in maps)
            expected = torch.stack(
                [F.interpolate(m[None], size=size, mode='bilinear', align_corners=False)[0] for m in maps]).mean(0)
            torch.testing.assert_close(seen[idx][s], expected)
        assert seen[idx][0] is None and seen[idx][3] is None
    assert metrics['MaxLogit'] == pytest.approx(np.mean(max_logit), rel=1e-5)
    assert all(np.isfinite(metrics[name]) for name in ('SML', 'Mahalanobis', 'HEAT'))

    # fitted through the same TTA model on the augmented fit data, and keyed on it
    meta = torch.load(tmp_path / 'stats.pth', weights_only=True)['meta']
    assert meta['tta'] == 'LogitSegTTAModel' and 'TestTimeAug' in meta['fit_pipeline']
    plain = make_runner(
        tmp_path / 'plain',
        val_loader=pipeline_loader(plain_pipeline(), seed=1),
        test_loader=pipeline_loader(plain_pipeline(), seed=2))
    plain.test()
    text = log_text(plain)
    assert "the test-time augmentation wrapper changed ('LogitSegTTAModel' -> None)" in text
    assert 'the model weights changed' not in text and 'pass 1' in text


def test_tta_refuses_un_augmented_fit_batches(tmp_path):
    runner = make_runner(
        tmp_path / 'tta',
        tta=True,
        val_loader=pipeline_loader(plain_pipeline(), seed=1),
        test_loader=pipeline_loader(tta_pipeline(), seed=2))
    with pytest.raises(
            RuntimeError,
            match=r'wrapped in LogitSegTTAModel .*val_dataloader gives un-augmented '
            r'batches; set its dataset.pipeline to the tta_pipeline'):
        runner.test()
