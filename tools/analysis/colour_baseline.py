"""Colour-only anomaly baseline of a StreetHazards copy: can pixel colour alone find the anomalies?

    python tools/analysis/colour_baseline.py DATA_ROOT [--out FILE.json] [--n-components 32]
        [--max-train-pixels 200000] [--seed 0] [--quiet]

Fits a Gaussian mixture on the Lab colours of training pixels and scores every test pixel by
``-log p(colour)`` (``anomseg_plugins.tooling.colour_baseline``); prints the pooled AUROC / AUPR / FPR95
(percent, the pooled protocol of ``AnomalyMetric``) and writes them as JSON to ``--out``. A learned scorer
whose pooled AUPR does not beat this row is not finding anything a colour lookup would not.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from anomseg_plugins.tooling.colour_baseline import colour_baseline_metrics


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Colour-only anomaly baseline (Lab Gaussian mixture, pooled metrics)')
    parser.add_argument('data_root', help='StreetHazards root holding train/ and test/')
    parser.add_argument('--out', help='write the metrics to this JSON file')
    parser.add_argument('--n-components', type=int, default=32, help='Gaussians of the colour mixture (32)')
    parser.add_argument(
        '--max-train-pixels', type=int, default=200_000, help='training pixels the mixture is fitted on (200000)')
    parser.add_argument('--seed', type=int, default=0, help='pixel sampling and mixture initialisation seed')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    return parser.parse_args(argv)


def format_table(res: dict) -> str:
    """The metrics as a small table (percent, two decimals)."""
    from prettytable import PrettyTable
    table = PrettyTable(['scorer', 'AUROC', 'AUPR', 'FPR95', 'F1', 'pixels', 'anomalous'])
    table.add_row([f'colour GMM-{res["n_components"]} (-log p(Lab))'] +
                  [f'{res[k]:.2f}'
                   for k in ('AUROC', 'AUPR', 'FPR95', 'F1')] + [res['num_pixels'], res['num_anomaly_pixels']])
    return f'pooled protocol, test split of {res["data_root"]}\n{table}'


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        res = colour_baseline_metrics(
            args.data_root,
            n_components=args.n_components,
            max_train_pixels=args.max_train_pixels,
            seed=args.seed,
            progress=not args.quiet)
    except (FileNotFoundError, OSError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(format_table(res))
    if args.out:
        if osp.dirname(args.out):
            os.makedirs(osp.dirname(args.out), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(res, f, indent=2)
        print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
