"""Check a dataset before training: every image readable, annotation present, same size, labels in range.

Usage::

    python tools/dataset/check_integrity.py data/streethazards [--splits train val test] [--workers 8]
    python tools/dataset/check_integrity.py --config CONFIG [--cfg-options k=v ...]   # its train/val/test data
    ... [--json report.json] [--max-list 50]

The files checked are those the dataset lists (``StreetHazardsDataset`` of each split, or the datasets the
config builds), so they are the files training reads. Prints progress, a summary per split and one line per
offending file; exits 0 when every file is fine, 1 when there are problems (the list names each file and what
is wrong with it). See :mod:`anomseg_plugins.datasets.integrity` for the checks.
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def parse_args() -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Check the files of a StreetHazards root or of a config\'s datasets')
    parser.add_argument('data_root', nargs='?', help='StreetHazards root (holding train/ and test/)')
    parser.add_argument('--config', help='check the datasets of this config\'s dataloaders instead')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    parser.add_argument(
        '--splits',
        nargs='+',
        default=None,
        choices=['train', 'val', 'test'],
        help='StreetHazards splits (train val test) or, with --config, dataloaders '
        '(train val test); default: all')
    parser.add_argument(
        '--workers', type=int, default=None, help='processes reading the files (default: min(8, CPUs); 1: in-process)')
    parser.add_argument('--json', help='also write the full report (issues, sizes, label histograms) here')
    parser.add_argument('--max-list', type=int, default=50, help='offending files listed on screen')
    args = parser.parse_args()
    if (args.data_root is None) == (args.config is None):
        parser.error('give either DATA_ROOT or --config CONFIG')
    return args


def main() -> int:
    args = parse_args()
    from anomseg_plugins.datasets.integrity import check_config_data, check_street_hazards
    splits = args.splits or ['train', 'val', 'test']
    if args.config:
        from anomseg_plugins.utils import load_tool_config
        cfg = load_tool_config(args.config, args.cfg_options)
        report = check_config_data(cfg, [f'{s}_dataloader' for s in splits], args.workers)
    else:
        report = check_street_hazards(args.data_root, splits, args.workers)
    print(report.format(args.max_list))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(report.to_dict(), f, indent=2)
        print(f'report written to {args.json}')
    return 0 if report.ok else 1


if __name__ == '__main__':
    sys.exit(main())
