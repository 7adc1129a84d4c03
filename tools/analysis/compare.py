"""Put several test runs side by side: one table of model x [dataset x] scorer (mIoU, FPR95, AUROC, AUPR under the
pooled and per-image protocols; sIoU, PPV, mean F1 under the component protocol, where the runs have them).

    python tools/analysis/compare.py WORK_DIR_OR_JSON [WORK_DIR_OR_JSON ...] [--names A B ...] \
        [--sort-by pooled/AUPR] [--datasets NAME ...] [--out work_dirs/compare]

Inputs are the ``test_results.json`` files written by ``tools/test.py`` or folders holding them (searched
recursively). A run over several test sets (``test_cfg.test_sets``) gives rows per test set, with a dataset column;
rows stay grouped by dataset, sorted within it, and the best values are marked per dataset (``--datasets`` keeps the
named ones). Prints a prettytable with the best value of every column marked ``*`` (highest mIoU / AUROC / AUPR /
sIoU / PPV / F1, lowest FPR95) and writes to ``--out``: ``comparison.csv``, ``comparison.md`` (best in bold),
``comparison.json`` (rows, best values and who holds them) and ``comparison_bars.png`` (AUPR and FPR95 per
model x scorer, one row of plots per protocol and dataset). Unreadable inputs are named and skipped; the exit code
is 1 only when nothing is left.
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from anomseg_plugins.tooling.comparison import (COLUMNS, ResultFileError, comparison_rows, dataset_names,
                                                filter_datasets, find_result_files, load_result, plot_comparison_bars,
                                                sort_rows, to_markdown, to_prettytable, used_columns, write_csv,
                                                write_json)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Compare test runs: one table of model x scorer')
    parser.add_argument(
        'inputs',
        nargs='+',
        metavar='WORK_DIR_OR_JSON',
        help='test_results.json files of tools/test.py, or folders holding them')
    parser.add_argument(
        '--names',
        nargs='+',
        default=None,
        help='display names, one per result file found (default: config file names)')
    parser.add_argument(
        '--sort-by',
        default='pooled/AUPR',
        help=f'column to order rows by, best first: {", ".join(COLUMNS)} or "none" '
        '(default pooled/AUPR)')
    parser.add_argument(
        '--datasets',
        nargs='+',
        default=None,
        metavar='NAME',
        help='keep only these test sets of multi-set runs (default: all)')
    parser.add_argument('--out', default='work_dirs/compare', help='output folder (default work_dirs/compare)')
    parser.add_argument('--no-plot', action='store_true', help='skip comparison_bars.png')
    args = parser.parse_args(argv)
    if args.sort_by.lower() == 'none':
        args.sort_by = None
    elif args.sort_by not in COLUMNS:
        parser.error(f'--sort-by {args.sort_by!r}: choose one of {", ".join(COLUMNS)} or none')
    return args


def compare(inputs: Sequence[str],
            out_dir: str,
            names: Optional[Sequence[str]] = None,
            sort_by: Optional[str] = 'pooled/AUPR',
            plot: bool = True,
            datasets: Optional[Sequence[str]] = None) -> dict:
    """Load, tabulate and write everything; returns ``dict(rows, files, skipped, table)``.

    Raises:
        ValueError: ``names`` not one per result file, or ``datasets`` naming a test set no result holds.
    """
    files, skipped = find_result_files(inputs)
    results: List[dict] = []
    for path in files:
        try:
            results.append(load_result(path))
        except ResultFileError as err:
            skipped.append(str(err))
    if not results:
        return dict(rows=[], files=[], skipped=skipped, table=None)
    rows = sort_rows(filter_datasets(comparison_rows(results, names), datasets), sort_by)
    columns = used_columns(rows)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    write_csv(rows, osp.join(out_dir, 'comparison.csv'), columns)
    written.append(osp.join(out_dir, 'comparison.csv'))
    with open(osp.join(out_dir, 'comparison.md'), 'w') as f:
        f.write(to_markdown(rows, columns))
    written.append(osp.join(out_dir, 'comparison.md'))
    write_json(rows, osp.join(out_dir, 'comparison.json'), columns, sort_by)
    written.append(osp.join(out_dir, 'comparison.json'))
    if plot:
        png = plot_comparison_bars(rows, osp.join(out_dir, 'comparison_bars.png'))
        if png:
            written.append(png)
    return dict(rows=rows, files=written, skipped=skipped, table=to_prettytable(rows, columns))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        res = compare(args.inputs, args.out, args.names, args.sort_by, plot=not args.no_plot, datasets=args.datasets)
    except ValueError as err:  # e.g. --names count mismatch, an unknown --datasets name
        print(f'error: {err}', file=sys.stderr)
        return 1
    for problem in res['skipped']:
        print(f'skipped: {problem}', file=sys.stderr)
    if not res['rows']:
        print('error: no usable result file among the inputs', file=sys.stderr)
        return 1
    order = f'best {args.sort_by} first' if args.sort_by else 'input order'
    datasets = [d for d in dataset_names(res['rows']) if d is not None]
    what = f' x {len(datasets)} dataset(s) ({", ".join(datasets)})' if datasets else ''
    where = ' of its dataset' if datasets else ''
    print(f'{len({r["model"] for r in res["rows"]})} model(s){what} x scorers, {order}; * = best in column{where} '
          '(highest mIoU / AUROC / AUPR / sIoU / PPV / F1, lowest FPR95); all values in %')
    print(res['table'])
    print('wrote ' + ', '.join(res['files']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
