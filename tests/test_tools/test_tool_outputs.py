"""tools/analysis/compare.py and make_report.py: every number they write, checked against the inputs.

The inputs are drawn at random (seeded), so no expected value is written down here: the best of every column,
the row order and each formatted cell are computed independently from the drawn numbers.
"""
import csv
import importlib.util
import json
import os.path as osp
import re

import numpy as np
import pytest

METRICS = ('AUROC', 'AUPR', 'FPR95', 'F1', 'F1_threshold')
SCORERS = ('MSP', 'MaxLogit', 'SML')
COLS = ['mIoU', 'pooled/FPR95', 'pooled/AUROC', 'pooled/AUPR', 'per_image/FPR95', 'per_image/AUROC', 'per_image/AUPR']


def load_tool(repo_root, rel):
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(rel))[0], osp.join(repo_root, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def draw_runs(tmp_path, seed=0, models=('r18', 'r50', 'mbv2')):
    """test_results.json files as tools/test.py writes them, values drawn at random; returns (paths, truth)."""
    rng = np.random.default_rng(seed)
    paths, truth = [], {}
    for model in models:
        metrics = {'mIoU': float(rng.uniform(30, 70)), 'aAcc': float(rng.uniform(80, 95))}
        for protocol in ('pooled', 'per_image'):
            for scorer in SCORERS:
                for m in METRICS:
                    metrics[f'anomaly/{protocol}/{scorer}/{m}'] = float(rng.uniform(0.5, 99.5))
        d = tmp_path / 'runs' / model
        d.mkdir(parents=True)
        json.dump(
            dict(config=f'configs/x/{model}.py', checkpoint='epoch_1.pth', metrics=metrics),
            open(d / 'test_results.json', 'w'))
        paths.append(str(d / 'test_results.json'))
        for scorer in SCORERS:
            row = {'mIoU': metrics['mIoU']}
            row.update({c: metrics[f'anomaly/{c.split("/")[0]}/{scorer}/{c.split("/")[1]}'] for c in COLS[1:]})
            truth[(model, scorer)] = row
    return paths, truth


def best_of(truth):
    best = {}
    for c in COLS:
        values = [row[c] for row in truth.values()]
        best[c] = min(values) if c.endswith('FPR95') else max(values)
    return best


def test_compare_files_by_value(repo_root, tmp_path):
    tool = load_tool(repo_root, 'tools/analysis/compare.py')
    paths, truth = draw_runs(tmp_path)
    out = tmp_path / 'cmp'
    res = tool.compare([str(tmp_path / 'runs')], str(out), plot=False)
    assert not res['skipped']
    best = best_of(truth)
    order = sorted(truth, key=lambda k: -truth[k]['pooled/AUPR'])  # default sort: pooled AUPR, best first

    with open(out / 'comparison.csv') as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    assert header == ['model', 'scorer'] + COLS + ['best_in', 'source']
    assert [(r[0], r[1]) for r in rows] == order
    for r in rows:
        want = truth[(r[0], r[1])]
        for c, cell in zip(COLS, r[2:2 + len(COLS)]):
            assert cell == f'{want[c]:.4f}', (r[0], r[1], c)
        marked = set(filter(None, r[2 + len(COLS)].split(';')))
        # mIoU is the model's: every scorer row of the best model holds it
        assert marked == {c for c in COLS if want[c] == best[c]}, (r[0], r[1])

    data = json.load(open(out / 'comparison.json'))
    assert data['sort_by'] == 'pooled/AUPR'
    assert data['higher_is_better'] == {c: not c.endswith('FPR95') for c in COLS}
    for c in COLS:
        assert data['best'][c]['value'] == pytest.approx(best[c], abs=0)
        holders = {(h['model'], h['scorer']) for h in data['best'][c]['rows']}
        assert holders == {k for k, v in truth.items() if v[c] == best[c]}, c
    assert [(r['model'], r['scorer']) for r in data['rows']] == order
    for r in data['rows']:
        for c in COLS:
            assert r[c] == truth[(r['model'], r['scorer'])][c]

    md = (out / 'comparison.md').read_text().splitlines()
    assert len(md) == 2 + len(order)
    for line, key in zip(md[2:], order):
        cells = [c.strip() for c in line.strip('|').split('|')]
        assert (cells[0], cells[1]) == key
        for c, cell in zip(COLS, cells[2:]):
            value = truth[key][c]
            assert cell == (f'**{value:.2f}**' if value == best[c] else f'{value:.2f}'), (key, c)


def test_compare_sort_by_fpr_puts_the_lowest_first(repo_root, tmp_path):
    tool = load_tool(repo_root, 'tools/analysis/compare.py')
    _, truth = draw_runs(tmp_path, seed=1)
    res = tool.compare([str(tmp_path / 'runs')], str(tmp_path / 'cmp'), sort_by='per_image/FPR95', plot=False)
    assert [(r['model'], r['scorer']) for r in res['rows']] == sorted(truth, key=lambda k: truth[k]['per_image/FPR95'])


def test_report_numbers_are_the_run_files(repo_root, tmp_path):
    """make_report's closed-set and per-protocol tables hold the values of test_results.json and
    anomaly_metrics.json (2 decimals; best per column in bold, FPR95 lowest), the threshold at 4 digits."""
    tool = load_tool(repo_root, 'tools/analysis/make_report.py')
    rng = np.random.default_rng(5)
    work = tmp_path / 'work'
    anomaly = work / 'test' / '20250101_000000' / 'anomaly'
    anomaly.mkdir(parents=True)
    closed = {
        'mIoU': float(rng.uniform(20, 80)),
        'mAcc': float(rng.uniform(20, 80)),
        'aAcc': float(rng.uniform(80, 99))
    }
    summary, metrics = {}, dict(closed)
    for protocol in ('pooled', 'per_image'):
        summary[protocol] = {}
        for scorer in SCORERS:
            entry = {m: float(rng.uniform(0.5, 99.5)) for m in METRICS}
            entry['F1_threshold'] = float(rng.normal(0, 3))
            entry.update(num_images=5, num_pixels=1234, num_anomaly_pixels=56)
            summary[protocol][scorer] = entry
            metrics.update({f'anomaly/{protocol}/{scorer}/{m}': entry[m] for m in METRICS})
    json.dump(
        dict(config='configs/none.py', checkpoint='c.pth', metrics=metrics),
        open(work / 'test' / 'test_results.json', 'w'))
    json.dump(summary, open(anomaly / 'anomaly_metrics.json', 'w'))
    assert tool.main([str(work), '--no-data']) == 0
    text = (work / 'report' / 'README.md').read_text()

    assert '| mIoU | mAcc | aAcc |\n|---:|---:|---:|\n| ' + ' | '.join(f'{closed[k]:.2f}'
                                                                       for k in ('mIoU', 'mAcc', 'aAcc')) + ' |' in text
    tables = re.findall(
        r'\| Scorer \| FPR95 ↓ \| AUROC ↑ \| AUPR ↑ \| best F1 ↑ \| F1 threshold \|\n\|[-:|]+\|\n'
        r'((?:\|.*\|\n)+)', text)
    assert len(tables) == 2
    for protocol, table in zip(('pooled', 'per_image'), tables):
        per = summary[protocol]
        best = {m: (min if m == 'FPR95' else max)(per[s][m] for s in SCORERS) for m in ('FPR95', 'AUROC', 'AUPR', 'F1')}
        lines = table.strip().splitlines()
        assert len(lines) == len(SCORERS)
        for line, scorer in zip(lines, SCORERS):
            e = per[scorer]
            cells = [f'**{e[m]:.2f}**' if e[m] == best[m] else f'{e[m]:.2f}' for m in ('FPR95', 'AUROC', 'AUPR', 'F1')]
            assert line == f'| {scorer} | ' + ' | '.join(cells) + f' | {e["F1_threshold"]:.4g} |', (protocol, line)
    # the comparison table of the report: the same numbers (one run: every value is the best of its column)
    cmp_rows = list(csv.DictReader(open(work / 'report' / 'comparison.csv')))
    assert [r['scorer'] for r in cmp_rows] == sorted(SCORERS, key=lambda s: -summary['pooled'][s]['AUPR'])
    for r in cmp_rows:
        for c in COLS[1:]:
            protocol, m = c.split('/')
            assert float(r[c]) == pytest.approx(summary[protocol][r['scorer']][m], abs=5e-5)
        assert float(r['mIoU']) == pytest.approx(closed['mIoU'], abs=5e-5)
