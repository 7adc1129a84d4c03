"""Decode heads registered in mmseg's ``MODELS``."""
from .light_deeplab_head import LightDeepLabHead

__all__ = ['LightDeepLabHead']
