"""AnomalyMetric / writer details left open by the other tests: two ranks running ``evaluate`` end to end (threads
sharing fake collectives, a round-up sampler's padding on rank 1), the padding removed once and never for an image
without ground truth, the combined ``grid_outside`` of the component protocol, the full texts and levels of error and
log messages, the quantised per-image bounds by value, the metric prefix, the scorers' devices and pooled histogram
names, ``float16_loss`` at its edges and no figures without pooled curves. Round 3: the construction settings
(empty or unbuildable scorers, ``collect_device``, a zero component cache, list-valued fields), two ranks on a one-image
set, what ``compute_metrics`` reports (one-class images, pooled tie bounds, the submission note, the writer's settings,
the grid gap's level and table cell), no component cache without that protocol, and writer details (``require_h5py``'s
message, the float16 step at exactly 1e-3 of the range, ``runner_output_dir`` on a rank without a file handler, the
summary CSV's columns, the figures' grids and legend corners)."""
import csv
import json
import logging
import os
import os.path as osp
import re
import sys
import warnings
from types import SimpleNamespace

import mmengine.evaluator.metric as mmengine_metric
import mmengine.logging.logger as mmengine_logger
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from mmengine.logging import MMLogger
from sklearn.metrics import average_precision_score, roc_auc_score
from test_anomaly_metric import NeedsFit
from test_anomaly_metric import make_samples as pixel_samples
from test_anomaly_metric_components import SIZES, SecondLogit
from test_anomaly_metric_components import make_samples as blob_samples
from test_anomaly_metric_mutants import C, FakeDist, H, Plain, W, assert_same_histogram, feed
from test_anomaly_metric_mutants import sample as data_sample
from torch import nn

import anomseg_plugins.evaluation.metrics.anomaly_metric as module
import anomseg_plugins.evaluation.metrics.anomaly_results_writer as writer
from anomseg_plugins.evaluation import AnomalyMetric
from anomseg_plugins.evaluation.functional import ScoreHistogram
from anomseg_plugins.evaluation.metrics.anomaly_results_writer import float16_loss
from anomseg_plugins.scorers import MaxLogit

ROW_KEYS = ('AUROC', 'AUPR', 'FPR95', 'F1', 'F1_threshold')


# ------------------------------------------------------------------ distributed evaluation
class FakeRanks(FakeDist):
    """FakeDist's ``all_reduce`` plus ``all_gather_object`` and mmengine's ``collect_results`` for threads as ranks."""

    def all_gather_object(self, obj, group=None):
        self.slots[self.local.rank] = obj
        self.barrier.wait()
        out = list(self.slots)
        self.barrier.wait()
        return out

    def collect_results(self, results, size, device='cpu', tmpdir=None):
        """As mmengine: rank ``r`` holds dataset positions ``r, r + W, ...``; interleave them, cut to ``size``."""
        parts = self.all_gather_object(list(results))
        return [row for rows in zip(*parts) for row in rows][:size]


def evaluate_on_two_ranks(monkeypatch, ranks, size):
    """``[rank0.evaluate(size), rank1.evaluate(size)]`` with the two metrics run by two threads acting as ranks."""
    dist = FakeRanks(2)
    monkeypatch.setattr(module, 'get_world_size', lambda: 2)
    monkeypatch.setattr(module, 'get_rank', lambda: dist.local.rank)
    monkeypatch.setattr(module, 'all_reduce', dist.all_reduce)
    monkeypatch.setattr(module, 'all_gather_object', dist.all_gather_object)
    monkeypatch.setattr(mmengine_metric, 'collect_results', dist.collect_results)
    got = [None, None]

    def run(r):
        got[r] = ranks[r].evaluate(size)

    dist.run([lambda: run(0), lambda: run(1)])
    return got


def test_two_ranks_evaluate_exactly_as_one_process(monkeypatch, tmp_path):
    """Two ranks fed as mmengine's DefaultSampler(round_up=True) feeds them (9 samples: rank 1 gets sample 0 again
    as padding) and each running ``evaluate(9)``: every metric of all three protocols equals the single-process
    one, on both ranks (rank 1's padding removed by the rank arithmetic; the component statistics of both ranks
    summed before the main process computes)."""
    samples = blob_samples(9, seed=21)
    kw = dict(protocols=('pooled', 'per_image', 'component'), save_figures=False, **SIZES)
    indices = (list(range(9)) * 2)[:10]
    ranks = [
        feed(
            AnomalyMetric(scorers=[MaxLogit(), SecondLogit()], output_dir=str(tmp_path / f'rank{r}'), **kw),
            [samples[i] for i in indices[r::2]]) for r in range(2)
    ]
    assert [len(r.results) for r in ranks] == [5, 5]
    whole = feed(AnomalyMetric(scorers=[MaxLogit(), SecondLogit()], output_dir=str(tmp_path / 'one'), **kw), samples)
    want = whole.evaluate(9)
    got = evaluate_on_two_ranks(monkeypatch, ranks, 9)
    assert len([k for k in want if k.startswith('anomaly/component/')]) == 14
    for metrics in got:
        assert list(metrics) == list(want)
        for key, value in want.items():
            assert metrics[key] == pytest.approx(value, abs=1e-12, nan_ok=True), key


def test_evaluate_retried_after_a_failed_write_takes_the_padding_out_once(tmp_path):
    """``evaluate(2)`` of a metric fed 3 samples fails writing its files (``output_dir`` is a file); retried with a
    usable ``output_dir`` it gives the metrics of the two genuine samples: the padding sample is not subtracted
    a second time."""
    samples = pixel_samples(3, seed=4)
    blocked = tmp_path / 'a_file'
    blocked.write_text('')
    metric = feed(AnomalyMetric(scorers=[MaxLogit()], output_dir=str(blocked), save_figures=False), samples)
    with pytest.raises(OSError):
        metric.evaluate(2)
    metric.output_dir = str(tmp_path / 'out')
    got = metric.evaluate(2)
    want = feed(
        AnomalyMetric(scorers=[MaxLogit()], output_dir=str(tmp_path / 'want'), save_figures=False),
        samples[:2]).evaluate(2)
    assert got == want
    assert sorted(os.listdir(tmp_path / 'out')) == sorted(os.listdir(tmp_path / 'want'))


def test_grid_outside_when_any_rank_left_its_grid(monkeypatch):
    """The combined ``grid_outside`` is True when any rank's threshold fell outside its grid, also when another
    rank (the one with the largest gap) gives the threshold."""
    metric = AnomalyMetric(scorers=[MaxLogit()], protocols='component', **SIZES)
    stats = [np.arange(40, dtype=np.float64), np.ones(40)]

    def rank(i, gap, outside):
        return dict(
            stats=stats[i],
            mode='grid',
            threshold=5.0 + i,
            F1_threshold=1.0,
            threshold_gap=gap,
            grid_outside=outside,
            num_images=3)

    ranks = [rank(0, 0.3, False), rank(1, 0.01, True)]
    metric._components = {'MaxLogit': SimpleNamespace(result=lambda hist: dict(ranks[0]))}
    monkeypatch.setattr(module, 'get_world_size', lambda: 2)
    monkeypatch.setattr(module, 'all_gather_object', lambda local: [local, dict(MaxLogit=ranks[1])])
    res = metric._reduce_components()['MaxLogit']
    assert res['threshold'] == 5.0 and res['threshold_gap'] == 0.3
    assert res['grid_outside'] is True and res['mode'] == 'grid' and res['num_images'] == 6
    np.testing.assert_array_equal(res['stats'], stats[0] + stats[1])


# ------------------------------------------------------------------ construction and scoring
def test_prefix_names_the_evaluated_metrics(tmp_path):
    """A ``prefix`` given replaces the default 'anomaly' in the keys ``evaluate`` returns."""
    metric = feed(
        AnomalyMetric(
            scorers=[MaxLogit()],
            protocols='pooled',
            prefix='val_anomaly',
            output_dir=str(tmp_path),
            save_figures=False), pixel_samples(2, seed=1))
    assert metric.prefix == 'val_anomaly'
    assert list(metric.evaluate(2)) == [f'val_anomaly/pooled/MaxLogit/{k}' for k in ROW_KEYS]


def test_construction_error_messages():
    with pytest.raises(
            ValueError,
            match="^" + re.escape("AnomalyMetric: per_image_fpr_rule must be 'first' or 'nearest', got 'last'") + "$"):
        AnomalyMetric(scorers=[MaxLogit()], per_image_fpr_rule='last')
    with pytest.raises(
            TypeError,
            match="^" + re.escape('AnomalyMetric: Linear is not an anomaly scorer (needs `name` and '
                                  '`score(logits, feats)`; subclass anomseg_plugins.scorers.BaseAnomalyScorer)') + "$"):
        AnomalyMetric(scorers=[nn.Linear(2, 2)])


def test_unfitted_scorer_full_message():
    metric = AnomalyMetric(scorers=[NeedsFit()])
    text = ("AnomalyMetric: scorer NeedsFit (NeedsFit) needs fitting before evaluation. Test with "
            "test_cfg=dict(type='AnomalyTestLoop') (it fits scorers with requires_fit on the val split, or loads "
            'their saved statistics), or fit it yourself (fit_begin / fit_step / fit_end) or load its fitted state '
            'with scorer.load_state_dict(...)')
    with pytest.raises(RuntimeError, match=f'^{re.escape(text)}$'):
        metric.process({}, [pixel_samples(1)[0].to_dict()])


class Learned(nn.Module):
    """A scorer with a learned parameter and no buffer; it records where the parameter is when it scores and
    returns the given CPU map (the logits are on 'meta', standing in for CUDA, and hold no values)."""

    def __init__(self, scores):
        super().__init__()
        self.name = 'Learned'
        self.scale = nn.Parameter(torch.ones(()))
        self.scores, self.seen = scores, []

    def forward(self, logits, feats=None):
        self.seen.append(self.scale.device)
        return self.scores[None]


def test_a_scorer_with_parameters_follows_the_logits_device():
    """A scorer holding parameters (no buffers) is moved to the device of the logits before it scores."""
    sample = pixel_samples(1, seed=2, ignore=False)[0]
    scores = -sample.seg_logits.data[0].float()
    scorer = Learned(scores)
    metric = AnomalyMetric(scorers=[scorer], protocols='per_image')
    logits = torch.empty(tuple(sample.seg_logits.data.shape), device='meta')
    metric.process({}, [dict(img_path='a.png', seg_logits=logits, gt_anomaly_map=sample.gt_anomaly_map.data)])
    assert scorer.seen == [torch.device('meta')]
    assert scorer.scale.device.type == 'meta'


def test_submission_name_clash_full_message(tmp_path):
    pytest.importorskip('h5py')
    sub = str(tmp_path / 'sub')
    metric = AnomalyMetric(scorers=[MaxLogit()], protocols='pooled', submission_dir=sub, output_dir=str(tmp_path))
    first, second = (s.to_dict() for s in pixel_samples(2, seed=3))
    first['img_path'], second['img_path'] = 'a/x_leftImg8bit.png', 'b/x.png'
    metric.process({}, [first])
    text = (f'AnomalyMetric: b/x.png and a/x_leftImg8bit.png both map to the submission file name x.hdf5 in {sub}; '
            'the official format names files by frame id only. Use a submission_dir per split / folder')
    with pytest.raises(ValueError, match=f'^{re.escape(text)}$'):
        metric.process({}, [second])


def test_merge_refuses_another_ignore_index_or_other_protocols():
    """Each setting alone makes ``merge`` refuse: the ignore index, and the protocols."""
    metric = AnomalyMetric(scorers=[MaxLogit()])
    for other in (AnomalyMetric(scorers=[MaxLogit()],
                                ignore_index=254), AnomalyMetric(scorers=[MaxLogit()], protocols='pooled')):
        text = (f"{['MaxLogit']}/22/255/('pooled', 'per_image')/(500, 100) vs "
                f"{['MaxLogit']}/22/{other.ignore_index}/{other.protocols}/(500, 100)")
        with pytest.raises(ValueError, match=re.escape(text) + '$'):
            metric.merge(other)


def test_pooled_histograms_name_their_scorer(caplog):
    """The pooled histograms the metric exposes (``histograms``) carry the scorer's name: their own warnings say
    which scorer they are about."""
    samples = pixel_samples(2, seed=5, empty_every=1)  # no anomaly
    num_neg = sum(int((s.gt_anomaly_map.data == 0).sum()) for s in samples)
    metric = feed(AnomalyMetric(scorers=[MaxLogit(), SecondLogit()], protocols='pooled'), samples)
    caplog.set_level(logging.WARNING)
    for name in ('MaxLogit', 'SecondLogit'):
        caplog.clear()
        hist = metric.histograms[name]
        assert hist.name == name
        assert np.isnan(hist.compute()['AUROC'])
        assert [r.getMessage() for r in caplog.records] == [
            f'{name}: 0 anomalous and {num_neg} normal pixels evaluated; metrics needing both classes are NaN'
        ]


# ------------------------------------------------------------------ per-image protocol messages and bounds
def test_no_image_with_both_classes_warns_in_the_current_logger(logged):
    metric = feed(AnomalyMetric(scorers=[MaxLogit()], protocols='per_image'), pixel_samples(3, seed=6, empty_every=1))
    metric.compute_metrics(metric.results)
    assert ('AnomalyMetric: none of the 3 images holds both anomalous and normal pixels; per-image metrics are NaN',
            logging.WARNING) in logged()


def per_image_bounds(samples, num_bits):
    """Mean over the images with both classes of each image's histogram tie bounds, in points (by hand)."""
    per = []
    for s in samples:
        scores = -s.seg_logits.data.max(0).values
        labels = s.gt_anomaly_map.data[0]
        hist = ScoreHistogram.from_scores(scores, labels, num_bits, 255)
        if hist.num_pos and hist.num_neg:
            per.append(hist.error_bounds(0.95, 'nearest'))
    return len(per), {k: 100 * np.mean([b[k] for b in per]) for k in ('FPR95', 'AUROC', 'AUPR')}


def test_quantised_per_image_tie_bounds_are_the_mean_image_bounds_in_points(tmp_path):
    """per_image_exact=False: each reported ``*_tie_bound`` is 100 x the mean of the images' own bounds."""
    samples = pixel_samples(4, seed=3, ties=False)
    num, want = per_image_bounds(samples, 16)
    assert num == 3 and all(v > 0 for v in want.values())
    metric = AnomalyMetric(
        scorers=[MaxLogit()], protocols='per_image', per_image_exact=False, num_bits=16, output_dir=str(tmp_path))
    feed(metric, samples).evaluate(4)
    with open(tmp_path / 'anomaly_metrics.json') as f:
        entry = json.load(f)['per_image']['MaxLogit']
    assert entry['num_images'] == 3
    for k, v in want.items():
        assert entry[f'{k}_tie_bound'] == pytest.approx(v, rel=1e-12), k


def test_small_quantisation_bounds_are_an_info_note_without_advice(tmp_path, logged):
    """When no per-image bound exceeds 0.1 points the quantised per-image note is INFO and does not advise
    per_image_exact=True."""
    samples = pixel_samples(4, seed=3, ties=False)
    num, bounds = per_image_bounds(samples, 22)
    assert num == 3 and 0 < max(bounds.values()) <= 0.1
    metric = AnomalyMetric(scorers=[MaxLogit()], protocols='per_image', per_image_exact=False, output_dir=str(tmp_path))
    feed(metric, samples).evaluate(4)
    shown = ', '.join(f'{k} +-{bounds[k]:.2g}' for k in ('FPR95', 'AUROC', 'AUPR'))
    text = ('AnomalyMetric: per-image protocol, scorer MaxLogit: computed from 22-bit histograms '
            f'(per_image_exact=False), not exactly as the official code; over 3 images {shown} may differ from the '
            'exact per-image means by up to that many points')
    assert [(m, level) for m, level in logged() if 'per_image_exact=False' in m] == [(text, logging.INFO)]


def test_a_bound_of_exactly_0_1_points_is_not_a_warning(logged):
    """The note becomes a warning only when a bound *exceeds* 0.1 points (WARN_BOUND)."""
    metric = AnomalyMetric(scorers=[MaxLogit()], protocols='per_image', per_image_exact=False)
    metric._warn_per_image_quantised('MaxLogit', dict(FPR95=0.1, AUROC=0.05, AUPR=0.0), 3)
    metric._warn_per_image_quantised('MaxLogit', dict(FPR95=0.1, AUROC=0.05, AUPR=0.11), 3)
    start = ('AnomalyMetric: per-image protocol, scorer MaxLogit: computed from 22-bit histograms '
             '(per_image_exact=False), not exactly as the official code; over 3 images ')
    end = ' may differ from the exact per-image means by up to that many points'
    assert logged() == [
        (start + 'FPR95 +-0.1, AUROC +-0.05, AUPR +-0' + end, logging.INFO),
        (start + 'FPR95 +-0.1, AUROC +-0.05, AUPR +-0.11' + end +
         '. Use per_image_exact=True (the default) for the official numbers.', logging.WARNING),
    ]


# ------------------------------------------------------------------ result files
def test_no_figures_without_pooled_curves(tmp_path, logged):
    """With only the per-image protocol there are no pooled curves: no figures are drawn (save_figures=True)."""
    metric = feed(
        AnomalyMetric(scorers=[MaxLogit()], protocols='per_image', output_dir=str(tmp_path)), pixel_samples(2, seed=7))
    assert metric.save_figures
    metric.compute_metrics(metric.results)
    assert sorted(os.listdir(tmp_path)) == ['anomaly_metrics.csv', 'anomaly_metrics.json', 'anomaly_per_image.csv']
    assert (f'AnomalyMetric: wrote anomaly_metrics.json, anomaly_metrics.csv, anomaly_per_image.csv to {tmp_path}',
            logging.INFO) in logged()


def test_float16_loss_at_the_float16_maximum_and_of_tiny_maps():
    """65504 is float16's largest finite value (stored exactly): a map reaching it is not reported as overflowing
    (beyond it, e.g. 7e4, it is). An empty map loses nothing; a one-pixel map is checked like any other."""
    assert float(np.float16(65504.0)) == 65504.0 == float(np.finfo(np.float16).max)
    with np.errstate(over='ignore'):
        why = float16_loss(np.array([[0.0, 65504.0]]))
    assert 'beyond the float16 maximum' not in (why or '')
    assert float16_loss(np.array([0.0, 70000.0])) == ('its values reach 7e+04, beyond the float16 maximum 65504 '
                                                      '(stored as infinite)')
    assert float16_loss(np.zeros((0, 0))) is None
    assert float16_loss(np.array([[3.0]])) is None  # constant: nothing to merge
    assert float16_loss(np.array([[np.nan]])) == 'the map holds NaN or infinite values'
    assert float16_loss(np.array([[1e5]])) == ('its values reach 1e+05, beyond the float16 maximum 65504 (stored as '
                                               'infinite)')


# ------------------------------------------------------------------ round 2: settings, messages, tables and the F1 dot
def test_per_image_fpr_rule_first_is_accepted_and_used(tmp_path, ref, logged):
    """per_image_fpr_rule='first' is a valid setting: the per-image FPR95 is then the mean over the images with both
    classes of the FPR at the first threshold reaching 95% recall (not the official 'nearest' one), and the table's
    heading says so."""
    samples = pixel_samples(6, seed=12, ties=False)
    metric = AnomalyMetric(
        scorers=[MaxLogit()],
        protocols='per_image',
        per_image_fpr_rule='first',
        output_dir=str(tmp_path),
        save_figures=False)
    assert metric.per_image_fpr_rule == 'first'
    metrics = feed(metric, samples).compute_metrics(metric.results)
    first, nearest = [], []
    for s in samples:
        labels = s.gt_anomaly_map.data[0].numpy().reshape(-1)
        scores = -s.seg_logits.data.amax(0).numpy().reshape(-1).astype(np.float64)
        keep = labels != 255
        y, x = labels[keep].astype(int), scores[keep]
        if 0 < y.sum() < y.size:
            first.append(ref.fpr_first(y, x))
            nearest.append(ref.fpr_nearest(y, x))
    assert len(first) > 2 and np.mean(first) != pytest.approx(np.mean(nearest), abs=1e-3)
    assert metrics['per_image/MaxLogit/FPR95'] == pytest.approx(100 * np.mean(first), abs=1e-9)
    assert 'anomaly results, per_image protocol (mean over images with both classes, exact; FPR95 at recall >= 95%; ' \
           '%):' in [m for m, _ in logged()]


def test_quantised_per_image_table_heading_names_the_histograms(tmp_path, logged):
    """per_image_exact=False: the per-image table's heading says the means come from ``num_bits``-bit histograms
    (not 'exact')."""
    metric = AnomalyMetric(
        scorers=[MaxLogit()],
        protocols='per_image',
        per_image_exact=False,
        num_bits=16,
        output_dir=str(tmp_path),
        save_figures=False)
    feed(metric, pixel_samples(3, seed=2)).compute_metrics(metric.results)
    headings = [m for m, _ in logged() if m.startswith('anomaly results, ')]
    assert headings == [
        'anomaly results, per_image protocol (mean over images with both classes, 16-bit histograms; FPR95 at '
        'recall nearest 95%; %):'
    ]


def test_component_table_is_logged_on_lines_of_its_own(tmp_path, logged):
    """The component table follows its heading as one message that starts with a line break, so that every line
    of the logged message is a table border or row (aligned in the log)."""
    metric = AnomalyMetric(
        scorers=[MaxLogit()], protocols='component', output_dir=str(tmp_path), save_figures=False, **SIZES)
    feed(metric, blob_samples(3, seed=5)).compute_metrics(metric.results)
    messages = [m for m, _ in logged()]
    k = next(i for i, m in enumerate(messages) if m.startswith('anomaly results, component protocol ('))
    lines = messages[k + 1].split('\n')
    assert lines[0] == '' and len(lines) == 6  # break, border, header, border, one row, border
    assert [line[0] for line in lines[1:]] == ['+', '|', '+', '|', '+']
    assert lines[2].split('|')[1].strip() == 'Scorer' and lines[4].split('|')[1].strip() == 'MaxLogit'


def test_missing_logits_error_names_a_sample_without_img_path():
    """A sample without ``seg_logits`` is refused naming its ``img_path``, or 'a data sample' when it has none."""
    gt = pixel_samples(1)[0].gt_anomaly_map.data
    metric = AnomalyMetric(scorers=[MaxLogit()])
    tail = (' has no `seg_logits`; the model must output per-pixel logits (mmseg segmentors add them to the '
            'predicted data samples)')
    for sample, where in ((dict(gt_anomaly_map=gt), 'a data sample'), (dict(img_path='x/y.png',
                                                                            gt_anomaly_map=gt), 'x/y.png')):
        with pytest.raises(KeyError) as err:
            metric.process({}, [sample])
        assert err.value.args == (f'AnomalyMetric: {where}{tail}', )


class Buffered(nn.Module):
    """A scorer holding only a buffer (e.g. fitted statistics): it records where the buffer is when it scores and
    returns the given CPU map (the logits are on 'meta', standing in for CUDA)."""

    def __init__(self, scores):
        super().__init__()
        self.name = 'Buffered'
        self.register_buffer('mean', torch.zeros(()))
        self.scores, self.seen = scores, []

    def forward(self, logits, feats=None):
        self.seen.append(self.mean.device)
        return self.scores[None]


def test_a_scorer_with_only_buffers_follows_the_logits_device():
    """A scorer holding buffers but no parameters is moved to the device of the logits before it scores."""
    sample = pixel_samples(1, seed=2, ignore=False)[0]
    scorer = Buffered(-sample.seg_logits.data[0].float())
    assert not list(scorer.parameters())
    metric = AnomalyMetric(scorers=[scorer], protocols='per_image')
    logits = torch.empty(tuple(sample.seg_logits.data.shape), device='meta')
    metric.process({}, [dict(img_path='a.png', seg_logits=logits, gt_anomaly_map=sample.gt_anomaly_map.data)])
    assert scorer.seen == [torch.device('meta')]
    assert scorer.mean.device.type == 'meta'


def test_pr_figure_marks_the_best_f1_where_precision_plus_recall_is_below_one(tmp_path, monkeypatch):
    """The PR figure's dot is at the best-F1 point also when precision + recall < 1 there (a rare anomaly class):
    F1 is the harmonic mean at every point, with no floor of 1 on its denominator."""
    recall = np.array([1.0, 0.9, 0.55, 0.2, 0.0])
    precision = np.array([0.2, 0.3, 0.4, 0.5, 1.0])
    f1 = [0.0 if p == 0 or r == 0 else 2 / (1 / p + 1 / r) for p, r in zip(precision, recall)]
    k = int(np.argmax(f1))
    assert k == 2 and precision[k] + recall[k] < 1 and 2 * 0.3 * 0.9 > 2 * 0.4 * 0.55  # by hand: F1 0.463 > 0.45
    c = dict(fpr=np.array([0.0, 0.5, 1.0]), tpr=np.array([0.0, 0.96, 1.0]), recall=recall, precision=precision)
    saved = {}
    monkeypatch.setattr(Figure, 'savefig', lambda fig, path, *a, **k: saved.update({path: fig}))
    writer.plot_curves({'A': (c, dict(AUROC=0.7, FPR95=0.5, AUPR=0.4, F1=f1[k]))}, str(tmp_path))
    (pr, ) = saved[str(tmp_path / 'pr_curves.png')].axes
    dot = pr.lines[1]
    assert dot.get_marker() == 'o'
    assert (list(dot.get_xdata()), list(dot.get_ydata())) == ([0.55], [0.4])


# ------------------------------------------------------------------ round 3: construction settings and their messages
def test_empty_or_unbuildable_scorers_are_refused_with_full_messages():
    """No scorer, or a scorer that is neither a config dict nor a module, is refused at construction, saying what
    to give."""
    with pytest.raises(
            ValueError,
            match='^' +
            re.escape("AnomalyMetric: `scorers` is empty; give at least one, e.g. [dict(type='MaxLogit')]") + '$'):
        AnomalyMetric(scorers=[])
    with pytest.raises(
            TypeError,
            match='^' + re.escape('AnomalyMetric: each scorer must be a config dict or a built scorer module, '
                                  "got str: 'MaxLogit'") + '$'):
        AnomalyMetric(scorers=['MaxLogit'])


def test_collect_device_is_handed_to_collect_results(monkeypatch):
    """``collect_device`` (e.g. 'gpu') is the device mmengine's ``collect_results`` gathers the per-image rows on."""
    seen = []

    def collect(results, size, device='cpu', tmpdir=None):
        seen.append(device)
        return list(results)[:size]

    monkeypatch.setattr(mmengine_metric, 'collect_results', collect)
    for device in ('gpu', 'cpu'):
        metric = AnomalyMetric(scorers=[MaxLogit()], protocols='per_image', collect_device=device, save_figures=False)
        assert metric.collect_device == device
        feed(metric, pixel_samples(2, seed=1)).evaluate(2)
    assert seen == ['gpu', 'cpu']


def test_a_component_cache_of_zero_bytes_is_accepted_and_means_grid_mode(tmp_path):
    """``component_cache_bytes=0`` (an int >= 0) is valid: nothing is cached and the component protocol runs on its
    threshold grid from the first image on; -1 is refused."""
    metric = AnomalyMetric(
        scorers=[MaxLogit()],
        protocols='component',
        component_cache_bytes=0,
        output_dir=str(tmp_path),
        save_figures=False,
        **SIZES)
    assert metric.component_cache_bytes == 0
    feed(metric, blob_samples(3, seed=2)).evaluate(3)
    with open(tmp_path / 'anomaly_metrics.json') as f:
        assert json.load(f)['component']['MaxLogit']['mode'] == 'grid'
    with pytest.raises(
            ValueError,
            match='^' + re.escape('AnomalyMetric: component_cache_bytes must be an int >= 0, got -1') + '$'):
        AnomalyMetric(scorers=[MaxLogit()], component_cache_bytes=-1)


def test_ground_truth_given_as_nested_lists_is_read_as_a_tensor(tmp_path):
    """A field given as plain nested lists (no ``data`` attribute, e.g. built from JSON) is read as the tensor it
    holds: the same metrics as the tensor field."""
    samples = pixel_samples(3, seed=8)
    kw = dict(scorers=[MaxLogit()], save_figures=False)
    want = feed(AnomalyMetric(output_dir=str(tmp_path / 'tensor'), **kw), samples).evaluate(3)
    metric = AnomalyMetric(output_dir=str(tmp_path / 'list'), **kw)
    for s in samples:
        sample = s.to_dict()
        sample['gt_anomaly_map'] = s.gt_anomaly_map.data.tolist()
        metric.process({}, [sample])
    assert metric.evaluate(3) == want


# ------------------------------------------------------------------ round 3: distributed padding of a one-image set
def test_two_ranks_on_a_one_image_set_count_its_pixels_once(monkeypatch, tmp_path):
    """Dataset of one image on two ranks: mmengine's round-up sampler gives rank 1 that image again as its only
    sample, which is padding. It is taken out of rank 1's histograms and component statistics, so the result files
    of both ranks equal the single-process ones (the pixel counts included, which a doubled image would double
    while leaving the ratios unchanged)."""
    samples = blob_samples(1, seed=30)
    kw = dict(protocols=('pooled', 'per_image', 'component'), save_figures=False, **SIZES)
    ranks = [
        feed(AnomalyMetric(scorers=[MaxLogit()], output_dir=str(tmp_path / f'rank{r}'), **kw), samples)
        for r in range(2)
    ]
    want = feed(AnomalyMetric(scorers=[MaxLogit()], output_dir=str(tmp_path / 'one'), **kw), samples).evaluate(1)
    got = evaluate_on_two_ranks(monkeypatch, ranks, 1)
    with open(tmp_path / 'one' / 'anomaly_metrics.json') as f:
        summary = json.load(f)
    num_pixels = int((samples[0].gt_anomaly_map.data != 255).sum())
    assert summary['pooled']['MaxLogit']['num_pixels'] == num_pixels
    for r in range(2):
        assert got[r] == pytest.approx(want, nan_ok=True)
        with open(tmp_path / f'rank{r}' / 'anomaly_metrics.json') as f:
            assert json.load(f) == summary


# ------------------------------------------------------------------ round 3: what compute_metrics reports and writes
def test_images_of_only_anomalous_pixels_are_skipped_by_the_per_image_protocol(tmp_path, logged):
    """An image whose evaluated pixels are all anomalous (no normal pixel) is left out of the per-image means, as
    one without anomaly is: the metrics equal those without it, and it is counted as skipped."""
    samples = pixel_samples(4, seed=9)  # image 3 holds no anomaly
    gt = samples[1].gt_anomaly_map.data
    gt[gt != 255] = 1
    kw = dict(scorers=[MaxLogit()], protocols='per_image', save_figures=False)
    metric = feed(AnomalyMetric(output_dir=str(tmp_path / 'all'), **kw), samples)
    got = metric.compute_metrics(metric.results)
    rest = feed(AnomalyMetric(output_dir=str(tmp_path / 'rest'), **kw), [samples[i] for i in (0, 2)])
    want = rest.compute_metrics(rest.results)
    assert got == want and all(np.isfinite(v) for v in want.values())
    with open(tmp_path / 'all' / 'anomaly_metrics.json') as f:
        entry = json.load(f)['per_image']['MaxLogit']
    assert (entry['num_images'], entry['num_images_skipped']) == (2, 2)
    assert ('AnomalyMetric: per-image protocol averages over the 2 of 4 images holding both anomalous and normal '
            'pixels', logging.INFO) in logged()


def test_pooled_tie_bounds_are_the_histogram_bounds_in_points(tmp_path):
    """The pooled ``*_tie_bound`` of the summary are 100 x the error bounds of the pooled histogram (FPR95 read at
    the first threshold reaching 95% recall), built here by hand from the images."""
    samples = pixel_samples(4, seed=3, ties=False)
    hist = ScoreHistogram(12, 255)
    for s in samples:
        hist.add(ScoreHistogram.from_scores(-s.seg_logits.data.max(0).values, s.gt_anomaly_map.data[0], 12, 255))
    want = hist.error_bounds(0.95, 'first')
    assert all(v > 0 for v in want.values())
    metric = AnomalyMetric(
        scorers=[MaxLogit()], protocols='pooled', num_bits=12, output_dir=str(tmp_path), save_figures=False)
    feed(metric, samples).compute_metrics(metric.results)
    with open(tmp_path / 'anomaly_metrics.json') as f:
        entry = json.load(f)['pooled']['MaxLogit']
    for k, v in want.items():
        assert entry[f'{k}_tie_bound'] == pytest.approx(100 * v, rel=1e-12), k


def test_images_without_ground_truth_are_said_to_be_saved_to_the_submission_dir(tmp_path, logged):
    """With a ``submission_dir``, the note about images without ground truth says where they were saved; without
    one it does not."""
    pytest.importorskip('h5py')
    samples = blob_samples(3, seed=6, no_gt=(1, ))
    sub = str(tmp_path / 'sub')
    for submission_dir, saved in ((sub, f' and saved to {sub}'), (None, '')):
        metric = AnomalyMetric(
            scorers=[MaxLogit()],
            protocols='pooled',
            submission_dir=submission_dir,
            output_dir=str(tmp_path / 'out'),
            save_figures=False)
        feed(metric, samples).compute_metrics(metric.results)
        text = ('AnomalyMetric: 1 of 3 images have no gt_anomaly_map (e.g. a hidden test split); they were scored' +
                saved + ' but are left out of every metric')
        assert [level for m, level in logged() if m == text] == [logging.INFO]
    assert sorted(os.listdir(tmp_path / 'sub' / 'MaxLogit')) == ['img_0.hdf5', 'img_1.hdf5', 'img_2.hdf5']


def test_result_files_follow_save_figures_and_recall_level(tmp_path, monkeypatch):
    """``compute_metrics`` hands its settings to the writer: ``save_figures=False`` draws no figure, and the ROC
    figure marks the metric's ``recall_level`` (90% here: dashed line and title)."""
    samples = pixel_samples(3, seed=10)
    metric = feed(
        AnomalyMetric(scorers=[MaxLogit()], protocols='pooled', save_figures=False, output_dir=str(tmp_path / 'a')),
        samples)
    metric.compute_metrics(metric.results)
    assert sorted(os.listdir(tmp_path / 'a')) == ['anomaly_metrics.csv', 'anomaly_metrics.json']
    saved = {}
    monkeypatch.setattr(Figure, 'savefig', lambda fig, path, *a, **k: saved.update({osp.basename(path): fig}))
    metric = feed(
        AnomalyMetric(scorers=[MaxLogit()], protocols='pooled', recall_level=0.9, output_dir=str(tmp_path / 'b')),
        samples)
    metric.compute_metrics(metric.results)
    assert sorted(saved) == ['pr_curves.png', 'roc_curves.png']
    (roc, ) = saved['roc_curves.png'].axes
    assert roc.get_title() == 'ROC, pooled pixels (dots: FPR at 90% recall)'
    assert list(roc.lines[-1].get_ydata()) == [0.9, 0.9]  # the recall level's dashed line


# ------------------------------------------------------------------ round 3: the component protocol's grid gap
def test_a_grid_threshold_gap_above_5_percent_is_a_warning_and_tabled_in_percent(tmp_path, logged):
    """Grid mode: the note on the grid threshold is a warning when it flags more than 5% pixels more or fewer than
    the exact best-F1 threshold (30% here), an info note at 5% or below; the table's mode column gives the gap in
    percent of pixels. (The gaps are set on the reduced statistics, as the ranks' combination hands them over.)"""
    metric = AnomalyMetric(
        scorers=[MaxLogit(), SecondLogit()],
        protocols='component',
        component_cache_bytes=0,
        output_dir=str(tmp_path),
        save_figures=False,
        **SIZES)
    feed(metric, blob_samples(4, seed=7))
    reduced = {n: acc.result(metric.histograms[n]) for n, acc in metric._components.items()}
    assert [r['mode'] for r in reduced.values()] == ['grid', 'grid']
    reduced['MaxLogit']['threshold_gap'], reduced['SecondLogit']['threshold_gap'] = 0.3, -0.05
    metric._component_results = reduced
    metric.compute_metrics(metric.results)
    records = logged()
    for name, gap, level in (('MaxLogit', '+30.00', logging.WARNING), ('SecondLogit', '-5.00', logging.INFO)):
        res = reduced[name]
        text = (f'AnomalyMetric: component protocol, scorer {name}: the compressed maps exceeded '
                'component_cache_bytes (0 shared by 2 scorers); components were computed at the grid threshold '
                f'{res["threshold"]:.6g}, which flags {gap}% pooled pixels relative to the exact best-F1 threshold '
                f'{res["F1_threshold"]:.6g}')
        assert [lv for m, lv in records if m == text] == [level]
    table = next(m for m, _ in records if m.startswith('\n+') and 'mode' in m)
    modes = [line.split('|')[-2].strip() for line in table.split('\n')[4:-1]]
    assert modes == ['grid (+30.0% px)', 'grid (-5.0% px)']


def test_no_component_cache_without_the_component_protocol(caplog):
    """Without the component protocol the maps are not cached for it: a pooled-only metric with
    ``component_cache_bytes=0`` never reports a component cache, and two such shards merge as pooled histograms."""
    samples = blob_samples(6, seed=12)
    kw = dict(scorers=[MaxLogit()], protocols='pooled', component_cache_bytes=0)
    caplog.set_level(logging.INFO)
    first, second, whole = (feed(AnomalyMetric(**kw), part) for part in (samples[:3], samples[3:], samples))
    assert not [r for r in caplog.records if 'component' in r.getMessage()]
    first.merge(second)
    assert_same_histogram(first.histograms['MaxLogit'], whole.histograms['MaxLogit'])


# ------------------------------------------------------------------ round 3: writer details
def test_require_h5py_says_how_to_install_it(monkeypatch):
    """Without h5py the error says what needs it and how to install it (the full message)."""
    monkeypatch.setitem(sys.modules, 'h5py', None)  # import h5py -> ImportError
    text = ('AnomalyMetric(submission_dir=...) writes the SegmentMeIfYouCan submission files (HDF5) and needs h5py: '
            'pip install h5py')
    with pytest.raises(ImportError, match=f'^{re.escape(text)}$'):
        writer.require_h5py()


def test_float16_step_of_exactly_a_thousandth_of_the_range_is_no_loss():
    """The float16 step at 1024 is 1; a map spanning [24, 1024] (range 1000) has steps of exactly 1e-3 of its range
    and is not reported: only a step *above* FLOAT16_WARN_STEP of the range is ([25, 1024])."""
    assert writer.float16_step(1024.0) == 1.0 and writer.FLOAT16_WARN_STEP * 1000.0 == 1.0
    assert float16_loss(np.array([[24.0, 1024.0]])) is None
    assert float16_loss(np.array([[25.0, 1024.0]])) == ('its values span [25, 1024]; float16 steps of 1 there are '
                                                        '1.0e-03 of the range (> 0.001), so close scores merge')


def test_runner_output_dir_of_a_rank_without_a_log_file_handler(tmp_path, monkeypatch):
    """On a rank other than 0 mmengine's logger writes no file (no file handler) but keeps its ``log_file``: the
    results directory is still ``<log dir>/anomaly``."""
    monkeypatch.setattr(mmengine_logger, '_get_rank', lambda: 1)
    log_file = tmp_path / 'work' / '20260101_000000.log'
    logger = MMLogger('anomaly_writer_test_rank1', log_file=str(log_file))  # not made the current instance
    assert logger.log_file == str(log_file)
    assert not [h for h in logger.handlers if isinstance(h, logging.FileHandler)]
    monkeypatch.setattr(writer.MMLogger, 'get_current_instance', classmethod(lambda cls: logger))
    assert writer.runner_output_dir() == str(tmp_path / 'work' / 'anomaly')


def test_summary_csv_has_component_columns_only_with_the_component_protocol(tmp_path):
    """``anomaly_metrics.csv``: exactly the SUMMARY_COLUMNS without a component protocol in the summary, followed by
    the COMPONENT_COLUMNS with it."""
    entry = dict(FPR95=1.0, AUROC=2.0, AUPR=3.0, F1=4.0, F1_threshold=0.5)
    pooled = {'pooled': {'A': entry}}
    with_component = dict(pooled, component={'A': dict(sIoU=5.0)})
    all_columns = writer.SUMMARY_COLUMNS + writer.COMPONENT_COLUMNS
    for summary, columns in ((pooled, writer.SUMMARY_COLUMNS), (with_component, all_columns)):
        writer.write_anomaly_results(str(tmp_path), summary, [], {}, save_figures=False)
        with open(tmp_path / 'anomaly_metrics.csv', newline='') as f:
            rows = list(csv.reader(f))
        assert rows[0] == list(columns)
        assert rows[1][:7] == ['pooled', 'A', '1.0', '2.0', '3.0', '4.0', '0.5']


def test_figures_have_faint_grids_and_legends_in_fixed_corners(tmp_path, monkeypatch):
    """Both figures draw their grid at alpha 0.3; the ROC legend sits in the lower right corner and the PR legend in
    the upper right one, also when the curves pass there (no 'best' placement moving them around)."""
    saved = {}
    monkeypatch.setattr(Figure, 'savefig', lambda fig, path, *a, **k: saved.update({osp.basename(path): fig}))
    # a ROC curve below the diagonal (through the lower right) and a PR curve along the top (through the upper right)
    c = dict(
        fpr=np.array([0.0, 0.6, 0.9, 1.0]),
        tpr=np.array([0.0, 0.05, 0.1, 1.0]),
        recall=np.array([1.0, 0.9, 0.5, 0.0]),
        precision=np.array([0.9, 0.95, 0.98, 1.0]))
    writer.plot_curves({'A': (c, dict(AUROC=0.1, FPR95=1.0, AUPR=0.9, F1=0.9))}, str(tmp_path))
    for name, corner in (('roc_curves.png', 'lower right'), ('pr_curves.png', 'upper right')):
        fig = saved[name]
        (ax, ) = fig.axes
        gridlines = ax.xaxis.get_gridlines() + ax.yaxis.get_gridlines()
        assert gridlines and {g.get_alpha() for g in gridlines} == {0.3}
        fig.canvas.draw()
        box, frame = ax.get_legend().get_window_extent(), ax.get_window_extent()
        assert box.x1 == pytest.approx(frame.x1, abs=15), name  # right edge (matplotlib's border pad)
        if corner == 'lower right':
            assert box.y0 == pytest.approx(frame.y0, abs=15) and box.y1 < frame.y0 + frame.height / 2, name
        else:
            assert box.y1 == pytest.approx(frame.y1, abs=15) and box.y0 > frame.y0 + frame.height / 2, name


# ------------------------------------------------------------------ round 4
@pytest.mark.parametrize('rest, single', [(1, 0), (0, 1)])
def test_an_image_with_a_single_pixel_of_one_class_enters_the_per_image_means(tmp_path, rest, single):
    """One normal pixel among anomalous ones, or one anomalous pixel among normal ones, is enough for an image to
    hold both classes: it is averaged by the per-image protocol (not skipped) and its AUROC / AUPR are sklearn's."""
    # compute_metrics__mutmut_111 (one normal pixel), compute_metrics__mutmut_107 (one anomalous pixel)
    g = torch.Generator().manual_seed(41 + 2 * single)
    logits = torch.randn(C, H, W, generator=g)
    gt = torch.full((1, H, W), rest, dtype=torch.uint8)
    gt[0, 7, 9] = single
    metric = AnomalyMetric(scorers=[MaxLogit()], protocols='per_image', output_dir=str(tmp_path), save_figures=False)
    got = feed(metric, [data_sample(logits, gt)]).compute_metrics(metric.results)
    score, y = -logits.max(0).values.numpy().reshape(-1), gt.numpy().reshape(-1)
    assert got['per_image/MaxLogit/AUROC'] == pytest.approx(100 * roc_auc_score(y, score), abs=1e-9)
    assert got['per_image/MaxLogit/AUPR'] == pytest.approx(100 * average_precision_score(y, score), abs=1e-9)
    with open(tmp_path / 'anomaly_metrics.json') as f:
        entry = json.load(f)['per_image']['MaxLogit']
    assert (entry['num_images'], entry['num_images_skipped']) == (1, 0)


def test_quantised_per_image_bounds_of_no_two_class_image_are_nan_without_numpy_warnings():
    """per_image_exact=False on images that all lack anomalies: the tie bounds are NaN, reported without numpy's
    'Mean of empty slice' RuntimeWarning (which ``-W error`` would turn into a crash)."""
    # compute_metrics__mutmut_188
    metric = AnomalyMetric(scorers=[MaxLogit()], protocols='per_image', per_image_exact=False, save_figures=False)
    feed(metric, pixel_samples(2, seed=42, empty_every=1))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        metric.compute_metrics(metric.results)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        summary = metric.compute_metrics(metric.results)
    assert not caught
    assert all(np.isnan(summary[f'per_image/MaxLogit/{k}']) for k in ('AUROC', 'AUPR', 'FPR95', 'F1'))


class ReturnsNoTensor(nn.Module):
    """A scorer returning ``make(score)`` instead of the score tensor."""

    def __init__(self, make):
        super().__init__()
        self.name, self.make = 'NoTensor', make

    def forward(self, logits, feats=None):
        return self.make(-logits[:, 0])


@pytest.mark.parametrize('make,kind', [(lambda s: s.numpy(), 'ndarray'), (lambda s: s.tolist(), 'list'),
                                       (lambda s: float(s.mean()), 'float')])
def test_a_scorer_returning_no_tensor_is_named_with_the_type_it_returned(make, kind):
    """A scorer returning a numpy array, a list or a number instead of a tensor is refused with a ValueError that
    names the type it returned (even when that type has a fitting ``shape``)."""
    # process__mutmut_55
    metric = AnomalyMetric(scorers=[ReturnsNoTensor(make)])
    with pytest.raises(ValueError) as e:
        metric.process({}, pixel_samples(1))
    assert str(e.value) == (f'AnomalyMetric: scorer NoTensor returned {kind} for logits of shape (1, {C}, {H}, {W}); '
                            f'expected (1, {H}, {W})')


# ------------------------------------------------------------------ round 5
def test_all_reduce_sums_the_histograms_of_three_scorers(monkeypatch):
    """With three scorers the summed block counts are read back scorer after scorer: every rank ends with the
    histograms of all images for each of them (the third one's slice starts after the first two)."""
    # _all_reduce_histograms__mutmut_67
    samples = pixel_samples(6, seed=8)
    scorers = [MaxLogit(), SecondLogit(), Plain('FirstLogit')]
    ranks = [feed(AnomalyMetric(scorers=scorers), samples[:3]), feed(AnomalyMetric(scorers=scorers), samples[3:])]
    whole = feed(AnomalyMetric(scorers=scorers), samples)
    dist = FakeDist(2)
    monkeypatch.setattr(module, 'get_world_size', lambda: 2)
    monkeypatch.setattr(module, 'all_reduce', dist.all_reduce)
    dist.run([r._all_reduce_histograms for r in ranks])
    for rank in ranks:
        for name in ('MaxLogit', 'SecondLogit', 'FirstLogit'):
            assert_same_histogram(rank.histograms[name], whole.histograms[name])


def test_backslashes_in_scorer_names_are_refused_with_a_submission_dir(tmp_path):
    """A scorer name holding a backslash (a folder separator on Windows) cannot name a folder of submission_dir."""
    # __init____mutmut_74
    for bad in ('a\\b', '\\'):
        with pytest.raises(ValueError) as e:
            AnomalyMetric(scorers=[MaxLogit(name=bad)], submission_dir=str(tmp_path))
        assert str(e.value) == (f'AnomalyMetric: scorer names [{bad!r}] cannot be folder names of submission_dir; set '
                                '`name=` in the scorer configs')
    assert AnomalyMetric(scorers=[MaxLogit(name='a-b_c')], submission_dir=str(tmp_path)).submission_dir == str(tmp_path)


class FixedMap(nn.Module):
    """A scorer returning the same given ``(H, W)`` map for any logits of that size."""

    def __init__(self, score_map):
        super().__init__()
        self.name, self.score_map = 'Fixed', score_map

    def forward(self, logits, feats=None):
        return self.score_map[None]


def pooled_bound_case(num_neg):
    """100 anomalous pixels at distinct scores except the 95th, which shares its score (and bin) with one normal
    pixel; ``num_neg - 1`` more normal pixels far below. The pooled FPR95 tie bound is that one normal pixel
    over all of them (recall first reaches 95 % in the shared bin): ``100 / num_neg`` points."""
    score = np.concatenate(
        [np.arange(193.0, 99.0, -1), [50.0, 50.0],
         np.arange(14.0, 9.0, -1),
         np.full(num_neg - 1, -1.0)])
    gt = np.concatenate([np.ones(94), [1, 0], np.ones(5), np.zeros(num_neg - 1)])
    return torch.from_numpy(score.astype(np.float32))[None], torch.from_numpy(gt.astype(np.uint8))[None, None]


@pytest.mark.parametrize('num_neg,warned', [(1000, False), (999, True)])
def test_a_pooled_tie_bound_of_exactly_0_1_points_is_not_a_warning(tmp_path, logged, num_neg, warned):
    """The pooled protocol warns about pixels sharing bins only when a tie bound *exceeds* 0.1 points (WARN_BOUND):
    a FPR95 bound of exactly 1 / 1000 = 0.1 points passes silently, 1 / 999 is warned about."""
    # _warn_pooled__mutmut_40
    score, gt = pooled_bound_case(num_neg)
    metric = AnomalyMetric(scorers=[FixedMap(score)], protocols='pooled', output_dir=str(tmp_path), save_figures=False)
    logits = torch.zeros(C, *score.shape)
    feed(metric, [data_sample(logits, gt)]).compute_metrics(metric.results)
    with open(tmp_path / 'anomaly_metrics.json') as f:
        entry = json.load(f)['pooled']['Fixed']
    assert (entry['num_anomaly_pixels'], entry['num_pixels']) == (100, 100 + num_neg)
    assert entry['FPR95_tie_bound'] == 100 * (1 / num_neg)  # the fraction 1 / N in points
    assert (entry['FPR95_tie_bound'] == module.WARN_BOUND) == (not warned)
    assert max(entry[f'{k}_tie_bound'] for k in ('AUROC', 'AUPR')) < 0.1
    shared = [(m, level) for m, level in logged() if 'share histogram bins' in m]
    assert shared == ([(shared[0][0], logging.WARNING)] if warned else [])


def test_plot_curves_marks_the_fpr_at_95_percent_recall_by_default(tmp_path, monkeypatch):
    """``plot_curves`` without ``recall_level`` uses 95 %: the title says so, the dashed line is at 0.95 and the ROC dot
    sits at the first point whose recall reaches 0.95."""
    # x_plot_curves__mutmut_1
    saved = {}
    monkeypatch.setattr(Figure, 'savefig', lambda fig, path, *a, **k: saved.update({osp.basename(path): fig}))
    c = dict(
        fpr=np.array([0.0, 0.1, 0.3, 0.6, 1.0]),
        tpr=np.array([0.0, 0.5, 0.9, 0.96, 1.0]),
        recall=np.array([1.0, 0.5, 0.0]),
        precision=np.array([0.5, 0.8, 1.0]))
    writer.plot_curves({'A': (c, dict(AUROC=0.8, FPR95=0.6, AUPR=0.7, F1=0.6))}, str(tmp_path))
    (ax, ) = saved['roc_curves.png'].axes
    assert ax.get_title() == 'ROC, pooled pixels (dots: FPR at 95% recall)'
    dots = [ln for ln in ax.lines if ln.get_marker() == 'o']
    assert [(list(d.get_xdata()), list(d.get_ydata())) for d in dots] == [([0.6], [0.96])]
    dashed = [ln for ln in ax.lines if ln.get_linestyle() == '--']
    assert [list(d.get_ydata()) for d in dashed] == [[0.95, 0.95]]
