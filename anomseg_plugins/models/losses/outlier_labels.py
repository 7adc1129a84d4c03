"""How pasted outlier pixels reach the losses: the reserved label ``outlier_index`` (default 254).

This module is the one place that documents the outlier label path of anomaly-aware training (outlier exposure);
:class:`~anomseg_plugins.datasets.transforms.PasteOutliers`, :class:`InlierLoss`, :class:`EnergyMarginLoss` and
:class:`OutlierEntropyLoss` refer to it.

Outlier exposure (Hendrycks et al., "Deep Anomaly Detection with Outlier Exposure", ICLR 2019) and its
segmentation descendants (energy-margin fine-tuning, Liu et al., NeurIPS 2020; Meta-OoD, Chan et al., ICCV 2021;
DenseHybrid, Grcic et al., ECCV 2022; PEBAL, Tian et al., ECCV 2022) paste outlier objects into training images
and add a loss on the pasted pixels. The losses must learn *which* pixels are outliers, but mmseg gives a loss
nothing but the label map: ``BaseDecodeHead.loss_by_feat`` calls every loss of ``loss_decode`` as
``loss(seg_logits, seg_label, weight=seg_weight, ignore_index=self.ignore_index)`` with the same ``seg_label``.

The path, end to end (no change to mmseg's heads or to anomseg's core):

1. ``PasteOutliers`` (train pipeline, after the crop) writes ``outlier_index`` into ``gt_seg_map`` on the pasted
   pixels. The value travels unchanged through flips, ``PhotoMetricDistortion`` / ``RandomGaussianBlur`` (image
   only), ``PackAnomalySegInputs`` (packs ``gt_seg_map`` as int64) and the data preprocessor (pads with 255), so it
   arrives in every head's ``seg_label`` exactly where pixels were pasted.
2. The outlier-exposure losses read it: ``label == outlier_index`` are the outlier pixels, ``label < C`` (``C`` =
   the logits' channel count) the inliers; ``ignore_index`` (255, padding, test anomalies) is neither.
3. Every closed-set loss is wrapped: ``InlierLoss(loss=dict(type='CrossEntropyLoss', ...))`` maps
   ``outlier_index`` to ``ignore_index`` before calling the wrapped mmseg loss, so outliers are never trained as
   a known class and ``F.cross_entropy`` never sees a label outside ``[0, C) + {ignore_index}`` (it would crash).
   Hence an OE config rewrites ``loss_decode`` of *every* head that sees labels (decode and auxiliary heads);
   ``configs/_base_/outlier_exposure/`` gives the lists.

Why a reserved label and not a separate data-sample field: ``loss_by_feat`` passes only ``seg_label`` to the
losses, so a separate field would need a custom head (one per model family); the label is carried by every
family's unmodified head. 254 is free: StreetHazards trains on 0..12 and ignores 255; a dataset whose classes
reach 254 sets another ``outlier_index`` in the transform and the losses alike.

What still sees 254, and why it is harmless: mmseg's logged ``acc_seg`` (``accuracy(..., ignore_index=255)``)
counts outlier pixels as misclassified, so it reads a little lower than in closed-set training; nothing is
optimised on it. An OHEM ``sampler`` in a head would treat outliers as ordinary pixels (do not combine them).
Validation and test never see 254: ``PasteOutliers`` belongs only in ``train_pipeline`` and ``IoUMetric`` reads
the val/test pipelines' untouched labels (the OE configs' tests check both).
"""
from torch import Tensor

#: Label value of pasted outlier pixels in ``gt_seg_map`` (mmseg ignores 255; 254 is free on StreetHazards).
OUTLIER_INDEX = 254


def outlier_mask(label: Tensor, outlier_index: int = OUTLIER_INDEX) -> Tensor:
    """Boolean map of the outlier pixels (``label == outlier_index``)."""
    return label == outlier_index


def inlier_mask(label: Tensor, num_classes: int) -> Tensor:
    """Boolean map of the known-class pixels (``0 <= label < num_classes``; excludes ignore and outliers)."""
    return (label >= 0) & (label < num_classes)


def check_outlier_index(outlier_index: int, owner: str) -> int:
    """Validate ``outlier_index`` (a non-negative int below 255, mmseg's ignore value) for ``owner``."""
    if not isinstance(outlier_index, int) or not 0 <= outlier_index < 255:
        raise ValueError(f'{owner}: outlier_index must be an int in 0..254 (255 is mmseg\'s ignore_index), got '
                         f'{outlier_index!r}')
    return outlier_index


def check_loss_name(loss_name: str, owner: str) -> str:
    """Validate ``loss_name`` for ``owner``: mmseg only optimises the log entries whose key starts with ``loss_``."""
    if not isinstance(loss_name, str) or not loss_name.startswith('loss_'):
        raise ValueError(f"{owner}: loss_name must start with 'loss_' for mmseg to optimise it, got {loss_name!r}")
    return loss_name
