import numpy as np
import pytest
import torch

from anomseg_plugins.scorers import MSP


def test_msp_values_against_numpy():
    logits = torch.randn(2, 5, 4, 3, generator=torch.Generator().manual_seed(0)) * 3
    z = logits.numpy().astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    out = MSP(log_space=False).score(logits)
    assert out.shape == (2, 4, 3) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), -p.max(1), rtol=1e-6, atol=1e-7)
    log_out = MSP().score(logits)
    np.testing.assert_allclose(log_out.numpy(), -np.log(p.max(1)), rtol=1e-5, atol=1e-6)


def test_msp_log_space_keeps_confident_pixels_apart():
    # max p = 1 - ~2e-9 and 1 - ~2e-10: equal to 1.0 in float32 probability space, distinct in log space
    logits = torch.tensor([[20.0, 22.3], [0.0, 0.0]]).view(1, 2, 1, 2)
    prob_space = MSP(log_space=False).score(logits)[0, 0]
    log_space = MSP().score(logits)[0, 0]
    assert prob_space[0] == prob_space[1] == -1.0
    assert log_space[0] > log_space[1] > 0


def test_msp_flat_pixel_scores_higher_than_peaked():
    logits = torch.tensor([[5.0, 1.0], [0.0, 1.0], [0.0, 1.0]]).view(1, 3, 1, 2)  # pixel 0 peaked, pixel 1 flat
    out = MSP(log_space=False).score(logits)[0, 0]
    assert out[1].item() == pytest.approx(-1 / 3)
    assert out[0].item() == pytest.approx(-np.exp(5) / (np.exp(5) + 2))
    assert out[1] > out[0]
    log_out = MSP().score(logits)[0, 0]
    assert log_out[1].item() == pytest.approx(np.log(3)) and log_out[1] > log_out[0]


def test_msp_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r'\(N, C, H, W\)'):
        MSP().score(torch.zeros(3, 4, 4))
