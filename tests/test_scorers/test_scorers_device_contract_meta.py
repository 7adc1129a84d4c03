"""Fitted statistics follow the input's device: a scorer fitted on the CPU scores inputs on another device and
returns the map on that device, with the shape and dtype of the contract. Checked with PyTorch's ``meta`` device
(tensors with a device, shape and dtype but no data), so it runs without a GPU; the value comparison across real
devices is ``test_scorers_across_devices.py`` (CUDA only).

Meta is laxer than a real accelerator about mixed devices (``cpu_tensor @ meta_tensor``,
``cpu_tensor[meta_index]`` and ``cpu_tensor += meta_tensor`` raise no error there), and it has no data to answer
``.item()``. ``AcceleratorDeviceRules`` restores what CUDA enforces: every tensor operand of an op on one device,
CPU 0-dim tensors (scalars) and copies excepted; and it answers ``.item()`` of a meta tensor with 0 (used by HEAT's
"running statistics not set yet?" test, where the CPU image scored before has set them).
"""
import pytest
import torch
from test_scorers_across_devices import CASES, batch, fitted
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from anomseg_plugins.scorers import HEAT

aten = torch.ops.aten
CROSS_DEVICE_OPS = {aten._to_copy.default, aten.copy_.default}


class AcceleratorDeviceRules(TorchDispatchMode):
    """Raise, as CUDA does, when an op mixes devices (CPU 0-dim tensors and copies excepted)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        if func is aten._local_scalar_dense.default and tensors[0].is_meta:
            return 0  # no data on meta; see the module docstring
        if func not in CROSS_DEVICE_OPS:
            devices = {str(t.device) for t in tensors if not (t.device.type == 'cpu' and t.dim() == 0)}
            if len(devices) > 1:
                raise RuntimeError(f'{func} mixes devices {sorted(devices)}')
        return func(*args, **kwargs)


def test_device_rules_refuse_what_meta_lets_through():
    cpu, meta = torch.ones(3, 3), torch.ones(3, 3, device='meta')
    with AcceleratorDeviceRules():
        assert (meta - torch.tensor(1.0)).is_meta  # a CPU scalar is fine, as on CUDA
        for op in (lambda: cpu @ meta, lambda: cpu.add_(meta),
                   lambda: cpu[torch.zeros(2, dtype=torch.long, device='meta')]):
            with pytest.raises(RuntimeError, match='mixes devices'):
                op()


@pytest.mark.parametrize('device_rules', [False, True], ids=['meta', 'meta+accelerator_rules'])
@pytest.mark.parametrize('name', sorted(CASES))
def test_scorer_fitted_on_cpu_scores_meta_inputs_on_meta(name, device_rules):
    scorer = fitted(CASES[name])
    logits, feats, _ = batch(2, 'meta')
    if device_rules:
        with AcceleratorDeviceRules():
            out = scorer.score(logits, feats)
    else:
        out = scorer.score(logits, feats)
    assert out.device.type == 'meta'
    assert out.shape == (2, 4, 4) and out.dtype == torch.float32


@pytest.mark.parametrize('feature_stage', [None, 1])
def test_heat_running_statistics_follow_the_images_to_meta(feature_stage):
    heat = HEAT(feature_stage=feature_stage)
    logits, feats, _ = batch(3)
    heat.score(logits[:1], [None, feats[1][:1]])  # sets the running statistics, on the CPU
    assert heat._running.device.type == 'cpu'
    logits, feats, _ = batch(4, 'meta')
    with AcceleratorDeviceRules():
        out = heat.score(logits[:1], [None, feats[1][:1]])
    assert out.device.type == 'meta'
    assert out.shape == (1, 4, 4) and out.dtype == torch.float32
    assert heat._running.device.type == 'meta'
