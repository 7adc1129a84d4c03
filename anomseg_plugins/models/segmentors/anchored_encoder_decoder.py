"""An EncoderDecoder that keeps its known-class predictions close to those of the model it was fine-tuned from.

Outlier-exposure fine-tuning (:mod:`anomseg_plugins.models.losses.outlier_labels`) teaches a closed-set model to
be uncertain on pasted objects; on a small model it also moves the known-class decisions, and the closed-set
mIoU drops (on the demo model by ~2.5 points against the base and ~8 against a fine-tune without pastes). The
usual remedy is to distil the closed-set model into the fine-tuned one on the inlier pixels (knowledge
distillation, Hinton et al., "Distilling the Knowledge in a Neural Network", 2015; used to keep closed-set
accuracy while learning to flag anomalies in e.g. Liu et al., "Residual Pattern Learning for Pixel-wise
Out-of-Distribution Detection in Semantic Segmentation", ICCV 2023, https://github.com/yyliu01/RPL). Here the
closed-set model is the model itself as it was when fine-tuning started: no second config or checkpoint path.
"""
import copy
from typing import List, Optional

import torch
import torch.nn.functional as F
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from torch import Tensor, nn

from ..losses.outlier_labels import check_loss_name, inlier_mask


def anchor_kl(student: Tensor, anchor: Tensor, label: Tensor, temperature: float = 1.0) -> Tensor:
    """Mean over inlier pixels of ``T^2 * KL(softmax(anchor / T) || softmax(student / T))``.

    Args:
        student: (N, C, H, W) logits being trained.
        anchor: (N, C, H, W) logits of the frozen closed-set model (no gradient flows into them).
        label: (N, H, W) labels; inliers are ``0 <= label < C`` (ignore 255 and outliers 254 are skipped).
        temperature: softmax temperature ``T``; the ``T^2`` factor keeps the gradient scale independent of ``T``.

    Returns:
        A scalar; zero (with a gradient path) when the batch has no inlier pixel.
    """
    if student.shape != anchor.shape:
        raise ValueError(f'anchor_kl: student logits {tuple(student.shape)} and anchor logits {tuple(anchor.shape)} '
                         f'differ; both must come from the same decode head')
    log_p_s = F.log_softmax(student / temperature, dim=1)
    log_p_t = F.log_softmax(anchor.detach() / temperature, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1) * temperature**2
    mask = inlier_mask(label, student.shape[1])
    if not mask.any():
        return student.sum() * 0.0
    return kl[mask].mean()


@MODELS.register_module()
class AnchoredEncoderDecoder(EncoderDecoder):
    """mmseg's ``EncoderDecoder`` plus a distillation loss to a frozen snapshot of its own starting weights.

    At the first training step the backbone, neck and decode head are copied into ``anchor`` (frozen, always in
    eval mode). With ``load_from`` (fine-tuning from a closed-set checkpoint) that snapshot *is* the closed-set
    model. Every training step then adds ``decode.<loss_name>``: ``loss_weight *`` :func:`anchor_kl` between the
    decode head's logits and the anchor's on the inlier pixels, both resized to the label size as mmseg's
    ``loss_by_feat`` does. Only known-class labels count: pasted outliers (254) and ignore (255) are left out.

    The snapshot is kept in the checkpoint (``anchor.*`` and the ``anchor_ready`` flag), so ``--resume`` goes on
    distilling into the same closed-set model; a checkpoint without it (the closed-set one) starts a new snapshot.
    Inference (``predict`` / ``encode_decode``) is mmseg's and never runs the anchor.

    Args:
        anchor_weight: weight of the distillation loss (0 turns it off; the anchor is still built).
        anchor_temperature: softmax temperature of the distillation.
        anchor_loss_name: key of the loss in the log, must start with ``loss_``.
        **kwargs: mmseg ``EncoderDecoder`` arguments.
    """

    def __init__(self,
                 *args,
                 anchor_weight: float = 1.0,
                 anchor_temperature: float = 1.0,
                 anchor_loss_name: str = 'loss_anchor',
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if anchor_weight < 0:
            raise ValueError(f'AnchoredEncoderDecoder: anchor_weight must be >= 0, got {anchor_weight}')
        if anchor_temperature <= 0:
            raise ValueError(f'AnchoredEncoderDecoder: anchor_temperature must be > 0, got {anchor_temperature}')
        self.anchor_weight = float(anchor_weight)
        self.anchor_temperature = float(anchor_temperature)
        self.anchor_loss_name = check_loss_name(anchor_loss_name, 'AnchoredEncoderDecoder')
        self.anchor = nn.ModuleDict({name: copy.deepcopy(getattr(self, name)) for name in self._anchored_parts()})
        self.anchor.requires_grad_(False)
        self.register_buffer('anchor_ready', torch.zeros((), dtype=torch.uint8))
        self._anchor_logits: Optional[Tensor] = None

    def _anchored_parts(self) -> List[str]:
        return ['backbone'] + (['neck'] if self.with_neck else []) + ['decode_head']

    def train(self, mode: bool = True) -> 'AnchoredEncoderDecoder':
        """Switch train / eval mode; the anchor stays in eval mode (its BN statistics never move)."""
        super().train(mode)
        self.anchor.eval()
        return self

    @torch.no_grad()
    def snapshot_anchor(self) -> None:
        """Copy the current backbone / neck / decode head weights and buffers into the anchor."""
        for name in self._anchored_parts():
            self.anchor[name].load_state_dict(getattr(self, name).state_dict())
        self.anchor_ready.fill_(1)

    @torch.no_grad()
    def anchor_logits(self, inputs: Tensor) -> Tensor:
        """Decode-head logits of the anchor (the closed-set model) for a batch of preprocessed images."""
        x = self.anchor['backbone'](inputs)
        if self.with_neck:
            x = self.anchor['neck'](x)
        return self.anchor['decode_head'](x)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """mmseg's losses plus the distillation term (the anchor is snapshot here on the first call)."""
        if not bool(self.anchor_ready):
            self.snapshot_anchor()
        self._anchor_logits = self.anchor_logits(inputs) if self.anchor_weight > 0 else None
        try:
            return super().loss(inputs, data_samples)
        finally:
            self._anchor_logits = None

    def _decode_head_forward_train(self, inputs: List[Tensor], data_samples: SampleList) -> dict:
        """The decode head's own losses (as mmseg computes them) and, from the same logits, the distillation."""
        seg_logits = self.decode_head(inputs)
        losses = self.decode_head.loss_by_feat(seg_logits, data_samples)
        if self._anchor_logits is not None:
            label = torch.stack([s.gt_sem_seg.data for s in data_samples]).squeeze(1)
            size = label.shape[-2:]
            align = self.decode_head.align_corners
            student = resize(seg_logits, size=size, mode='bilinear', align_corners=align)
            anchor = resize(self._anchor_logits, size=size, mode='bilinear', align_corners=align)
            losses[self.anchor_loss_name] = self.anchor_weight * anchor_kl(student, anchor, label,
                                                                           self.anchor_temperature)
        return {f'decode.{k}': v for k, v in losses.items()}
