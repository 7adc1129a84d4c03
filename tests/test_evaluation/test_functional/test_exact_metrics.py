"""Exact per-array metrics against scikit-learn and the official StreetHazards FPR rule."""
import logging

import numpy as np
import pytest
import torch

from anomseg_plugins.evaluation.functional import (auroc, average_precision, best_f1, exact_anomaly_metrics,
                                                   fpr_at_recall)


def test_matches_sklearn_on_awkward_maps(case, ref):
    kind, scores, labels = case
    want = ref.reference(scores, labels)
    got = exact_anomaly_metrics(scores, labels)
    for key in ('AUROC', 'AUPR', 'FPR95', 'F1'):
        assert got[key] == pytest.approx(want[key], abs=1e-9), (kind, key)
    assert got['F1_threshold'] == pytest.approx(want['F1_threshold'], rel=1e-6), kind
    nearest = exact_anomaly_metrics(scores, labels, fpr_rule='nearest')['FPR95']
    assert nearest == pytest.approx(want['FPR95_nearest'], abs=1e-12), kind
    assert got['num_pos'] == int(labels.sum()) and got['num_neg'] == int((labels == 0).sum())


@pytest.mark.parametrize('seed', range(30))
def test_small_arrays_with_ties_all_rules(seed, ref):
    """Tiny arrays with heavy ties exercise every tie-break of the two FPR rules."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    scores = rng.integers(0, 6, n).astype(np.float32)
    labels = (rng.random(n) < 0.3).astype(np.uint8)
    labels[:2] = (0, 1)
    want = ref.reference(scores, labels)
    got = exact_anomaly_metrics(scores, labels)
    assert got['AUROC'] == pytest.approx(want['AUROC'], abs=1e-12)
    assert got['AUPR'] == pytest.approx(want['AUPR'], abs=1e-12)
    assert got['FPR95'] == pytest.approx(want['FPR95'], abs=1e-12)
    assert got['F1'] == pytest.approx(want['F1'], abs=1e-12)
    for level in (0.5, 0.8, 0.95):
        assert fpr_at_recall(scores, labels, level, 'nearest') == pytest.approx(
            ref.fpr_nearest(labels.astype(int), scores.astype(np.float64), level), abs=1e-12)
        assert fpr_at_recall(scores, labels, level, 'first') == pytest.approx(
            ref.fpr_first(labels.astype(int), scores.astype(np.float64), level), abs=1e-12)


def test_nearest_and_first_rules_by_hand():
    # positives 10, 8, 6, 2 (recall steps of 25%); negatives 9, 7, 5, 5, 1
    scores = np.array([10, 8, 6, 2, 9, 7, 5, 5, 1], np.float32)
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0], np.uint8)
    # 'first', recall >= 0.7: threshold 6 (recall 0.75), negatives above: 9, 7
    assert fpr_at_recall(scores, labels, 0.7, 'first') == pytest.approx(2 / 5)
    # 'nearest': recall 0.75 is nearest 0.7; of the thresholds with recall 0.75 (6 and 5) the official
    # rule takes the lowest, 5, which lets in 9, 7, 5, 5
    assert fpr_at_recall(scores, labels, 0.7, 'nearest') == pytest.approx(4 / 5)
    # equidistant recalls (0.5 and 0.75 around 0.625): the higher recall wins
    assert fpr_at_recall(scores, labels, 0.625, 'nearest') == pytest.approx(4 / 5)
    assert fpr_at_recall(scores, labels, 0.625, 'first') == pytest.approx(2 / 5)
    # full recall: threshold 2 lets in 9, 7, 5, 5 (not 1)
    assert fpr_at_recall(scores, labels, 1.0, 'nearest') == fpr_at_recall(scores, labels, 1.0) == 4 / 5


def test_wrappers_and_torch_input(ref):
    scores, labels = ref.make_case('random', n=5000, seed=1)
    want = ref.reference(scores, labels)
    t_scores, t_labels = torch.from_numpy(scores), torch.from_numpy(labels)
    assert auroc(t_scores, t_labels) == pytest.approx(want['AUROC'], abs=1e-12)
    assert average_precision(scores, labels) == pytest.approx(want['AUPR'], abs=1e-12)
    f1, thr = best_f1(scores, labels)
    assert f1 == pytest.approx(want['F1'], abs=1e-12) and thr == pytest.approx(want['F1_threshold'])


def test_image_without_anomaly_is_nan_with_warning(caplog):
    scores = np.random.default_rng(0).random((8, 8)).astype(np.float32)
    labels = np.zeros((8, 8), np.uint8)
    with caplog.at_level(logging.WARNING):
        res = exact_anomaly_metrics(scores, labels, name='scorer X')
    assert all(np.isnan(res[k]) for k in ('AUROC', 'AUPR', 'FPR95', 'F1', 'F1_threshold'))
    assert 'scorer X' in caplog.text and '0 anomalous' in caplog.text


def test_no_normal_pixel_keeps_defined_metrics():
    scores = np.arange(10, dtype=np.float32)
    res = exact_anomaly_metrics(scores, np.ones(10, np.uint8), warn=False)
    assert np.isnan(res['AUROC']) and np.isnan(res['FPR95'])
    assert res['AUPR'] == 1.0 and res['F1'] == 1.0


def test_everything_ignored_is_nan():
    res = exact_anomaly_metrics(np.ones(16, np.float32), np.full(16, 255, np.uint8), warn=False)
    assert res['num_pos'] == res['num_neg'] == 0
    assert all(np.isnan(res[k]) for k in ('AUROC', 'AUPR', 'FPR95', 'F1'))


def test_constant_scores(caplog):
    labels = np.r_[np.ones(5), np.zeros(95)].astype(np.uint8)
    with caplog.at_level(logging.WARNING):
        res = exact_anomaly_metrics(np.full(100, 3.0, np.float32), labels)
    assert res['AUROC'] == 0.5 and res['FPR95'] == 1.0 and res['AUPR'] == pytest.approx(0.05)
    assert 'constant' in caplog.text


def test_ignore_index_honoured(ref):
    scores, labels = ref.make_case('random', n=4000, seed=2)
    ignored = labels.copy()
    ignored[100:2000] = 255
    scores_bad = scores.copy()
    scores_bad[100:2000] = 1e6  # would dominate the ranking if kept
    keep = np.ones(scores.size, bool)
    keep[100:2000] = False
    got = exact_anomaly_metrics(scores_bad, ignored)
    want = exact_anomaly_metrics(scores[keep], labels[keep])
    assert got == want


def test_errors_name_the_scorer():
    scores = np.zeros(10, np.float32)
    scores[3] = np.nan
    with pytest.raises(ValueError, match='scorer Foo: 1 of 10 .* NaN or inf'):
        exact_anomaly_metrics(scores, np.zeros(10, np.uint8), name='scorer Foo')
    with pytest.raises(ValueError, match=r'found \[2\]'):
        exact_anomaly_metrics(np.zeros(4, np.float32), np.array([0, 1, 2, 255], np.uint8))
    with pytest.raises(ValueError, match='differ'):
        exact_anomaly_metrics(np.zeros(4, np.float32), np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match='fpr_rule'):
        exact_anomaly_metrics(np.zeros(4, np.float32), np.array([0, 1, 0, 1]), fpr_rule='closest')
