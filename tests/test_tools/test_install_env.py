"""``tools/install/install_env.sh`` with the README's relative paths, its mmcv build branch included.

The real build takes ~15 min (CI's ``.ci/run`` does it with an empty wheel cache); here a stand-in
interpreter (``fake_python.py``) answers the script's calls, so the *paths* the script hands to each
call are checked in a second: a relative ``VENV`` (the Makefile's ``.venv``) and a relative wheel cache
must still work after the script ``cd``s into the unpacked mmcv source to build it.
"""
import json
import os
import os.path as osp
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'tools' / 'install' / 'install_env.sh'
FAKE = Path(__file__).resolve().parent / 'fake_python.py'
KEY = 'mmcv-2.1.0-torch2.14.1-cp311-cpu'

pytestmark = pytest.mark.skipif(
    shutil.which('bash') is None or shutil.which('tar') is None, reason='needs bash and tar')


def run_install(cwd: Path) -> tuple:
    """Run the install script from ``cwd`` with relative VENV and cache, as ``make install`` passes them."""
    log = cwd / 'calls.jsonl'
    env = dict(
        os.environ,
        VENV='.venv',
        ANOMSEG_CACHE='wheels',
        PYTHON=str(FAKE),
        MMCV_CUDA='0',
        MAX_JOBS='1',
        FAKE_PYTHON_LOG=str(log))
    proc = subprocess.run(['bash', str(SCRIPT)], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    log.unlink(missing_ok=True)
    return proc, calls


def test_relative_venv_and_cache_build_branch(tmp_path):
    """A fresh machine: no venv, no cached wheel -> the build branch runs and every path stays right."""
    proc, calls = run_install(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    venv = tmp_path / '.venv'
    # the venv is created where the caller's relative path points, and every later call uses it
    assert [c['dest'] for c in calls if c['action'] == 'venv'] == [str(venv)]
    assert (venv / 'bin' / 'python').is_file()
    # the build ran in the unpacked source (another directory) and still found the interpreter and the cache
    wheels = [c for c in calls if c['action'] == 'wheel']
    assert len(wheels) == 1
    assert osp.basename(wheels[0]['cwd']) == 'mmcv-2.1.0' and wheels[0]['cwd'] != str(tmp_path)
    assert wheels[0]['dest'] == str(tmp_path / 'wheels' / f'{KEY}.tmp')
    assert wheels[0]['cxx20'], 'the -std=c++17 of mmcv setup.py was not raised to c++20 before building'
    assert wheels[0]['env'] == {'MMCV_WITH_OPS': '1', 'FORCE_CUDA': '0'}
    cached = sorted(p.name for p in (tmp_path / 'wheels' / KEY).iterdir())
    assert cached == ['mmcv-2.1.0-cp311-cp311-linux_x86_64.whl']
    assert not (tmp_path / 'wheels' / f'{KEY}.tmp').exists()
    # the cached wheel is what gets installed, by its absolute path
    installs = [c['argv'] for c in calls if c['action'] == 'pip' and any(a.endswith('.whl') for a in c['argv'])]
    assert installs == [[*installs[0][:-1], str(tmp_path / 'wheels' / KEY / cached[0])]]
    assert 'environment ready (fake)' in proc.stdout


@pytest.mark.slow  # runs the install script twice
def test_second_run_uses_cached_wheel(tmp_path):
    """With the wheel cached, a fresh venv installs it without downloading or building mmcv again."""
    proc, _ = run_install(tmp_path)
    assert proc.returncode == 0, proc.stderr
    shutil.rmtree(tmp_path / '.venv')
    proc, calls = run_install(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not [c for c in calls if c['action'] in ('download', 'wheel')]
    assert 'using cached' in proc.stdout
