"""AnomalyPanelHook: unit behaviour on hand-made data samples, and end to end inside runner.test()."""
import json
import os.path as osp
import uuid
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.structures import PixelData
from mmseg.registry import HOOKS
from mmseg.structures import SegDataSample
from reference_metrics import image_miou, street_hazards_labels

from anomseg_plugins.engine import AnomalyPanelHook
from anomseg_plugins.scorers import MaxLogit
from anomseg_plugins.visualization.panels import FP_COLOR, TP_COLOR

pytestmark = pytest.mark.slow  # full test runs drawing panels

C, H, W = 13, 40, 64


def sample(idx: int, with_anomaly: bool, tmp_path) -> SegDataSample:
    """Logits whose max is low (MaxLogit score high) on the anomaly block; the image file exists on disk."""
    import mmcv
    rng = np.random.default_rng(idx)
    logits = torch.from_numpy(rng.normal(size=(C, H, W)).astype(np.float32))
    logits[7] += 6.0
    anomaly = torch.zeros(1, H, W, dtype=torch.uint8)
    if with_anomaly:
        anomaly[0, 10:30, 10:30] = 1
        logits[:, 10:30, 10:30] = -3.0  # MaxLogit score 3 on the block, <= -3 elsewhere
    gt = torch.full((1, H, W), 7, dtype=torch.long)
    gt[anomaly == 1] = 255
    path = str(tmp_path / f'img_{idx}.png')
    mmcv.imwrite(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), path)
    s = SegDataSample(metainfo=dict(img_path=path, ori_shape=(H, W), img_shape=(H, W)))
    s.seg_logits = PixelData(data=logits)
    s.pred_sem_seg = PixelData(data=logits.argmax(0, keepdim=True))
    s.gt_sem_seg = PixelData(data=gt)
    s.gt_anomaly_map = PixelData(data=anomaly)
    return s


def fake_runner(tmp_path, scorers=()):
    metric = SimpleNamespace(scorers=list(scorers))
    return SimpleNamespace(
        test_loop=SimpleNamespace(evaluator=SimpleNamespace(metrics=[metric]), dataloader=None),
        cfg=Config(dict()),
        log_dir=str(tmp_path / 'log'),
        model=torch.nn.Identity(),
        iter=0)


def run_hook(hook, runner, samples, metrics=None):
    hook.before_test_epoch(runner)
    for i, s in enumerate(samples):
        hook.before_test_iter(runner, i, None)
        hook.after_test_iter(runner, i, None, [s])
    hook.after_test_epoch(runner, metrics or {})


def test_hook_is_registered_and_validates_arguments():
    assert HOOKS.get('AnomalyPanelHook') is AnomalyPanelHook
    with pytest.raises(ValueError, match='operating_point'):
        AnomalyPanelHook(operating_point='median')
    with pytest.raises(ValueError, match='interval'):
        AnomalyPanelHook(interval=0)


def test_hook_selects_anomalous_images_and_writes_panels(tmp_path):
    samples = [sample(i, with_anomaly=i % 2 == 1, tmp_path=tmp_path) for i in range(6)]
    out = tmp_path / 'panels'
    hook = AnomalyPanelHook(
        draw=True,
        scorer='MaxLogit',
        max_panels=2,
        grid_size=2,
        interval=1,
        out_dir=str(out),
        dpi=40,
        compare_scorers=False)
    run_hook(hook, fake_runner(tmp_path), samples)
    index = json.load(open(out / 'panels.json'))
    assert [osp.basename(p['image']) for p in index['panels']] == ['img_1.png', 'img_3.png']
    for p in index['panels']:
        assert osp.isfile(out / p['file'])
        assert p['tp'] > 0 and p['precision'] > 0
    assert index['operating_point'] == '95% recall (pooled)'
    assert index['pooled_at_threshold']['recall'] >= 0.95
    assert osp.isfile(out / 'grid.png') and index['scorer_grid'] is None


def test_hook_fixed_threshold_marks_tp_and_fp(tmp_path):
    import mmcv
    samples = [sample(1, True, tmp_path)]
    block_score = float(MaxLogit()(samples[0].seg_logits.data[None])[0, 15, 15])

    def panel(threshold, name):
        out = tmp_path / name
        hook = AnomalyPanelHook(
            draw=True, threshold=threshold, max_panels=1, grid_size=0, out_dir=str(out), dpi=40, compare_scorers=False)
        run_hook(hook, fake_runner(tmp_path), samples)
        index = json.load(open(out / 'panels.json'))
        img = mmcv.imread(str(out / index['panels'][0]['file']), channel_order='rgb').reshape(-1, 3).astype(int)
        return index, img

    found, img_found = panel(block_score - 1.0, 'found')  # the anomaly block is flagged, nothing else
    missed, img_missed = panel(block_score + 100.0, 'missed')  # nothing is flagged
    assert found['threshold'] == block_score - 1.0 and found['operating_point'] == 'fixed threshold'
    assert found['panels'][0]['tp'] == 400 and found['panels'][0]['fp'] == 0 and found['panels'][0]['fn'] == 0
    assert missed['panels'][0]['tp'] == 0 and missed['panels'][0]['fn'] == 400

    def count(img, color):
        return int((np.abs(img - color).max(axis=1) <= 2).sum())

    # the TP block (20x20 image pixels, ~30x30 panel pixels) is green only when flagged
    assert count(img_found, TP_COLOR) - count(img_missed, TP_COLOR) > 400
    assert count(img_found, FP_COLOR) == count(img_missed, FP_COLOR)  # no false positive in either


def test_hook_falls_back_and_names_unknown_scorers(tmp_path):
    samples = [sample(i, with_anomaly=False, tmp_path=tmp_path) for i in range(2)]
    out = tmp_path / 'none'
    hook = AnomalyPanelHook(draw=True, max_panels=1, grid_size=0, out_dir=str(out), dpi=40, compare_scorers=False)
    run_hook(hook, fake_runner(tmp_path), samples)
    index = json.load(open(out / 'panels.json'))
    assert len(index['panels']) == 1  # no anomalous image: a normal one fills in
    assert index['operating_point'].startswith('top 1%')
    bad = AnomalyPanelHook(draw=True, scorer='NoSuchScorer')
    with pytest.raises(KeyError, match='NoSuchScorer'):
        bad.before_test_iter(fake_runner(tmp_path), 0, None)
    off = AnomalyPanelHook(draw=False, out_dir=str(tmp_path / 'off'))
    run_hook(off, fake_runner(tmp_path), samples)
    assert not osp.exists(tmp_path / 'off')


class _Recorder(Hook):
    """The logits and annotation file of every test image, by the panels' image name (``<folder>/<file>``)."""

    def __init__(self):
        self.samples = {}

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        for s in outputs:
            name = f'{osp.basename(osp.dirname(s.img_path))}/{osp.basename(s.img_path)}'
            self.samples[name] = (s.seg_logits.data.float().cpu().numpy(), s.seg_map_path)


def test_hook_draws_from_the_test_pass_with_fitted_and_stateful_scorers(tmp_path, repo_root, tiny_street_hazards):
    """runner.test() with MaxLogit + HEAT (stateful) + Mahalanobis (fitted, backbone features): the hook's
    HEAT maps are the metric's (same pooled FPR95 at its threshold), panels and grids are written, and each
    panel's mIoU (over the classes labelled or predicted on the image's labelled pixels) and pixel accuracy equal
    a numpy recomputation from the same pass's logits and the annotation file."""
    from mmengine.runner import Runner
    path = tmp_path / 'panels_cfg.py'
    path.write_text(
        f"_base_ = [{osp.join(repo_root, 'configs', 'demo', 'deeplab_r18_tiny_demo.py')!r}, "
        f"{osp.join(repo_root, 'configs', '_base_', 'visualization', 'anomaly_panels.py')!r}]\n"
        "test_cfg = dict(type='AnomalyTestLoop', stats_file=None)\n"
        "test_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']), dict(type='AnomalyMetric', "
        "save_figures=False, scorers=[dict(type='MaxLogit'), dict(type='HEAT'), "
        "dict(type='Mahalanobis', feature_stage=2)])]\n"
        "default_hooks = dict(visualization=_base_.anomaly_panel_hook)\n"
        "custom_imports = dict(imports=['anomseg_plugins', 'anomseg_plugins.scorers', 'anomseg_plugins.engine', "
        "'anomseg_plugins.evaluation', 'anomseg_plugins.visualization'], allow_failed_imports=False)\n")
    cfg = Config.fromfile(str(path))
    for split in ('val_dataloader', 'test_dataloader'):
        cfg[split].dataset.data_root = tiny_street_hazards
        [t for t in cfg[split].dataset.pipeline if t.type == 'Resize'][0].scale = (160, 96)
        cfg[split].num_workers = 0
        cfg[split].persistent_workers = False
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = uuid.uuid4().hex
    cfg.visualizer.save_dir = str(tmp_path / 'show')  # what tools/test.py --show-dir sets
    cfg.default_hooks.visualization.update(scorer='HEAT', max_panels=2, grid_size=2, dpi=50)
    runner = Runner.from_cfg(cfg)
    recorder = _Recorder()
    runner.register_hook(recorder)
    metrics = runner.test()
    out = tmp_path / 'show' / 'anomaly_panels'
    index = json.load(open(out / 'panels.json'))
    assert index['scorer'] == 'HEAT' and len(index['panels']) == 2
    assert index['pooled_at_threshold']['recall'] >= 0.95
    assert 100 * index['pooled_at_threshold']['fpr'] == pytest.approx(metrics['anomaly/pooled/HEAT/FPR95'], abs=1e-6)
    for name in ['grid.png', 'scorer_grid.png'] + [p['file'] for p in index['panels']]:
        assert (out / name).stat().st_size > 10000, name
    # each panel's mIoU and pixel accuracy recomputed from the same pass's logits and the annotation file (the hook
    # counts in float32, mmseg's histc)
    for p in index['panels']:
        logits, seg_map_path = recorder.samples[p['image']]
        gt, _ = street_hazards_labels(seg_map_path)
        pred = logits.argmax(0)
        assert p['mIoU'] == pytest.approx(image_miou(pred, gt, C), rel=1e-6), p
        valid = gt != 255
        assert p['acc'] == pytest.approx(100.0 * np.mean(pred[valid] == gt[valid]), rel=1e-6), p
