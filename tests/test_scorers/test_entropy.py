import numpy as np
import pytest
import torch

from anomseg_plugins.scorers import Entropy


def test_entropy_values_against_numpy():
    logits = torch.randn(1, 5, 4, 4, generator=torch.Generator().manual_seed(3)) * 2
    z = logits.numpy().astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    out = Entropy().score(logits)
    assert out.shape == (1, 4, 4) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), -(p * np.log(p)).sum(1), rtol=1e-5, atol=1e-6)


def test_entropy_range_and_order():
    logits = torch.tensor([[1000.0, 2.0], [0.0, 2.0], [0.0, 2.0], [0.0, 2.0]]).view(1, 4, 1, 2)
    out = Entropy().score(logits)[0, 0]
    assert torch.isfinite(out).all()
    assert out[0].item() == pytest.approx(0.0, abs=1e-6)  # saturated softmax: 0 log 0 = 0, no NaN
    assert out[1].item() == pytest.approx(np.log(4), rel=1e-6)  # uniform: log C
    assert out[1] > out[0]
