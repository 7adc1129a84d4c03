"""Segmentor wrappers registered in mmseg's ``MODELS``."""
from .logit_seg_tta_model import LogitSegTTAModel

__all__ = ['LogitSegTTAModel']
