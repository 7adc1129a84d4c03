# Ablation of the headline recipe: crop size 640 (headline: 512). Crop output and base_size are both 640: at a given
# s a crop shows 1/s output pixels per frame pixel (native at s = 1, so the test on the native frame stays right);
# what varies is the *context*, a 640*s-pixel window (320..720 on 1280x720), and through the clamp of the square to
# the 720-pixel frame height the cap s <= 720/640 = 1.125: effective scale [0.5, 1.13], 58% of the draws on the cap,
# magnification >= 0.89. (It was named resolution_640.)
_base_ = ['../deeplab_r50_multiscale.py']
crop_size = (640, 640)
model = dict(data_preprocessor=dict(size=crop_size))
train_pipeline = [
    dict(type='LoadImageFromFileWithRetry'),
    dict(type='LoadStreetHazardsAnnotations'),
    dict(type='MultiScaleSquareCrop', output_size=crop_size, base_size=640, scale_range=(0.5, 2.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion', brightness_delta=32, contrast_range=(0.7, 1.3),
         saturation_range=(0.7, 1.3), hue_delta=9),
    dict(type='RandomGaussianBlur', prob=0.5),
    dict(type='PackAnomalySegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
