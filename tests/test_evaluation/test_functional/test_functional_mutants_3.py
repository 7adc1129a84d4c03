"""Functional details left open by the other tests: the exact level counts of a small hand-made map (levels,
thresholds, no empty level), the integer accumulation of the curves from non-int64 counts, the arc-length
spacing of ``thin_curve`` after a long first segment, and ``ScoreHistogram.from_scores`` on bfloat16 scores, a
label value 2, and its routing of CPU / non-CPU tensors to the numpy / torch binning."""
import numpy as np
import pytest
import torch

from anomseg_plugins.evaluation.functional import (ScoreHistogram, curves_from_level_counts, exact_level_counts,
                                                   score_bins, thin_curve)


def test_exact_level_counts_of_a_hand_made_map():
    """Scores 0.9 (anomaly), 0.5 and 0.1 (normal): one level for the positive score 0.9, one for the negatives
    below it, whose threshold is the lowest normal score 0.1; no empty level (nothing lies above 0.9)."""
    scores = np.array([0.9, 0.5, 0.1], np.float32)
    labels = np.array([1, 0, 0], np.uint8)
    pos, neg, thr = exact_level_counts(scores, labels)
    np.testing.assert_array_equal(pos, [1, 0])
    np.testing.assert_array_equal(neg, [0, 2])
    np.testing.assert_array_equal(thr, np.array([0.9, 0.1], np.float32).astype(np.float64))


def test_exact_level_counts_hold_only_non_empty_levels_with_finite_thresholds():
    """Two distinct positive scores with negatives tied to each, above, between and below: every level holds a
    pixel; the levels of the positive scores and the bottom level carry their lowest score as threshold (the
    ones F1 and the operating points read)."""
    scores = np.array([5.0, 4.0, 4.0, 3.0, 2.0, 2.0, 1.0, 0.5], np.float32)
    labels = np.array([0, 1, 0, 0, 1, 0, 0, 0], np.uint8)
    pos, neg, thr = exact_level_counts(scores, labels)
    # levels (descending): negatives above 4 | score 4 | negatives in (2, 4) | score 2 | negatives below 2
    np.testing.assert_array_equal(pos, [0, 1, 0, 1, 0])
    np.testing.assert_array_equal(neg, [1, 1, 1, 1, 2])
    np.testing.assert_array_equal(thr[[1, 3, 4]], [4.0, 2.0, 0.5])
    assert ((pos > 0) | (neg > 0)).all()
    # the top positive at the highest score: no level above it may appear, not even an empty one
    pos, neg, thr = exact_level_counts(np.array([3.0, 2.0, 1.0], np.float32), np.array([1, 1, 0], np.uint8))
    np.testing.assert_array_equal(pos, [1, 1, 0])
    np.testing.assert_array_equal(neg, [0, 0, 1])
    np.testing.assert_array_equal(thr, [3.0, 2.0, 1.0])


def test_curves_accumulate_float32_counts_as_integers():
    """Counts handed in as float32 (e.g. a float histogram) are summed as integers: 2**24 + 1 negatives are not
    rounded to 2**24 on the way, so the first ROC point lies strictly left of the last."""
    big = 1 << 24
    pos = np.array([1, 1], np.float32)
    neg = np.array([big, 1], np.float32)  # both values exact in float32; their sum is not
    curves = curves_from_level_counts(pos, neg)
    num_neg = big + 1
    np.testing.assert_array_equal(curves['fpr'], [0.0, big / num_neg, 1.0])
    np.testing.assert_array_equal(curves['tpr'], [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(curves['recall'], [0.5, 1.0])
    np.testing.assert_array_equal(curves['precision'], [1 / (1 + big), 2 / (2 + num_neg)])


def _thin_reference(x, y, max_points):
    """Independent reading of the docstring: for each of ``max_points`` arc lengths evenly spaced from 0 to the
    total L1 length, the first point whose arc length from the start reaches it; plus the first and last point."""
    arc = [0.0]
    for i in range(1, len(x)):
        arc.append(arc[-1] + abs(float(x[i]) - float(x[i - 1])) + abs(float(y[i]) - float(y[i - 1])))
    keep = {0, len(x) - 1}
    for t in np.linspace(0.0, arc[-1], max_points):
        keep.add(next((i for i, a in enumerate(arc) if a >= t), len(x) - 1))
    idx = sorted(keep)
    return x[idx], y[idx]


def test_thin_curve_keeps_the_end_of_a_long_first_segment():
    """A curve whose first step covers half its length: the target arc lengths inside that step all select its
    end point (x = 0.5), which must be kept; the rest is spaced evenly along the arc."""
    x = np.r_[0.0, np.linspace(0.5, 1.0, 101)]
    y = np.zeros_like(x)
    got_x, got_y = thin_curve(x, y, 10)
    want_x, want_y = _thin_reference(x, y, 10)
    np.testing.assert_array_equal(got_x, want_x)
    np.testing.assert_array_equal(got_y, want_y)
    assert 0.5 in got_x.tolist() and got_x[0] == 0.0 and got_x[-1] == 1.0


def test_thin_curve_matches_the_arc_length_reference_on_a_roc_like_curve():
    """A staircase curve (ROC-like) thinned to fewer points than it has: same points as the reference."""
    rng = np.random.default_rng(3)
    x = np.r_[0.0, np.cumsum(rng.random(300))]
    x /= x[-1]
    y = np.r_[0.0, np.cumsum(rng.random(300)**3)]
    y /= y[-1]
    for max_points in (7, 50):
        got_x, got_y = thin_curve(x, y, max_points)
        want_x, want_y = _thin_reference(x, y, max_points)
        np.testing.assert_array_equal(got_x, want_x)
        np.testing.assert_array_equal(got_y, want_y)


def test_from_scores_bins_bfloat16_cpu_tensors_as_their_float32_values():
    """A bfloat16 CPU tensor (numpy has no bfloat16) is binned by the float32 values it holds."""
    values = torch.tensor([-2.5, -0.125, 0.0, 0.75, 1.5, 3.0, 96.0, 1024.0], dtype=torch.bfloat16)
    labels = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1], dtype=torch.uint8)
    hist = ScoreHistogram.from_scores(values, labels, 22)
    want = ScoreHistogram.from_scores(values.float().numpy(), labels.numpy(), 22)
    assert hist.num_pos == 4 and hist.num_neg == 4
    assert hist.block_ids == want.block_ids
    for b in want.block_ids:
        np.testing.assert_array_equal(hist.blocks[b], want.blocks[b])
    # each pixel sits in the bin of its float32 value
    pos, neg, thr = hist.level_counts()
    bins = score_bins(values.float().numpy(), 22)
    assert pos.sum() + neg.sum() == 8 and len(pos) == len(np.unique(bins))


@pytest.mark.parametrize('ignore_index', [255, None])
def test_from_scores_refuses_a_label_value_of_two(ignore_index):
    """Labels are 0, 1 or ignore_index: a 2 is refused, and the message names it (numpy and CPU tensor input)."""
    scores = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
    labels = np.array([0, 1, 2, 0], np.uint8)
    for s, lab in ((scores, labels), (torch.from_numpy(scores), torch.from_numpy(labels))):
        with pytest.raises(
                ValueError,
                match=r'^scorer X: anomaly labels must be 0 \(normal\), 1 \(anomaly\) or '
                rf'ignore_index={ignore_index}; found \[2\]$'):
            ScoreHistogram.from_scores(s, lab, 22, ignore_index=ignore_index, name='scorer X')


def _spy_binning(monkeypatch):
    calls = []
    numpy_bin, torch_bin = ScoreHistogram._bin_numpy, ScoreHistogram._bin_torch

    def spy_numpy(self, scores, labels):
        calls.append(('numpy', scores, labels))
        return numpy_bin(self, scores, labels)

    def spy_torch(self, scores, labels):
        calls.append(('torch', scores, labels))
        if scores is not None and scores.device.type == 'meta':
            return None  # a meta tensor has no values to bin
        return torch_bin(self, scores, labels)

    monkeypatch.setattr(ScoreHistogram, '_bin_numpy', spy_numpy)
    monkeypatch.setattr(ScoreHistogram, '_bin_torch', spy_torch)
    return calls


def test_from_scores_bins_cpu_tensors_with_numpy(monkeypatch):
    """As documented (only CUDA, i.e. non-CPU, tensors are binned on their device): CPU tensors and numpy arrays
    go through the numpy binning, with the scores and labels as given."""
    calls = _spy_binning(monkeypatch)
    scores = torch.tensor([0.5, 1.5, -2.0])
    labels = torch.tensor([0, 1, 0])
    hist = ScoreHistogram.from_scores(scores, labels, 22)
    assert [c[0] for c in calls] == ['numpy'] and calls[0][1] is scores and calls[0][2] is labels
    assert hist.num_pos == 1 and hist.num_neg == 2
    calls.clear()
    ScoreHistogram.from_scores(scores.numpy(), labels.numpy(), 22)
    assert [c[0] for c in calls] == ['numpy']


def test_from_scores_hands_non_cpu_tensors_to_the_torch_binning(monkeypatch):
    """A tensor on another device (here 'meta', standing in for CUDA) is binned with torch ops on that device:
    the torch binning receives the scores tensor itself and the labels."""
    calls = _spy_binning(monkeypatch)
    scores = torch.zeros(2, 3, device='meta')
    labels = torch.zeros(2, 3, dtype=torch.uint8)
    hist = ScoreHistogram.from_scores(scores, labels, 22, name='scorer M')
    assert len(calls) == 1
    kind, got_scores, got_labels = calls[0]
    assert kind == 'torch' and got_scores is scores and got_labels is labels
    assert hist.name == 'scorer M' and hist.num_bits == 22
