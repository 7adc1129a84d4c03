"""``anomaly_results_writer`` by value: ``write_anomaly_results`` with its defaults (files, their exact text, what it
returns and logs), ``json_safe``, and the figures ``plot_curves`` draws (read back from the matplotlib figures it
saves: data, styles, labels, limits), checked against the curves and numbers handed in."""
import csv
import json
import logging

import matplotlib
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from mmengine.logging import MMLogger
from sklearn.metrics import precision_recall_curve, roc_curve

import anomseg_plugins.evaluation.metrics.anomaly_results_writer as writer
from anomseg_plugins.evaluation.functional import thin_curve


def summary_and_rows():
    entry = dict(FPR95=12.5, AUROC=91.0, AUPR=float('nan'), F1=40.0, F1_threshold=np.float32(0.25), num_images=2)
    summary = {'pooled': {'A': dict(entry, num_pixels=np.int64(80))}, 'per_image': {'A': dict(entry)}}
    rows = [
        dict(img_path='x/0.png', num_pos=3, num_neg=17, scores={'A': (0.9, 0.5, 0.25, 0.4, 1.5)}),
        dict(img_path='x/1.png', num_pos=5, num_neg=15, scores={'A': (0.8, 0.25, 0.5, 0.5, -2.0)}),
    ]
    return summary, rows


def test_write_anomaly_results_with_its_defaults(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(writer, 'plot_curves', lambda *a, **k: calls.append((a, k)))
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        summary, rows = summary_and_rows()
        curves = {'A': ({}, {})}
        written = writer.write_anomaly_results(str(tmp_path), summary, rows, curves)
    finally:
        logger.removeHandler(handler)
    names = ['anomaly_metrics.json', 'anomaly_metrics.csv', 'anomaly_per_image.csv', 'roc_curves.png', 'pr_curves.png']
    assert written == names
    assert calls == [((curves, str(tmp_path), 0.95), {})]  # default recall level, figures on by default
    assert f'AnomalyMetric: wrote {", ".join(names)} to {tmp_path}' in [r.getMessage() for r in records]
    want = {
        p: {
            'A': dict(FPR95=12.5, AUROC=91.0, AUPR=None, F1=40.0, F1_threshold=0.25, num_images=2, **extra)
        }
        for p, extra in (('pooled', dict(num_pixels=80)), ('per_image', {}))
    }
    assert (tmp_path / 'anomaly_metrics.json').read_text() == json.dumps(want, indent=2)
    with open(tmp_path / 'anomaly_per_image.csv') as f:
        table = list(csv.reader(f))
    # default per_image_exact=True: no tie-bound columns (the rows carry no bounds)
    assert table == [[
        'index', 'img_path', 'num_anomaly_pixels', 'num_normal_pixels', 'scorer', 'AUROC_%', 'AUPR_%', 'FPR95_%',
        'F1_%', 'F1_threshold'
    ], ['0', 'x/0.png', '3', '17', 'A', '90.0', '50.0', '25.0', '40.0', '1.5'],
                     ['1', 'x/1.png', '5', '15', 'A', '80.0', '25.0', '50.0', '50.0', '-2.0']]


def test_json_safe():
    got = writer.json_safe({
        'a': float('nan'),
        'b': [np.float32('inf'), -np.inf, np.float64(1.5)],
        'c': (np.int64(3), np.uint8(7)),
        'd': 'text'
    })
    assert got == {'a': None, 'b': [None, None, 1.5], 'c': [3, 7], 'd': 'text'}
    assert [type(v) for v in got['c']] == [int, int] and type(got['b'][2]) is float


def curve_of(seed, n):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(int)
    labels[:2] = (0, 1)
    scores = rng.normal(size=n) + labels
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    precision, recall, _ = precision_recall_curve(labels, scores)
    res = dict(AUROC=0.5 + seed / 100, FPR95=0.25 + seed / 1000, AUPR=0.375 + seed / 100, F1=0.625 - seed / 100)
    return dict(fpr=fpr, tpr=tpr, recall=recall, precision=precision), res


def test_plot_curves_draws_what_it_is_given(tmp_path, monkeypatch):
    """Eleven scorers (colours cycle through C0..C9), the first with a curve longer than the 2000 plotted points;
    rc defaults changed, so every style the figure sets explicitly must show."""
    saved = {}
    monkeypatch.setattr(Figure, 'savefig', lambda fig, path, *a, **k: saved.update({path: fig}))
    curves = {f's{i}': curve_of(i, 6000 if i == 0 else 40) for i in range(11)}
    assert curves['s0'][0]['fpr'].size > 2001
    rc = {'lines.linewidth': 3.0, 'lines.markersize': 9.0, 'lines.color': 'red', 'figure.figsize': (3.0, 2.0)}
    with matplotlib.rc_context(rc):
        writer.plot_curves(curves, str(tmp_path), recall_level=0.9)
    roc_fig, pr_fig = saved[str(tmp_path / 'roc_curves.png')], saved[str(tmp_path / 'pr_curves.png')]
    for fig in (roc_fig, pr_fig):
        assert tuple(fig.get_size_inches()) == (6, 5) and fig.dpi == 120
    (roc, ), (pr, ) = roc_fig.axes, pr_fig.axes
    assert (roc.get_title(), roc.get_xlabel(), roc.get_ylabel()) == \
        ('ROC, pooled pixels (dots: FPR at 90% recall)', 'false-positive rate', 'true-positive rate (recall)')
    assert (pr.get_title(), pr.get_xlabel(), pr.get_ylabel()) == \
        ('Precision-recall, pooled pixels (dots: best F1)', 'recall', 'precision')
    for ax in (roc, pr):
        assert ax.get_xlim() == (0, 1) and ax.get_ylim() == (0, 1.01)
    assert len(roc.lines) == len(pr.lines) + 2 == 2 * 11 + 2
    for i, (name, (c, res)) in enumerate(curves.items()):
        color = to_rgba(f'C{i % 10}')
        line, dot = roc.lines[2 * i], roc.lines[2 * i + 1]
        x, y = thin_curve(c['fpr'], c['tpr'], 2000)
        assert len(x) <= 2000
        np.testing.assert_array_equal(line.get_xdata(), x)
        np.testing.assert_array_equal(line.get_ydata(), y)
        assert line.get_label() == f'{name}: AUROC {100 * res["AUROC"]:.2f}, FPR95 {100 * res["FPR95"]:.2f}'
        assert (line.get_linewidth(), to_rgba(line.get_color())) == (1.5, color)
        assert line.get_color() == dot.get_color() == f'C{i % 10}'  # as named: 'C10' would follow a longer cycle
        k = next(j for j, t in enumerate(c['tpr']) if t >= 0.9)
        assert (list(dot.get_xdata()), list(dot.get_ydata())) == ([c['fpr'][k]], [c['tpr'][k]])
        assert (dot.get_marker(), dot.get_markersize(), to_rgba(dot.get_color())) == ('o', 5, color)
        line, dot = pr.lines[2 * i], pr.lines[2 * i + 1]
        x, y = thin_curve(c['recall'], c['precision'], 2000)
        np.testing.assert_array_equal(line.get_xdata(), x)
        np.testing.assert_array_equal(line.get_ydata(), y)
        assert line.get_label() == f'{name}: AUPR {100 * res["AUPR"]:.2f}, F1 {100 * res["F1"]:.2f}'
        assert (line.get_linewidth(), to_rgba(line.get_color())) == (1.5, color)
        f1 = 2 * c['precision'] * c['recall'] / np.maximum(c['precision'] + c['recall'], 1e-12)
        k = int(np.argmax(f1))
        assert (list(dot.get_xdata()), list(dot.get_ydata())) == ([c['recall'][k]], [c['precision'][k]])
        assert (dot.get_marker(), dot.get_markersize(), to_rgba(dot.get_color())) == ('o', 5, color)
    diagonal, level = roc.lines[-2:]
    assert (list(diagonal.get_xdata()), list(diagonal.get_ydata())) == ([0, 1], [0, 1])
    assert (diagonal.get_linestyle(), diagonal.get_linewidth(), to_rgba(diagonal.get_color())) == \
        (':', 1, to_rgba('0.6'))
    assert list(level.get_ydata()) == [0.9, 0.9]
    assert (level.get_linestyle(), level.get_linewidth(), to_rgba(level.get_color())) == ('--', 0.8, to_rgba('0.6'))
    assert [t.get_text() for t in roc.get_legend().get_texts()] == [roc.lines[2 * i].get_label() for i in range(11)]


@pytest.mark.parametrize('size', [0])
def test_plot_curves_of_empty_curves_draws_only_the_guides(tmp_path, monkeypatch, size):
    saved = {}
    monkeypatch.setattr(Figure, 'savefig', lambda fig, path, *a, **k: saved.update({path: fig}))
    empty = {k: np.zeros(size) for k in ('fpr', 'tpr', 'recall', 'precision')}
    writer.plot_curves({'A': (empty, {})}, str(tmp_path))
    (roc, ), (pr, ) = saved[str(tmp_path / 'roc_curves.png')].axes, saved[str(tmp_path / 'pr_curves.png')].axes
    assert len(roc.lines) == 2 and not pr.lines and roc.get_legend() is None
