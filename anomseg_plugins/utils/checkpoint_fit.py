"""Does a checkpoint fit a model? Keys and shapes compared before loading, every mismatch named.

mmengine loads a ``Runner``'s ``load_from`` with ``strict=False``: a checkpoint whose decode head has 5 classes
loads into a 13-class model with one printed warning, the head keeps its random initialisation and
``tools/test.py`` reports a meaningless mIoU with exit status 0; missing keys pass the same way. Evaluating or
running a model needs *exactly* its weights, so ``tools/test.py`` and ``tools/infer.py`` go through this module:

- :func:`compare_checkpoint` lists the model weights the checkpoint lacks, the checkpoint weights the model
  lacks and the weights of another shape (:class:`CheckpointFit`);
- :func:`check_checkpoint_fits` reads a checkpoint file and raises :class:`CheckpointMismatchError` naming the
  file, the keys and both shapes (``strict=True``), or logs what a lenient load skips in one line
  (``strict=False``: fine-tuning from another head with ``load_from``);
- :func:`load_checkpoint_exact` reads a file once, checks it and loads it.

Keys are compared as mmengine loads them: the model is unwrapped from DDP-style wrappers and TTA models, the
weights are taken from ``checkpoint['state_dict']`` when present and a leading ``module.`` is stripped. BN's
``num_batches_tracked`` counters may be absent (mmengine ignores them too) and checkpoint entries for
non-persistent buffers (such as ``data_preprocessor.mean`` / ``std`` of older files; the config sets them) are
not loaded and not counted as unexpected.
"""
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from torch import nn

Shape = Tuple[int, ...]

#: How many keys of each kind a message lists before "... and N more".
MAX_LISTED = 10
_MODULE_PREFIX = re.compile(r'^module\.')


class CheckpointMismatchError(RuntimeError):
    """The checkpoint does not fit the model; ``fit`` holds the missing, unexpected and mismatched keys."""

    def __init__(self, fit: 'CheckpointFit') -> None:
        self.fit = fit
        super().__init__(fit.format())


@dataclass
class CheckpointFit:
    """How the weights of a checkpoint match the ``state_dict`` of a model.

    Attributes:
        filename: the checkpoint file (for messages).
        missing: ``(key, model shape)`` of model weights the checkpoint lacks.
        unexpected: ``(key, checkpoint shape)`` of checkpoint weights the model lacks.
        mismatched: ``(key, checkpoint shape, model shape)`` of weights present in both with another shape.
        matched: the number of model weights the checkpoint provides with the right shape.
        total: the number of model weights (``state_dict`` entries, BN counters excluded).
    """
    filename: str = ''
    missing: List[Tuple[str, Shape]] = field(default_factory=list)
    unexpected: List[Tuple[str, Shape]] = field(default_factory=list)
    mismatched: List[Tuple[str, Shape, Shape]] = field(default_factory=list)
    matched: int = 0
    total: int = 0

    @property
    def ok(self) -> bool:
        """``True`` when every model weight is in the checkpoint with its shape and nothing else is."""
        return not (self.missing or self.unexpected or self.mismatched)

    def _groups(self, limit: int) -> List[Tuple[str, str, List[str], int]]:
        """``(long label, short label, listed items, number not listed)`` per kind of mismatch that occurs."""
        groups = [
            ('of another shape (checkpoint vs model)', 'of another shape skipped',
             [f'{k} {_shape(c)} vs {_shape(m)}' for k, c, m in self.mismatched]),
            ('of the model missing from the checkpoint', 'not in the checkpoint keep their initialisation',
             [f'{k} {_shape(s)}' for k, s in self.missing]),
            ('in the checkpoint that the model does not have', 'unknown to the model ignored',
             [f'{k} {_shape(s)}' for k, s in self.unexpected]),
        ]
        return [(long, short, items[:limit], max(len(items) - limit, 0)) for long, short, items in groups if items]

    def format(self, limit: int = MAX_LISTED) -> str:
        """The error message: the file, then one line per kind of mismatch with its keys and shapes."""
        lines = [
            f'checkpoint {self.filename} does not fit the model: {self.matched} of {self.total} model weights '
            f'match it'
        ]
        for label, _, items, more in self._groups(limit):
            listed = ', '.join(items) + (f', ... and {more} more' if more else '')
            lines.append(f'- {len(items) + more} weight(s) {label}: {listed}')
        lines.append('Test a checkpoint with the config it was trained with (same num_classes, backbone and heads). '
                     'To start training from other weights, use load_from (it skips what does not fit).')
        return '\n'.join(lines)

    def summary(self, limit: int = 3) -> str:
        """One line for a lenient load: how much was loaded and what was skipped."""
        if self.ok:
            return f'checkpoint {self.filename}: all {self.total} model weights loaded'
        parts = [
            f'{len(items) + more} {label} ({", ".join(items)}{", ..." if more else ""})'
            for _, label, items, more in self._groups(limit)
        ]
        return f'checkpoint {self.filename}: loaded {self.matched} of {self.total} model weights; ' + '; '.join(parts)


def _shape(shape: Sequence[int]) -> str:
    return '(' + ', '.join(str(int(s)) for s in shape) + (',)' if len(shape) == 1 else ')')


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module a checkpoint's keys refer to: DDP-style model wrappers and TTA models removed (as mmengine)."""
    from mmengine.model import BaseTTAModel, is_model_wrapper
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def checkpoint_state_dict(checkpoint: Mapping[str, Any]) -> Dict[str, Any]:
    """The weights of a loaded checkpoint: ``checkpoint['state_dict']`` if present, a leading ``module.`` removed."""
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state_dict, Mapping):
        raise TypeError(f'a checkpoint must be a dict of weights or hold one under "state_dict", got '
                        f'{type(checkpoint).__name__}')
    return {_MODULE_PREFIX.sub('', k): v for k, v in state_dict.items()}


def compare_checkpoint(model: nn.Module, checkpoint: Mapping[str, Any], filename: str = '') -> CheckpointFit:
    """Compare the weights of ``checkpoint`` (a loaded checkpoint dict) with ``model``'s ``state_dict``."""
    model = unwrap_model(model)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    non_persistent = {k for k, _ in model.named_buffers()} - set(expected)
    fit = CheckpointFit(filename=filename)
    given = checkpoint_state_dict(checkpoint)
    for key, value in given.items():
        shape = tuple(getattr(value, 'shape', ()))
        if key in expected:
            if shape != expected[key]:
                fit.mismatched.append((key, shape, expected[key]))
        elif key not in non_persistent:
            fit.unexpected.append((key, shape))
    for key, shape in expected.items():
        if key.endswith('num_batches_tracked'):
            continue
        fit.total += 1
        if key not in given:
            fit.missing.append((key, shape))
        elif tuple(getattr(given[key], 'shape', ())) == shape:
            fit.matched += 1
    return fit


def read_checkpoint(filename: str, map_location: Any = 'cpu') -> Dict[str, Any]:
    """Read a checkpoint through mmengine's loaders (local files: safe ``weights_only`` loading)."""
    from mmengine.runner import CheckpointLoader
    return CheckpointLoader.load_checkpoint(filename, map_location=map_location, logger='current')


def check_checkpoint_fits(model: nn.Module,
                          checkpoint: Any,
                          filename: Optional[str] = None,
                          strict: bool = True,
                          logger: Any = 'current') -> CheckpointFit:
    """Check that ``checkpoint`` (a file name or a loaded dict) fits ``model`` before it is loaded.

    Args:
        model: the model, possibly wrapped (DDP, TTA).
        checkpoint: a checkpoint file (read here, on the CPU) or an already loaded checkpoint dict.
        filename: the name used in messages (default: ``checkpoint`` when it is a file name).
        strict: raise on any missing, unexpected or mismatched weight; with ``False`` log one warning line
            saying what a lenient load (mmengine's ``load_from``) skips, when it skips anything.
        logger: mmengine logger (name) for the lenient summary.

    Returns:
        The :class:`CheckpointFit`.

    Raises:
        CheckpointMismatchError: ``strict`` and the checkpoint does not fit; the message names the file and
            every key with its shapes (up to :data:`MAX_LISTED` per kind).
    """
    if isinstance(checkpoint, str):
        filename = checkpoint if filename is None else filename
        checkpoint = read_checkpoint(checkpoint)
    fit = compare_checkpoint(model, checkpoint, filename or '<checkpoint>')
    if not fit.ok:
        if strict:
            raise CheckpointMismatchError(fit)
        from mmengine.logging import print_log
        print_log(fit.summary(), logger=logger, level=logging.WARNING)
    return fit


def load_checkpoint_exact(model: nn.Module, filename: str, map_location: Any = 'cpu') -> Dict[str, Any]:
    """Read ``filename`` once, refuse it unless it fits ``model`` exactly, load it; returns the checkpoint dict.

    Raises:
        CheckpointMismatchError: as :func:`check_checkpoint_fits` with ``strict=True``.
    """
    from mmengine.runner import load_state_dict
    checkpoint = read_checkpoint(filename, map_location)
    check_checkpoint_fits(model, checkpoint, filename)
    module = unwrap_model(model)
    expected = module.state_dict()
    state_dict = {k: v for k, v in checkpoint_state_dict(checkpoint).items() if k in expected}
    load_state_dict(module, state_dict, strict=True)
    return checkpoint
