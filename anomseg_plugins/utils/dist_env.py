"""Multi-process training / testing on machines without CUDA (gloo), leaving the GPU path untouched.

``tools/dist_train.sh`` and ``tools/dist_test.sh`` start one process per device with torch's launcher
(``torch.distributed.run``) and pass ``--launcher pytorch``; mmengine's ``Runner`` then initialises the
process group itself. On a machine without CUDA that path breaks in three places (mmengine 0.10.7):

1. ``mmengine.dist.init_dist('pytorch')`` calls ``torch.cuda.set_device(LOCAL_RANK)`` unconditionally
   -> ``RuntimeError: Found no NVIDIA driver``;
2. ``Runner.wrap_model`` gives ``MMDistributedDataParallel`` ``device_ids=[LOCAL_RANK]``, which torch refuses
   for a CPU module;
3. ``SyncBN`` layers (mmseg's model bases use them) only run on GPU modules
   (``SyncBatchNorm layers only work with GPU modules``).

:func:`setup_cpu_distributed` fixes all three before the ``Runner`` is built, and only when the job is
distributed *and* CUDA is unavailable: it initialises the default process group with ``gloo`` from the
launcher's environment (mmengine sees an initialised group and skips its own ``init_dist``), sets
``model_wrapper_cfg.device_ids=None`` and replaces ``SyncBN`` / ``MMSyncBN`` by ``BN`` in ``cfg.model``.
With CUDA available it does nothing, so GPU runs keep mmengine's normal ``nccl`` path.
"""
import datetime
import os
from typing import Any, List, Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

#: Synchronised batch-norm types (torch's and mmcv's) that need CUDA, and what replaces them on CPU.
SYNC_BN_TYPES = ('SyncBN', 'MMSyncBN', 'SyncBatchNorm', 'nn.SyncBatchNorm')
CPU_BN_TYPE = 'BN'
#: Environment variables torch's launcher (``torch.distributed.run``) sets for every process.
LAUNCHER_ENV = ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')


def replace_sync_bn(cfg: Any, new_type: str = CPU_BN_TYPE, path: str = 'model') -> List[str]:
    """Replace every ``dict(type='SyncBN' | 'MMSyncBN', ...)`` inside ``cfg`` by ``type=new_type`` in place.

    Args:
        cfg: a (nested) config dict / list, typically ``cfg.model``.
        new_type: the norm type to put instead (``'BN'``).
        path: name of ``cfg`` used in the returned key list.

    Returns:
        The dotted keys that were changed, e.g. ``['model.backbone.norm_cfg.type', ...]``.
    """
    changed: List[str] = []
    if isinstance(cfg, dict):
        if cfg.get('type') in SYNC_BN_TYPES:
            cfg['type'] = new_type
            changed.append(f'{path}.type')
        for key, value in cfg.items():
            changed += replace_sync_bn(value, new_type, f'{path}.{key}')
    elif isinstance(cfg, (list, tuple)):
        for i, value in enumerate(cfg):
            changed += replace_sync_bn(value, new_type, f'{path}[{i}]')
    return changed


def setup_cpu_distributed(cfg: Config, launcher: Optional[str] = None) -> bool:
    """Prepare a distributed job to run on CPU with gloo; a no-op when CUDA is available or not distributed.

    Call it after loading the config and before ``Runner.from_cfg(cfg)`` (``tools/train.py`` and
    ``tools/test.py`` do). Changes, only for ``launcher='pytorch'`` without CUDA:

    - initialises ``torch.distributed`` with backend ``gloo`` (``init_method='env://'``, the launcher's
      ``RANK`` / ``WORLD_SIZE`` / ``MASTER_ADDR`` / ``MASTER_PORT``; timeout from
      ``env_cfg.dist_cfg.timeout``, seconds) and records ``env_cfg.dist_cfg.backend='gloo'``;
    - ``model_wrapper_cfg``: keeps its type and arguments (default ``MMDistributedDataParallel``,
      ``broadcast_buffers=False``, ``find_unused_parameters`` from the config) and sets ``device_ids=None``;
    - ``cfg.model``: ``SyncBN`` -> ``BN`` (logged with the keys changed); ``cfg.sync_bn`` is dropped.

    Args:
        cfg: the tool's config (modified in place).
        launcher: ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``; default ``cfg.launcher``.

    Returns:
        ``True`` when the CPU setup was applied (the process group is then initialised), else ``False``.

    Raises:
        RuntimeError: a ``slurm`` / ``mpi`` launcher on a machine without CUDA (mmengine would die in
            ``torch.cuda.set_device``), or ``--launcher pytorch`` without the launcher's environment
            variables, with what to run instead.
    """
    launcher = launcher if launcher is not None else cfg.get('launcher', 'none')
    if launcher in (None, 'none') or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {launcher} needs CUDA (mmengine calls torch.cuda.set_device), and this machine has none. '
            f'For multi-process CPU runs use tools/dist_train.sh / tools/dist_test.sh (torch.distributed.run, '
            f'--launcher pytorch), which anomseg runs on gloo; or use --launcher none for one process.')
    missing = [k for k in LAUNCHER_ENV if k not in os.environ]
    if missing:
        raise RuntimeError(
            f'--launcher pytorch expects the environment of torch.distributed.run, but {", ".join(missing)} '
            f'is not set. Start the job with tools/dist_train.sh CONFIG NUM_PROCS (or tools/dist_test.sh), '
            f'or drop --launcher for a single process.')
    dist_cfg = cfg.setdefault('env_cfg', ConfigDict()).setdefault('dist_cfg', ConfigDict())
    if not torch_dist.is_initialized():
        kwargs = {}
        if dist_cfg.get('timeout') is not None:
            kwargs['timeout'] = datetime.timedelta(seconds=float(dist_cfg['timeout']))
        torch_dist.init_process_group(backend='gloo', init_method='env://', **kwargs)
    requested = dist_cfg.get('backend', 'nccl')
    dist_cfg['backend'] = 'gloo'

    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    if wrapper['type'] in ('MMDistributedDataParallel', 'DistributedDataParallel'):
        wrapper.setdefault('broadcast_buffers', False)
        wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper

    changed = replace_sync_bn(cfg.get('model'))
    if cfg.get('sync_bn', None) is not None:
        cfg.sync_bn = None
        changed.append('sync_bn')
    rank, world = torch_dist.get_rank(), torch_dist.get_world_size()
    if rank == 0:
        bn_note = (f'; SyncBN needs CUDA, so {len(changed)} norm layer config(s) now use BN '
                   f'({", ".join(changed[:4])}{", ..." if len(changed) > 4 else ""})') if changed else ''
        print_log(
            f'No CUDA device: running {world} processes on CPU with the gloo backend (config asked for '
            f'{requested!r}), DDP with device_ids=None{bn_note}.',
            logger='current')
    return True
