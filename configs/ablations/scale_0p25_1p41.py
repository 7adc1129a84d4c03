# Ablation of the headline recipe: the multi-scale crop's scale range. The name is the *effective* range on a
# 1280x720 frame, [0.25, 1.41]: scale_range=(0.25, 2.0) is requested, but the square is clamped to the 720-pixel
# frame height, so 34% of the draws sit on the cap 720/512 = 1.41 (headline: (0.5, 2.0) -> [0.5, 1.41], 40%).
# Magnification and context move together: 128..720-pixel windows, 4..0.71 output pixels per frame pixel.
# MultiScaleSquareCrop(keep_scale=True) would reach the requested range; the transform records both scales.
_base_ = ['../deeplab_r50_multiscale.py']
train_pipeline = [
    dict(type='LoadImageFromFileWithRetry'),
    dict(type='LoadStreetHazardsAnnotations'),
    dict(type='MultiScaleSquareCrop', output_size=(512, 512), scale_range=(0.25, 2.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion', brightness_delta=32, contrast_range=(0.7, 1.3),
         saturation_range=(0.7, 1.3), hue_delta=9),
    dict(type='RandomGaussianBlur', prob=0.5),
    dict(type='PackAnomalySegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
