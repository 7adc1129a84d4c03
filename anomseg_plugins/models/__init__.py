"""Model components (decode heads, losses) registered in mmseg's ``MODELS`` registry."""
from .decode_heads import LightDeepLabHead
from .losses import SoftmaxFocalLoss, softmax_focal_loss
from .segmentors import AnchoredEncoderDecoder, LogitSegTTAModel

__all__ = ['AnchoredEncoderDecoder', 'LightDeepLabHead', 'LogitSegTTAModel', 'SoftmaxFocalLoss', 'softmax_focal_loss']
