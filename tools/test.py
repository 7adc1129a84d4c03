"""Test (and evaluate) a segmentor: ``python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR]
[--show-dir DIR] [--cfg-options k=v ...] [--launcher ...] [--tta]``.

Same arguments and behaviour as mmseg's ``tools/test.py``. Additionally writes every metric the
evaluators returned (mIoU and, with an anomaly config, the anomaly tables) to
``<work_dir>/test_results.json`` so ``tools/analysis/compare.py`` can put runs side by side.

Several test sets in one run (``test_cfg = dict(type='AnomalyTestLoop', primary_set=..., test_sets=...)``,
:mod:`anomseg_plugins.engine.test_sets`): the sets' dataloaders and evaluators are checked like the config's own
before anything is built (problems named by their key, e.g. ``test_cfg.test_sets.lost_and_found.dataloader...``);
``--tta`` gives every set its own ``tta_pipeline`` (else the config's), ``--out DIR`` gives every set ``DIR/<set>``;
``test_results.json`` holds the flat metrics (``<set>/<metric>``) and ``"test_sets": {set: {metric: value}}``, and
one summary table per set is logged.

Unlike mmseg's tool, a checkpoint that does not fit the model exactly (missing, unexpected or differently
shaped weights, e.g. a head trained for another number of classes) is refused before anything is evaluated,
with exit status 1 and the file, keys and shapes named (:mod:`anomseg_plugins.utils.checkpoint_fit`).
"""
import argparse
import copy
import json
import os
import os.path as osp
import re
import sys
from typing import List

from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.runner import Runner

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from anomseg_plugins.engine.test_sets import TestSetConfigError, TestSetSpec, config_test_sets, split_set_metrics
from anomseg_plugins.utils import CheckpointMismatchError, check_checkpoint_fits, load_tool_config
from anomseg_plugins.utils.config_checks import ConfigError, check_config
from anomseg_plugins.utils.preflight import prepare_tool_run


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='MMSeg test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory for logs and test_results.json')
    parser.add_argument('--out', type=str, help='directory to save output predictions for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory where painted images will be saved')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, e.g. test_dataloader.batch_size=2')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none', help='job launcher')
    parser.add_argument('--tta', action='store_true', help='Test time augmentation')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args):
    """Turn on mmseg's visualization hook for ``--show`` / ``--show-dir`` (as mmseg's tool does)."""
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        raise RuntimeError('VisualizationHook must be included in default_hooks, e.g. '
                           "visualization=dict(type='SegVisualizationHook')")
    hook = default_hooks['visualization']
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        cfg.visualizer['save_dir'] = args.show_dir
    return cfg


#: What ``--tta`` needs, as configs/_base_/default_runtime.py and configs/_base_/datasets/street_hazards.py give it.
TTA_EXAMPLE = (
    "tta_model = dict(type='LogitSegTTAModel')\n"
    "tta_pipeline = [\n"
    "    dict(type='LoadImageFromFileWithRetry'),\n"
    "    dict(type='TestTimeAug', transforms=[\n"
    "        [dict(type='Resize', scale=(1280, 720), keep_ratio=True)],  # the test_pipeline's resize\n"
    "        [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)],\n"
    "        [dict(type='RandomFlip', prob=0., direction='horizontal'),\n"
    "         dict(type='RandomFlip', prob=1., direction='horizontal')],\n"
    "        [dict(type='LoadStreetHazardsAnnotations')],  # after the augmentations: labels at the original size\n"
    "        [dict(type='PackAnomalySegInputs')]])]")


def use_tta(cfg, config_path: str):
    """``--tta``: wrap ``cfg.model`` in ``cfg.tta_model`` and give the test data the ``tta_pipeline``, as mmseg's
    ``tools/test.py`` does, and also the fit data of ``AnomalyTestLoop`` (``test_cfg.fit_dataloader``, else
    ``val_dataloader``), so that fitted scorer statistics come from the same augmented model as the test.
    With several test sets every set gets its own ``tta_pipeline`` (``test_cfg.primary_set.tta_pipeline``,
    ``test_cfg.test_sets.<name>.tta_pipeline``), else the config's.

    Raises:
        SystemExit: the config lacks ``tta_model`` or ``tta_pipeline`` (mmseg's tool fails with a bare
            ``AttributeError`` there), naming the missing key(s) and what to add; or its ``tta_model`` is
            mmseg's ``SegTTAModel`` under anomaly scorers (it averages probabilities and drops the logits).
    """
    missing = [key for key in ('tta_model', 'tta_pipeline') if not cfg.get(key)]
    if missing:
        sys.exit(f'tools/test.py: --tta needs `tta_model` and `tta_pipeline` in the config, and {config_path} has no '
                 f'{" and no ".join(f"`{k}`" for k in missing)}. Inherit the bases that define them '
                 f'(tta_model: configs/_base_/default_runtime.py; tta_pipeline: the dataset bases in '
                 f'configs/_base_/datasets/) or add, for StreetHazards:\n{TTA_EXAMPLE}\n'
                 "(use type='LogitSegTTAModel': it averages the views' logits, which the anomaly scorers need).")
    test_cfg = cfg.get('test_cfg') or {}
    anomaly_loop = str(test_cfg.get('type', '')).endswith('AnomalyTestLoop')
    if anomaly_loop and str(cfg.tta_model.get('type', '')).split('.')[-1] == 'SegTTAModel':
        sys.exit(f"tools/test.py: {config_path} sets tta_model.type='SegTTAModel', which averages softmax "
                 'probabilities and drops the logits the anomaly scorers read; set '
                 "tta_model = dict(type='LogitSegTTAModel') (it averages the logits).")
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model
    sets = config_test_sets(cfg) if anomaly_loop else []
    loaders = [(cfg.test_dataloader, sets[0].tta_pipeline if sets else None)]
    for spec in sets[1:]:
        loaders.append((spec.entry['dataloader'], spec.tta_pipeline))
        if spec.tta_pipeline is None:
            print(
                f'tools/test.py --tta: test set {spec.name!r} has no {spec.key}.tta_pipeline; it gets the config\'s '
                'tta_pipeline',
                flush=True)
    fit_loader = (test_cfg.get('fit_dataloader') or cfg.get('val_dataloader')) if anomaly_loop else None
    if fit_loader:
        loaders.append((fit_loader, None))
    for loader, pipeline in loaders:
        dataset = loader.dataset
        while 'pipeline' not in dataset and isinstance(dataset.get('dataset'), dict):  # RepeatDataset & co.
            dataset = dataset.dataset
        dataset.pipeline = copy.deepcopy(pipeline if pipeline is not None else cfg.tta_pipeline)
    return cfg


def test_set_problems(cfg, sets: List[TestSetSpec]) -> List[str]:
    """The pre-flight checks of ``check_config`` for the dataloader and evaluator of every test set but the primary
    (which ``prepare_tool_run`` checks with the rest of the config), each problem named by the set's keys
    (``test_cfg.test_sets.<name>.dataloader...``). The heads' ``num_classes`` is checked against the set's dataset
    only where the set evaluates mIoU (an ``IoUMetric``): the anomaly sets have no class labels."""
    if cfg.get('skip_config_checks', False):
        return []
    problems: List[str] = []
    for spec in sets[1:]:
        evaluator = spec.evaluator if spec.evaluator is not None else cfg.test_evaluator
        metrics = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
        with_iou = any(isinstance(m, dict) and str(m.get('type', '')).endswith('IoUMetric') for m in metrics)
        sub = Config(
            dict(
                default_scope=cfg.get('default_scope', 'mmseg'),
                model=cfg.get('model') if with_iou else None,
                test_dataloader=spec.dataloader,
                test_evaluator=evaluator,
                test_cfg=dict(type='AnomalyTestLoop', fit_dataloader=dict(num_workers=1)),  # fit data: checked already
                work_dir=cfg.get('work_dir')))
        try:
            check_config(sub, mode='test')
        except ConfigError as exc:
            for problem in exc.problems:
                problem = re.sub(r'\btest_dataloader\b', spec.dataloader_key(), problem)
                problem = re.sub(r'\btest_evaluator\b', spec.evaluator_key(), problem)
                if spec.key in problem and problem not in problems:  # the rest is the primary's, reported already
                    problems.append(problem)
    return problems


def per_set_output_dirs(cfg, sets: List[TestSetSpec], out: str) -> None:
    """``--out DIR``: each set's metrics write to ``DIR/<set name>`` (IoUMetric keeps its results there)."""
    for spec in sets:
        if spec.is_primary:
            evaluator = cfg.test_evaluator
        else:
            if spec.entry.get('evaluator') is None:  # the set's copy of test_evaluator, made here to set its folder
                spec.entry['evaluator'] = copy.deepcopy(cfg.test_evaluator)
            evaluator = spec.entry['evaluator']
        set_output_dir(evaluator, osp.join(out, spec.name))


def set_output_dir(evaluator, out: str) -> None:
    """``output_dir`` of every metric of an evaluator config (``keep_results`` for mmseg's IoUMetric)."""
    for metric in evaluator if isinstance(evaluator, list) else [evaluator]:
        metric['output_dir'] = out
        if metric.get('type') == 'IoUMetric':
            metric['keep_results'] = True


def main() -> None:
    args = parse_args()
    cfg = load_tool_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    if not osp.isfile(args.checkpoint):
        sys.exit(f'tools/test.py: checkpoint {args.checkpoint!r} does not exist.')
    try:
        sets = config_test_sets(cfg)
    except TestSetConfigError as exc:
        sys.exit(f'tools/test.py: {exc}')
    prepare_tool_run(cfg, 'test', tool='tools/test.py')
    problems = test_set_problems(cfg, sets)
    if problems:
        sys.exit(f'tools/test.py: {len(problems)} problem(s) in the test sets of config {args.config}:\n' +
                 '\n'.join(f'- {p}' for p in problems))
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        cfg = use_tta(cfg, args.config)
    if args.out is not None:
        if sets:
            per_set_output_dirs(cfg, sets, args.out)
        else:
            set_output_dir(cfg.test_evaluator, args.out)

    runner = Runner.from_cfg(cfg)
    try:  # mmengine loads `load_from` leniently: refuse a checkpoint that does not fit before evaluating anything
        check_checkpoint_fits(runner.model, args.checkpoint)
    except CheckpointMismatchError as exc:
        sys.exit(f'tools/test.py: {exc}')
    metrics = runner.test()
    if is_main_process():
        results = dict(config=args.config, checkpoint=args.checkpoint, metrics=_jsonable(metrics))
        names = list(getattr(runner.test_loop, 'set_names', None) or [])
        if names:
            results['test_sets'] = split_set_metrics(results['metrics'], names)
            log_set_summaries(runner.logger, results['test_sets'])
        out = osp.join(cfg.work_dir, 'test_results.json')
        with open(out, 'w') as f:
            json.dump(results, f, indent=2)
        runner.logger.info(f'metrics written to {out}')


def log_set_summaries(logger, per_set: dict) -> None:
    """One summary per test set: its closed-set metrics and a scorers x metrics table (``comparison.set_summary``)."""
    from anomseg_plugins.tooling.comparison import set_summary
    for number, (name, metrics) in enumerate(per_set.items(), 1):
        logger.info(f'[{number}/{len(per_set)}] ' + set_summary(name, metrics))


def _jsonable(metrics: dict) -> dict:
    out = {}
    for key, value in metrics.items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            out[key] = str(value)
    return out


if __name__ == '__main__':
    main()
