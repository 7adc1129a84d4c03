"""One table of every model against every scorer, from the ``test_results.json`` files of ``tools/test.py``.

``tools/test.py`` writes ``{"config": ..., "checkpoint": ..., "metrics": {...}}`` with mmengine's flat
metric dict: ``mIoU`` (closed set, %) and ``anomaly/<protocol>/<scorer>/<metric>`` (``protocol`` =
``pooled`` | ``per_image``, metric = ``AUROC`` | ``AUPR`` | ``FPR95`` | ``F1`` | ``F1_threshold``; %).
This module turns several such files into rows ``(model, scorer)`` with the columns of
:data:`COLUMNS`, marks the best value of every column (highest mIoU / AUROC / AUPR, lowest FPR95) and
writes them as CSV, Markdown, JSON and a bar chart (``tools/analysis/compare.py``,
``tools/analysis/make_report.py``).
"""
import csv
import glob
import json
import math
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

PROTOCOLS = ('pooled', 'per_image')
#: Table columns: key -> header. ``mIoU`` belongs to the model; the others to (model, scorer).
COLUMNS = OrderedDict([
    ('mIoU', 'mIoU'),
    ('pooled/FPR95', 'FPR95 pooled'),
    ('pooled/AUROC', 'AUROC pooled'),
    ('pooled/AUPR', 'AUPR pooled'),
    ('per_image/FPR95', 'FPR95 per-image'),
    ('per_image/AUROC', 'AUROC per-image'),
    ('per_image/AUPR', 'AUPR per-image'),
])
LOWER_IS_BETTER = ('FPR95', )
_KEY = re.compile(r'^(?:(?P<prefix>.+?)/)?(?P<protocol>pooled|per_image)/(?P<scorer>.+)/'
                  r'(?P<metric>AUROC|AUPR|FPR95|F1|F1_threshold)$')
NO_SCORER = '-'


class ResultFileError(ValueError):
    """A results file that cannot be used (the message names it and says why)."""


def find_result_files(paths: Sequence[str], file_name: str = 'test_results.json') -> Tuple[List[str], List[str]]:
    """Expand inputs into result files: a JSON file is taken as is, a folder is searched recursively for
    ``file_name``. Returns ``(files, problems)``; ``problems`` name inputs that gave nothing."""
    files, problems = [], []
    for path in paths:
        if osp.isfile(path):
            files.append(path)
        elif osp.isdir(path):
            found = sorted(glob.glob(osp.join(path, '**', file_name), recursive=True))
            if found:
                files.extend(found)
            else:
                problems.append(f'{path}: folder holds no {file_name} (run tools/test.py with --work-dir there)')
        else:
            problems.append(f'{path}: no such file or folder')
    unique = list(OrderedDict.fromkeys(osp.normpath(f) for f in files))
    return unique, problems


def parse_metrics(metrics: Dict[str, float]) -> Tuple[Dict[str, float], Dict[str, Dict[str, Dict[str, float]]]]:
    """Split a flat metric dict into ``(closed_set, anomaly)``; ``anomaly[scorer][protocol][metric]``."""
    closed, anomaly = OrderedDict(), OrderedDict()
    for key, value in metrics.items():
        match = _KEY.match(key)
        if match is None:
            closed[key] = _number(value)
            continue
        anomaly.setdefault(match['scorer'], OrderedDict()).setdefault(match['protocol'],
                                                                      OrderedDict())[match['metric']] = _number(value)
    return closed, anomaly


def load_result(path: str) -> dict:
    """Read one ``test_results.json``; raises :class:`ResultFileError` naming the file."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise ResultFileError(f'{path}: not a readable JSON file ({exc})')
    metrics = data.get('metrics') if isinstance(data, dict) else None
    if not isinstance(metrics, dict):
        raise ResultFileError(f'{path}: has no "metrics" object (expected the test_results.json of tools/test.py)')
    closed, anomaly = parse_metrics(metrics)
    if 'mIoU' not in closed and not anomaly:
        raise ResultFileError(f'{path}: "metrics" holds neither mIoU nor anomaly/<protocol>/<scorer>/<metric> keys')
    return dict(path=path, config=data.get('config'), checkpoint=data.get('checkpoint'), closed=closed, anomaly=anomaly)


def model_names(results: Sequence[dict], names: Optional[Sequence[str]] = None) -> List[str]:
    """Display names: ``names`` if given, else the config's base name; duplicates get their folder."""
    if names:
        if len(names) != len(results):
            raise ValueError(f'{len(names)} names given for {len(results)} result files')
        return list(names)
    base = [
        osp.splitext(osp.basename(r['config']))[0] if r.get('config') else osp.basename(
            osp.dirname(osp.abspath(r['path']))) for r in results
    ]
    out = []
    for name, r in zip(base, results):
        if base.count(name) > 1:
            folder = osp.relpath(osp.dirname(osp.abspath(r['path'])))
            name = f'{name} ({folder})'
        out.append(name)
    return out


def comparison_rows(results: Sequence[dict], names: Optional[Sequence[str]] = None) -> List[dict]:
    """One row per (model, scorer) with the :data:`COLUMNS` values (NaN where missing)."""
    rows = []
    for name, res in zip(model_names(results, names), results):
        miou = res['closed'].get('mIoU', float('nan'))
        scorers = res['anomaly'] or {NO_SCORER: {}}
        for scorer, per_protocol in scorers.items():
            row = OrderedDict(model=name, scorer=scorer)
            for key in COLUMNS:
                if key == 'mIoU':
                    row[key] = miou
                else:
                    protocol, metric = key.split('/')
                    row[key] = per_protocol.get(protocol, {}).get(metric, float('nan'))
            row['source'] = res['path']
            rows.append(row)
    return rows


def higher_is_better(key: str) -> bool:
    return key.split('/')[-1] not in LOWER_IS_BETTER


def best_values(rows: Sequence[dict], columns: Sequence[str] = tuple(COLUMNS)) -> Dict[str, float]:
    """Best finite value of each column (max, or min for FPR95); columns without values are left out."""
    best = {}
    for key in columns:
        values = [r[key] for r in rows if _finite(r.get(key))]
        if values:
            best[key] = max(values) if higher_is_better(key) else min(values)
    return best


def sort_rows(rows: Sequence[dict], key: Optional[str]) -> List[dict]:
    """Rows ordered best-first by ``key`` (missing values last); ``None`` keeps the input order."""
    if not key:
        return list(rows)
    if key not in COLUMNS:
        raise KeyError(f'cannot sort by {key!r}; choose one of {list(COLUMNS)}')
    sign = -1.0 if higher_is_better(key) else 1.0
    return sorted(rows, key=lambda r: (not _finite(r[key]), sign * r[key] if _finite(r[key]) else 0.0))


def used_columns(rows: Sequence[dict]) -> List[str]:
    """Columns with at least one value."""
    return [k for k in COLUMNS if any(_finite(r.get(k)) for r in rows)]


def format_value(value: float, best: Optional[float], marker: Tuple[str, str]) -> str:
    if not _finite(value):
        return '-'
    text = f'{value:.2f}'
    return f'{marker[0]}{text}{marker[1]}' if best is not None and math.isclose(value, best) else text


def to_prettytable(rows: Sequence[dict], columns: Optional[Sequence[str]] = None):
    """PrettyTable of the rows; best values carry a trailing ``*``."""
    from prettytable import PrettyTable
    columns = list(columns or used_columns(rows))
    best = best_values(rows, columns)
    table = PrettyTable()
    table.field_names = ['Model', 'Scorer'] + [COLUMNS[k] for k in columns]
    for r in rows:
        table.add_row([r['model'], r['scorer']] + [format_value(r[k], best.get(k), ('', ' *')) for k in columns])
    return table


def to_markdown(rows: Sequence[dict], columns: Optional[Sequence[str]] = None) -> str:
    """Markdown table of the rows; best values in bold."""
    columns = list(columns or used_columns(rows))
    best = best_values(rows, columns)
    arrows = {k: ' ↑' if higher_is_better(k) else ' ↓' for k in columns}
    lines = [
        '| Model | Scorer | ' + ' | '.join(COLUMNS[k] + arrows[k] for k in columns) + ' |',
        '|---|---|' + '---:|' * len(columns)
    ]
    for r in rows:
        cells = [_md(r['model']), _md(r['scorer'])] + [format_value(r[k], best.get(k), ('**', '**')) for k in columns]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def write_csv(rows: Sequence[dict], path: str, columns: Optional[Sequence[str]] = None) -> None:
    columns = list(columns or used_columns(rows))
    best = best_values(rows, columns)
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['model', 'scorer'] + columns + ['best_in'] + ['source'])
        for r in rows:
            marks = [k for k in columns if k in best and _finite(r[k]) and math.isclose(r[k], best[k])]
            writer.writerow([r['model'], r['scorer']] + ['' if not _finite(r[k]) else f'{r[k]:.4f}'
                                                         for k in columns] + [';'.join(marks), r['source']])


def write_json(rows: Sequence[dict],
               path: str,
               columns: Optional[Sequence[str]] = None,
               sort_by: Optional[str] = None) -> None:
    columns = list(columns or used_columns(rows))
    best = best_values(rows, columns)
    out = dict(
        columns={k: COLUMNS[k]
                 for k in columns},
        higher_is_better={k: higher_is_better(k)
                          for k in columns},
        sort_by=sort_by,
        best={
            k:
            dict(
                value=v,
                rows=[
                    dict(model=r['model'], scorer=r['scorer']) for r in rows if _finite(r[k]) and math.isclose(r[k], v)
                ])
            for k, v in best.items()
        },
        rows=[{
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in r.items()
        } for r in rows])
    with open(path, 'w') as f:
        json.dump(out, f, indent=2)


def plot_comparison_bars(rows: Sequence[dict],
                         path: str,
                         protocols: Sequence[str] = PROTOCOLS,
                         dpi: int = 110) -> Optional[str]:
    """Grouped bar chart: AUPR (higher is better) and FPR95 (lower is better) per scorer, one bar colour
    per model; one row of two plots per protocol that has values. Returns ``path`` or ``None`` if there
    is nothing to plot."""
    from anomseg_plugins.visualization.panels import _new_figure
    scored = [r for r in rows if r['scorer'] != NO_SCORER]
    protocols = [
        p for p in protocols if any(_finite(r.get(f'{p}/AUPR')) or _finite(r.get(f'{p}/FPR95')) for r in scored)
    ]
    if not protocols:
        return None
    models = list(OrderedDict.fromkeys(r['model'] for r in scored))
    scorers = list(OrderedDict.fromkeys(r['scorer'] for r in scored))
    lookup = {(r['model'], r['scorer']): r for r in scored}
    width_in = max(5.0, 0.9 + 0.3 * len(models) * len(scorers)) * 2
    height_in = 3.4 * len(protocols) + 0.5
    fig = _new_figure(width_in, height_in, dpi)
    axes = fig.subplots(len(protocols), 2, squeeze=False)
    x = np.arange(len(scorers))
    bar_w = 0.8 / max(1, len(models))
    for p_idx, protocol in enumerate(protocols):
        for m_idx, metric in enumerate(('AUPR', 'FPR95')):
            ax = axes[p_idx][m_idx]
            for k, model in enumerate(models):
                vals = [lookup.get((model, s), {}).get(f'{protocol}/{metric}', float('nan')) for s in scorers]
                vals = np.array([v if _finite(v) else np.nan for v in vals], dtype=float)
                bars = ax.bar(x - 0.4 + bar_w * (k + 0.5), np.nan_to_num(vals), bar_w, label=model, color=f'C{k % 10}')
                if len(models) * len(scorers) <= 24:
                    for b, v in zip(bars, vals):
                        if np.isfinite(v):
                            ax.text(
                                b.get_x() + b.get_width() / 2,
                                b.get_height(),
                                f'{v:.1f}',
                                ha='center',
                                va='bottom',
                                fontsize=6.5)
            better = 'higher' if metric == 'AUPR' else 'lower'
            ax.set_title(f'{metric} ({protocol.replace("_", "-")}, %; {better} is better)', fontsize=10)
            ax.set_xticks(x)
            ax.set_xticklabels(
                scorers,
                rotation=20 if len(scorers) > 4 else 0,
                ha='right' if len(scorers) > 4 else 'center',
                fontsize=8)
            ax.grid(axis='y', alpha=0.3)
            top = np.nanmax(
                [lookup.get((m, s), {}).get(f'{protocol}/{metric}', np.nan) for m in models for s in scorers] + [1.0])
            ax.set_ylim(0, 105 if metric == 'FPR95' else top * 1.15)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc='upper center', ncol=min(len(models), 6), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / height_in))
    fig.savefig(path)
    return path


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float('nan')


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _md(text: str) -> str:
    return str(text).replace('|', '\\|')
