import numpy as np
import torch

from anomseg_plugins.scorers import MaxLogit


def test_max_logit_values_against_numpy():
    logits = torch.randn(2, 4, 3, 5, generator=torch.Generator().manual_seed(1)) * 4
    out = MaxLogit().score(logits)
    assert out.shape == (2, 3, 5) and out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy(), -logits.numpy().max(1))


def test_max_logit_ranks_weak_pixel_above_strong_one():
    # same softmax (shift invariant) but pixel 1 has much weaker logits: only MaxLogit tells them apart
    strong = torch.tensor([10.0, 8.0, 8.0])
    logits = torch.stack([strong, strong - 9.0], dim=1).view(1, 3, 1, 2)
    out = MaxLogit().score(logits)[0, 0]
    assert out.tolist() == [-10.0, -1.0]
    assert out[1] > out[0]


def test_max_logit_casts_half_to_float32():
    out = MaxLogit().score(torch.ones(1, 2, 2, 2, dtype=torch.float16))
    assert out.dtype == torch.float32
