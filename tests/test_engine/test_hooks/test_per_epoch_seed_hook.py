"""PerEpochSeedHook: the generator state at an epoch start depends on (seed, epoch) only."""
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmseg.registry import HOOKS

from anomseg_plugins.engine.hooks.per_epoch_seed_hook import PerEpochSeedHook, epoch_seed


@pytest.fixture(autouse=True)
def keep_global_rng_state():
    """These tests reseed the global generators; give the other tests back the state they had."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    yield
    random.setstate(states[0])
    np.random.set_state(states[1])
    torch.set_rng_state(states[2])


def draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_state_at_epoch_start_ignores_history():
    hook = HOOKS.build(dict(type='PerEpochSeedHook'))
    runner = SimpleNamespace(seed=7, epoch=3)
    hook.before_train_epoch(runner)
    first = draws()
    for _ in range(5):  # whatever ran before (earlier epochs, validation, a restart) ...
        draws()
    hook.before_train_epoch(runner)
    assert draws() == first  # ... the epoch starts from the same state


def test_epochs_and_seeds_give_different_streams():
    hook = PerEpochSeedHook()
    streams = []
    for seed, epoch in [(7, 3), (7, 4), (8, 3)]:
        hook.before_train_epoch(SimpleNamespace(seed=seed, epoch=epoch))
        streams.append(draws())
    assert len(set(streams)) == 3
    assert epoch_seed(7, 3) == epoch_seed(7, 3) != epoch_seed(7, 4)


def test_explicit_seed_overrides_runner_seed():
    PerEpochSeedHook(seed=1).before_train_epoch(SimpleNamespace(seed=99, epoch=0))
    a = draws()
    PerEpochSeedHook().before_train_epoch(SimpleNamespace(seed=1, epoch=0))
    assert draws() == a
