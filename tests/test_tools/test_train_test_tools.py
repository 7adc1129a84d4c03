"""tools/train.py, --resume and tools/test.py on the demo config and generated data (CPU, safe loading on);
tools/test.py refuses a checkpoint that does not fit the model, and the metrics it writes match an independent
recomputation from the same checkpoint."""
import json
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from reference_metrics import iou_reference, street_hazards_labels

pytestmark = pytest.mark.slow  # trains the demo model, runs the tools in subprocesses

CONFIG = 'configs/demo/deeplab_r18_tiny_demo.py'
NUM_CLASSES = 13  # StreetHazards' known classes: annotation values 1..13


def _run(repo_root, args, timeout=600):
    proc = subprocess.run([sys.executable] + args, cwd=repo_root, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f'{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc.stdout + proc.stderr


def _options(data_root, epochs):
    return [
        '--cfg-options',
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        # 96x96 crops keep the CPU cost of a test run small
        'train_dataloader.dataset.pipeline.2.output_size=(96,96)',
        'model.data_preprocessor.size=(96,96)',
        f'train_cfg.max_epochs={epochs}',
        'train_cfg.val_interval=100',
        'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=1',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ]


def _losses(work_dir):
    scalars = max(_glob(work_dir, 'scalars.json'), key=osp.getmtime)  # the latest run's log
    rows = [json.loads(line) for line in open(scalars)]
    return [(r['iter'], r['loss']) for r in rows if 'loss' in r]


def _glob(root, name):
    import glob
    return glob.glob(osp.join(root, '**', name), recursive=True)


@pytest.fixture(scope='module')
def trained(repo_root, tiny_street_hazards, tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('demo_run'))
    log = _run(repo_root, ['tools/train.py', CONFIG, '--work-dir', work_dir] + _options(tiny_street_hazards, 8))
    return work_dir, log


def test_train_loss_decreases_and_aux_head_trains(trained):
    work_dir, log = trained
    losses = _losses(work_dir)
    assert len(losses) == 16  # 8 images / batch 4 = 2 iterations per epoch, 8 epochs
    first = sum(v for _, v in losses[:3]) / 3
    last = sum(v for _, v in losses[-3:]) / 3
    assert last < first, losses
    assert 'aux.loss_ce' in log and 'decode.loss_ce' in log
    assert osp.isfile(osp.join(work_dir, 'epoch_8.pth'))


def test_resume_continues_from_checkpoint(repo_root, tiny_street_hazards, trained, tmp_path):
    work_dir, _ = trained
    import shutil
    resumed = str(tmp_path / 'resumed')
    shutil.copytree(work_dir, resumed)
    log = _run(repo_root,
               ['tools/train.py', CONFIG, '--work-dir', resumed, '--resume'] + _options(tiny_street_hazards, 10))
    assert 'resumed epoch: 8, iter: 16' in log
    assert osp.isfile(osp.join(resumed, 'epoch_10.pth'))
    iters = [it for it, _ in _losses(resumed) if it > 16]
    assert iters and min(iters) == 17 and max(iters) == 20


def _recompute_iou(repo_root, data_root, checkpoint):
    """mmseg's IoU metrics of ``checkpoint`` on the test split, computed outside tools/test.py and its Runner: the
    model built from the config and loaded strictly from the file, each test image through the config's test
    pipeline and ``model.test_step``, its prediction the argmax of the logits, its labels read from the annotation
    file (``street_hazards_labels``) and the areas counted with numpy over the 13 known classes
    (``iou_reference``)."""
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.model import revert_sync_batchnorm
    from mmseg.registry import DATASETS, MODELS

    from anomseg_plugins.utils import safe_torch_load
    cfg = Config.fromfile(osp.join(repo_root, CONFIG))
    cfg.test_dataloader.dataset.data_root = data_root
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.load_state_dict(safe_torch_load(checkpoint, map_location='cpu')['state_dict'], strict=True)
    model.eval()
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    preds, gts = [], []
    with torch.no_grad():
        for i in range(len(dataset)):
            sample = model.test_step(pseudo_collate([dataset[i]]))[0]
            gt, _ = street_hazards_labels(sample.seg_map_path)
            preds.append(sample.seg_logits.data.argmax(0).numpy())
            gts.append(gt)
            assert preds[-1].shape == gt.shape
    return iou_reference(preds, gts, NUM_CLASSES), len(dataset)


def _class_table(log):
    """The rows of IoUMetric's per-class table in a log: ``[(class, IoU, Acc), ...]`` (percent, NaN as nan)."""
    lines = log.splitlines()
    start = next(i for i, line in enumerate(lines) if re.fullmatch(r'\|\s*Class\s*\|\s*IoU\s*\|\s*Acc\s*\|', line))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith('|'):
            break
        name, iou, acc = (cell.strip() for cell in line.strip('|').split('|'))
        rows.append((name, float(iou), float(acc)))
    return rows


def test_test_tool_reports_miou(repo_root, tiny_street_hazards, trained, tmp_path):
    """test_results.json by value: config and checkpoint as given, aAcc / mIoU / mAcc equal to an independent
    recomputation from the same checkpoint on the same test images (``_recompute_iou``), and so is every row of
    the per-class table in the log. mmseg rounds to 2 decimals, hence the 0.006 points: an mIoU over other classes
    (e.g. with the anomaly or without ``unlabeled``), of another checkpoint or in fractions is far outside."""
    work_dir, _ = trained
    out_dir = str(tmp_path / 'test')
    checkpoint = osp.join(work_dir, 'epoch_8.pth')
    log = _run(repo_root,
               ['tools/test.py', CONFIG, checkpoint, '--work-dir', out_dir] + _options(tiny_street_hazards, 8))
    results = json.load(open(osp.join(out_dir, 'test_results.json')))
    assert results['config'] == CONFIG and results['checkpoint'] == checkpoint
    assert set(results['metrics']) == {'aAcc', 'mIoU', 'mAcc'}
    want, num_images = _recompute_iou(repo_root, tiny_street_hazards, checkpoint)
    assert num_images == 6
    for key in ('aAcc', 'mIoU', 'mAcc'):
        assert results['metrics'][key] == pytest.approx(want[key], abs=0.006), key
    assert f"mIoU: {results['metrics']['mIoU']:.4f}" in log
    from anomseg_plugins.datasets.street_hazards import StreetHazardsDataset
    table = _class_table(log)
    assert [name for name, _, _ in table] == list(StreetHazardsDataset.METAINFO['classes'])
    for (name, iou, acc), want_iou, want_acc in zip(table, want['IoU'], want['Acc']):
        assert iou == pytest.approx(want_iou, abs=0.006, nan_ok=True), name
        assert acc == pytest.approx(want_acc, abs=0.006, nan_ok=True), name


def _five_class_checkpoint(repo_root, path):
    from mmengine.config import Config
    from mmseg.registry import MODELS
    cfg = Config.fromfile(osp.join(repo_root, CONFIG))
    cfg.model.decode_head.num_classes = 5
    cfg.model.auxiliary_head.num_classes = 5
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict(), meta={}), path)
    return path


def test_train_load_from_another_head_says_what_it_skipped(repo_root, tiny_street_hazards, tmp_path):
    """Fine-tuning (``load_from``) stays lenient but logs one line with what was loaded and what was skipped."""
    ckpt = _five_class_checkpoint(repo_root, str(tmp_path / 'five_classes.pth'))
    log = _run(repo_root,
               ['tools/train.py', CONFIG, '--work-dir', str(tmp_path / 'ft')] + _options(tiny_street_hazards, 1) +
               [f'load_from={ckpt}'])
    line = next(line for line in log.splitlines() if f'checkpoint {ckpt}: loaded' in line)
    matched, total = re.search(
        r'loaded (\d+) of (\d+) model weights; 4 of another shape skipped '
        r'\(decode_head\.conv_seg\.weight \(5, 64, 1, 1\) vs \(13, 64, 1, 1\)', line).groups()
    assert int(matched) == int(total) - 4 and 'WARNING' in line


def test_test_tool_refuses_a_checkpoint_of_another_head(repo_root, tiny_street_hazards, tmp_path):
    """A checkpoint of a 5-class model into the 13-class one: exit 1 naming file, keys and shapes, nothing evaluated.

    (mmengine's lenient ``load_from`` used to load it with a warning and report a meaningless mIoU with exit 0.)
    """
    ckpt = _five_class_checkpoint(repo_root, str(tmp_path / 'five_classes.pth'))
    out_dir = str(tmp_path / 'test')
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', CONFIG, ckpt, '--work-dir', out_dir] + _options(tiny_street_hazards, 1),
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=600)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith('tools/test.py: '))
    matched, total = re.fullmatch(
        rf'tools/test.py: checkpoint {re.escape(ckpt)} does not fit the model: (\d+) of '
        r'(\d+) model weights match it', lines[first]).groups()
    assert int(matched) == int(total) - 4
    assert lines[first + 1] == (
        '- 4 weight(s) of another shape (checkpoint vs model): decode_head.conv_seg.weight (5, 64, 1, 1) vs '
        '(13, 64, 1, 1), decode_head.conv_seg.bias (5,) vs (13,), auxiliary_head.conv_seg.weight (5, 32, 1, 1) vs '
        '(13, 32, 1, 1), auxiliary_head.conv_seg.bias (5,) vs (13,)')
    assert 'Traceback' not in proc.stderr
    assert 'Iter(test)' not in proc.stdout + proc.stderr  # nothing was evaluated
    assert not osp.exists(osp.join(out_dir, 'test_results.json'))
