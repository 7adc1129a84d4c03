"""Test (and evaluate) a segmentor: ``python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR]
[--show-dir DIR] [--cfg-options k=v ...] [--launcher ...] [--tta]``.

Same arguments and behaviour as mmseg's ``tools/test.py``. Additionally writes every metric the
evaluators returned (mIoU and, with an anomaly config, the anomaly tables) to
``<work_dir>/test_results.json`` so ``tools/analysis/compare.py`` can put runs side by side.
"""
import argparse
import json
import os
import os.path as osp
import sys

from mmengine.config import DictAction
from mmengine.dist import is_main_process
from mmengine.runner import Runner

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from anomseg_plugins.utils import load_tool_config  # noqa: E402
from anomseg_plugins.utils.preflight import prepare_tool_run  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='MMSeg test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory for logs and test_results.json')
    parser.add_argument('--out', type=str, help='directory to save output predictions for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory where painted images will be saved')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, e.g. test_dataloader.batch_size=2')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
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


def main() -> None:
    args = parse_args()
    cfg = load_tool_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    if not osp.isfile(args.checkpoint):
        sys.exit(f'tools/test.py: checkpoint {args.checkpoint!r} does not exist.')
    prepare_tool_run(cfg, 'test', tool='tools/test.py')
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
        for evaluator in evaluators:
            evaluator['output_dir'] = args.out
            if evaluator.get('type') == 'IoUMetric':
                evaluator['keep_results'] = True

    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    if is_main_process():
        out = osp.join(cfg.work_dir, 'test_results.json')
        with open(out, 'w') as f:
            json.dump(dict(config=args.config, checkpoint=args.checkpoint, metrics=_jsonable(metrics)), f, indent=2)
        runner.logger.info(f'metrics written to {out}')


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
