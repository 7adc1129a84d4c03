"""Config validation before the Runner is built: one clear message per mistake, naming the key.

mmengine finds most config mistakes only deep inside ``Runner.from_cfg`` / ``runner.train()`` (a typo in
a scorer's ``type`` after the model has been built and the fit data loaded; a missing data root when the
val loop is first built), and then as ``KeyError: 'X is not in the mmseg::model registry'`` without the
config key or the valid names. :func:`check_config` walks the config first and reports, per problem,
the dotted key, the value and what to do:

- unknown registry names (``type``) of the model and its parts, transforms, datasets, samplers,
  metrics, anomaly scorers, loops, hooks, optimizer, LR schedulers, visualizer: with the closest
  registered names and the valid choices for that slot;
- a dataset whose ``data_root``, ``data_prefix`` folder or ``ann_file`` does not exist (the check shared with
  the dataset and the integrity check, :func:`~anomseg_plugins.datasets.street_hazards.data_path_problems`);
- a scorer that needs fitting (``requires_fit``) with no fit data (no ``test_cfg.fit_dataloader``, no
  ``val_dataloader``, no saved statistics) or without ``AnomalyTestLoop``;
- a head ``num_classes`` that disagrees with the number of classes of the dataset;
- ``persistent_workers`` (or ``prefetch_factor``) on a dataloader without workers (``num_workers=0``, e.g. from
  ``--cfg-options train_dataloader.num_workers=0``), which torch refuses with a bare ``ValueError``.

``tools/train.py`` and ``tools/test.py`` call it before building the Runner and exit with its message.
"""
import difflib
import os.path as osp
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config

#: Dataloaders each mode builds (``val`` only when ``val_cfg`` is set).
MODE_DATALOADERS = {'train': ('train_dataloader', 'val_dataloader'), 'test': ('test_dataloader', )}


class ConfigError(ValueError):
    """One or more config mistakes; ``problems`` holds one message per mistake (key, value, what to do)."""

    def __init__(self, problems: Sequence[str], config: Optional[str] = None) -> None:
        self.problems = list(problems)
        head = f'{len(self.problems)} problem(s) in config {config}' if config else \
            f'{len(self.problems)} config problem(s)'
        super().__init__(head + ':\n' + '\n'.join(f'- {p}' for p in self.problems))


# ----------------------------------------------------------------------------------------------- registries
def _registries() -> Dict[str, Any]:
    """mmseg's registries (all mmseg modules registered) plus anomseg's ``ANOMALY_SCORERS``."""
    from mmseg import registry as mmseg_registry
    from mmseg.utils import register_all_modules

    from anomseg_plugins.registry import ANOMALY_SCORERS
    register_all_modules(init_default_scope=False)
    names = ('MODELS', 'TRANSFORMS', 'DATASETS', 'DATA_SAMPLERS', 'METRICS', 'LOOPS', 'HOOKS', 'OPTIMIZERS',
             'OPTIM_WRAPPERS', 'PARAM_SCHEDULERS', 'VISUALIZERS', 'VISBACKENDS', 'MODEL_WRAPPERS',
             'WEIGHT_INITIALIZERS', 'TASK_UTILS')
    regs = {n: getattr(mmseg_registry, n) for n in names}
    regs['ANOMALY_SCORERS'] = ANOMALY_SCORERS
    return regs


def registered_names(registry: Any, own_only: bool = False) -> Dict[str, type]:
    """Names a ``registry.get`` can resolve without a scope prefix: the registry's and its ancestors'."""
    registry.import_from_location()
    found: Dict[str, type] = {}
    reg = registry
    while reg is not None:
        for name, cls in reg.module_dict.items():
            found.setdefault(name, cls)
        if own_only:
            break
        reg = reg.parent
    return found


def _module_has(*parts: str) -> Callable[[str, type], bool]:
    return lambda name, cls: any(p in getattr(cls, '__module__', '') for p in parts)


def _is_norm(name: str, cls: type) -> bool:
    from torch import nn
    return isinstance(cls, type) and issubclass(cls, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm))


def _is_activation(name: str, cls: type) -> bool:
    return 'activation' in getattr(cls, '__module__', '')


#: Which registered names are valid in a model slot (by the last key of the path).
MODEL_ROLES: Dict[str, Callable[[str, type], bool]] = {
    'model': _module_has('.segmentors.', 'tta'),
    'backbone': _module_has('.backbones.'),
    'neck': _module_has('.necks.'),
    'decode_head': _module_has('.decode_heads.'),
    'auxiliary_head': _module_has('.decode_heads.'),
    'loss_decode': _module_has('.losses.'),
    'data_preprocessor': lambda name, cls: name.endswith('DataPreProcessor') or 'data_preprocessor' in name,
    'norm_cfg': _is_norm,
    'act_cfg': _is_activation,
}


class _Checker:
    """Collects problems while walking one config."""

    def __init__(self, cfg: Config, check_paths: bool = True) -> None:
        self.cfg = cfg
        self.check_paths = check_paths
        self.problems: List[str] = []
        self.regs = _registries()

    # ----- registry names -----
    def check_type(self,
                   node: Any,
                   path: str,
                   registry: str,
                   role: Optional[str] = None,
                   own_only: bool = False) -> bool:
        """Check ``node['type']`` resolves in ``registry``; returns ``False`` (and records why) when not."""
        if not isinstance(node, dict) or 'type' not in node:
            return True
        name = node['type']
        if not isinstance(name, str):
            return True  # a class object given directly (pure-python config)
        reg = self.regs[registry]
        try:
            if reg.get(name) is not None:
                return True
        except Exception:  # noqa: BLE001  - a scoped name whose package is missing, etc.
            pass
        names = registered_names(reg, own_only)
        keep = MODEL_ROLES.get(role) if registry == 'MODELS' else None
        choices = sorted(n for n, c in names.items() if keep is None or keep(n, c)) or sorted(names)
        close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ''
        shown = ', '.join(choices) if len(choices) <= 80 else ', '.join(choices[:80]) + f', ... ({len(choices)} names)'
        what = f'{role} ' if role else ''
        self.problems.append(
            f"{path}.type = {name!r} is not a registered {what}type (registry {registry}, scope "
            f"{getattr(reg, 'scope', '?')}).{hint} Valid choices: {shown}. If it is your own class, list its "
            f"module in custom_imports=dict(imports=[...]).")
        return False

    def check_model(self, node: Any, path: str, role: str = 'model') -> None:
        """Model parts that live in MODELS: the segmentor, backbone, neck, heads, losses, norm / act layers."""
        if isinstance(node, (list, tuple)):
            for i, item in enumerate(node):
                self.check_model(item, f'{path}[{i}]', role)
            return
        if not isinstance(node, dict):
            return
        self.check_type(node, path, 'MODELS', role)
        for key, value in node.items():
            if key in MODEL_ROLES and key != 'model':
                self.check_model(value, f'{path}.{key}', key)
            elif key in ('init_cfg', ) and isinstance(value, dict):
                self.check_type(value, f'{path}.{key}', 'WEIGHT_INITIALIZERS')
            elif key == 'module' and isinstance(value, dict):  # TTA wrapper / cascade
                self.check_model(value, f'{path}.{key}', 'model')

    def check_pipeline(self, pipeline: Any, path: str) -> None:
        for i, t in enumerate(pipeline or []):
            if self.check_type(t, f'{path}[{i}]', 'TRANSFORMS', 'transform') and isinstance(t, dict):
                for key in ('transforms', ):  # TestTimeAug / RandomChoice / RandomApply
                    inner = t.get(key)
                    if isinstance(inner, (list, tuple)):
                        flat = [x for item in inner for x in (item if isinstance(item, (list, tuple)) else [item])]
                        self.check_pipeline(flat, f'{path}[{i}].{key}')

    def iter_datasets(self, node: Any, path: str) -> Iterator[Tuple[dict, str]]:
        """The leaf dataset configs of a dataset config, through RepeatDataset / ConcatDataset wrappers."""
        if not isinstance(node, dict):
            return
        yield node, path
        if isinstance(node.get('dataset'), dict):
            yield from self.iter_datasets(node['dataset'], f'{path}.dataset')
        for i, ds in enumerate(node.get('datasets') or []):
            yield from self.iter_datasets(ds, f'{path}.datasets[{i}]')

    def check_dataloader(self, loader: Any, path: str) -> None:
        if not isinstance(loader, dict):
            return
        self.check_workers(loader, path)
        self.check_type(loader.get('sampler'), f'{path}.sampler', 'DATA_SAMPLERS', 'sampler')
        self.check_type(loader.get('batch_sampler'), f'{path}.batch_sampler', 'DATA_SAMPLERS', 'sampler')
        for ds, ds_path in self.iter_datasets(loader.get('dataset'), f'{path}.dataset'):
            known = self.check_type(ds, ds_path, 'DATASETS', 'dataset')
            self.check_pipeline(ds.get('pipeline'), f'{ds_path}.pipeline')
            if known and self.check_paths:
                self.check_data_paths(ds, ds_path)

    def check_workers(self, loader: dict, path: str) -> None:
        """Options torch's ``DataLoader`` refuses without worker processes (with a bare ``ValueError``)."""
        workers = loader.get('num_workers', 0)
        if workers:
            return
        for key, off in (('persistent_workers', False), ('prefetch_factor', None)):
            value = loader.get(key)
            if value not in (None, False):
                self.problems.append(
                    f'{path}.{key}={value} needs {path}.num_workers > 0 (it is {workers!r}): also pass '
                    f'{path}.{key}={off}, or set {path}.num_workers to 1 or more.')

    def check_data_paths(self, ds: dict, path: str) -> None:
        """``data_root``, the ``data_prefix`` folders and ``ann_file`` must exist (leaf datasets only).

        The check and its messages are :func:`~anomseg_plugins.datasets.street_hazards.data_path_problems`,
        shared with the dataset and the integrity check.
        """
        if 'dataset' in ds or 'datasets' in ds:
            return
        from anomseg_plugins.datasets.street_hazards import data_path_problems
        self.problems += [
            p.message for p in data_path_problems(
                ds.get('data_root'), ds.get('data_prefix'), ds.get('ann_file'), path, dataset_type=ds.get('type'))
        ]

    def check_evaluator(self, evaluator: Any, path: str) -> List[Tuple[Any, str]]:
        """Check metric types and their scorers; returns the built scorers that need fitting with their key."""
        needs_fit: List[Tuple[Any, str]] = []
        if isinstance(evaluator, dict) and 'metrics' in evaluator and 'type' not in evaluator:
            evaluator, path = evaluator['metrics'], f'{path}.metrics'
        items = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
        for i, metric in enumerate(items):
            mpath = f'{path}[{i}]' if isinstance(evaluator, (list, tuple)) else path
            if not self.check_type(metric, mpath, 'METRICS', 'metric') or not isinstance(metric, dict):
                continue
            for j, scorer in enumerate(metric.get('scorers') or []):
                needs_fit += self.check_scorer(scorer, f'{mpath}.scorers[{j}]')
        return needs_fit

    def check_scorer(self, scorer: Any, path: str) -> List[Tuple[Any, str]]:
        if not isinstance(scorer, dict):
            return []
        if not self.check_type(scorer, path, 'ANOMALY_SCORERS', 'anomaly scorer', own_only=True):
            return []
        for j, child in enumerate(scorer.get('scorers') or []):  # ScoreFusion children
            if not self.check_type(child, f'{path}.scorers[{j}]', 'ANOMALY_SCORERS', 'anomaly scorer', own_only=True):
                return []
        reg = self.regs['ANOMALY_SCORERS']
        try:
            built = reg.build(dict(scorer, _scope_=scorer.get('_scope_', reg.scope)))
        except Exception as exc:  # noqa: BLE001
            self.problems.append(f'{path} = {dict(scorer)!r} cannot be built: {type(exc).__name__}: {exc}')
            return []
        return [(built, path)] if getattr(built, 'requires_fit', False) else []

    # ----- num_classes -----
    def dataset_classes(self, loader: Any) -> Optional[Tuple[int, str]]:
        """``(number of classes, where it comes from)`` of the first leaf dataset of a dataloader config."""
        if not isinstance(loader, dict):
            return None
        for ds, ds_path in self.iter_datasets(loader.get('dataset'), 'dataset'):
            if 'dataset' in ds or 'datasets' in ds:
                continue
            classes = (ds.get('metainfo') or {}).get('classes')
            where = f'{ds_path}.metainfo.classes'
            if classes is None and isinstance(ds.get('type'), str):
                cls = self.regs['DATASETS'].get(ds['type'])
                classes = (getattr(cls, 'METAINFO', None) or {}).get('classes')
                where = f"{ds['type']}.METAINFO['classes']"
            if classes is not None:
                return len(classes), where
        return None

    def check_num_classes(self, loader_key: str) -> None:
        found = self.dataset_classes(self.cfg.get(loader_key))
        model = self.cfg.get('model')
        if found is None or not isinstance(model, dict):
            return
        num, where = found
        for head_key in ('decode_head', 'auxiliary_head'):
            heads = model.get(head_key)
            items = heads if isinstance(heads, (list, tuple)) else [heads]
            for i, head in enumerate(items):
                if not isinstance(head, dict) or head.get('num_classes') is None:
                    continue
                key = f'model.{head_key}' + (f'[{i}]' if isinstance(heads, (list, tuple)) else '')
                if head['num_classes'] != num:
                    self.problems.append(
                        f'{key}.num_classes = {head["num_classes"]} but the dataset of {loader_key} has {num} '
                        f'classes ({where}); set {key}.num_classes={num} (or give the dataset '
                        f'metainfo=dict(classes=...) with {head["num_classes"]} names).')

    # ----- anomaly fitting -----
    def check_fit_data(self, needs_fit: List[Tuple[Any, str]]) -> None:
        if not needs_fit:
            return
        names = ', '.join(f'{s.name} ({p})' for s, p in needs_fit)
        test_cfg = self.cfg.get('test_cfg') or {}
        loop = test_cfg.get('type') if isinstance(test_cfg, dict) else None
        if loop != 'AnomalyTestLoop':
            self.problems.append(
                f"test_cfg.type = {loop!r}: scorer(s) {names} need fitting, which only AnomalyTestLoop does; set "
                f"test_cfg = dict(type='AnomalyTestLoop') (e.g. test_cfg = _base_.anomaly_test_cfg with a "
                f"configs/_base_/anomaly/ scorer set).")
            return
        if test_cfg.get('fit_dataloader') is not None:
            self.check_dataloader(test_cfg['fit_dataloader'], 'test_cfg.fit_dataloader')
            return
        if self.cfg.get('val_dataloader'):
            self.check_dataloader(self.cfg['val_dataloader'], 'val_dataloader')
            return
        stats = test_cfg.get('stats_file', 'anomaly_scorer_stats.pth')
        stats_path = None if stats is None else osp.join(self.cfg.get('work_dir') or '', stats)
        if stats_path is None or not osp.isfile(stats_path):
            self.problems.append(
                f'scorer(s) {names} need fitting, but there is no fit data: test_cfg.fit_dataloader is not set, the '
                f'config has no val_dataloader' + (f' and {stats_path} does not exist' if stats_path else '') +
                ". Add test_cfg.fit_dataloader=dict(batch_size=1, num_workers=2, sampler=dict(type="
                "'DefaultSampler', shuffle=False), dataset=dict(...)) (a labelled split, e.g. validation), or "
                'remove these scorers.')


def mode_dataloaders(cfg: Config, mode: str) -> List[str]:
    """Dataloader keys a ``mode`` run builds: train (and val when ``val_cfg`` is set) or test."""
    if mode not in MODE_DATALOADERS:
        raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
    return [k for k in MODE_DATALOADERS[mode] if k != 'val_dataloader' or cfg.get('val_cfg')]


def check_config(cfg: Config, mode: str = 'train', check_paths: bool = True) -> None:
    """Validate ``cfg`` for ``mode`` (``'train'`` or ``'test'``) before ``Runner.from_cfg``.

    Checked: registry names of every configured component (model parts, transforms, datasets, samplers,
    metrics, anomaly scorers, loops, hooks, optimizer, schedulers, visualizer), dataset folders of the
    dataloaders the mode builds (when ``check_paths``) and their worker options, the fit data of scorers
    that need fitting (test) and the heads' ``num_classes`` against the dataset's classes.

    Configs with ``default_scope`` other than ``'mmseg'`` are not checked; ``skip_config_checks=True`` in the
    config (or ``--cfg-options skip_config_checks=True``) turns the check off.

    Raises:
        ConfigError: with one line per problem, naming the config key, the value and the fix.
    """
    if mode not in MODE_DATALOADERS:
        raise ValueError(f"check_config: mode must be 'train' or 'test', got {mode!r}")
    if cfg.get('skip_config_checks', False) or cfg.get('default_scope', 'mmseg') not in (None, 'mmseg'):
        return  # opted out, or another codebase's registries (mmdet, mmpretrain, ...) that we do not model
    checker = _Checker(cfg, check_paths)
    checker.check_model(cfg.get('model'), 'model')
    for key in mode_dataloaders(cfg, mode):
        checker.check_dataloader(cfg.get(key), key)
    for key in ('train_cfg', 'val_cfg', 'test_cfg'):
        checker.check_type(cfg.get(key), key, 'LOOPS', 'loop')
    for name, hook in (cfg.get('default_hooks') or {}).items():
        checker.check_type(hook, f'default_hooks.{name}', 'HOOKS', 'hook')
    for i, hook in enumerate(cfg.get('custom_hooks') or []):
        checker.check_type(hook, f'custom_hooks[{i}]', 'HOOKS', 'hook')
    optim = cfg.get('optim_wrapper')
    if isinstance(optim, dict):
        checker.check_type(optim, 'optim_wrapper', 'OPTIM_WRAPPERS', 'optimizer wrapper')
        checker.check_type(optim.get('optimizer'), 'optim_wrapper.optimizer', 'OPTIMIZERS', 'optimizer')
    scheds = cfg.get('param_scheduler')
    for i, sched in enumerate(scheds if isinstance(scheds, (list, tuple)) else [scheds]):
        checker.check_type(sched, f'param_scheduler[{i}]', 'PARAM_SCHEDULERS', 'parameter scheduler')
    vis = cfg.get('visualizer')
    if checker.check_type(vis, 'visualizer', 'VISUALIZERS', 'visualizer') and isinstance(vis, dict):
        for i, backend in enumerate(vis.get('vis_backends') or []):
            checker.check_type(backend, f'visualizer.vis_backends[{i}]', 'VISBACKENDS', 'visualization backend')
    checker.check_type(cfg.get('model_wrapper_cfg'), 'model_wrapper_cfg', 'MODEL_WRAPPERS', 'model wrapper')
    if mode == 'train':
        if cfg.get('val_cfg'):
            checker.check_evaluator(cfg.get('val_evaluator'), 'val_evaluator')
        checker.check_num_classes('train_dataloader')
    else:
        needs_fit = checker.check_evaluator(cfg.get('test_evaluator'), 'test_evaluator')
        checker.check_fit_data(needs_fit)
        checker.check_num_classes('test_dataloader')
    if checker.problems:
        raise ConfigError(checker.problems, getattr(cfg, 'filename', None))
