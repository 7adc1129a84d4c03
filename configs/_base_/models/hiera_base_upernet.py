# Hiera-Base (Ryali et al., ICML 2023) from timm through mmseg's TIMMBackbone: four stages of 96/192/384/768
# channels at strides 4/8/16/32, the widths of Swin-T, so mmseg's UPerNet-Swin heads fit as they are:
# UPerHead on all four stages + FCN aux head on stage 3 (in_index 2, loss weight 0.4).
# Hiera fixes its token layout when built: img_size (h, w) must be the input size, both sides multiples of 32.
_base_ = ['mmseg::_base_/models/upernet_swin.py']
# GroupNorm in the heads: with one image per GPU, BN cannot normalise UPerHead's 1x1 global-pooling branch.
norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True,
        type='TIMMBackbone',
        model_name='hiera_base_224',
        features_only=True,
        out_indices=(0, 1, 2, 3),
        pretrained=False,  # nothing is downloaded; ImageNet weights: see configs/hiera/
        img_size=(224, 224)),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg))
