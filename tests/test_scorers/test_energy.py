import numpy as np
import pytest
import torch

from anomseg_plugins.scorers import Energy


@pytest.mark.parametrize('temperature', [1.0, 2.0, 2.5])
def test_energy_values_against_numpy(temperature):
    logits = torch.randn(2, 6, 3, 3, generator=torch.Generator().manual_seed(2)) * 5
    z = logits.numpy().astype(np.float64) / temperature
    m = z.max(1)
    expected = -temperature * (m + np.log(np.exp(z - m[:, None]).sum(1)))
    out = Energy(temperature=temperature).score(logits)
    assert out.shape == (2, 3, 3) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_energy_flat_pixel_scores_higher_and_small_t_tends_to_max_logit():
    logits = torch.tensor([[8.0, 1.0], [0.0, 1.0], [0.0, 1.0]]).view(1, 3, 1, 2)
    out = Energy().score(logits)[0, 0]
    assert out[1] > out[0]
    assert out[1].item() == pytest.approx(-(1 + np.log(3)))
    cold = Energy(temperature=1e-3).score(logits)
    np.testing.assert_allclose(cold.numpy(), -logits.amax(1).numpy(), atol=1e-2)


def test_energy_rejects_non_positive_temperature():
    with pytest.raises(ValueError, match='temperature must be > 0, got 0'):
        Energy(temperature=0)
