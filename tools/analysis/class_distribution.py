"""Class distribution of a StreetHazards copy: pixel share and image presence per class and split.

    python tools/analysis/class_distribution.py DATA_ROOT [--splits train val test] [--out DIR]

Prints a table and writes ``class_distribution.csv``, ``.md``, ``.json`` and a bar chart ``.png`` to ``--out``
(default ``work_dirs/class_distribution``). Classes are the 13 known classes plus the anomaly (on-disk
values 1..14). Unreadable annotation files and values outside 1..14 are named and left out of the counts;
the exit code is 1 only if no split could be read. The full data check (images readable, annotation
present, sizes, label range) is ``tools/dataset/check_integrity.py``.
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from anomseg_plugins.datasets.street_hazards import SPLIT_PREFIXES
from anomseg_plugins.tooling.class_distribution import class_distribution, problems, to_prettytable, write_outputs


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Pixel share and image presence per class and split')
    parser.add_argument('data_root', help='StreetHazards root (holding train/ and test/)')
    parser.add_argument(
        '--splits',
        nargs='+',
        default=list(SPLIT_PREFIXES),
        choices=list(SPLIT_PREFIXES),
        help='splits to count (default: all)')
    parser.add_argument('--out', default='work_dirs/class_distribution', help='output folder')
    parser.add_argument('--no-plot', action='store_true', help='skip the bar chart')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if not osp.isdir(args.data_root):
        print(f'error: data root {args.data_root!r} does not exist', file=sys.stderr)
        return 1
    dist = class_distribution(args.data_root, args.splits)
    issues = problems(dist)
    if all('missing' in d for d in dist.values()):
        for msg in issues:
            print(f'error: {msg}', file=sys.stderr)
        return 1
    print(to_prettytable(dist))
    paths = write_outputs(dist, args.out, plot=not args.no_plot)
    for msg in issues:
        print(f'warning: {msg}', file=sys.stderr)
    print('wrote ' + ', '.join(paths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
