"""Reseed the random number generators at every training epoch, so that a resumed run repeats exactly."""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


def epoch_seed(seed: int, epoch: int) -> int:
    """The 32-bit seed of ``epoch`` for a run seeded with ``seed`` (numpy ``SeedSequence([seed, epoch])``)."""
    return int(np.random.SeedSequence([int(seed) % 2**32, int(epoch)]).generate_state(1)[0])


@HOOKS.register_module()
class PerEpochSeedHook(Hook):
    """Seed python's ``random``, numpy's global RNG and torch (CPU and CUDA) at the start of every epoch.

    mmengine's ``--resume`` restores weights, optimizer, LR schedulers, message hub and the epoch / iteration
    counters, but not the random number generators: a run resumed at epoch ``k`` draws other augmentations
    (crops, flips, jitter, blur) and other dropout masks than the uninterrupted run did, so the two end
    with different weights. With this hook the generators are set to ``epoch_seed(runner.seed, epoch)``
    in ``before_train_epoch``, a state that depends only on the seed and the epoch, not on what ran before
    (earlier epochs, validation, the resume itself). An interrupted run resumed from an epoch checkpoint
    then continues with exactly the random draws of the uninterrupted one.

    Exactness covers what runs in the training processes: augmentations with ``num_workers=0``, dropout and
    anything else drawn from the global generators, and DataLoader workers when they are started per
    epoch (``persistent_workers=False``: mmengine's ``worker_init_fn`` seeds them from the seed, the rank
    and the worker id). Persistent workers keep their own generators across epochs, which a restart
    cannot restore: their augmentations after a resume are equally random but not the same draws.
    ``diff_rank_seed`` is honoured through ``runner.seed`` (which then already holds the rank).

    Args:
        seed: base seed; ``None`` (default) uses ``runner.seed`` (the config's ``randomness.seed``).
    """

    priority = 'NORMAL'

    def __init__(self, seed: Optional[int] = None) -> None:
        self.seed = seed

    def before_train_epoch(self, runner) -> None:
        base = self.seed if self.seed is not None else runner.seed
        seed = epoch_seed(base, runner.epoch)
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)  # seeds every CUDA device too
