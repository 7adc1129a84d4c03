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
