"""Helpers of the tests that run the tools: running the tools in subprocesses on the generated StreetHazards copy."""
import os
import shutil
import socket
import subprocess
import sys
from typing import Dict, List, Optional

DEMO_CONFIG = 'configs/demo/deeplab_r18_tiny_demo.py'


def tool_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment of a tool subprocess: one thread per process (2-core CI, several processes at once)."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    env.update(extra or {})
    return env


def run_tool(repo_root: str,
             args: List[str],
             expect_rc: Optional[int] = 0,
             timeout: int = 600,
             env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Run ``args`` (``tools/...py`` + arguments, or a command list starting with ``bash``) in the repo root."""
    cmd = args if args[0] == 'bash' else [sys.executable] + args
    proc = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=timeout, env=tool_env(env))
    if expect_rc is not None:
        assert proc.returncode == expect_rc, (f'{args} exited with {proc.returncode}, expected {expect_rc}:\n'
                                              f'{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}')
    return proc


def small_run_options(data_root: str, epochs: int = 1, *extra: str) -> List[str]:
    """``--cfg-options`` that shrink the demo config to a few CPU seconds (96x96 crops, no workers)."""
    opts = [
        f'train_dataloader.dataset.data_root={data_root}', f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}', 'train_dataloader.dataset.pipeline.2.output_size=(96,96)',
        'model.data_preprocessor.size=(96,96)', f'train_cfg.max_epochs={epochs}', 'train_cfg.val_interval=100',
        'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=1'
    ]
    for key in ('train', 'val', 'test'):
        opts += [f'{key}_dataloader.num_workers=0', f'{key}_dataloader.persistent_workers=False']
    return ['--cfg-options'] + opts + list(extra)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def copy_dataset(src: str, dst: str) -> str:
    shutil.copytree(src, dst)
    return dst
