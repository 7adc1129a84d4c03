"""Utilities of anomseg."""
from .safe_checkpoint import (CHECKPOINT_GLOBALS, allow_checkpoint_globals, install_safe_checkpoint_loading,
                              safe_torch_load)
from .tool_config import load_tool_config

__all__ = ['CHECKPOINT_GLOBALS', 'allow_checkpoint_globals', 'install_safe_checkpoint_loading', 'safe_torch_load',
           'load_tool_config']
