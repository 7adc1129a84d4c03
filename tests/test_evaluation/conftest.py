"""Reference implementations (scikit-learn and the official StreetHazards FPR rule) and awkward score maps
shared by the evaluation tests."""
from types import SimpleNamespace

import numpy as np
import pytest
from reference_metrics import best_f1, fpr_first, fpr_nearest, reference


def make_case(kind: str, n: int = 60000, seed: int = 0):
    """Score/label arrays (float32, uint8) of an awkward kind, ~1% anomalies."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.01).astype(np.uint8)
    labels[:3] = (1, 0, 1)  # both classes present
    shift = labels * 1.5
    if kind == 'random':
        scores = rng.standard_normal(n) + shift
    elif kind == 'tied':  # many exact ties, also across the classes
        scores = np.round(rng.standard_normal(n) + shift, 1)
    elif kind == 'heavy_tailed':
        scores = rng.standard_cauchy(n) * 10 + shift * 5
    elif kind == 'energy':  # -logsumexp scale: hundreds
        scores = -300.0 + 25.0 * rng.standard_normal(n) + shift * 40
    elif kind == 'negative':
        scores = -np.abs(rng.standard_normal(n)) * 1e-3 + shift * 1e-3 - 5e-4
    elif kind == 'probability':  # MSP-like -max p: concentrated near -1
        scores = -(1.0 - rng.beta(0.5, 20, n) * (1 - 0.7 * labels) - labels * rng.beta(2, 5, n) * 0.5)
    elif kind == 'mixed_sign':  # both signs, magnitudes from ~1e-9 to ~1e6
        scores = np.sinh(5.0 * (rng.standard_normal(n) + shift)) * 1e-3
    else:
        raise KeyError(kind)
    return scores.astype(np.float32), labels


CASES = ('random', 'tied', 'heavy_tailed', 'energy', 'negative', 'probability', 'mixed_sign')


@pytest.fixture(scope='session')
def ref():
    return SimpleNamespace(
        reference=reference,
        fpr_first=fpr_first,
        fpr_nearest=fpr_nearest,
        best_f1=best_f1,
        make_case=make_case,
        CASES=CASES)


@pytest.fixture(params=CASES)
def case(request):
    """``(kind, scores, labels)`` for every awkward kind of score map."""
    scores, labels = make_case(request.param)
    return request.param, scores, labels
