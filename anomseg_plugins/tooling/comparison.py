"""One table of every model against every scorer (and dataset), from the ``test_results.json`` files of
``tools/test.py``.

``tools/test.py`` writes ``{"config": ..., "checkpoint": ..., "metrics": {...}}`` with mmengine's flat
metric dict: ``mIoU`` (closed set, %) and ``anomaly/<protocol>/<scorer>/<metric>`` (``protocol`` =
``pooled`` | ``per_image``, metric = ``AUROC`` | ``AUPR`` | ``FPR95`` | ``F1`` | ``F1_threshold``; %; and
``component/<scorer>/<metric>`` of the component protocol, e.g. ``sIoU``, ``PPV``, ``F1_mean``).
A run over several test sets (``AnomalyTestLoop(test_sets=...)``) prefixes every key with the set's name
(``road_anomaly21/anomaly/pooled/MaxLogit/AUPR``) and adds ``"test_sets": {name: {metric: value}}``, the same
metrics per set without the prefix; each set is then a *dataset* of the comparison.

This module turns several such files into rows ``(model, [dataset,] scorer)`` with the columns of
:data:`COLUMNS`, marks the best value of every column (highest mIoU / AUROC / AUPR / sIoU / PPV / F1, lowest
FPR95; per dataset, as numbers of different datasets do not compete) and writes them as CSV, Markdown, JSON and a
bar chart (``tools/analysis/compare.py``, ``tools/analysis/make_report.py``). The dataset column appears only when
a result holds several test sets; single-set results compare exactly as before.
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

#: Protocols of the pixel metrics (AUPR, FPR95, ...): the bar chart's rows.
PROTOCOLS = ('pooled', 'per_image')
#: Table columns: key -> header. ``mIoU`` belongs to the model (and dataset); the others to (model, dataset, scorer).
COLUMNS = OrderedDict([
    ('mIoU', 'mIoU'),
    ('pooled/FPR95', 'FPR95 pooled'),
    ('pooled/AUROC', 'AUROC pooled'),
    ('pooled/AUPR', 'AUPR pooled'),
    ('per_image/FPR95', 'FPR95 per-image'),
    ('per_image/AUROC', 'AUROC per-image'),
    ('per_image/AUPR', 'AUPR per-image'),
    ('component/sIoU', 'sIoU component'),
    ('component/PPV', 'PPV component'),
    ('component/F1_mean', 'mean F1 component'),
])
LOWER_IS_BETTER = ('FPR95', )
_KEY = re.compile(r'^(?:(?P<prefix>.+?)/)?(?P<protocol>pooled|per_image)/(?P<scorer>.+)/'
                  r'(?P<metric>AUROC|AUPR|FPR95|F1|F1_threshold)$')
#: The component protocol (SegmentMeIfYouCan's component-level metrics): any metric name, scorer names without '/'.
_COMPONENT_KEY = re.compile(r'^(?:(?P<prefix>.+?)/)?(?P<protocol>component)/(?P<scorer>[^/]+)/(?P<metric>[^/]+)$')
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
    """Split a flat metric dict (of one test set) into ``(closed_set, anomaly)``; ``anomaly[scorer][protocol][metric]``
    (protocols ``pooled``, ``per_image`` and ``component``)."""
    closed, anomaly = OrderedDict(), OrderedDict()
    for key, value in metrics.items():
        match = _KEY.match(key) or _COMPONENT_KEY.match(key)
        if match is None:
            closed[key] = _number(value)
            continue
        anomaly.setdefault(match['scorer'], OrderedDict()).setdefault(match['protocol'],
                                                                      OrderedDict())[match['metric']] = _number(value)
    return closed, anomaly


def load_result(path: str) -> dict:
    """Read one ``test_results.json``; raises :class:`ResultFileError` naming the file.

    Returns ``dict(path, config, checkpoint, closed, anomaly, datasets)``: ``datasets`` maps each test set's name to
    its ``(closed, anomaly)`` (:func:`parse_metrics`), in test order, or ``None`` to those of a single-set run;
    ``closed`` / ``anomaly`` are the first (for a single-set run: the only) set's.
    """
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise ResultFileError(f'{path}: not a readable JSON file ({exc})')
    metrics = data.get('metrics') if isinstance(data, dict) else None
    if not isinstance(metrics, dict):
        raise ResultFileError(f'{path}: has no "metrics" object (expected the test_results.json of tools/test.py)')
    sets = data.get('test_sets')
    if sets is not None:
        if not isinstance(sets, dict) or not sets or not all(isinstance(m, dict) for m in sets.values()):
            raise ResultFileError(f'{path}: "test_sets" must map each test set name to its metrics (as tools/test.py '
                                  'writes it for a multi-set run)')
        datasets = OrderedDict((str(name), parse_metrics(m)) for name, m in sets.items())
    else:
        datasets = OrderedDict([(None, parse_metrics(metrics))])
    if not any('mIoU' in closed or anomaly for closed, anomaly in datasets.values()):
        raise ResultFileError(f'{path}: "metrics" holds neither mIoU nor anomaly/<protocol>/<scorer>/<metric> keys')
    closed, anomaly = next(iter(datasets.values()))
    return dict(
        path=path,
        config=data.get('config'),
        checkpoint=data.get('checkpoint'),
        closed=closed,
        anomaly=anomaly,
        datasets=datasets)


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


def _results_datasets(res: dict) -> 'OrderedDict':
    """``{dataset or None: (closed, anomaly)}`` of a loaded result (also of one built by hand without ``datasets``)."""
    datasets = res.get('datasets')
    return datasets if datasets else OrderedDict([(None, (res['closed'], res['anomaly']))])


def comparison_rows(results: Sequence[dict], names: Optional[Sequence[str]] = None) -> List[dict]:
    """One row per (model, dataset, scorer) with the :data:`COLUMNS` values (NaN where missing); rows of a
    multi-set result carry ``dataset`` (the test set's name), those of a single-set result do not."""
    rows = []
    for name, res in zip(model_names(results, names), results):
        for dataset, (closed, anomaly) in _results_datasets(res).items():
            miou = closed.get('mIoU', float('nan'))
            scorers = anomaly or {NO_SCORER: {}}
            for scorer, per_protocol in scorers.items():
                row = OrderedDict(model=name)
                if dataset is not None:
                    row['dataset'] = dataset
                row['scorer'] = scorer
                for key in COLUMNS:
                    if key == 'mIoU':
                        row[key] = miou
                    else:
                        protocol, metric = key.split('/')
                        row[key] = per_protocol.get(protocol, {}).get(metric, float('nan'))
                row['source'] = res['path']
                rows.append(row)
    return rows


def has_datasets(rows: Sequence[dict]) -> bool:
    """Whether any row comes from a multi-set result (the tables then get a dataset column)."""
    return any(r.get('dataset') is not None for r in rows)


def dataset_names(rows: Sequence[dict]) -> List[Optional[str]]:
    """The datasets of the rows in order of first appearance (``None``: rows of single-set results)."""
    return list(OrderedDict.fromkeys(r.get('dataset') for r in rows))


def filter_datasets(rows: Sequence[dict], datasets: Optional[Sequence[str]]) -> List[dict]:
    """The rows of the named datasets (all rows for ``None``); raises ``ValueError`` naming unknown names."""
    if not datasets:
        return list(rows)
    known = [d for d in dataset_names(rows) if d is not None]
    unknown = [d for d in datasets if d not in known]
    if unknown:
        raise ValueError(f'dataset(s) {unknown} not in the results; they hold {known or "no named test sets"}')
    return [r for r in rows if r.get('dataset') in datasets]


def higher_is_better(key: str) -> bool:
    return key.split('/')[-1] not in LOWER_IS_BETTER


def best_values(rows: Sequence[dict], columns: Sequence[str] = tuple(COLUMNS)) -> Dict[str, float]:
    """Best finite value of each column (max, or min for FPR95) over ``rows``; columns without values are left out."""
    best = {}
    for key in columns:
        values = [r[key] for r in rows if _finite(r.get(key))]
        if values:
            best[key] = max(values) if higher_is_better(key) else min(values)
    return best


def best_by_dataset(rows: Sequence[dict], columns: Sequence[str] = tuple(COLUMNS)) -> Dict[Optional[str], dict]:
    """:func:`best_values` of each dataset's rows: ``{dataset (None for single-set rows): {column: best}}``."""
    return {d: best_values([r for r in rows if r.get('dataset') == d], columns) for d in dataset_names(rows)}


def _is_best(row: dict, key: str, best: Dict[Optional[str], dict]) -> bool:
    target = best.get(row.get('dataset'), {}).get(key)
    return target is not None and _finite(row.get(key)) and math.isclose(row[key], target)


def sort_rows(rows: Sequence[dict], key: Optional[str]) -> List[dict]:
    """Rows ordered best-first by ``key`` (missing values last); ``None`` keeps the input order. Rows of several
    datasets stay grouped by dataset (in order of first appearance), sorted within each."""
    if not key:
        return list(rows)
    if key not in COLUMNS:
        raise KeyError(f'cannot sort by {key!r}; choose one of {list(COLUMNS)}')
    sign = -1.0 if higher_is_better(key) else 1.0
    group = {d: i for i, d in enumerate(dataset_names(rows))}
    return sorted(
        rows, key=lambda r: (group[r.get('dataset')], not _finite(r[key]), sign * r[key] if _finite(r[key]) else 0.0))


def used_columns(rows: Sequence[dict]) -> List[str]:
    """Columns with at least one value."""
    return [k for k in COLUMNS if any(_finite(r.get(k)) for r in rows)]


def format_value(value: float, best: Optional[float], marker: Tuple[str, str]) -> str:
    if not _finite(value):
        return '-'
    text = f'{value:.2f}'
    return f'{marker[0]}{text}{marker[1]}' if best is not None and math.isclose(value, best) else text


def _label_fields(rows: Sequence[dict]) -> List[str]:
    """The row fields naming a row: model, (dataset,) scorer."""
    return ['model', 'dataset', 'scorer'] if has_datasets(rows) else ['model', 'scorer']


def _label(row: dict, field: str) -> str:
    value = row.get(field)
    return '-' if value is None else str(value)


def to_prettytable(rows: Sequence[dict], columns: Optional[Sequence[str]] = None):
    """PrettyTable of the rows; best values (per dataset) carry a trailing ``*``."""
    from prettytable import PrettyTable
    columns = list(columns or used_columns(rows))
    best = best_by_dataset(rows, columns)
    fields = _label_fields(rows)
    table = PrettyTable()
    table.field_names = [f.capitalize() for f in fields] + [COLUMNS[k] for k in columns]
    for r in rows:
        group = best[r.get('dataset')]
        table.add_row([_label(r, f) for f in fields] + [format_value(r[k], group.get(k), ('', ' *')) for k in columns])
    return table


def to_markdown(rows: Sequence[dict], columns: Optional[Sequence[str]] = None) -> str:
    """Markdown table of the rows; best values (per dataset) in bold."""
    columns = list(columns or used_columns(rows))
    best = best_by_dataset(rows, columns)
    fields = _label_fields(rows)
    arrows = {k: ' ↑' if higher_is_better(k) else ' ↓' for k in columns}
    lines = [
        '| ' + ' | '.join(f.capitalize() for f in fields) + ' | ' + ' | '.join(COLUMNS[k] + arrows[k]
                                                                               for k in columns) + ' |',
        '|' + '---|' * len(fields) + '---:|' * len(columns)
    ]
    for r in rows:
        group = best[r.get('dataset')]
        cells = [_md(_label(r, f)) for f in fields] + [format_value(r[k], group.get(k), ('**', '**')) for k in columns]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def write_csv(rows: Sequence[dict], path: str, columns: Optional[Sequence[str]] = None) -> None:
    """CSV of the rows: the naming fields, the columns at 4 decimals, ``best_in`` (the columns where the row holds its
    dataset's best) and ``source`` (the results file)."""
    columns = list(columns or used_columns(rows))
    best = best_by_dataset(rows, columns)
    fields = _label_fields(rows)
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(fields + columns + ['best_in'] + ['source'])
        for r in rows:
            marks = [k for k in columns if _is_best(r, k, best)]
            writer.writerow([r.get(fld) if r.get(fld) is not None else ''
                             for fld in fields] + ['' if not _finite(r[k]) else f'{r[k]:.4f}'
                                                   for k in columns] + [';'.join(marks), r['source']])


def _best_entries(rows: Sequence[dict], best: Dict[str, float], fields: Sequence[str]) -> dict:
    return {
        k: dict(value=v, rows=[{
            f: r.get(f)
            for f in fields
        } for r in rows if _finite(r[k]) and math.isclose(r[k], v)])
        for k, v in best.items()
    }


def write_json(rows: Sequence[dict],
               path: str,
               columns: Optional[Sequence[str]] = None,
               sort_by: Optional[str] = None) -> None:
    """JSON of the table: ``columns``, ``higher_is_better``, ``sort_by``, ``best`` and ``rows`` (NaN as ``null``).

    ``best`` is ``{column: {value, rows: [{model, scorer}]}}``; with several datasets it is keyed by dataset first
    (``{dataset: {column: {value, rows: [{model, dataset, scorer}]}}}``, single-set rows under ``"-"``) and
    ``datasets`` lists them.
    """
    columns = list(columns or used_columns(rows))
    fields = [f for f in _label_fields(rows)]
    if has_datasets(rows):
        best = {
            _label({'dataset': d}, 'dataset'): _best_entries([r for r in rows if r.get('dataset') == d], b, fields)
            for d, b in best_by_dataset(rows, columns).items()
        }
    else:
        best = _best_entries(rows, best_values(rows, columns), fields)
    out = dict(
        columns={k: COLUMNS[k]
                 for k in columns},
        higher_is_better={k: higher_is_better(k)
                          for k in columns},
        sort_by=sort_by)
    if has_datasets(rows):
        out['datasets'] = [_label({'dataset': d}, 'dataset') for d in dataset_names(rows)]
    out.update(
        best=best,
        rows=[{
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in r.items()
        } for r in rows])
    with open(path, 'w') as f:
        json.dump(out, f, indent=2)


def set_summary(name: str, metrics: Dict[str, float]) -> str:
    """The summary of one test set of a run (``tools/test.py``): a line with its closed-set metrics, then a table of
    its scorers x the :data:`COLUMNS` it has (best per column marked ``*``)."""
    closed, anomaly = parse_metrics(metrics)
    shown = [k for k in ('mIoU', 'mAcc', 'aAcc') if _finite(closed.get(k))]
    head = f'test set {name}: ' + (', '.join(f'{k} {closed[k]:.2f}' for k in shown) if shown else 'no class labels '
                                   '(no mIoU)')
    if not anomaly:
        return head
    rows = comparison_rows([dict(path='', config=None, closed=closed, anomaly=anomaly)], [name])
    columns = [c for c in used_columns(rows) if c != 'mIoU']
    table = to_prettytable(rows, columns)
    table.del_column('Model')
    return f'{head}; anomaly metrics (%, * = best scorer):\n{table.get_string()}'


def plot_comparison_bars(rows: Sequence[dict],
                         path: str,
                         protocols: Sequence[str] = PROTOCOLS,
                         dpi: int = 110) -> Optional[str]:
    """Grouped bar chart: AUPR (higher is better) and FPR95 (lower is better) per scorer, one bar colour
    per model; one row of two plots per protocol (and dataset) that has values. Returns ``path`` or ``None`` if
    there is nothing to plot."""
    from anomseg_plugins.visualization.panels import _new_figure
    scored = [r for r in rows if r['scorer'] != NO_SCORER]
    panels = [(d, p) for d in dataset_names(scored) for p in protocols if any(
        _finite(r.get(f'{p}/AUPR')) or _finite(r.get(f'{p}/FPR95')) for r in scored if r.get('dataset') == d)]
    if not panels:
        return None
    models = list(OrderedDict.fromkeys(r['model'] for r in scored))
    scorers = list(OrderedDict.fromkeys(r['scorer'] for r in scored))
    lookup = {(r['model'], r.get('dataset'), r['scorer']): r for r in scored}
    width_in = max(5.0, 0.9 + 0.3 * len(models) * len(scorers)) * 2
    height_in = 3.4 * len(panels) + 0.5
    fig = _new_figure(width_in, height_in, dpi)
    axes = fig.subplots(len(panels), 2, squeeze=False)
    x = np.arange(len(scorers))
    bar_w = 0.8 / max(1, len(models))
    for p_idx, (dataset, protocol) in enumerate(panels):
        for m_idx, metric in enumerate(('AUPR', 'FPR95')):
            ax = axes[p_idx][m_idx]
            for k, model in enumerate(models):
                vals = [lookup.get((model, dataset, s), {}).get(f'{protocol}/{metric}', float('nan')) for s in scorers]
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
            where = '' if dataset is None else f'{dataset}: '
            ax.set_title(f'{where}{metric} ({protocol.replace("_", "-")}, %; {better} is better)', fontsize=10)
            ax.set_xticks(x)
            ax.set_xticklabels(
                scorers,
                rotation=20 if len(scorers) > 4 else 0,
                ha='right' if len(scorers) > 4 else 'center',
                fontsize=8)
            ax.grid(axis='y', alpha=0.3)
            top = np.nanmax(
                [lookup.get((m, dataset, s), {}).get(f'{protocol}/{metric}', np.nan) for m in models
                 for s in scorers] + [1.0])
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
