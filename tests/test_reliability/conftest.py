"""Fixtures of the reliability tests (helpers live in reliability_utils.py)."""
import os.path as osp
import sys

import pytest
from reliability_utils import DEMO_CONFIG, free_port, run_tool, small_run_options


@pytest.fixture(scope='session')
def dist_trained(repo_root, tiny_street_hazards, tmp_path_factory):
    """The demo config trained for 2 epochs by ``tools/dist_train.sh`` with 2 processes on CPU (gloo)."""
    work_dir = str(tmp_path_factory.mktemp('dist_train'))
    proc = run_tool(
        repo_root, ['bash', 'tools/dist_train.sh', DEMO_CONFIG, '2', '--work-dir', work_dir] +
        small_run_options(tiny_street_hazards, 2),
        env=dict(PYTHON=sys.executable, PORT=str(free_port())))
    ckpt = osp.join(work_dir, 'epoch_2.pth')
    return work_dir, ckpt, proc.stdout + proc.stderr
