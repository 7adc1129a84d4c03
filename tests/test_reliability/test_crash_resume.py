"""A run SIGKILLed mid-epoch and resumed with --resume ends bit-identical to an uninterrupted run.

Both runs train the demo config (random crops, flips, colour jitter, blur, dropout: every source of
randomness on) for 2 epochs x 4 iterations with a per-iteration LR schedule and validation after every
epoch, on CPU with one thread per process and a fixed seed. ``PerEpochSeedHook`` reseeds the random
generators at every epoch start, so the resumed run draws the same augmentations and dropout masks as the
uninterrupted one; the comparison is therefore exact (``torch.equal``), no tolerance.
"""
import json
import os
import os.path as osp
import re
import signal
import subprocess
import sys

import pytest
import torch

from anomseg_plugins.utils import safe_torch_load
from reliability_utils import run_tool, small_run_options, tool_env

ITERS_PER_EPOCH = 4  # 8 training images, batch 2
KILL_AT = re.compile(r'Epoch\(train\)\s*\[2\]\[\s*1/4\]')  # first iteration of epoch 2 logged


def write_config(repo_root: str, path: str) -> str:
    demo = osp.join(repo_root, 'configs/demo/deeplab_r18_tiny_demo.py')
    with open(path, 'w') as f:
        f.write(f"""_base_ = [{demo!r}]
custom_imports = dict(imports=['anomseg_plugins', 'anomseg_plugins.utils.per_epoch_seed_hook'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='PerEpochSeedHook')]
randomness = dict(seed=0, deterministic=True)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.25, by_epoch=False, begin=0, end=4),
    dict(type='PolyLR', power=1.0, eta_min=2e-4, by_epoch=False, begin=4, end=8),
]
train_dataloader = dict(batch_size=2)
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
""")
    return path


def scalars(work_dir: str) -> dict:
    """``{iter: (lr, loss)}`` over every run logged in ``work_dir``."""
    rows = {}
    for stamp in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, stamp, 'vis_data', 'scalars.json')
        if osp.isfile(path):
            for line in open(path):
                row = json.loads(line)
                if 'loss' in row:
                    rows[row['iter']] = (row['lr'], row['loss'])
    return rows


@pytest.fixture(scope='module')
def runs(repo_root, tiny_street_hazards, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('crash_resume')
    config = write_config(repo_root, str(tmp / 'resume_cfg.py'))
    # validation after every epoch (on small images): it runs between the checkpoint and the next epoch
    args = small_run_options(tiny_street_hazards, 2, 'train_cfg.val_interval=1',
                             'val_dataloader.dataset.pipeline.1.scale=(160,96)')
    straight, crashed = str(tmp / 'straight'), str(tmp / 'crashed')
    env = tool_env(dict(PYTHONUNBUFFERED='1'))
    # the uninterrupted run and the one to be killed run side by side (one thread each)
    with open(str(tmp / 'straight.log'), 'w') as log:
        straight_proc = subprocess.Popen([sys.executable, 'tools/train.py', config, '--work-dir', straight] + args,
                                         cwd=repo_root, stdout=log, stderr=subprocess.STDOUT, env=env)
        victim = subprocess.Popen([sys.executable, 'tools/train.py', config, '--work-dir', crashed] + args,
                                  cwd=repo_root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        seen = []
        for line in victim.stdout:
            seen.append(line)
            if KILL_AT.search(line):
                os.kill(victim.pid, signal.SIGKILL)  # mid-epoch 2: iteration 5 of 8 done, 6 under way
                break
        victim.stdout.close()
        victim_rc = victim.wait(timeout=60)
        after_kill = sorted(os.listdir(crashed))
        last = open(osp.join(crashed, 'last_checkpoint')).read().strip()
        resumed = run_tool(repo_root, ['tools/train.py', config, '--work-dir', crashed, '--resume'] + args)
        assert straight_proc.wait(timeout=600) == 0, open(str(tmp / 'straight.log')).read()[-4000:]
    return dict(straight=straight, crashed=crashed, victim_rc=victim_rc, victim_log=''.join(seen),
                after_kill=after_kill, last=last, resume_log=resumed.stdout + resumed.stderr)


def test_kill_happened_mid_epoch(runs):
    assert runs['victim_rc'] == -signal.SIGKILL
    assert 'Epoch(train) [2][1/4]' in runs['victim_log'].replace('  ', ' ')
    assert 'epoch_1.pth' in runs['after_kill'] and 'epoch_2.pth' not in runs['after_kill']  # nothing after epoch 1
    assert runs['last'].endswith('epoch_1.pth')


def test_resume_restarts_from_the_last_checkpoint(runs):
    log = runs['resume_log']
    assert 'Auto resumed from the latest checkpoint' in log and 'epoch_1.pth' in log
    assert f'resumed epoch: 1, iter: {ITERS_PER_EPOCH}' in log
    iters = sorted(scalars(runs['crashed']))
    assert iters == list(range(1, 2 * ITERS_PER_EPOCH + 1))  # the killed iteration 6 is redone, none skipped


def test_lr_schedule_and_losses_match_iteration_by_iteration(runs):
    straight, crashed = scalars(runs['straight']), scalars(runs['crashed'])
    assert sorted(straight) == sorted(crashed) == list(range(1, 9))
    lrs = [straight[i][0] for i in range(1, 9)]
    assert lrs[0] < lrs[3] and lrs[-1] < lrs[4]  # warm-up then decay: the schedule is not flat
    assert [crashed[i] for i in range(5, 9)] == [straight[i] for i in range(5, 9)]


def test_final_state_is_identical(runs):
    a = safe_torch_load(osp.join(runs['straight'], 'epoch_2.pth'), map_location='cpu')
    b = safe_torch_load(osp.join(runs['crashed'], 'epoch_2.pth'), map_location='cpu')
    assert (a['meta']['epoch'], a['meta']['iter']) == (b['meta']['epoch'], b['meta']['iter']) == (2, 8)
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for key, value in a['state_dict'].items():  # weights and BN statistics, bit for bit
        assert torch.equal(value, b['state_dict'][key]), key
    opt_a, opt_b = a['optimizer'], b['optimizer']
    assert opt_a['param_groups'] == opt_b['param_groups']
    assert opt_a['state'].keys() == opt_b['state'].keys()
    for idx, state in opt_a['state'].items():  # Adam step, exp_avg, exp_avg_sq
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(opt_b['state'][idx][name])), (idx, name)
    assert a['param_schedulers'] == b['param_schedulers']
