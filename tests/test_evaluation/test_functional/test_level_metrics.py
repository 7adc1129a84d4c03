"""Metrics from level counts, checked on a case small enough to work out by hand."""
import numpy as np
import pytest

from anomseg_plugins.evaluation.functional import curves_from_level_counts, metrics_from_level_counts, thin_curve

# three levels, descending: (1 anomalous), (1 normal), (1 anomalous + 1 normal tied)
POS, NEG, THR = np.array([1, 0, 1]), np.array([0, 1, 1]), np.array([3.0, 2.0, 1.0])


def test_hand_computed_values():
    res = metrics_from_level_counts(POS, NEG, THR)
    # pairs (anomalous > normal): top anomaly beats both normals, the tied one gets 1/2 -> 2.5 / 4
    assert res['AUROC'] == pytest.approx(0.625)
    # precision 1/1 at recall 1/2, 2/4 at recall 1 -> 0.5 * 1 + 0.5 * 0.5
    assert res['AUPR'] == pytest.approx(0.75)
    assert res['FPR95'] == pytest.approx(1.0)  # full recall only at the last level
    # F1 = 2/3 at levels 0 and 2: the first (highest threshold) wins
    assert res['F1'] == pytest.approx(2 / 3) and res['F1_threshold'] == 3.0
    assert (res['num_pos'], res['num_neg'], res['num_levels']) == (2, 2, 3)


def test_fpr_rules_at_half_recall():
    # recall 0.5 is reached at level 0 (no normal above) and kept through level 1 (one normal)
    assert metrics_from_level_counts(POS, NEG, THR, recall_level=0.5)['FPR95'] == 0.0
    # the official rule takes the lowest threshold of that recall: level 1
    assert metrics_from_level_counts(POS, NEG, THR, recall_level=0.5, fpr_rule='nearest')['FPR95'] == 0.5


def test_threshold_function_and_validation():
    res = metrics_from_level_counts(POS, NEG, lambda i: float(THR[i]) * 10)
    assert res['F1_threshold'] == 30.0
    with pytest.raises(ValueError, match='recall_level'):
        metrics_from_level_counts(POS, NEG, THR, recall_level=1.5)
    with pytest.raises(ValueError, match='do not match'):
        metrics_from_level_counts(POS, NEG, THR[:2])
    empty = metrics_from_level_counts(np.zeros(0), np.zeros(0), np.zeros(0))
    assert np.isnan(empty['AUROC']) and empty['num_pos'] == 0


def test_curves_and_thinning():
    c = curves_from_level_counts(POS, NEG)
    assert c['fpr'].tolist() == [0.0, 0.0, 0.5, 1.0] and c['tpr'].tolist() == [0.0, 0.5, 0.5, 1.0]
    assert c['recall'].tolist() == [0.5, 1.0] and c['precision'].tolist() == [1.0, 0.5]
    # area under the drawn ROC equals AUROC
    assert np.trapezoid(c['tpr'], c['fpr']) == pytest.approx(0.625)
    x = np.linspace(0, 1, 100000)
    tx, ty = thin_curve(x, x**2, max_points=500)
    assert len(tx) <= 502 and tx[0] == 0 and tx[-1] == 1 and np.all(np.diff(tx) > 0)
