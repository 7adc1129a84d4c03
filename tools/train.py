"""Train a segmentor: ``python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp] [--cfg-options k=v ...]
[--launcher none|pytorch|slurm|mpi] [--check-data]``.

Same arguments and behaviour as mmseg's ``tools/train.py``: argparse -> Config -> mmengine Runner, no training
logic here. Plugins are loaded by the config's ``custom_imports`` (so mmseg's own tool runs the same configs).
Before the Runner is built the config is validated (and with ``--check-data`` every train/val file read), and
multi-process runs without CUDA are set up on gloo (:mod:`anomseg_plugins.utils.preflight`).
"""
import argparse
import logging
import os
import sys

from mmengine.config import DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from anomseg_plugins.utils import check_checkpoint_fits, load_tool_config
from anomseg_plugins.utils.preflight import prepare_tool_run


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        action='store_true',
        default=False,
        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument('--amp', action='store_true', default=False, help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, e.g. train_cfg.max_epochs=2')
    parser.add_argument(
        '--check-data',
        action='store_true',
        default=False,
        help='before training, read every train/val image and annotation and stop with the list of '
        'bad files (see tools/dataset/check_integrity.py)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main() -> None:
    args = parse_args()
    cfg = load_tool_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    prepare_tool_run(cfg, 'train', check_data=args.check_data, tool='tools/train.py')
    if args.amp:
        if cfg.optim_wrapper.type == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.', logger='current', level=logging.WARNING)
        else:
            assert cfg.optim_wrapper.type == 'OptimWrapper', (
                f'`--amp` needs optim_wrapper.type == OptimWrapper, got {cfg.optim_wrapper.type}')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    cfg.resume = args.resume
    runner = Runner.from_cfg(cfg)
    if cfg.get('load_from') and not cfg.get('resume'):  # fine-tuning from other weights: one line on what is skipped
        check_checkpoint_fits(runner.model, cfg.load_from, strict=False)
    runner.train()


if __name__ == '__main__':
    main()
