# SegFormer-B5: mmseg's MixVisionTransformer at B5 depth/width with the all-MLP head.
_base_ = ['mmseg::_base_/models/segformer_mit-b0.py']
model = dict(
    backbone=dict(embed_dims=64, num_heads=[1, 2, 5, 8], num_layers=[3, 6, 40, 3]),
    decode_head=dict(in_channels=[64, 128, 320, 512]))
