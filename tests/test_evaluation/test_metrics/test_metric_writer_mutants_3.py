"""AnomalyMetric / writer details left open by the other tests: the scorer named in the error about invalid scores
or labels on the exact per-image path (no histogram before it), the colours of the figures' operating-point dots
when a scorer has no curve, the legend font size, ``plot_curves``' ``max_points``, and ``runner_output_dir`` from a
logger whose log file is only known to its file handler."""
import logging

import numpy as np
import pytest
from matplotlib import rc_context
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from test_anomaly_metric import make_samples
from test_anomaly_results_files_and_figures import curve_of

import anomseg_plugins.evaluation.metrics.anomaly_results_writer as writer
from anomseg_plugins.evaluation import AnomalyMetric
from anomseg_plugins.evaluation.functional import thin_curve
from anomseg_plugins.scorers import BaseAnomalyScorer


class NaNAt55(BaseAnomalyScorer):
    """score = -z_0 with one NaN pixel at (5, 5)."""

    def score(self, logits, feats=None):
        out = -logits[:, 0].clone().float()
        out[0, 5, 5] = float('nan')
        return out


class FirstLogit(BaseAnomalyScorer):

    def score(self, logits, feats=None):
        return -logits[:, 0].float()


def test_exact_per_image_path_names_the_scorer_of_non_finite_scores():
    """With only the per-image protocol (exact, the default) no histogram is built: the exact metrics check the
    scores, and their error names the scorer ('scorer NaNAt55'), as the histogram's does."""
    metric = AnomalyMetric(scorers=[NaNAt55()], protocols='per_image', save_figures=False)
    assert metric.per_image_exact and not metric.needs_histograms
    sample = make_samples(1, ignore=False)[0].to_dict()
    with pytest.raises(ValueError, match=r'^scorer NaNAt55: 1 of \d+ evaluated anomaly scores are NaN or inf'):
        metric.process({}, [sample])


def test_exact_per_image_path_names_the_scorer_of_bad_labels():
    """A label value 3 (neither 0, 1 nor ignore_index) is refused on the exact per-image path, naming the scorer."""
    metric = AnomalyMetric(scorers=[FirstLogit()], protocols='per_image', save_figures=False)
    sample = make_samples(1, ignore=False)[0]
    sample.gt_anomaly_map.data[0, 0, 0] = 3
    with pytest.raises(
            ValueError,
            match=r'^scorer FirstLogit: anomaly labels must be 0 \(normal\), 1 \(anomaly\) '
            r'or ignore_index=255; found \[3\]'):
        metric.process({}, [sample.to_dict()])


def _figures(monkeypatch, tmp_path, curves, **kwargs):
    saved = {}
    monkeypatch.setattr(Figure, 'savefig', lambda fig, path, *a, **k: saved.update({path: fig}))
    writer.plot_curves(curves, str(tmp_path), **kwargs)
    (roc, ), (pr, ) = saved[str(tmp_path / 'roc_curves.png')].axes, saved[str(tmp_path / 'pr_curves.png')].axes
    return roc, pr


def test_dots_keep_their_scorers_colour_after_a_scorer_without_curves(tmp_path, monkeypatch):
    """A scorer's colour is fixed by its position (C0, C1, ...), also when an earlier scorer drew nothing (no
    anomalous pixel): the second scorer's curve and both its dots are C1, in both figures."""
    empty = {k: np.zeros(0) for k in ('fpr', 'tpr', 'recall', 'precision')}
    curves = {'none': (empty, dict(AUROC=np.nan, FPR95=np.nan, AUPR=np.nan, F1=np.nan)), 'B': curve_of(1, 60)}
    roc, pr = _figures(monkeypatch, tmp_path, curves)
    for ax in (roc, pr):
        line, dot = ax.lines[0], ax.lines[1]
        assert line.get_label().startswith('B: ')
        assert dot.get_marker() == 'o'
        assert to_rgba(line.get_color()) == to_rgba(dot.get_color()) == to_rgba('C1')


def test_legends_use_font_size_8(tmp_path, monkeypatch):
    """Both legends are drawn at font size 8, whatever the rc default."""
    with rc_context({'legend.fontsize': 14.0, 'font.size': 13.0}):
        roc, pr = _figures(monkeypatch, tmp_path, {'A': curve_of(0, 50), 'B': curve_of(2, 50)})
    for ax in (roc, pr):
        texts = ax.get_legend().get_texts()
        assert len(texts) == 2
        assert [t.get_fontsize() for t in texts] == [8.0, 8.0]


def test_plot_curves_thins_to_the_max_points_given(tmp_path, monkeypatch):
    """``max_points`` caps the plotted points of both curves (first and last point kept)."""
    c, res = curve_of(4, 400)
    assert c['fpr'].size > 60 and c['recall'].size > 60
    roc, pr = _figures(monkeypatch, tmp_path, {'A': (c, res)}, max_points=30)
    for line, (x, y) in ((roc.lines[0], (c['fpr'], c['tpr'])), (pr.lines[0], (c['recall'], c['precision']))):
        want_x, want_y = thin_curve(x, y, 30)
        assert len(line.get_xdata()) <= 30
        np.testing.assert_array_equal(line.get_xdata(), want_x)
        np.testing.assert_array_equal(line.get_ydata(), want_y)
        assert (line.get_xdata()[0], line.get_xdata()[-1]) == (x[0], x[-1])


def test_runner_output_dir_from_a_file_handler(tmp_path, monkeypatch):
    """A current logger without a ``log_file`` attribute but with a file handler: its file's folder is the log dir,
    and the results go to ``<that folder>/anomaly``."""
    log_dir = tmp_path / 'work' / 'run1'
    log_dir.mkdir(parents=True)
    logger = logging.Logger('anomaly_writer_test_handler_only')
    handler = logging.FileHandler(str(log_dir / 'run1.log'), delay=True)
    logger.addHandler(logging.StreamHandler())
    logger.addHandler(handler)
    assert not getattr(logger, 'log_file', None)
    monkeypatch.setattr(writer.MMLogger, 'get_current_instance', classmethod(lambda cls: logger))
    try:
        assert writer.runner_output_dir() == str(log_dir / 'anomaly')
        logger.removeHandler(handler)  # a logger writing no file: no log dir
        assert writer.runner_output_dir() is None
    finally:
        handler.close()
