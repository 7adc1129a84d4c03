"""Settings and states the evaluation refuses instead of computing something silently wrong, and the float16 step
of saved score maps at the top of the float16 range."""
import re

import numpy as np
import pytest

from anomseg_plugins.evaluation import AnomalyMetric
from anomseg_plugins.evaluation.functional import (ComponentAccumulator, ScoreHistogram, check_ignore_index,
                                                   curves_from_level_counts, exact_anomaly_metrics, exact_level_counts,
                                                   image_component_stats, image_components, metrics_from_level_counts,
                                                   valid_scores_and_labels)
from anomseg_plugins.evaluation.metrics.anomaly_results_writer import FLOAT16_OVERFLOW, float16_loss, float16_step
from anomseg_plugins.scorers import MaxLogit


def _ignore_index_message(name, value):
    return re.escape(f'{name}: ignore_index={value} is an anomaly label value (0 normal, 1 anomaly), so it cannot '
                     'mark pixels to leave out; use another value (the datasets use 255) or None') + '$'


@pytest.mark.parametrize('value', [0, 1, np.uint8(1)])
def test_every_label_consumer_refuses_a_label_value_as_ignore_index(value):
    """``ignore_index`` 0 or 1 would drop all normal or all anomalous pixels: each place that reads anomaly labels
    refuses it, naming what it evaluates (before, the pooled histogram kept such pixels and the exact path dropped
    them, so the two protocols disagreed)."""
    scores, labels = np.array([0.1, 0.9, 0.5]), np.array([0, 1, 0])
    with pytest.raises(ValueError, match=_ignore_index_message('S', value)):
        ScoreHistogram(22, value, 'S')
    with pytest.raises(ValueError, match=_ignore_index_message('S', value)):
        valid_scores_and_labels(scores, labels, value, 'S')
    with pytest.raises(ValueError, match=_ignore_index_message('scores', value)):
        exact_anomaly_metrics(scores, labels, value)
    with pytest.raises(ValueError, match=_ignore_index_message('C', value)):
        ComponentAccumulator(1, 1, ignore_index=value, name='C')
    with pytest.raises(ValueError, match=_ignore_index_message('I', value)):
        image_component_stats(scores.reshape(1, 3), labels.reshape(1, 3), [0.5], 1, 1, ignore_index=value, name='I')
    with pytest.raises(ValueError, match=_ignore_index_message('MaxLogit', value)):
        AnomalyMetric(scorers=[MaxLogit()], ignore_index=value)


@pytest.mark.parametrize('value', [None, 2, 254, 255, -1])
def test_other_ignore_indices_are_accepted_and_drop_their_pixels(value):
    """Any other value (or None) is returned as given, and the pooled histogram and the exact path drop the same
    pixels."""
    assert check_ignore_index(value) is value
    rng = np.random.default_rng(0)
    scores = rng.random(200).astype(np.float32)
    labels = (rng.random(200) < 0.3).astype(np.int64)
    if value is not None:
        labels[::7] = value
    exact = exact_anomaly_metrics(scores, labels, value, warn=False)
    hist = ScoreHistogram.from_scores(scores, labels, 24, value)
    assert (hist.num_pos, hist.num_neg) == (exact['num_pos'], exact['num_neg'])
    keep = labels != value if value is not None else np.ones(200, bool)
    assert (exact['num_pos'], exact['num_neg']) == (int((labels[keep] == 1).sum()), int((labels[keep] == 0).sum()))


def test_set_blocks_refuses_block_ids_no_float32_score_has():
    """Block ids are the sign and exponent of a float32 score, -256..255: ids outside are refused with the offending
    ids (before, 256 raised an IndexError later in ``block_mask`` and -257 silently marked block 255)."""
    hist = ScoreHistogram(10, name='S')
    counts = np.ones((2, 2, hist.block_size), np.int64)
    hist.set_blocks([-256, 255], counts)
    assert sorted(hist.blocks) == [-256, 255]
    mask = hist.block_mask()
    assert mask[0] and mask[-1] and mask.sum() == 2
    for ids in ([-257, 0], [0, 256]):
        with pytest.raises(
                ValueError,
                match=re.escape(f'S: block ids must lie in -256..255 (sign and exponent of a float32 '
                                f'score); got {[i for i in ids if i]}') + '$'):
            hist.set_blocks(ids, counts)
        assert sorted(hist.blocks) == [-256, 255]  # the state is left as it was


def test_exact_level_counts_thresholds_are_float64_without_positives():
    """Without an anomalous pixel the single level's threshold is the lowest score, as float64 like every other
    case (it was float32 there)."""
    scores = np.array([0.7, 0.2, 0.4], np.float32)
    pos, neg, thr = exact_level_counts(scores, np.zeros(3, np.int64))
    assert pos.tolist() == [0] and neg.tolist() == [3]
    assert thr.dtype == np.float64 and thr.tolist() == [float(np.float32(0.2))]
    assert exact_level_counts(scores, np.ones(3, np.int64))[2].dtype == np.float64


def test_float16_step_is_numpys_spacing_and_finite_at_the_maximum():
    """``float16_step`` equals ``np.spacing`` of the float16 value wherever that is finite (subnormals, binade
    edges, random values), and is 32 at the maximum 65504 and just below the overflow bound, where ``np.spacing``
    gives inf."""
    rng = np.random.default_rng(1)
    values = np.r_[0.0, 1e-8, 6.1e-5, 1.0, 2.0, 2047.9, 2048.0, 65472.0, -3.5,
                   rng.uniform(-65000, 65000, 500), 10.0**rng.uniform(-9, 4.8, 500)]
    with np.errstate(over='ignore'):
        expected = np.spacing(np.abs(values).astype(np.float16)).astype(np.float64)
    assert np.isfinite(expected).all()
    assert [float16_step(v) for v in values] == expected.tolist()
    assert float16_step(65504.0) == float16_step(FLOAT16_OVERFLOW - 0.01) == float16_step(-65504.0) == 32.0


def test_float16_loss_at_the_top_of_the_range():
    """Maps reaching 65504 (stored exactly) or up to 65519.99 (rounded to 65504) are not called infinite; from
    65520 on they are. A wide range near the maximum is fine (step 32 of 65504 is 5e-4); a narrow one is reported
    with the step 32."""
    with np.errstate(over='ignore'):
        assert FLOAT16_OVERFLOW == 65520.0 and np.isinf(np.float16(FLOAT16_OVERFLOW))
        assert float(np.float16(FLOAT16_OVERFLOW - 0.01)) == 65504.0
    assert float16_loss(np.array([0.0, 65504.0])) is None
    assert float16_loss(np.array([-65519.0, 0.0])) is None
    assert float16_loss(np.array([65520.0, 0.0])) == ('its values reach 6.552e+04, beyond the float16 maximum 65504 '
                                                      '(stored as infinite)')
    assert float16_loss(np.array([
        65000.0, 65504.0
    ])) == ('its values span [6.5e+04, 6.55e+04]; float16 steps of 32 there are 6.3e-02 of the range (> 0.001), '
            'so close scores merge')


@pytest.mark.parametrize('pos, neg', [(np.array(5), []), ([1], []), ([1, 2], [3]), ([[1, 2]], [[3, 4]])])
def test_curves_and_metrics_refuse_level_counts_of_different_shapes(pos, neg):
    """The curves check their level counts as the metrics do (a 0-d ``pos`` with empty ``neg`` used to give a
    one-point curve)."""
    message = re.escape(f'pos and neg must be 1-d arrays of one length, got shapes {np.shape(pos)}, '
                        f'{np.shape(neg)}') + '$'
    with pytest.raises(ValueError, match=message):
        curves_from_level_counts(pos, neg)
    with pytest.raises(ValueError, match=message):
        metrics_from_level_counts(pos, neg, lambda i: 0.0)


@pytest.mark.parametrize('shape', [(0, 5), (5, 0), (0, 0)])
def test_an_empty_image_has_no_components(shape):
    """A label map with a zero-size side has no component: the same statistics as a map whose pixels are all void,
    where OpenCV's connected components used to crash the whole process (segfault)."""
    empty = image_component_stats(np.zeros(shape, np.float32), np.zeros(shape, np.int64), [0.1, 0.9], 1, 1)
    void = image_component_stats(np.zeros((2, 2), np.float32), np.full((2, 2), 255), [0.1, 0.9], 1, 1)
    assert empty.shape == void.shape and empty.tolist() == void.tolist()
    comps = image_components(np.zeros(shape, np.float32), np.zeros(shape, np.int64), 0.5, 1, 1)
    assert {k: v.size for k, v in comps.items()} == {'sIoU_gt': 0, 'sIoU_pred': 0, 'prec_pred': 0}
