"""Fitted scorer statistics (``anomaly_scorer_stats.pth``): their key, and reading / writing the file.

``AnomalyTestLoop`` fits the scorers that need it (SML, Mahalanobis, z-score fusion) and saves their state
dicts, keyed on everything that changes the logits or features the scorers saw (:func:`stats_key`); a later test
loads the entries whose key still matches (:func:`load_matching_stats`), and ``tools/infer.py`` loads an entry
fitted for the same model (:func:`model_stats_key`, :func:`key_changes`). The file is
``dict(meta=<stats key>, scorers={name: dict(signature=<fit_signature()>, state_dict=...)})``.
"""
import difflib
import glob
import hashlib
import os.path as osp
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.logging import print_log
from torch import Tensor, nn
from torch.utils.data import DataLoader

from anomseg_plugins.utils import safe_torch_load

#: Default file name (in the work dir) of the fitted statistics.
STATS_FILE = 'anomaly_scorer_stats.pth'

#: Version of the stats file layout; 2 keys the statistics on the fit pipeline, the model's test_cfg,
#: data preprocessor and settings and the TTA wrapper too.
STATS_FORMAT = 2

#: The parts of the stats key, as the log names them when they changed.
STATS_KEY_PARTS = {
    'format': 'the stats file format',
    'model': 'the model weights',
    'test_cfg': 'the model test_cfg',
    'data_preprocessor': 'the data preprocessor',
    'model_settings': 'the model settings',
    'tta': 'the test-time augmentation wrapper',
    'fit_data': 'the fit data',
    'fit_pipeline': 'the fit pipeline',
}

#: The parts of the key that describe the model (:func:`model_stats_key` but the format).
MODEL_KEY_PARTS = ('model', 'test_cfg', 'data_preprocessor', 'model_settings', 'tta')

#: The parts of the key that describe the fit data; not compared when this run has no fit data.
FIT_DATA_KEY_PARTS = ('fit_data', 'fit_pipeline')

#: Module attributes that do not change what a trained model computes at test time: training-only switches, the
#: SyncBN / BN choice (``norm_cfg``, ``process_group``), which a CPU or single-process run swaps at the same
#: outputs (another norm type shows in the weights), and the class names and palette (``dataset_meta``, which
#: ``mmseg.apis.init_model`` attaches to the model but the Runner does not).
_UNKEYED_ATTRIBUTES = ('training', 'init_cfg', 'train_cfg', 'pretrained', 'with_cp', 'frozen_stages', 'norm_eval',
                       'zero_init_residual', 'norm_cfg', 'process_group', 'dataset_meta')

_NOT_PLAIN = object()


# ---------------------------------------------------------------------------------------------- the key
def _plain(value: Any) -> Any:
    """``value`` as str / int / float / bool / None in lists and dicts (what a weights-only stats file can hold
    and ``==`` compares), or ``_NOT_PLAIN`` for objects without a stable value (tensors, modules, handles)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple, torch.Size)):
        return [_plain_item(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain_item(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, type) or (callable(value) and hasattr(value, '__qualname__')):
        return f'{getattr(value, "__module__", "")}.{value.__qualname__}'
    return _NOT_PLAIN


def _plain_item(value: Any) -> Any:
    plain = _plain(value)
    return type(value).__name__ if plain is _NOT_PLAIN else plain


def module_settings(model: nn.Module, skip: Sequence[str] = ()) -> Dict[str, Any]:
    """What, besides its weights, decides what ``model`` computes: ``{'<module path>.<attribute>': value}``.

    Every plain attribute (numbers, strings, flags, tuples, config dicts) of every submodule, e.g.
    ``decode_head.align_corners``, ``backbone.out_indices``, ``backbone.layer3.1.conv1.dilation``,
    ``data_preprocessor.size_divisor``, ``test_cfg``, and the values of buffers that are not in the state
    dict (``data_preprocessor.mean`` / ``std``). Private attributes, ``_UNKEYED_ATTRIBUTES`` and losses (they do
    not change a trained model's test outputs) are left out, and so are the submodules under a path in ``skip``.
    """
    settings: Dict[str, Any] = {}
    skipped = tuple(f'{p}.' for p in skip)
    for path, module in model.named_modules():
        if path in skip or path.startswith(skipped) or any(p.startswith('loss') for p in path.split('.')):
            continue  # skipped, or a loss (decode_head.loss_decode[.i]): training only
        for key, value in vars(module).items():
            if key.startswith('_') or key in _UNKEYED_ATTRIBUTES:
                continue
            plain = _plain(value)
            if plain is not _NOT_PLAIN:
                settings[f'{path}.{key}' if path else key] = plain
    persistent = set(model.state_dict().keys())
    for path, buffer in model.named_buffers():
        if path not in persistent and not path.startswith(skipped):
            settings[path] = buffer.detach().cpu().reshape(-1).tolist()
    return settings


def model_fingerprint(model: nn.Module) -> str:
    """SHA-1 of the model's state dict (names, shapes, dtypes and bytes): the fitted stats depend on it."""
    digest = hashlib.sha1()
    for key, value in model.state_dict().items():
        if not isinstance(value, Tensor):
            continue
        digest.update(f'{key}:{tuple(value.shape)}:{value.dtype};'.encode())
        digest.update(value.detach().reshape(-1).contiguous().cpu().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def model_stats_key(segmentor: nn.Module, tta: Optional[nn.Module] = None) -> Dict[str, Any]:
    """The model's part of the stats key: everything of the model that changes the logits or features the scorers
    see (``STATS_KEY_PARTS`` but the fit data): weights (:func:`model_fingerprint`), ``test_cfg`` (mode, crop size,
    stride), data preprocessor (mean, std, size, padding), the other settings (:func:`module_settings`) and the
    type of the test-time-augmentation wrapper (``None`` without). A tool that loads fitted statistics for a model
    (e.g. ``tools/infer.py``) compares these parts with the stats file's ``meta``."""
    settings = module_settings(segmentor, skip=('data_preprocessor', ))
    test_cfg = settings.pop('test_cfg', None)
    preprocessor = getattr(segmentor, 'data_preprocessor', None)
    return dict(
        format=STATS_FORMAT,
        model=model_fingerprint(segmentor),
        test_cfg=test_cfg,
        data_preprocessor=dict(type=type(preprocessor).__name__, **module_settings(preprocessor)) if isinstance(
            preprocessor, nn.Module) else None,
        model_settings=settings,
        tta=None if tta is None else type(tta).__name__)


def describe_data(loader: DataLoader) -> str:
    """What identifies the fit data: dataset class, length, root, prefixes and annotation file."""
    ds = loader.dataset
    keys = ('data_root', 'data_prefix', 'ann_file')
    parts = [f'{k}={getattr(ds, k)!r}' for k in keys if getattr(ds, k, None)]
    return f'{type(ds).__name__}(len={len(ds)}, {", ".join(parts)})'


def describe_pipeline(dataset) -> Optional[str]:
    """The transforms the fit data runs through, as their ``repr`` (one per line, memory addresses removed);
    through dataset wrappers (``dataset`` / ``datasets``); ``None`` for a dataset without a pipeline.

    mmcv / mmseg / anomseg transforms print their parameters (e.g. ``Resize(scale=(1280, 720), ...)``,
    ``TestTimeAug`` its sub-pipelines); a transform without a ``__repr__`` is keyed by its class only.
    """
    pipeline = getattr(dataset, 'pipeline', None)
    if pipeline is not None:
        return re.sub(r' at 0x[0-9a-fA-F]+', '', repr(pipeline))
    inner = getattr(dataset, 'datasets', None) or \
        ([dataset.dataset] if isinstance(getattr(dataset, 'dataset', None), torch.utils.data.Dataset) else [])
    parts = [describe_pipeline(d) for d in inner]
    return '\n'.join(p for p in parts if p) or None


def stats_key(segmentor: nn.Module, tta: Optional[nn.Module], loader: Optional[DataLoader]) -> Dict[str, Any]:
    """The full stats key (``STATS_KEY_PARTS``): :func:`model_stats_key` of the segmentor and its TTA wrapper, and
    the fit data with its pipeline (``None`` without fit data)."""
    return dict(
        model_stats_key(segmentor, tta),
        fit_data=None if loader is None else describe_data(loader),
        fit_pipeline=None if loader is None else describe_pipeline(loader.dataset))


def describe_change(old: Any, new: Any, limit: int = 4) -> str:
    """A short description of what differs between two values of one part of the stats key."""
    if isinstance(old, dict) and isinstance(new, dict):
        unset = '<unset>'
        changed = [k for k in sorted(set(old) | set(new)) if old.get(k, unset) != new.get(k, unset)]
        parts = [f'{k}: {old.get(k, unset)!r} -> {new.get(k, unset)!r}' for k in changed[:limit]]
        more = f'; ... ({len(changed)} changed)' if len(changed) > limit else ''
        return '; '.join(parts) + more
    if isinstance(old, str) and isinstance(new, str) and ('\n' in old or '\n' in new):
        lines = [
            line[0] + ' ' + line[2:].strip() for line in difflib.ndiff(old.splitlines(), new.splitlines())
            if line[:1] in '+-'
        ]
        more = f'; ... ({len(lines)} lines differ)' if len(lines) > 2 * limit else ''
        return '; '.join(lines[:2 * limit]) + more if lines else f'{old!r} -> {new!r}'
    return f'{old!r} -> {new!r}'


def key_changes(stored: dict, current: dict, parts: Optional[Sequence[str]] = None) -> List[Tuple[str, str]]:
    """``[(part, what changed)]`` for the ``parts`` of the stats key (default: all of ``STATS_KEY_PARTS``) on
    which a file's ``stored`` meta and this run's ``current`` key differ (:func:`describe_change`); fit-data parts
    that ``current`` leaves ``None`` (no fit data to compare with) count as unchanged."""
    return [(key, describe_change(stored.get(key), current[key]))
            for key in (STATS_KEY_PARTS if parts is None else parts)
            if stored.get(key) != current[key] and not (key in FIT_DATA_KEY_PARTS and current[key] is None)]


# ---------------------------------------------------------------------------------------------- the file
def read_stats(path: str) -> Tuple[dict, dict]:
    """``(meta, scorer entries)`` of a stats file (safe, weights-only unpickling).

    Raises:
        ValueError: the file is not a stats file (a dict with ``meta`` and ``scorers``).
    """
    stored = safe_torch_load(path, map_location='cpu')
    if not (isinstance(stored, dict) and isinstance(stored.get('meta'), dict)
            and isinstance(stored.get('scorers'), dict)):
        raise ValueError(f'{path} is not a scorer statistics file (a dict with `meta` and `scorers`, as '
                         'AnomalyTestLoop writes it); delete it or name another file')
    return stored['meta'], stored['scorers']


def find_stats_file(checkpoint: str) -> Optional[str]:
    """The newest ``STATS_FILE`` next to ``checkpoint`` or one folder below it (a test's work dir), if any."""
    folder = osp.dirname(osp.abspath(checkpoint))
    candidates = [osp.join(folder, STATS_FILE)] + sorted(glob.glob(osp.join(folder, '*', STATS_FILE)))
    found = [c for c in candidates if osp.isfile(c)]
    return max(found, key=osp.getmtime) if found else None


def _matching_entries(path: str, scorers: Sequence[nn.Module], meta: dict, owner: str) -> List[str]:
    """Names of the ``scorers`` whose entries in ``path`` match ``meta`` and their ``fit_signature()``; logs why
    the others do not."""
    try:
        stored_meta, entries = read_stats(path)
    except Exception as exc:  # unreadable or foreign file: refit and overwrite it
        print_log(f'{owner}: cannot read {path} ({exc}); refitting the scorers', logger='current')
        return []
    changed = [f'{STATS_KEY_PARTS[key]} changed ({what})' for key, what in key_changes(stored_meta, meta)]
    if changed:
        print_log(
            f'{owner}: {path} does not match this run: {", ".join(changed)}; refitting the scorers', logger='current')
        return []
    names = []
    for scorer in scorers:
        entry = entries.get(scorer.name)
        if entry is not None and entry.get('signature') == scorer.fit_signature():
            names.append(scorer.name)
        else:
            print_log(f'{owner}: {path} has no statistics for {scorer.fit_signature()}; fitting it', logger='current')
    return names


def load_matching_stats(path: Optional[str],
                        scorers: Sequence[nn.Module],
                        meta: dict,
                        owner: str = 'AnomalyTestLoop') -> List[str]:
    """Load the statistics of ``scorers`` from ``path`` where the file matches ``meta`` (the stats key) and the
    scorer's ``fit_signature()``; returns the names loaded.

    The main process decides (and logs why an entry does not match); the names are broadcast, so that every
    rank loads the same entries.
    """
    decision: List = [[]]
    if is_main_process() and path is not None and osp.isfile(path):
        decision[0] = _matching_entries(path, scorers, meta, owner)
    broadcast_object_list(decision)
    names = decision[0]
    if names:
        _, entries = read_stats(path)
        for scorer in scorers:
            if scorer.name in names:
                scorer.load_state_dict(entries[scorer.name]['state_dict'])
        print_log(
            f'{owner}: loaded the fitted statistics of {", ".join(names)} from {path} '
            f'(same model weights and settings, test_cfg, data preprocessor, TTA, fit data and pipeline, '
            f'and scorer settings); delete the file to refit',
            logger='current')
    return names


def save_stats(path: Optional[str], meta: dict, scorers: Sequence[nn.Module], owner: str = 'AnomalyTestLoop') -> None:
    """Write the statistics of the ``scorers`` that need fitting to ``path`` (main process; nothing for ``None``).

    Entries of other scorers fitted for the same key (another scorer set tested in this work dir) are kept; a file
    of another key, or an unreadable one, is overwritten.
    """
    if path is None or not is_main_process():
        return
    entries = {}
    if osp.isfile(path):
        try:
            stored_meta, stored_entries = read_stats(path)
            if stored_meta == meta:
                entries = stored_entries
        except Exception:  # unreadable: overwrite
            pass
    fitted = {
        s.name: dict(signature=s.fit_signature(), state_dict={
            k: v.detach().cpu()
            for k, v in s.state_dict().items()
        })
        for s in scorers if s.requires_fit
    }
    entries.update(fitted)
    torch.save(dict(meta=meta, scorers=entries), path)
    print_log(f'{owner}: saved the fitted statistics of {", ".join(fitted)} to {path}', logger='current')
