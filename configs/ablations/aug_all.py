# Ablation of the headline recipe: every augmentation (multi-scale crop, flip, jitter, blur) = the headline pipeline,
# spelled out.
_base_ = ['../deeplab_r50_multiscale.py']
train_pipeline = [
    dict(type='LoadImageFromFileWithRetry'),
    dict(type='LoadStreetHazardsAnnotations'),
    dict(type='MultiScaleSquareCrop', output_size=(512, 512), scale_range=(0.5, 2.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion', brightness_delta=32, contrast_range=(0.7, 1.3),
         saturation_range=(0.7, 1.3), hue_delta=9),
    dict(type='RandomGaussianBlur', prob=0.5),
    dict(type='PackAnomalySegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
