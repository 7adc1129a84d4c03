"""Segmentor wrappers registered in mmseg's ``MODELS``."""
from .anchored_encoder_decoder import AnchoredEncoderDecoder, anchor_kl
from .logit_seg_tta_model import LogitSegTTAModel

__all__ = ['AnchoredEncoderDecoder', 'LogitSegTTAModel', 'anchor_kl']
