# Ablation of the headline recipe: multi-scale square crop only (scale_range (0.5, 2.0), effective [0.5, 1.41] on
# 1280x720: the square is clamped to the frame height), tested on the native frame as the headline.
_base_ = ['../deeplab_r50_multiscale.py']
train_pipeline = [
    dict(type='LoadImageFromFileWithRetry'),
    dict(type='LoadStreetHazardsAnnotations'),
    dict(type='MultiScaleSquareCrop', output_size=(512, 512), scale_range=(0.5, 2.0)),
    dict(type='PackAnomalySegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
