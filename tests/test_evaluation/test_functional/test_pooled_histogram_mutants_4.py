"""ScoreHistogram details left open by the other tests: the torch binning's label checks, label conversion,
label device and degenerate batch sizes (run on CPU tensors, as in ``test_torch_path_matches_numpy_path``), the
exact error messages, the 24-bit limit, ``repr``, ``update``'s name, the state restored by ``set_blocks``, the
dtypes of an empty histogram's levels, the operating points at exact ties and at their defaults, ``score_bins`` of
float64 input, -0.0 in a batch binned in two ranges either side of zero, empty numpy batches, the shape-mismatch
message, the sign of bin 0's lower edge, the edges of int32 bin indices, the rejected block ids listed by
``set_blocks``, ``add`` with a non-positive sign and the tie bounds with a single pixel of one class."""
import re

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from test_pooled_histogram import reference_level_counts, same_counts

from anomseg_plugins.evaluation.functional import ScoreHistogram, bin_lower_edges, score_bins


def torch_binned(scores, labels, num_bits=22, ignore_index=255, name='scores'):
    """A histogram filled by the torch binning (the CUDA path), here on CPU tensors."""
    hist = ScoreHistogram(num_bits, ignore_index, name)
    hist._bin_torch(torch.as_tensor(scores), labels)
    return hist


def test_num_bits_bounds_are_inclusive():
    """9 and 24 bits (the coarsest and the finest bins) are accepted; 8 and 25 are refused, naming the range."""
    scores = np.array([1.0, 1.0 + 2.0**-15, 1.0 + 2.0**-14, -3.0], np.float32)
    labels = np.array([0, 1, 0, 1], np.uint8)
    for num_bits in (9, 24):
        hist = ScoreHistogram.from_scores(scores, labels, num_bits)
        assert hist.num_bits == num_bits and hist.block_size == 1 << (num_bits - 9)
        pos, neg, _ = hist.level_counts()
        assert pos.size == np.unique(score_bins(scores, num_bits)).size
    # 24 bits keep 15 mantissa bits: 1, 1 + 2^-15 and 1 + 2^-14 lie in three bins (one at 23 bits would merge two)
    assert ScoreHistogram.from_scores(scores, labels, 24).level_counts()[0].size == 4
    for num_bits in (8, 25):
        with pytest.raises(ValueError, match=rf'^num_bits must be an int in \[9, 24\], got {num_bits}$'):
            ScoreHistogram(num_bits)


def test_repr_names_the_class_and_the_counts():
    """``repr`` shows the class name, name, bits, number of stored blocks and the pixel counts."""
    hist = ScoreHistogram.from_scores(
        np.array([0.5, 0.75, -2.0], np.float32), np.array([1, 0, 0], np.uint8), 20, name='scorer E')
    assert repr(hist) == "ScoreHistogram(name='scorer E', num_bits=20, blocks=2, num_pos=1, num_neg=2)"


def test_bad_label_message_lists_the_first_ten_values():
    """Twelve invalid label values: the message lists the ten smallest, sorted (both binning paths)."""
    scores = np.linspace(0.0, 1.0, 15).astype(np.float32)
    labels = np.r_[0, 1, 255, np.arange(13, 1, -1)].astype(np.int64)  # invalid: 2..13, given in descending order
    message = (r'^scorer B: anomaly labels must be 0 \(normal\), 1 \(anomaly\) or ignore_index=255; '
               r'found \[2, 3, 4, 5, 6, 7, 8, 9, 10, 11\]$')
    with pytest.raises(ValueError, match=message):
        ScoreHistogram.from_scores(scores, labels, name='scorer B')
    with pytest.raises(ValueError, match=message):
        torch_binned(scores, torch.from_numpy(labels), name='scorer B')


def test_non_finite_message_is_complete():
    """The NaN/inf error names the scorer, counts the evaluated non-finite scores and says what to fix."""
    scores = np.array([0.5, np.nan, 2.0, np.inf, 1.0], np.float32)
    labels = np.array([0, 1, 0, 255, 1], np.uint8)  # the inf is ignored: only the NaN counts
    message = (r'^scorer N: 1 of 4 evaluated anomaly scores are NaN or inf; '
               r'the scorer must return finite scores$')
    with pytest.raises(ValueError, match=message):
        ScoreHistogram.from_scores(scores, labels, name='scorer N')
    with pytest.raises(ValueError, match=message):
        torch_binned(scores, torch.from_numpy(labels), name='scorer N')


def test_update_reports_errors_under_the_histograms_name():
    """``update`` bins the batch under the accumulator's name: its errors and the returned batch carry it."""
    hist = ScoreHistogram(22, name='scorer U')
    batch = hist.update(np.array([0.5, 1.5], np.float32), np.array([1, 0], np.uint8))
    assert batch.name == 'scorer U' and batch.num_pos == 1 and batch.num_neg == 1
    with pytest.raises(ValueError, match=r'^scorer U: 1 of 2 evaluated anomaly scores are NaN or inf'):
        hist.update(np.array([np.nan, 1.0], np.float32), np.array([0, 1], np.uint8))
    with pytest.raises(ValueError, match=r'^scorer U: anomaly labels must be .*found \[4\]$'):
        hist.update(np.array([0.5, 1.0], np.float32), np.array([4, 1], np.uint8))


# ---------------------------------------------------------------------------------------------------- torch path
@pytest.mark.parametrize('ignore_index', [255, None])
def test_torch_binning_refuses_invalid_labels_and_names_them(ignore_index):
    """Labels 2, 3 and 7 next to valid 0 / 1 (and ignored 255) pixels: the torch binning refuses them like the
    numpy binning, listing exactly the invalid values (not 0, 1 or the ignored label)."""
    scores = np.linspace(-1.0, 1.0, 9).astype(np.float32)
    labels = [0, 1, 0, 1, 0, 1, 2, 3, 7] if ignore_index is None else [0, 1, 0, 1, 0, 2, 255, 3, 7]
    labels = np.array(labels, np.uint8)
    message = (r'^scorer T: anomaly labels must be 0 \(normal\), 1 \(anomaly\) or '
               rf'ignore_index={ignore_index}; found \[2, 3, 7\]$')
    with pytest.raises(ValueError, match=message):
        ScoreHistogram.from_scores(scores, labels, 22, ignore_index, 'scorer T')
    with pytest.raises(ValueError, match=message):
        torch_binned(scores, torch.from_numpy(labels), 22, ignore_index, 'scorer T')
    # a single label 2 (the smallest invalid value), also when it is the largest label present
    labels = np.array([0, 1, 2, 0, 1, 0, 1, 0, 1], np.uint8)
    with pytest.raises(ValueError, match=r'found \[2\]$'):
        torch_binned(scores, torch.from_numpy(labels), 22, ignore_index, 'scorer T')


def test_torch_binning_checks_wide_integer_labels_before_narrowing():
    """int64 labels 256 and -1 are invalid (not 0, 1 or 255): they must be refused, not wrapped to uint8 0 / 255
    (counted as normal / silently ignored)."""
    scores = torch.tensor([0.1, 0.2, 0.3, 0.4])
    for bad in (256, -1, 257):
        labels = torch.tensor([0, 1, bad, 0], dtype=torch.int64)
        with pytest.raises(ValueError, match=rf'found \[{bad}\]$'):
            torch_binned(scores, labels)
        with pytest.raises(ValueError, match=rf'found \[{bad}\]$'):
            ScoreHistogram.from_scores(scores.numpy(), labels.numpy())


def test_torch_binning_accepts_bool_and_wide_labels():
    """Bool, uint8, int64 and numpy labels give the numpy binning's counts; ignored pixels are dropped."""
    rng = np.random.default_rng(4)
    scores = (rng.standard_normal(3000) * 5).astype(np.float32)
    labels = (rng.random(3000) < 0.2).astype(np.uint8)
    want = ScoreHistogram.from_scores(scores, labels)
    assert want.num_pos == int(labels.sum())
    for lab in (torch.from_numpy(labels).bool(), torch.from_numpy(labels), torch.from_numpy(labels).long(), labels):
        got = torch_binned(scores, lab)
        assert same_counts(got, want) and got.num_pos == want.num_pos and got.num_neg == want.num_neg
    ignored = labels.astype(np.int64)
    ignored[:500] = 255
    got = torch_binned(scores, torch.from_numpy(ignored))
    assert same_counts(got, ScoreHistogram.from_scores(scores[500:], labels[500:]))


def test_torch_binning_keeps_all_pixels_when_ignore_index_cannot_occur():
    """uint8 labels 0 / 1 with ``ignore_index=256`` (a value uint8 labels cannot hold, and which torch would wrap to
    0 in a uint8 comparison): every pixel is counted, as by the numpy binning."""
    scores = np.array([0.5, 1.5, 2.5, -1.0, 3.0, 0.25], np.float32)
    labels = np.array([0, 1, 0, 1, 0, 0], np.uint8)
    want = ScoreHistogram.from_scores(scores, labels, 22, ignore_index=256)
    assert want.num_pos == 2 and want.num_neg == 4
    got = torch_binned(scores, torch.from_numpy(labels), 22, ignore_index=256)
    assert got.num_pos == 2 and got.num_neg == 4 and same_counts(got, want)


def test_torch_binning_of_empty_and_single_pixel_batches():
    """No pixel (or only ignored ones): an empty histogram; one pixel: that pixel in its bin."""
    no_pixel = (torch.zeros(0), torch.zeros(0, dtype=torch.uint8))
    all_ignored = (torch.tensor([1.0, 2.0]), torch.tensor([255, 255], dtype=torch.uint8))
    for scores, labels in (no_pixel, all_ignored):
        hist = torch_binned(scores, labels)
        assert hist.blocks == {} and hist.num_pos == 0 and hist.num_neg == 0
    for label in (0, 1):
        hist = torch_binned(torch.tensor([-0.75]), torch.tensor([label], dtype=torch.uint8))
        pos, neg, thr = hist.level_counts()
        assert pos.tolist() == [label] and neg.tolist() == [1 - label] and thr.tolist() == [-0.75]
        assert same_counts(hist, ScoreHistogram.from_scores(np.array([-0.75], np.float32), np.array([label])))


def test_torch_binning_moves_the_labels_to_the_scores_device(monkeypatch):
    """The labels (numpy or a tensor on any device) are converted onto the scores' device, so that a CUDA batch is
    binned without mixing devices. Observed on CPU: ``torch.as_tensor`` is asked for the scores' device."""
    requested = []
    as_tensor = torch.as_tensor

    def spy(data, *args, **kwargs):
        requested.append(kwargs.get('device'))
        return as_tensor(data, *args, **kwargs)

    scores = torch.tensor([0.5, 1.5, -2.0])
    hist = ScoreHistogram(22)
    monkeypatch.setattr(torch, 'as_tensor', spy)
    hist._bin_torch(scores, np.array([1, 0, 0], np.uint8))
    monkeypatch.undo()
    assert requested == [scores.device]
    assert hist.num_pos == 1 and hist.num_neg == 2


# ---------------------------------------------------------------------------------------------------- state
def test_set_blocks_stores_int64_counts_whatever_the_input_dtype():
    """Counts restored from int32 or float64 arrays (e.g. gathered across ranks) are stored as int64, as documented:
    later additions do not wrap around at 2^31 and float counts are accepted."""
    hist = ScoreHistogram.from_scores(np.array([0.5, 1.5, -3.0], np.float32), np.array([1, 0, 0], np.uint8))
    ids = hist.block_ids
    dense = hist.dense_blocks(ids)
    for dtype in (np.int32, np.float64):
        copy = ScoreHistogram(22).set_blocks(ids, dense.astype(dtype))
        assert copy.block_ids == ids and all(c.dtype == np.int64 for c in copy.blocks.values())
        assert same_counts(copy, hist)
    big = ScoreHistogram(22).set_blocks(ids, dense * (2**31 - 1))
    restored = ScoreHistogram(22).set_blocks(ids, dense.astype(np.int32))
    restored.add(big)
    assert restored.num_pos == 2**31 and restored.num_neg == 2 * 2**31


def test_empty_histogram_levels_have_the_dtypes_of_a_filled_one():
    """An empty histogram's ``level_counts`` are empty int64 counts and float64 thresholds, like a filled one's."""
    filled = ScoreHistogram.from_scores(np.array([0.5, 1.5], np.float32), np.array([1, 0], np.uint8)).level_counts()
    empty = ScoreHistogram(22).level_counts()
    assert [a.dtype for a in filled] == [np.int64, np.int64, np.float64]
    assert [a.dtype for a in empty] == [np.int64, np.int64, np.float64]
    assert [a.size for a in empty] == [0, 0, 0]


def test_set_blocks_lists_the_first_ten_rejected_ids_as_integers():
    """Block ids arrive as float64 from a float all-reduce: out-of-range ones are reported as the integers they are,
    the first ten in the given order, and the state is left as it was."""
    # mutants: set_blocks 3/23
    hist = ScoreHistogram.from_scores(np.array([0.5, -3.0], np.float32), np.array([1, 0], np.uint8), 10, name='S')
    before = hist.dense_blocks(hist.block_ids)
    bad = [256.0 + i for i in range(6)] + [-257.0 - i for i in range(6)]  # 12 rejected ids
    ids = np.array([0.0] + bad)
    message = ('S: block ids must lie in -256..255 (sign and exponent of a float32 score); '
               'got [256, 257, 258, 259, 260, 261, -257, -258, -259, -260]')
    with pytest.raises(ValueError, match=re.escape(message) + '$'):
        hist.set_blocks(ids, np.ones((2, ids.size, hist.block_size), np.int64))
    assert np.array_equal(hist.dense_blocks(hist.block_ids), before)
    # integral float ids in range are accepted as ints
    copy = ScoreHistogram(10).set_blocks(np.array(hist.block_ids, np.float64), before)
    assert copy.block_ids == hist.block_ids and all(type(b) is int for b in copy.blocks)
    assert same_counts(copy, hist)


def test_add_with_a_non_positive_sign_subtracts():
    """``add`` adds for a positive ``sign`` and subtracts otherwise, ``sign=0`` included: subtracting a histogram
    never added is refused, subtracting one added restores the counts."""
    # mutant: add 5
    a = ScoreHistogram.from_scores(np.array([0.5, 1.5, -2.0], np.float32), np.array([1, 0, 0], np.uint8))
    b = ScoreHistogram.from_scores(np.array([0.5, 7.0], np.float32), np.array([0, 1], np.uint8))
    for sign in (0, -1, -2):
        with pytest.raises(ValueError, match='subtracting a histogram that was never added'):
            ScoreHistogram().add(b, sign=sign)
        total = ScoreHistogram().add(a).add(b, sign=3)
        assert (total.num_pos, total.num_neg) == (2, 3)
        total.add(b, sign=sign)  # (the emptied blocks stay, holding zeros)
        for got, want in zip(total.level_counts(), a.level_counts()):
            np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------------------------------- operating points
def test_threshold_at_recall_defaults_to_95_percent():
    """20 anomalies at scores 1..20: 95 % recall (19 of 20) is first reached at score 2, also by default."""
    scores = np.arange(1, 21).astype(np.float32)
    hist = ScoreHistogram.from_scores(scores, np.ones(20, np.uint8))
    assert hist.threshold_at_recall() == 2.0 == hist.threshold_at_recall(0.95)
    assert hist.threshold_at_recall(0.5) == 11.0


def test_rates_at_threshold_are_fractions():
    """Anomalies at 4, 3, 2, 1 and normals at 2.5, 0.5 (all bin edges): flagging ``score >= 2`` has recall 3/4
    and FPR 1/2."""
    scores = np.array([4.0, 3.0, 2.0, 1.0, 2.5, 0.5], np.float32)
    labels = np.array([1, 1, 1, 1, 0, 0], np.uint8)
    rates = ScoreHistogram.from_scores(scores, labels).rates_at_threshold(2.0)
    assert rates == dict(recall=0.75, fpr=0.5, num_anomaly_pixels=4, num_normal_pixels=2)


def test_quantile_at_exact_count_boundaries():
    """Scores 1, 2, 3, 4: the score below which a fraction q lies is the sorted score number ``q * 4``
    (0.25 -> 2, 0.5 -> 3, 0.75 -> 4), when ``q * 4`` pixels lie exactly below it."""
    scores = np.array([3.0, 1.0, 4.0, 2.0], np.float32)
    hist = ScoreHistogram.from_scores(scores, np.array([0, 1, 0, 0], np.uint8))
    for q in (0.25, 0.5, 0.75):
        want = np.sort(scores)[int(q * 4)]
        assert hist.quantile(q) == want
        assert np.mean(scores < hist.quantile(q)) == q


# ---------------------------------------------------------------------------------------------------- binning
def test_score_bins_bins_the_float32_value_of_wider_inputs():
    """``score_bins`` of float64 arrays and Python lists gives the bins of their float32 values, one per score (not
    bins of the halves of the 64-bit patterns)."""
    # mutant: score_bins 4
    values = [-300.25, -1.0, -0.0, 0.0, 1e-40, 0.1, 0.5, 1.0 + 2.0**-12, 7.0e30]
    want = score_bins(np.array(values, np.float32), 22)
    assert want.dtype == np.int64 and want.shape == (len(values), )
    assert np.all(np.diff(want) >= 0) and want[2] == want[3] == 0  # order-preserving; -0.0 and +0.0 on bin 0
    for scores in (np.array(values, np.float64), values):
        got = score_bins(scores, 22)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)


def test_negative_zero_shares_bin_zero_when_the_batch_is_binned_in_two_ranges():
    """Scores around -1, +-0.0 and positive denormals (22 bits: 128 binades apart, too wide for one dense range, so
    the two ranges either side of zero are indexed): -0.0 falls in bin 0 with +0.0, a tie of one anomalous and one
    normal pixel at threshold 0, as ``score_bins`` places them; the torch binning agrees."""
    # mutant: _bin_numpy 139 (the zero-crossing offset taken from the score's sign bit instead of the bin's)
    scores = np.array([-1.0, -0.5, -0.0, 0.0, 1e-40, 2e-40, -0.75], np.float32)
    labels = np.array([0, 1, 1, 0, 0, 1, 0], np.uint8)
    hist = ScoreHistogram.from_scores(scores, labels, 22)
    pos, neg, thr = hist.level_counts()
    for got, want in zip((pos, neg, thr), reference_level_counts(scores, labels, 22)):
        np.testing.assert_array_equal(got, want)
    assert pos.size == 6 and (pos[2], neg[2], thr[2]) == (1, 1, 0.0)  # levels: 2e-40, 1e-40, +-0, -0.5, -0.75, -1
    assert hist.block_ids == [-127, -126, 0]
    assert same_counts(hist, torch_binned(scores, torch.from_numpy(labels), 22))


def test_empty_numpy_batch_gives_an_empty_histogram():
    """A batch without pixels (e.g. an empty crop) binned by numpy: no block, no count, and adding it to an
    accumulator changes nothing; it is not an error."""
    # mutant: _bin_numpy 23 (the label range checked on an empty batch)
    for shape in ((0, ), (0, 4), (3, 0)):
        hist = ScoreHistogram.from_scores(np.zeros(shape, np.float32), np.zeros(shape, np.uint8))
        assert hist.blocks == {} and hist.num_pos == 0 and hist.num_neg == 0
    acc = ScoreHistogram(22)
    acc.update(np.array([0.5, 2.0], np.float32), np.array([1, 0], np.uint8))
    batch = acc.update(np.zeros(0, np.float32), np.zeros(0, np.int64))
    assert batch.blocks == {} and (acc.num_pos, acc.num_neg) == (1, 1)
    pos, neg, thr = acc.level_counts()
    assert pos.tolist() == [0, 1] and neg.tolist() == [1, 0] and thr.tolist() == [2.0, 0.5]


def test_shape_mismatch_message_names_both_shapes():
    """Scores and labels of different shapes are refused with a message naming the scorer and both shapes (as
    tuples, also for tensors)."""
    # mutant: from_scores 15
    message = r'^scorer M: scores of shape \(2, 3\) and labels of shape \(3, 2\) differ$'
    with pytest.raises(ValueError, match=message):
        ScoreHistogram.from_scores(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.uint8), name='scorer M')
    with pytest.raises(ValueError, match=message):
        ScoreHistogram.from_scores(torch.zeros(2, 3), torch.zeros(3, 2, dtype=torch.uint8), name='scorer M')
    with pytest.raises(ValueError, match=r'^scorer M: scores of shape \(6,\) and labels of shape \(2, 3\) differ$'):
        ScoreHistogram(22, name='scorer M').update(np.zeros(6, np.float32), np.zeros((2, 3), np.uint8))


@pytest.mark.parametrize('num_bits', [9, 22, 24])
def test_lower_edge_of_bin_zero_is_positive_zero(num_bits):
    """Bin 0 holds +0.0, -0.0 and the smallest positive denormals: its lower edge is +0.0, so a threshold reported
    there prints as ``0.0``, not ``-0.0``; the neighbouring bins keep their signs."""
    # mutants: bin_lower_edges 23/24 (the edge of bin 0 built as a negative number)
    edges = bin_lower_edges(np.array([-1, 0, 1]), num_bits)
    assert edges[1] == 0.0 and not np.signbit(edges[1])
    assert edges[0] < 0.0 and edges[2] > 0.0
    # anomalies at -0.0 / +0.0, normals below: every threshold of the zero bin is +0.0
    scores = np.array([-0.0, 0.0, -0.0, -1.0, -2.0], np.float32)
    labels = np.array([1, 1, 1, 0, 0], np.uint8)
    hist = ScoreHistogram.from_scores(scores, labels, num_bits)
    thresholds = [hist.level_counts()[2][0], hist.threshold_at_recall(), hist.compute()['F1_threshold']]
    assert [repr(float(t)) for t in thresholds] == ['0.0', '0.0', '0.0']


@pytest.mark.parametrize('num_bits', [9, 16, 22, 24])
def test_bin_lower_edges_of_int32_bins_equal_those_of_int64_bins(num_bits):
    """Bin indices held as int32 (as the component metrics store their score codes) give the same edges as int64
    ones, negative bins and the lowest bin (edge ``-inf``) included; each edge is a float32 value inside its bin
    and not above any score of the bin."""
    # mutants: bin_lower_edges 11/13 (the bins shifted in their own dtype: int32 overflows on negative bins)
    lowest = np.finfo(np.float32).min
    scores = np.array([lowest, -3.0, -1.0, -1e-40, -0.0, 0.0, 1e-40, 0.5, 2.0, 3.4e38], np.float32)
    bins = score_bins(scores, num_bits)
    want = bin_lower_edges(bins, num_bits)
    got = bin_lower_edges(bins.astype(np.int32), num_bits)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want)
    assert got[0] == -np.inf and np.all(got <= scores)
    np.testing.assert_array_equal(score_bins(got[1:].astype(np.float32), num_bits), bins[1:])


@pytest.mark.parametrize(
    'scores, labels',
    [
        ([0.5, 0.5], [1, 0]),  # one anomaly tied with the only normal pixel
        ([0.9, 0.9, 0.1, 0.1], [1, 0, 0, 0]),  # the only anomaly tied with one of three normals
        ([0.9, 0.9, 0.3], [1, 0, 1]),  # the only normal pixel tied with one of two anomalies
    ])
def test_tie_bounds_with_a_single_pixel_of_one_class(scores, labels):
    """With one anomalous or one normal pixel the tie bounds are finite: the AUROC bound is half, and (one tied
    bin holding one anomaly) the AUPR bound all of, the gap between sklearn's values for the tied anomaly ranked
    above and below its tied normal; NaN only without pixels of a class."""
    # mutants: auroc_tie_bound 6 (NaN for a single normal pixel), aupr_tie_bound 5 (NaN for a single anomaly)
    scores, labels = np.array(scores, np.float32), np.array(labels, np.uint8)
    hist = ScoreHistogram.from_scores(scores, labels, 22)
    best, worst = scores + 1e-3 * labels, scores - 1e-3 * labels  # the tie broken either way, no other order changed
    auroc_gap = roc_auc_score(labels, best) - roc_auc_score(labels, worst)
    aupr_gap = average_precision_score(labels, best) - average_precision_score(labels, worst)
    assert auroc_gap > 0 and aupr_gap > 0
    assert hist.auroc_tie_bound() == pytest.approx(auroc_gap / 2, rel=1e-12)
    assert hist.aupr_tie_bound() == pytest.approx(aupr_gap, rel=1e-12)
    bounds = hist.error_bounds()
    assert bounds['AUROC'] == hist.auroc_tie_bound() and bounds['AUPR'] == hist.aupr_tie_bound()
    only_normal = ScoreHistogram.from_scores(scores, np.zeros_like(labels), 22)
    only_anomalous = ScoreHistogram.from_scores(scores, np.ones_like(labels), 22)
    assert np.isnan(only_normal.auroc_tie_bound()) and np.isnan(only_anomalous.auroc_tie_bound())
    assert np.isnan(only_normal.aupr_tie_bound()) and not np.isnan(only_anomalous.aupr_tie_bound())
