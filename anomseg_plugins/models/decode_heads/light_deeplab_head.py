"""Lightweight DeepLabV3+ head with a two-stage (stride 8, then stride 4) decoder."""
from typing import Sequence, Tuple

import torch
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
class LightDeepLabHead(BaseDecodeHead):
    """Lightweight DeepLab head: a slim ASPP plus a decoder that fuses stride-8 *and* stride-4 features.

    It reproduces the "Lightweight DeepLab" of the study behind anomseg (README "Configs": Pascal VOC, 6.83M ->
    2.52M parameters with a MobileNetV2 backbone). It is DeepLabV3+ (`Chen et al., ECCV 2018
    <https://arxiv.org/abs/1802.02611>`_, mmseg ``DepthwiseSeparableASPPHead``) slimmed down: ``channels``
    = 128 instead of 512 throughout, depthwise-separable atrous branches, a 1x1 ASPP projection (as in the
    DeepLabV3 paper; mmseg uses a dense 3x3 there) and 32-channel skip projections. Dense 3x3 atrous
    branches alone would add ~1M parameters (320 -> 128 channels, three rates) and break the 2.6M budget.
    In exchange the decoder fuses two skip levels instead of one::

        high (stride 16) --ASPP--> a = 1x1 proj( [pool, 1x1, sep3x3@d1, sep3x3@d2, sep3x3@d3] )  (channels)
        mid  (stride 8)  --1x1-->  m (mid_channels)
        low  (stride 4)  --1x1-->  l (low_channels)
        y8 = sep3x3( [up(a, stride 8)  ++ m] )                                           (channels)
        y4 = sep3x3( [up(y8, stride 4) ++ l] )                                           (channels)
        logits = conv_seg(dropout(y4))                    (N, num_classes, H/4, W/4) for a stride-4 low level

    ``pool`` is image pooling (global average -> 1x1 ConvModule -> broadcast), ``sep3x3@d`` a depthwise 3x3
    with dilation ``d`` followed by a pointwise 1x1 (mmcv ``DepthwiseSeparableConvModule``), every conv
    is followed by norm and activation, ``up`` is bilinear resizing and ``++`` channel concatenation.
    Dropout (``dropout_ratio``, 0.1 by default) acts before the classifier as in every mmseg head.

    Args:
        dilations: dilation rates of the separable 3x3 ASPP branches (a plain 1x1 branch and image
            pooling are always added). Default ``(6, 12, 18)``: the DeepLabV3 rates for output stride 16.
        low_channels: channels of the projected low-level (stride 4) skip. Default 32.
        mid_channels: channels of the projected mid-level (stride 8) skip. Default 32.
        in_channels: the three input channels in the order ``(low, mid, high)``.
        in_index: the backbone outputs used as ``(low, mid, high)``; which stage plays which role is set
            here. Requires ``input_transform='multiple_select'`` (the default of this head).
        channels: width of the ASPP and of both decoder stages. Default 128 as in the study.
        **kwargs: the remaining :class:`BaseDecodeHead` arguments (``num_classes``, ``dropout_ratio``,
            ``norm_cfg``, ``loss_decode``, ...).

    Inputs: the backbone's tuple of feature maps; the selected ones are ``(N, C_low, H/4, W/4)``,
    ``(N, C_mid, H/8, W/8)`` and ``(N, C_high, H/s, W/s)`` (any ``s``, typically 16). Output of ``forward``:
    ``(N, num_classes, h_low, w_low)`` logits at the low-level resolution.

    Example (mmseg MobileNetV2, output stride 16: 2,160,149 parameters in total for 21 classes, of which
    348,437 in this head)::

        backbone=dict(type='MobileNetV2', widen_factor=1., strides=(1, 2, 2, 2, 1, 1, 1),
                      dilations=(1, 1, 1, 1, 1, 2, 2), out_indices=(1, 2, 6)),
        decode_head=dict(type='LightDeepLabHead', in_channels=(24, 32, 320), in_index=(0, 1, 2),
                         channels=128, dilations=(6, 12, 18), num_classes=21, ...)
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: int,
                 *,
                 dilations: Sequence[int] = (6, 12, 18),
                 low_channels: int = 32,
                 mid_channels: int = 32,
                 in_index: Sequence[int] = (0, 1, 2),
                 input_transform: str = 'multiple_select',
                 **kwargs) -> None:
        name = type(self).__name__
        if (input_transform != 'multiple_select' or not isinstance(in_channels, (list, tuple))
                or not isinstance(in_index, (list, tuple)) or len(in_channels) != 3 or len(in_index) != 3):
            raise ValueError(f'{name} needs three inputs (low, mid, high) with input_transform=\'multiple_select\'; '
                             f'got input_transform={input_transform!r}, in_channels={in_channels!r}, '
                             f'in_index={in_index!r}. Set both to 3-element lists, e.g. in_channels=(24, 32, 320), '
                             'in_index=(0, 1, 2).')
        if not isinstance(dilations, (list, tuple)) or not all(int(d) > 1 for d in dilations):
            raise ValueError(f'{name}: dilations must be a list of rates > 1 for the separable 3x3 ASPP '
                             f'branches (the 1x1 branch is built in); got {dilations!r}')
        super().__init__(in_channels, channels, in_index=in_index, input_transform=input_transform, **kwargs)
        self.dilations = tuple(int(d) for d in dilations)
        low_in, mid_in, high_in = self.in_channels
        conv_kw = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        sep_kw = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)

        # ASPP on the high-level features.
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), ConvModule(high_in, self.channels, 1, **conv_kw))
        self.aspp_modules = nn.ModuleList([ConvModule(high_in, self.channels, 1, **conv_kw)])
        for dilation in self.dilations:
            self.aspp_modules.append(
                DepthwiseSeparableConvModule(high_in, self.channels, 3, padding=dilation, dilation=dilation, **sep_kw))
        self.aspp_project = ConvModule((len(self.dilations) + 2) * self.channels, self.channels, 1, **conv_kw)

        # Skip projections.
        self.mid_project = ConvModule(mid_in, mid_channels, 1, **conv_kw)
        self.low_project = ConvModule(low_in, low_channels, 1, **conv_kw)

        # Two-stage decoder.
        self.mid_fuse = DepthwiseSeparableConvModule(
            self.channels + mid_channels, self.channels, 3, padding=1, **sep_kw)
        self.low_fuse = DepthwiseSeparableConvModule(
            self.channels + low_channels, self.channels, 3, padding=1, **sep_kw)

    def _aspp(self, x: Tensor) -> Tensor:
        """ASPP of the high-level map: ``(N, C_high, h, w) -> (N, channels, h, w)``."""
        pooled = resize(self.image_pool(x), size=x.shape[2:], mode='bilinear', align_corners=self.align_corners)
        outs = [pooled] + [branch(x) for branch in self.aspp_modules]
        return self.aspp_project(torch.cat(outs, dim=1))

    def _fuse(self, x: Tensor, skip: Tensor, fuse: nn.Module) -> Tensor:
        """Upsample ``x`` to ``skip``'s size, concatenate and apply the separable 3x3 ``fuse``."""
        x = resize(x, size=skip.shape[2:], mode='bilinear', align_corners=self.align_corners)
        return fuse(torch.cat([x, skip], dim=1))

    def _forward_feature(self, inputs: Tuple[Tensor, ...]) -> Tensor:
        """Decoder features before the classifier: ``(N, channels, h_low, w_low)``."""
        low, mid, high = self._transform_inputs(inputs)
        x = self._aspp(high)
        x = self._fuse(x, self.mid_project(mid), self.mid_fuse)
        x = self._fuse(x, self.low_project(low), self.low_fuse)
        return x

    def forward(self, inputs: Tuple[Tensor, ...]) -> Tensor:
        """Segmentation logits ``(N, num_classes, h_low, w_low)``."""
        return self.cls_seg(self._forward_feature(inputs))

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, dilations={self.dilations}'
