"""Several named test sets in one test run: how a config lists them, and the run's metrics split by set.

``AnomalyTestLoop`` tests the runner's ``test_dataloader`` / ``test_evaluator`` (the *primary* set, which mmengine's
``Runner`` requires) and, with ``test_sets``, more sets with the same model and the same fitted scorers. Its
``test_cfg`` names the primary set and lists the others, as a dict (name -> set; inheriting configs can then change
one set by name, e.g. ``--cfg-options test_cfg.test_sets.lost_and_found.dataloader.dataset.data_root=...``, or drop it
with ``test_cfg.test_sets.lost_and_found=None``) or a list of dicts with ``name``::

    test_cfg = dict(
        type='AnomalyTestLoop',
        primary_set=dict(name='road_anomaly21', tta_pipeline=...),   # or just primary_set='road_anomaly21'
        test_sets=dict(
            road_obstacle21=dict(dataloader=..., evaluator=[...], tta_pipeline=...),
            lost_and_found=dict(dataloader=...),                      # evaluator: a copy of test_evaluator
        ))

Each set's metrics are reported as ``<set name>/<metric>`` (``road_anomaly21/anomaly/pooled/MaxLogit/AUPR``,
``street_hazards/mIoU``). ``tta_pipeline`` is the set's test-time-augmentation pipeline for ``tools/test.py --tta``
(default: the config's ``tta_pipeline``); the loop itself does not read it.

This module is the one reader of that config: the loop builds the sets from :func:`parse_test_sets`,
``tools/test.py`` finds them with :func:`config_test_sets` (for ``--tta``, ``--out`` and the pre-flight checks)
and splits the metrics with :func:`split_set_metrics`.
"""
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

#: A set name: a metric key prefix and a folder name, so no ``/`` and no spaces.
SET_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.+-]*$')
#: Names that would make ``<set>/<metric>`` keys ambiguous (the first field of a metric key of one set).
RESERVED_NAMES = ('anomaly', 'pooled', 'per_image', 'component', 'mIoU', 'mAcc', 'aAcc')
#: The keys a test set entry may have.
SET_KEYS = ('name', 'dataloader', 'evaluator', 'tta_pipeline')
PRIMARY_KEYS = ('name', 'tta_pipeline')


class TestSetConfigError(ValueError):
    """A mistake in ``test_cfg.primary_set`` / ``test_cfg.test_sets``; the message names the key and the fix."""

    __test__ = False  # not a pytest test class despite the name


@dataclass
class TestSetSpec:
    """One test set as the config gives it.

    Attributes:
        name: the set's name (the prefix of its metric keys, the folder of its anomaly files).
        key: where the set is in the config, for messages (``'test_cfg.test_sets.lost_and_found'``, or
            ``'test_dataloader'`` for the primary set).
        dataloader: its dataloader (config or object); ``None`` for the primary set (the runner's
            ``test_dataloader``).
        evaluator: its evaluator (config or object); ``None``: the primary set's (for the primary set: the runner's
            ``test_evaluator``; for another set: a copy of its config).
        tta_pipeline: its pipeline under ``tools/test.py --tta``; ``None``: the config's ``tta_pipeline``.
        entry: the set's config dict itself (``None`` for the primary set), so that a tool can change it in place
            (``tools/test.py``: the pipeline under ``--tta``, the output folder under ``--out``).
    """

    __test__ = False  # not a pytest test class despite the name

    name: str
    key: str
    dataloader: Any = None
    evaluator: Any = None
    tta_pipeline: Optional[list] = None
    entry: Optional[Mapping] = None

    @property
    def is_primary(self) -> bool:
        return self.dataloader is None

    def dataloader_key(self) -> str:
        """Config key of the set's dataloader (``test_dataloader`` for the primary set)."""
        return 'test_dataloader' if self.is_primary else f'{self.key}.dataloader'

    def evaluator_key(self) -> str:
        """Config key of the set's evaluator (``test_evaluator`` when it uses the primary's)."""
        return 'test_evaluator' if self.is_primary or self.evaluator is None else f'{self.key}.evaluator'


def _check_name(name: Any, key: str) -> str:
    if not isinstance(name, str) or not SET_NAME.match(name):
        raise TestSetConfigError(f'{key} = {name!r}: a test set name must be a non-empty string of letters, digits and '
                                 "'_', '.', '+', '-' (it prefixes the set's metric keys and names its output folder), "
                                 "e.g. 'road_anomaly21'")
    if name in RESERVED_NAMES:
        raise TestSetConfigError(f'{key} = {name!r} is reserved (a metric key field: {", ".join(RESERVED_NAMES)}); '
                                 'choose another test set name')
    return name


def _check_keys(entry: Mapping, allowed: Sequence[str], key: str) -> None:
    unknown = [k for k in entry if k not in allowed]
    if unknown:
        raise TestSetConfigError(f'{key} has unknown key(s) {unknown}; a test set takes {", ".join(allowed)}')


def primary_set_spec(primary_set: Union[None, str, Mapping]) -> Optional[TestSetSpec]:
    """The primary set of ``test_cfg.primary_set`` (a name, or ``dict(name=..., tta_pipeline=...)``)."""
    if primary_set is None:
        return None
    if isinstance(primary_set, str):
        return TestSetSpec(name=_check_name(primary_set, 'test_cfg.primary_set'), key='test_dataloader')
    if not isinstance(primary_set, Mapping):
        raise TestSetConfigError(f'test_cfg.primary_set must be a name or dict(name=..., tta_pipeline=...), got '
                                 f'{type(primary_set).__name__}')
    _check_keys(primary_set, PRIMARY_KEYS, 'test_cfg.primary_set')
    if 'name' not in primary_set:
        raise TestSetConfigError("test_cfg.primary_set has no `name`; set e.g. primary_set=dict(name='road_anomaly21')")
    return TestSetSpec(
        name=_check_name(primary_set['name'], 'test_cfg.primary_set.name'),
        key='test_dataloader',
        tta_pipeline=primary_set.get('tta_pipeline'))


def _entries(test_sets: Union[None, Mapping, Sequence]) -> List[tuple]:
    """``[(name, entry, key)]`` of ``test_cfg.test_sets`` in its dict or list form."""
    if test_sets is None:
        return []
    if isinstance(test_sets, Mapping):
        out = []
        for name, entry in test_sets.items():
            key = f'test_cfg.test_sets.{name}'
            if entry is None:  # dropped by an inheriting config or --cfg-options test_cfg.test_sets.<name>=None
                continue
            if not isinstance(entry, Mapping):
                raise TestSetConfigError(f'{key} must be a dict(dataloader=..., evaluator=...), got '
                                         f'{type(entry).__name__}')
            if entry.get('name', name) != name:
                raise TestSetConfigError(f'{key}.name = {entry["name"]!r} differs from its key {name!r}; drop `name` '
                                         'or make them equal')
            out.append((name, entry, key))
        return out
    if isinstance(test_sets, (list, tuple)):
        out = []
        for i, entry in enumerate(test_sets):
            key = f'test_cfg.test_sets[{i}]'
            if not isinstance(entry, Mapping):
                raise TestSetConfigError(f'{key} must be a dict(name=..., dataloader=..., evaluator=...), got '
                                         f'{type(entry).__name__}')
            if 'name' not in entry:
                raise TestSetConfigError(f"{key} has no `name`; set e.g. name='lost_and_found'")
            out.append((entry['name'], entry, key))
        return out
    raise TestSetConfigError(f'test_cfg.test_sets must be a dict (name -> dict(dataloader=..., evaluator=...)) or a '
                             f'list of dict(name=..., dataloader=..., evaluator=...), got {type(test_sets).__name__}')


def parse_test_sets(primary_set: Union[None, str, Mapping],
                    test_sets: Union[None, Mapping, Sequence] = None) -> List[TestSetSpec]:
    """The sets of a ``test_cfg``, primary first; ``[]`` for a single-set config (neither key given).

    Raises:
        TestSetConfigError: ``test_sets`` without ``primary_set``, a set without dataloader, a bad or repeated name,
            an unknown key; the message names the key at fault.
    """
    primary = primary_set_spec(primary_set)
    entries = _entries(test_sets)
    if primary is None:
        if entries:
            raise TestSetConfigError(
                'test_cfg.test_sets is given but test_cfg.primary_set is not: name the set of test_dataloader / '
                "test_evaluator too, e.g. primary_set='road_anomaly21' (every set's metrics are reported as "
                '<set name>/<metric>)')
        return []
    specs = [primary]
    for name, entry, key in entries:
        _check_keys(entry, SET_KEYS, key)
        name = _check_name(name, f'{key}.name' if key.endswith(']') else key)
        if entry.get('dataloader') is None:
            raise TestSetConfigError(f'{key} has no `dataloader`; give it dataloader=dict(batch_size=1, num_workers=2, '
                                     "sampler=dict(type='DefaultSampler', shuffle=False), dataset=dict(...))")
        specs.append(
            TestSetSpec(
                name=name,
                key=key,
                dataloader=entry['dataloader'],
                evaluator=entry.get('evaluator'),
                tta_pipeline=entry.get('tta_pipeline'),
                entry=entry))
    seen: Dict[str, str] = {}
    for spec in specs:
        if spec.name in seen:
            raise TestSetConfigError(f'test set name {spec.name!r} is used twice ({seen[spec.name]} and {spec.key}); '
                                     'every set needs its own name (it prefixes the metric keys)')
        seen[spec.name] = spec.key if not spec.is_primary else 'test_cfg.primary_set'
    return specs


def config_test_sets(cfg: Mapping) -> List[TestSetSpec]:
    """:func:`parse_test_sets` of a config's ``test_cfg`` (``[]`` without ``primary_set`` / ``test_sets``)."""
    test_cfg = cfg.get('test_cfg') or {}
    if not isinstance(test_cfg, Mapping):
        return []
    return parse_test_sets(test_cfg.get('primary_set'), test_cfg.get('test_sets'))


def set_metric_key(name: str, key: str) -> str:
    """The key of metric ``key`` of test set ``name`` in the run's metrics."""
    return f'{name}/{key}'


def split_set_metrics(metrics: Mapping[str, Any], names: Sequence[str]) -> 'OrderedDict[str, OrderedDict]':
    """``{set name: {metric key without the set prefix: value}}`` of a multi-set run's flat metrics, in ``names``
    order; keys of no set are left out."""
    out: 'OrderedDict[str, OrderedDict]' = OrderedDict((name, OrderedDict()) for name in names)
    for key, value in metrics.items():
        head, sep, rest = key.partition('/')
        if sep and head in out:
            out[head][rest] = value
    return out
