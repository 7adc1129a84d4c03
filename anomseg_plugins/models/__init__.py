"""Model components (decode heads, losses) registered in mmseg's ``MODELS`` registry."""
from .decode_heads import LightDeepLabHead
from .losses import SoftmaxFocalLoss, softmax_focal_loss
from .segmentors import LogitSegTTAModel

__all__ = ['LightDeepLabHead', 'LogitSegTTAModel', 'SoftmaxFocalLoss', 'softmax_focal_loss']
