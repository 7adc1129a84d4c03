"""Utilities of anomseg: safe checkpoints and their fit to the model, tool config handling and pre-flight checks,
CPU distributed set-up."""
from .checkpoint_fit import (CheckpointFit, CheckpointMismatchError, check_checkpoint_fits, compare_checkpoint,
                             load_checkpoint_exact)
from .config_checks import ConfigError, check_config, mode_dataloaders
from .dist_env import replace_sync_bn, setup_cpu_distributed
from .preflight import prepare_tool_run
from .safe_checkpoint import (CHECKPOINT_GLOBALS, allow_checkpoint_globals, install_safe_checkpoint_loading,
                              safe_torch_load)
from .tool_config import load_tool_config

__all__ = [
    'CHECKPOINT_GLOBALS', 'allow_checkpoint_globals', 'install_safe_checkpoint_loading', 'safe_torch_load',
    'load_tool_config', 'ConfigError', 'check_config', 'mode_dataloaders', 'replace_sync_bn', 'setup_cpu_distributed',
    'prepare_tool_run', 'CheckpointFit', 'CheckpointMismatchError', 'check_checkpoint_fits', 'compare_checkpoint',
    'load_checkpoint_exact'
]
