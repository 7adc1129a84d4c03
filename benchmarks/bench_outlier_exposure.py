"""Post-hoc scoring vs outlier exposure, on the same closed-set checkpoint and the same test set.

One base checkpoint (the demo model of ``make demo`` by default) is evaluated with every post-hoc scorer; the
same checkpoint is fine-tuned with outlier exposure (``configs/outlier_exposure/deeplab_r18_tiny_demo_oe.py``:
pasted outliers, energy-margin + uniform-entropy losses) and evaluated with every scorer again. Printed as a table:
pooled and per-image AUPR / FPR95 / AUROC of each model's best scorer (best per metric, the scorer named),
mIoU, fine-tuning wall time, and the colour-only baseline
(:func:`anomseg_plugins.tooling.colour_baseline.colour_baseline_metrics`: how far pixel colour alone gets).
Targets with PASS / FAIL beside them:

- pooled AUPR of the fine-tuned model >= 2x the base model's best post-hoc scorer;
- pooled FPR95 of the fine-tuned model <= half the base model's best;
- mIoU drop <= 1 point;
- the fine-tuned model beats the colour-only baseline on pooled AUPR and FPR95;
- fine-tuning <= 5 min (meant on 2 idle CPU cores: the load average is recorded beside the time).

Work is reused when it exists: the base model's ``<base-work-dir>/test/test_results.json`` (when it was made from the
same checkpoint), and ``<oe-work-dir>`` with a checkpoint and ``test/test_results.json`` (its fine-tuning time from
``finetune_time.json``, written when this script trains, else from the training log's timestamps). Anything
missing is run through ``tools/train.py`` / ``tools/test.py`` subprocesses. ``--out FILE.json`` writes every number
(percent; keys ``base_best_aupr``, ``oe_best_aupr``, ``base_best_fpr95``, ``oe_best_fpr95``, ``base_miou``,
``oe_miou``, ``colour_aupr``, ``colour_fpr95``, ... and ``targets``).

Usage::

    python benchmarks/bench_outlier_exposure.py                                   # demo data, work_dirs/demo
    python benchmarks/bench_outlier_exposure.py --data-root data/streethazards_v2 \\
        --base-work-dir work_dirs/demo_v2 --oe-work-dir work_dirs/oe_bench_v2 --out oe_v2.json
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
from datetime import datetime
from typing import Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
PROTOCOLS = ('pooled', 'per_image')
METRICS = {'AUPR': max, 'AUROC': max, 'FPR95': min}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Post-hoc scorers vs outlier exposure on one base checkpoint')
    parser.add_argument('--data-root', default='data/streethazards_demo', help='StreetHazards root (train/val/test)')
    parser.add_argument(
        '--base-work-dir',
        default='work_dirs/demo',
        help='work dir of the closed-set model (its last_checkpoint, and test/test_results.json '
        'when present)')
    parser.add_argument(
        '--base-checkpoint',
        default=None,
        help='closed-set checkpoint (default: the base work '
        "dir's last_checkpoint)")
    parser.add_argument(
        '--base-anomaly-config',
        default='configs/demo/deeplab_r18_tiny_demo_anomaly.py',
        help='config testing the base model with every scorer')
    parser.add_argument(
        '--oe-config',
        default='configs/outlier_exposure/deeplab_r18_tiny_demo_oe.py',
        help='outlier-exposure fine-tuning config')
    parser.add_argument(
        '--oe-anomaly-config',
        default='configs/outlier_exposure/deeplab_r18_tiny_demo_oe_anomaly.py',
        help='config testing the fine-tuned model with every scorer')
    parser.add_argument(
        '--oe-work-dir',
        default='work_dirs/demo_oe',
        help='work dir of the fine-tuning (reused '
        'when it holds a tested checkpoint)')
    parser.add_argument('--retrain', action='store_true', help='fine-tune and test again even if results exist')
    parser.add_argument('--cfg-options', nargs='+', default=[], help='extra key=value overrides of the fine-tuning')
    parser.add_argument(
        '--colour-json',
        default=None,
        help='cache of the colour-only baseline: read when it exists (same data root), else computed '
        'and written there')
    parser.add_argument('--out', default=None, help='write the results as JSON to this file')
    return parser.parse_args(argv)


# --------------------------------------------------------------------------------------------------- subprocesses
def _data_root_options(data_root: str) -> List[str]:
    return [f'{split}_dataloader.dataset.data_root={data_root}' for split in ('train', 'val', 'test')]


def _run(cmd: List[str], what: str) -> float:
    print(f'[bench] {what}: {" ".join(cmd)}', flush=True)
    start = time.time()
    proc = subprocess.run(cmd, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f'[bench] {what} failed (exit {proc.returncode}): {" ".join(cmd)}')
    return time.time() - start


def _read_checkpoint_pointer(work_dir: str) -> str:
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        raise SystemExit(f'[bench] no checkpoint in {work_dir}: {pointer} is missing; train it first '
                         '(make demo) or pass --base-checkpoint')
    with open(pointer) as f:
        return f.read().strip()


def _results(path: str) -> Dict[str, float]:
    with open(path) as f:
        return json.load(f)['metrics']


def _same_checkpoint(results_json: str, checkpoint: str) -> bool:
    with open(results_json) as f:
        recorded = json.load(f).get('checkpoint', '')
    return osp.realpath(recorded) == osp.realpath(checkpoint)


def _same_root(a: Optional[str], b: Optional[str]) -> bool:
    return a is not None and b is not None and osp.realpath(a) == osp.realpath(b)


def results_data_root(results_json: str) -> Optional[str]:
    """The test data root of a tools/test.py run: ``test_dataloader.dataset.data_root`` of the config mmengine dumped
    next to ``test_results.json`` (None when there is none). test_results.json does not record the data, and the
    same checkpoint tested on another data root must not be reused."""
    from mmengine.config import Config
    for path in sorted(glob.glob(osp.join(osp.dirname(results_json), '*.py'))):
        try:
            return Config.fromfile(path).test_dataloader.dataset.data_root
        except Exception:  # noqa: BLE001 - not a dumped config
            continue
    return None


def test_model(py: str, config: str, checkpoint: str, work_dir: str, data_root: str) -> str:
    """Run tools/test.py with every scorer; returns the test_results.json path. Stale scorer statistics of an
    earlier model in the same folder are removed first (SML / Mahalanobis fit on the model's own logits)."""
    stats = osp.join(work_dir, 'anomaly_scorer_stats.pth')
    if osp.exists(stats):
        os.remove(stats)
    _run([
        py, 'tools/test.py', config, checkpoint, '--work-dir', work_dir, '--cfg-options', *_data_root_options(data_root)
    ], f'testing {checkpoint}')
    return osp.join(work_dir, 'test_results.json')


def log_duration(work_dir: str) -> Optional[float]:
    """Seconds between the first and the last timestamped line of the newest training log in ``work_dir``."""
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.log')))
    if not logs:
        return None
    stamps = []
    with open(logs[-1]) as f:
        for line in f:
            m = re.match(r'(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)', line)
            if m:
                stamps.append(datetime.strptime(m.group(1), '%Y/%m/%d %H:%M:%S'))
    return (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else None


def _loadavg() -> Optional[float]:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


# -------------------------------------------------------------------------------------------------------- metrics
def best_scores(metrics: Dict[str, float]) -> Dict[str, dict]:
    """``{protocol/metric: dict(value, scorer)}``: the best scorer per metric (highest AUPR / AUROC, lowest FPR95)."""
    out = {}
    for protocol in PROTOCOLS:
        for metric, pick in METRICS.items():
            found = {
                k.split('/')[2]: v
                for k, v in metrics.items() if k.startswith(f'anomaly/{protocol}/') and k.endswith(f'/{metric}')
            }
            if not found:
                raise SystemExit(f'[bench] no anomaly/{protocol}/*/{metric} in the test results: test with an '
                                 'anomaly config (every scorer)')
            scorer = pick(found, key=found.get)
            out[f'{protocol}/{metric}'] = dict(value=found[scorer], scorer=scorer)
    return out


def colour_baseline(data_root: str, cache: Optional[str] = None) -> Dict[str, float]:
    if cache and osp.isfile(cache):
        with open(cache) as f:
            cached = json.load(f)
        if _same_root(cached.get('data_root'), data_root):
            print(f'[bench] reusing the colour-only baseline {cache}')
            return cached
    try:
        from anomseg_plugins.tooling.colour_baseline import colour_baseline_metrics
    except ImportError as err:
        raise RuntimeError(f'the colour-only baseline is not available ({err}): '
                           'anomseg_plugins.tooling.colour_baseline.colour_baseline_metrics is needed for the '
                           'colour_aupr / colour_fpr95 targets') from err
    metrics = colour_baseline_metrics(data_root, n_components=32, max_train_pixels=200_000, seed=0, progress=True)
    if cache:
        with open(cache, 'w') as f:
            json.dump(dict(metrics, data_root=data_root), f, indent=2)
    return metrics


def evaluate_targets(res: dict) -> List[tuple]:
    """``(description, target, value, passed)`` rows; ``passed`` is None when a number is missing."""
    rows = []

    def add(desc, target, value, ok):
        rows.append((desc, target, value, None if value is None else bool(ok)))

    ratio = res['oe_best_aupr'] / res['base_best_aupr'] if res['base_best_aupr'] > 0 else float('inf')
    add('pooled AUPR: OE best / base best', '>= 2.00x', f'{ratio:.2f}x', ratio >= 2.0)
    fpr_ratio = res['oe_best_fpr95'] / res['base_best_fpr95'] if res['base_best_fpr95'] > 0 else float('inf')
    add('pooled FPR95: OE best / base best', '<= 0.50x', f'{fpr_ratio:.2f}x', fpr_ratio <= 0.5)
    drop = res['base_miou'] - res['oe_miou']
    add('mIoU drop (base - OE)', '<= 1.0 pt', f'{drop:.2f} pt', drop <= 1.0)
    for key, name, better in (('aupr', 'AUPR', lambda o, c: o > c), ('fpr95', 'FPR95', lambda o, c: o < c)):
        colour = res.get(f'colour_{key}')
        oe = res[f'oe_best_{key}']
        add(f'pooled {name}: OE best vs colour-only', '> colour' if key == 'aupr' else '< colour',
            None if colour is None else f'{oe:.2f} vs {colour:.2f}', colour is not None and better(oe, colour))
    t = res.get('finetune_time_s')
    add('fine-tuning wall time', '<= 300 s', None if t is None else f'{t:.0f} s (load {res.get("load_avg")})',
        t is not None and t <= 300)
    return rows


def print_table(res: dict, base_best: dict, oe_best: dict) -> None:
    try:
        from prettytable import PrettyTable
    except ImportError:  # pragma: no cover - prettytable is in requirements.txt
        PrettyTable = None
    header = ['model', 'mIoU'] + [f'{p}/{m}' for p in PROTOCOLS for m in ('AUPR', 'FPR95', 'AUROC')] + ['fine-tune s']

    def cells(best):
        return [
            f'{best[f"{p}/{m}"]["value"]:.2f} ({best[f"{p}/{m}"]["scorer"]})' for p in PROTOCOLS
            for m in ('AUPR', 'FPR95', 'AUROC')
        ]

    rows = [['base (post-hoc)', f'{res["base_miou"]:.2f}'] + cells(base_best) + ['-'],
            ['outlier exposure', f'{res["oe_miou"]:.2f}'] + cells(oe_best) +
            ['-' if res.get('finetune_time_s') is None else f'{res["finetune_time_s"]:.0f}']]
    if res.get('colour_aupr') is not None:
        rows.append([
            'colour only', '-', f'{res["colour_aupr"]:.2f}', f'{res["colour_fpr95"]:.2f}', f'{res["colour_auroc"]:.2f}',
            '-', '-', '-', '-'
        ])
    print(f'\nbest scorer of each model per metric (in brackets); data {res["data_root"]}; all values in %')
    if PrettyTable:
        table = PrettyTable(header)
        for r in rows:
            table.add_row(r)
        print(table)
    else:
        for r in [header] + rows:
            print(' | '.join(r))
    print('\ntargets')
    for desc, target, value, passed in evaluate_targets(res):
        verdict = 'n/a' if passed is None else ('PASS' if passed else 'FAIL')
        print(f'  {verdict:4s}  {desc:38s} target {target:10s} got {value}')


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    py = sys.executable
    os.chdir(REPO)
    base_ckpt = args.base_checkpoint or _read_checkpoint_pointer(args.base_work_dir)
    if not osp.isfile(base_ckpt):
        raise SystemExit(f'[bench] base checkpoint {base_ckpt} does not exist')

    # base model, every post-hoc scorer
    base_json = osp.join(args.base_work_dir, 'test', 'test_results.json')
    if not (osp.isfile(base_json) and _same_checkpoint(base_json, base_ckpt)
            and _same_root(results_data_root(base_json), args.data_root)):
        base_json = test_model(py, args.base_anomaly_config, base_ckpt, osp.join(args.oe_work_dir, 'base_test'),
                               args.data_root)
    else:
        print(f'[bench] reusing base results {base_json}')

    # outlier-exposure fine-tuning from the same checkpoint
    oe_dir = args.oe_work_dir
    oe_json = osp.join(oe_dir, 'test', 'test_results.json')
    timing_file = osp.join(oe_dir, 'finetune_time.json')
    if not args.retrain and osp.isfile(oe_json) and not _same_root(results_data_root(oe_json), args.data_root):
        raise SystemExit(f'[bench] {oe_json} was tested on {results_data_root(oe_json)}, not {args.data_root}: '
                         'use another --oe-work-dir (or --retrain)')
    if args.retrain or not (osp.isfile(osp.join(oe_dir, 'last_checkpoint')) and osp.isfile(oe_json)):
        load_before = _loadavg()
        seconds = _run([
            py, 'tools/train.py', args.oe_config, '--work-dir', oe_dir, '--cfg-options', f'load_from={base_ckpt}',
            *_data_root_options(args.data_root), *args.cfg_options
        ], 'fine-tuning with outlier exposure')
        timing = dict(
            finetune_time_s=seconds,
            load_avg_before=load_before,
            load_avg_after=_loadavg(),
            cpu_count=os.cpu_count(),
            base_checkpoint=base_ckpt,
            data_root=args.data_root)
        with open(timing_file, 'w') as f:
            json.dump(timing, f, indent=2)
        oe_json = test_model(py, args.oe_anomaly_config, _read_checkpoint_pointer(oe_dir), osp.join(oe_dir, 'test'),
                             args.data_root)
    else:
        print(f'[bench] reusing fine-tuned results {oe_json}')
        timing = {}
        if osp.isfile(timing_file):
            with open(timing_file) as f:
                timing = json.load(f)
        if timing.get('finetune_time_s') is None:
            timing['finetune_time_s'] = log_duration(oe_dir)

    base, oe = _results(base_json), _results(oe_json)
    base_best, oe_best = best_scores(base), best_scores(oe)
    loads = [x for x in (timing.get('load_avg_before'), timing.get('load_avg_after')) if x is not None]
    res = dict(
        data_root=args.data_root,
        base_checkpoint=base_ckpt,
        oe_work_dir=oe_dir,
        base_results=base_json,
        oe_results=oe_json,
        base_best_aupr=base_best['pooled/AUPR']['value'],
        oe_best_aupr=oe_best['pooled/AUPR']['value'],
        base_best_fpr95=base_best['pooled/FPR95']['value'],
        oe_best_fpr95=oe_best['pooled/FPR95']['value'],
        base_best_auroc=base_best['pooled/AUROC']['value'],
        oe_best_auroc=oe_best['pooled/AUROC']['value'],
        base_miou=base['mIoU'],
        oe_miou=oe['mIoU'],
        base_best=base_best,
        oe_best=oe_best,
        finetune_time_s=timing.get('finetune_time_s'),
        load_avg=None if not loads else round(max(loads), 2),
        colour_aupr=None,
        colour_fpr95=None,
        colour_auroc=None)
    colour_error = None
    try:
        colour = colour_baseline(args.data_root, args.colour_json)
        res.update(colour_aupr=colour['AUPR'], colour_fpr95=colour['FPR95'], colour_auroc=colour['AUROC'])
    except RuntimeError as err:
        colour_error = str(err)
    res['targets'] = [dict(description=d, target=t, value=v, passed=p) for d, t, v, p in evaluate_targets(res)]
    print_table(res, base_best, oe_best)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(res, f, indent=2)
        print(f'wrote {args.out}')
    if colour_error:
        print(f'error: {colour_error}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
