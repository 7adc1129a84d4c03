# Ablation of the headline recipe: the multi-scale crop's scale range. The name is the *effective* range on a
# 1280x720 frame, [1.0, 1.41]: scale_range=(1.0, 2.0) is requested, but the square is clamped to the 720-pixel
# frame height, so 59% of the draws sit on the cap 720/512 = 1.41 (headline: (0.5, 2.0) -> [0.5, 1.41], 40%).
# Magnification and context move together: 512..720-pixel windows, 1..0.71 output pixels per frame pixel.
# MultiScaleSquareCrop(keep_scale=True) would reach the requested range; the transform records both scales.
_base_ = ['../deeplabv3plus/deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py']
# the headline pipeline with the crop's scale_range changed
train_pipeline = [
    dict(t, scale_range=(1.0, 2.0)) if t.type == 'MultiScaleSquareCrop' else t for t in _base_.train_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
