"""Shared fixtures: a small generated StreetHazards copy, written once per test session."""
import os
import os.path as osp
import sys

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
os.environ.setdefault('MPLBACKEND', 'Agg')

from mmseg.utils import register_all_modules  # noqa: E402
from tool_runner import DEMO_CONFIG, free_port, run_tool, small_run_options  # noqa: E402

import anomseg_plugins  # noqa: E402,F401  (registers the plugins)

# Build components from config dicts in the 'mmseg' scope, as mmseg's own tests do.
register_all_modules(init_default_scope=True)


@pytest.fixture(scope='session')
def repo_root() -> str:
    return REPO_ROOT


@pytest.fixture(scope='session')
def tiny_street_hazards(tmp_path_factory) -> str:
    """A generated StreetHazards root in the real layout: 8 train, 4 val, 6 test images at 160x96."""
    from anomseg_plugins.tooling.street_scenes import generate_street_hazards
    root = str(tmp_path_factory.mktemp('streethazards') / 'data')
    generate_street_hazards(root, num_train=8, num_val=4, num_test=6, size=(160, 96), seed=3)
    return root


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
