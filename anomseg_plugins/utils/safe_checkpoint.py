"""Safe (``weights_only=True``) loading of mmengine / mmseg checkpoints.

torch >= 2.6 loads checkpoints with ``weights_only=True``: only tensors, plain containers and an
allowlist of globals may be unpickled, so a malicious file cannot run code. mmengine 0.10.7 checkpoints
also carry a few harmless objects (the message hub's ``HistoryBuffer`` with numpy arrays inside), so
``--resume`` and ``tools/test.py`` die with ``Unsupported global: ...HistoryBuffer``.

Importing ``anomseg_plugins`` calls :func:`install_safe_checkpoint_loading`, which
1. allowlists exactly what mmengine / mmseg checkpoints contain (``CHECKPOINT_GLOBALS``), and
2. replaces mmengine's local-file checkpoint loader (``CheckpointLoader`` scheme ``''``) by one that
   always passes ``weights_only=True`` and turns torch's refusal into a message that names the file,
   the offending global and what to do.
Safe loading is never switched off globally.
"""
import os.path as osp
import pickle
import re
from typing import Any, Callable, List, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

GlobalSpec = Union[Callable, Tuple[Callable, str]]


def _numpy_globals() -> List[GlobalSpec]:
    """numpy objects a pickled array needs, under both numpy 1.x and 2.x module names."""
    try:
        from numpy._core import multiarray as np_multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray as np_multiarray
    specs: List[GlobalSpec] = [np.ndarray, np.dtype]
    for name in ('_reconstruct', 'scalar'):
        fn = getattr(np_multiarray, name)
        specs += [fn, (fn, f'numpy.core.multiarray.{name}'), (fn, f'numpy._core.multiarray.{name}')]
    # Concrete dtype classes (numpy >= 1.25 pickles e.g. numpy.dtypes.Float64DType).
    dtypes_mod = getattr(np, 'dtypes', None)
    if dtypes_mod is not None:
        specs += [getattr(dtypes_mod, n) for n in dir(dtypes_mod) if n.endswith('DType')]
    return specs


_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """The only ``getattr`` a checkpoint may pickle: a statistics method of mmengine's ``HistoryBuffer``.

    ``HistoryBuffer.__getstate__`` stores its ``_statistics_methods`` dict, whose values pickle as
    ``getattr(HistoryBuffer, 'min')`` etc. Allowing the builtin ``getattr`` would let a crafted file reach
    and call any attribute of any allowed class, so it is replaced by this restricted version.
    """
    allowed = set(_HISTORY_BUFFER_STATISTICS) | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and isinstance(name, str) and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'Unsupported global: GLOBAL builtins.getattr({obj!r}, {name!r}) (only HistoryBuffer statistics '
        f'methods {sorted(allowed)} may be looked up by a checkpoint)')


#: Everything besides tensors and plain containers that an mmengine 0.10 / mmseg 1.x checkpoint holds.
CHECKPOINT_GLOBALS: List[GlobalSpec] = [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr')] + _numpy_globals()

_UNSUPPORTED = re.compile(r'Unsupported global: GLOBAL ([\w.]+(?:\([^)]*\))?)')


def allow_checkpoint_globals(objects: Sequence[GlobalSpec]) -> None:
    """Add trusted classes/functions to the checkpoint allowlist (same as ``torch.serialization.add_safe_globals``)."""
    torch.serialization.add_safe_globals(list(objects))


def safe_torch_load(filename: str, map_location: Any = None) -> Any:
    """``torch.load(filename, weights_only=True)`` with an actionable error when a global is refused.

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        pickle.UnpicklingError: the file holds a pickled object outside the allowlist; the message names
            the file, the object, why it is refused and how to allow it if the file is trusted.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        match = _UNSUPPORTED.search(str(exc))
        what = f'the pickled object `{match.group(1)}`' if match else 'a pickled object'
        raise pickle.UnpicklingError(
            f'Refusing to load checkpoint {filename}: it contains {what}, which is not on the allowlist of '
            f'checkpoint contents (tensors, numpy arrays, mmengine HistoryBuffer, plain containers). Unpickling '
            f'arbitrary objects can execute code, so anomseg loads checkpoints with weights_only=True. If you '
            f'trust this file, allow that object before loading with '
            f'`anomseg_plugins.utils.allow_checkpoint_globals([TheClass])`.\nTorch said: {exc}') from None


def _load_from_local(filename: str, map_location: Any) -> Any:
    """mmengine local-file scheme, always safe."""
    return safe_torch_load(filename, map_location)


def install_safe_checkpoint_loading() -> None:
    """Allowlist mmengine/mmseg checkpoint contents and route mmengine's local loads through :func:`safe_torch_load`."""
    allow_checkpoint_globals(CHECKPOINT_GLOBALS)
    CheckpointLoader.register_scheme(prefixes='', loader=_load_from_local, force=True)
