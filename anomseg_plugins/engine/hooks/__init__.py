"""Hooks of anomseg (registered in mmseg's ``HOOKS``): the qualitative anomaly panels of a test run, and the
per-epoch reseeding that makes ``--resume`` continue a run's random stream."""
from .anomaly_panel_hook import AnomalyPanelHook
from .per_epoch_seed_hook import PerEpochSeedHook, epoch_seed

__all__ = ['AnomalyPanelHook', 'PerEpochSeedHook', 'epoch_seed']
