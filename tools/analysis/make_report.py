"""Gather a test run into one folder a person opens: ``<work_dir>/report/README.md`` with tables and figures.

    python tools/analysis/make_report.py WORK_DIR [--out WORK_DIR/report] [--data-root DIR] [--num-panels 3]

Looks below ``WORK_DIR`` (recursively) for what ``tools/test.py`` left there and copies / derives:

- ``test_results.json`` (the newest is *the* run; all of them feed the comparison): closed-set metrics;
- ``anomaly/anomaly_metrics.json|csv``, ``roc_curves.png``, ``pr_curves.png`` (``AnomalyMetric``'s output of
  that run): one Markdown table per protocol, best values in bold, and the curves;
- ``comparison.md|csv|json`` and ``comparison_bars.png``: model x scorer over every run found
  (``tools/analysis/compare.py``);
- ``anomaly_panels/`` (``AnomalyPanelHook``, ``tools/test.py --show-dir``): ``grid.png``, ``scorer_grid.png`` and
  the first ``--num-panels`` 3x3 panels, with the explanation of every cell;
- the data: class distribution (``class_distribution.md|png``) and the integrity check of the dataset the
  run's config reads (``--data-root`` overrides), when it can be found.

Missing pieces are noted in the report, not fatal (exit code 1 only when ``WORK_DIR`` holds no test result).
"""
import argparse
import glob
import json
import math
import os
import os.path as osp
import shutil
import sys
import time
from typing import List, Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from anomseg_plugins.tooling import comparison

PANEL_CELLS = [
    ('input', 'the test image as read from disk.'),
    ('ground truth', 'the annotation in the StreetHazards palette; anomaly pixels in cyan (60, 250, 240), other '
     'ignored pixels white.'),
    ('prediction', 'the predicted class of every pixel (argmax of the logits), same palette; its title gives the '
     'image\'s mIoU over the classes present in its ground truth or prediction.'),
    ('overlay', 'the input blended with the prediction, to see which object each region belongs to.'),
    ('confidence', 'max softmax probability per pixel (0..1, viridis): low confidence marks boundaries, rare '
     'classes and, ideally, anomalies.'),
    ('error map', 'closed-set errors: grey = correct, red = wrong class, cyan = anomaly (left out of mIoU), '
     'white = ignored; the title gives the pixel accuracy.'),
    ('anomaly heat map', 'the scorer\'s anomaly score (inferno), on one range for all panels (1st..99.9th '
     'percentile of all test pixels), the operating threshold marked on the colour bar.'),
    ('detection', 'pixels flagged anomalous (score >= threshold, white) at the operating point: by default the '
     'threshold reaching 95% recall over all test pixels, i.e. where FPR95 is read.'),
    ('TP / FP / FN', 'green = anomaly found (TP), red = false alarm (FP), amber = anomaly missed (FN), dimmed '
     'input = correctly normal (TN); the title gives the image\'s detection precision and recall.'),
]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Write <work_dir>/report: metrics tables, curves, comparison, panels')
    parser.add_argument('work_dir', help='work dir of a training / test run (searched recursively)')
    parser.add_argument('--out', default=None, help='report folder (default WORK_DIR/report)')
    parser.add_argument(
        '--data-root',
        default=None,
        help='dataset root for the data section (default: the run config\'s test data_root)')
    parser.add_argument('--num-panels', type=int, default=3, help='3x3 panels copied into the report (default 3)')
    parser.add_argument('--no-data', action='store_true', help='skip the class distribution and integrity check')
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------------------------- finding
def newest(paths: Sequence[str]) -> Optional[str]:
    return max(paths, key=osp.getmtime) if paths else None


def find(work_dir: str, pattern: str, exclude: Optional[str] = None) -> List[str]:
    found = glob.glob(osp.join(work_dir, '**', pattern), recursive=True)
    if exclude:
        ex = osp.abspath(exclude) + os.sep
        found = [f for f in found if not osp.abspath(f).startswith(ex)]
    return sorted(found)


def anomaly_dir_of(result_file: str, work_dir: str, exclude: str) -> Optional[str]:
    """The ``anomaly/`` folder AnomalyMetric wrote for the run of ``result_file`` (its work dir's newest log
    dir), else the newest one anywhere below ``work_dir``."""
    near = find(osp.dirname(result_file), osp.join('anomaly', 'anomaly_metrics.json'), exclude)
    anywhere = near or find(work_dir, osp.join('anomaly', 'anomaly_metrics.json'), exclude)
    path = newest(anywhere)
    return osp.dirname(path) if path else None


def data_root_of(result: dict) -> Optional[str]:
    config = result.get('config')
    if not config or not osp.isfile(config):
        return None
    try:
        from mmengine.config import Config
        cfg = Config.fromfile(config)
        root = cfg.test_dataloader.dataset.get('data_root')
    except Exception:  # a config that does not load here: no data section
        return None
    return root if root and osp.isdir(root) else None


# ---------------------------------------------------------------------------------------------- sections
def anomaly_tables(summary: dict) -> str:
    """Markdown tables (one per protocol) of ``anomaly_metrics.json``; best values in bold."""
    out = []
    explain = dict(
        pooled='every evaluated pixel of the test set ranked together (FPR95 at the first threshold '
        'reaching 95% recall)',
        per_image='metrics of each image holding both anomalous and normal pixels, averaged (FPR95 at the '
        'recall nearest 95%, as the official StreetHazards code)')
    for protocol, per_scorer in summary.items():
        if not per_scorer:
            continue
        names = list(per_scorer)
        cols = [('FPR95', False), ('AUROC', True), ('AUPR', True), ('F1', True)]
        best = {}
        for key, higher in cols:
            vals = [per_scorer[n].get(key) for n in names if _finite(per_scorer[n].get(key))]
            if vals:
                best[key] = max(vals) if higher else min(vals)
        first = per_scorer[names[0]]
        size = (f'{first.get("num_images")} images, {first.get("num_pixels")} pixels, '
                f'{first.get("num_anomaly_pixels")} anomalous'
                if protocol == 'pooled' else f'{first.get("num_images")} images with both classes')
        out.append(f'**{protocol.replace("_", "-")} protocol**: {explain.get(protocol, "")}; {size}.\n')
        out.append('| Scorer | FPR95 ↓ | AUROC ↑ | AUPR ↑ | best F1 ↑ | F1 threshold |')
        out.append('|---|---:|---:|---:|---:|---:|')
        for n in names:
            e = per_scorer[n]
            cells = [
                comparison.format_value(e.get(k) if _finite(e.get(k)) else float('nan'), best.get(k), ('**', '**'))
                for k, _ in cols
            ]
            thr = e.get('F1_threshold')
            out.append(f'| {n} | ' + ' | '.join(cells) + f' | {thr:.4g} |' if _finite(thr) else f'| {n} | ' +
                       ' | '.join(cells) + ' | - |')
        out.append('')
    return '\n'.join(out)


def closed_set_table(metrics: dict) -> str:
    closed, _ = comparison.parse_metrics(metrics)
    keys = [k for k in ('mIoU', 'mAcc', 'aAcc') if k in closed]
    if not keys:
        return '_no closed-set metric in the results_\n'
    return ('| ' + ' | '.join(keys) + ' |\n|' + '---:|' * len(keys) + '\n| ' + ' | '.join(f'{closed[k]:.2f}'
                                                                                          for k in keys) + ' |\n')


def copy(src: str, dst_dir: str, name: Optional[str] = None) -> str:
    os.makedirs(dst_dir, exist_ok=True)
    dst = osp.join(dst_dir, name or osp.basename(src))
    shutil.copyfile(src, dst)
    return dst


def make_report(work_dir: str,
                out_dir: Optional[str] = None,
                data_root: Optional[str] = None,
                num_panels: int = 3,
                with_data: bool = True) -> dict:
    """Write the report; returns ``dict(readme, files, notes, seconds)``."""
    start = time.time()
    out_dir = out_dir or osp.join(work_dir, 'report')
    results = find(work_dir, 'test_results.json', exclude=out_dir)
    if not results:
        raise FileNotFoundError(f'{work_dir} holds no test_results.json (run tools/test.py --work-dir there first)')
    os.makedirs(out_dir, exist_ok=True)
    main_file = newest(results)
    with open(main_file) as f:
        main = json.load(f)
    notes: List[str] = []
    files: List[str] = []
    md = [
        f'# Test report: {osp.basename(osp.normpath(work_dir))}', '', f'- config: `{main.get("config")}`',
        f'- checkpoint: `{main.get("checkpoint")}`', f'- results: `{osp.relpath(main_file, out_dir)}` (tools/test.py); '
        f'generated {time.strftime("%Y-%m-%d %H:%M")}', '', '## Closed-set segmentation', '',
        closed_set_table(main.get('metrics', {}))
    ]

    # anomaly metrics + curves
    anomaly_dir = anomaly_dir_of(main_file, work_dir, out_dir)
    md += ['## Anomaly detection', '']
    if anomaly_dir:
        with open(osp.join(anomaly_dir, 'anomaly_metrics.json')) as f:
            summary = json.load(f)
        md.append('All values in %. ' + anomaly_tables(summary))
        for name in ('anomaly_metrics.csv', 'anomaly_metrics.json', 'anomaly_per_image.csv'):
            if osp.isfile(osp.join(anomaly_dir, name)):
                files.append(copy(osp.join(anomaly_dir, name), out_dir))
        curves = [n for n in ('roc_curves.png', 'pr_curves.png') if osp.isfile(osp.join(anomaly_dir, n))]
        for n in curves:
            files.append(copy(osp.join(anomaly_dir, n), out_dir))
        if curves:
            md += [
                '### Curves (pooled pixels)', '', ' '.join(f'![{n}]({n})' for n in curves), '',
                'ROC: dots mark the false-positive rate at 95% recall (FPR95). PR: dots mark the best F1.', ''
            ]
    else:
        md.append('_no AnomalyMetric output (anomaly/anomaly_metrics.json) below the work dir: test with an anomaly '
                  'config (configs/_base_/anomaly/)_\n')
        notes.append('no anomaly metrics found')

    # comparison over every run
    cmp_rows = []
    try:
        loaded = [comparison.load_result(p) for p in results]
        cmp_rows = comparison.sort_rows(comparison.comparison_rows(loaded), 'pooled/AUPR')
    except (comparison.ResultFileError, ValueError) as err:
        notes.append(f'comparison skipped: {err}')
    if cmp_rows:
        columns = comparison.used_columns(cmp_rows)
        table = comparison.to_markdown(cmp_rows, columns)
        with open(osp.join(out_dir, 'comparison.md'), 'w') as f:
            f.write(table)
        comparison.write_csv(cmp_rows, osp.join(out_dir, 'comparison.csv'), columns)
        comparison.write_json(cmp_rows, osp.join(out_dir, 'comparison.json'), columns, 'pooled/AUPR')
        files += [osp.join(out_dir, n) for n in ('comparison.md', 'comparison.csv', 'comparison.json')]
        bars = comparison.plot_comparison_bars(cmp_rows, osp.join(out_dir, 'comparison_bars.png'))
        md += [
            '## Models x scorers', '', f'{len(results)} test run(s) below the work dir, best AUPR (pooled) first; '
            'best value of each column in bold (`tools/analysis/compare.py`).', '', table
        ]
        if bars:
            files.append(bars)
            md += ['![comparison](comparison_bars.png)', '']

    # panels
    panels_index = newest(find(work_dir, osp.join('anomaly_panels', 'panels.json'), exclude=out_dir))
    md += ['## What the model sees', '']
    if panels_index:
        panel_dir = osp.dirname(panels_index)
        with open(panels_index) as f:
            index = json.load(f)
        dst = osp.join(out_dir, 'panels')
        md.append(f'Scorer **{index["scorer"]}**, operating point: {index["operating_point"]} '
                  f'(threshold {index["threshold"]:.4g}). Drawn by `AnomalyPanelHook` from the test forward pass.\n')
        if index.get('scorer_grid') and osp.isfile(osp.join(panel_dir, index['scorer_grid'])):
            files.append(copy(osp.join(panel_dir, index['scorer_grid']), dst))
            md += [
                '### Scorers side by side', '', 'Each heat map is scaled to its own range in the image; the '
                'column titles give each scorer\'s pooled AUPR / FPR95 (%).', '',
                f'![scorer grid](panels/{index["scorer_grid"]})', ''
            ]
        if index.get('grid') and osp.isfile(osp.join(panel_dir, index['grid'])):
            files.append(copy(osp.join(panel_dir, index['grid']), dst))
            md += ['### Quick look', '', f'![grid](panels/{index["grid"]})', '']
        shown = [p for p in index.get('panels', []) if osp.isfile(osp.join(panel_dir, p['file']))][:num_panels]
        if shown:
            md += [
                '### Panels', '', 'Every panel is a 3x3 figure:', '', '| row | left | middle | right |',
                '|---|---|---|---|', '| 1 | input | ground truth | prediction |',
                '| 2 | overlay | confidence | error map |', '| 3 | anomaly heat map | detection | TP / FP / FN |', ''
            ]
            md += [f'- **{name}**: {text}' for name, text in PANEL_CELLS] + ['']
            for p in shown:
                files.append(copy(osp.join(panel_dir, p['file']), dst))
                md += [
                    f'**{p["image"]}**: mIoU {_pct(p.get("mIoU"))}, precision {_pct(p.get("precision"))}, '
                    f'recall {_pct(p.get("recall"))}', '', f'![{p["image"]}](panels/{p["file"]})', ''
                ]
            more = len(index.get('panels', [])) - len(shown)
            if more > 0:
                md.append(f'{more} more panel(s) in `{osp.relpath(panel_dir, out_dir)}`.\n')
    else:
        md.append('_no panels: test with `--show-dir DIR` and the AnomalyPanelHook '
                  '(configs/_base_/visualization/anomaly_panels.py)_\n')
        notes.append('no anomaly panels found')

    # data
    if with_data:
        root = data_root or data_root_of(main)
        md += ['## Data', '']
        if root:
            md += data_section(root, out_dir, files, notes)
        else:
            md.append('_dataset root not found (pass --data-root)_\n')
            notes.append('data section skipped: dataset root not found')

    seconds = time.time() - start
    md += ['---', f'Report written by `tools/analysis/make_report.py` in {seconds:.1f} s.', '']
    readme = osp.join(out_dir, 'README.md')
    with open(readme, 'w') as f:
        f.write('\n'.join(md))
    return dict(readme=readme, files=[readme] + files, notes=notes, seconds=seconds)


def data_section(root: str, out_dir: str, files: List[str], notes: List[str]) -> List[str]:
    from anomseg_plugins.tooling import class_distribution as cd
    md = [f'Dataset root `{root}`.', '']
    dist = cd.class_distribution(root, progress=False)
    if any('missing' not in d for d in dist.values()):
        files += cd.write_outputs(dist, out_dir)
        md += ['### Class distribution', '', cd.to_markdown(dist), '![class distribution](class_distribution.png)', '']
    for msg in cd.problems(dist):
        notes.append(msg)
    try:
        from anomseg_plugins.datasets.integrity import check_street_hazards
    except ImportError:
        return md
    report = check_street_hazards(root, progress=False)
    with open(osp.join(out_dir, 'integrity.json'), 'w') as f:
        json.dump(report.to_dict(), f, indent=2)
    files.append(osp.join(out_dir, 'integrity.json'))
    md += ['### Integrity check', '', '```', report.format(max_issues=20), '```', '']
    if not report.ok:
        notes.append(f'integrity check found {len(report.issues)} problem(s)')
    return md


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _pct(value) -> str:
    return f'{value:.1f}%' if _finite(value) else 'n/a'


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if not osp.isdir(args.work_dir):
        print(f'error: work dir {args.work_dir!r} does not exist', file=sys.stderr)
        return 1
    try:
        res = make_report(args.work_dir, args.out, args.data_root, args.num_panels, not args.no_data)
    except FileNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    for note in res['notes']:
        print(f'note: {note}', file=sys.stderr)
    print(f'report: {res["readme"]} ({len(res["files"])} files, {res["seconds"]:.1f} s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
