"""tools/train.py, --resume and tools/test.py on the demo config and generated data (CPU, safe loading on);
tools/test.py refuses a checkpoint that does not fit the model."""
import json
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

CONFIG = 'configs/demo/deeplab_r18_tiny_demo.py'


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


def test_test_tool_reports_miou(repo_root, tiny_street_hazards, trained, tmp_path):
    work_dir, _ = trained
    out_dir = str(tmp_path / 'test')
    log = _run(
        repo_root,
        ['tools/test.py', CONFIG, osp.join(work_dir, 'epoch_8.pth'), '--work-dir', out_dir] +
        _options(tiny_street_hazards, 8))
    assert 'mIoU' in log
    results = json.load(open(osp.join(out_dir, 'test_results.json')))
    assert 0.0 <= results['metrics']['mIoU'] <= 100.0
    assert results['checkpoint'].endswith('epoch_8.pth')


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
