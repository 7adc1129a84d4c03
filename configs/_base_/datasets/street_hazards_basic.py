# StreetHazards, the study's baseline augmentation: resize to 512x512, flip, jitter(0.3, 0.3, 0.3).
# Scale: the whole frame is squashed to 512x512 (x0.4 across, x0.71 down on 1280x720) for training *and* for
# val/test/TTA, as the study trained and evaluated it: one `test_resize` serves every pipeline. Ground truth stays
# at the native resolution (annotations are loaded after Resize at test) and mmseg resizes the logits back to it
# (bilinear, in the segmentor's postprocess_result) before mIoU and the anomaly scorers.
_base_ = ['./street_hazards.py']

crop_size = (512, 512)
img_scale = crop_size
test_resize = dict(type='Resize', scale=img_scale, keep_ratio=False)
train_pipeline = [
    dict(type='LoadImageFromFileWithRetry'),
    dict(type='LoadStreetHazardsAnnotations'),
    test_resize,
    dict(type='RandomFlip', prob=0.5),
    # no hue jitter: mmseg's PhotoMetricDistortion crashes on hue_delta=0 (randint(-0, 0))
    dict(
        type='PhotoMetricDistortionNoHue', brightness_delta=32, contrast_range=(0.7, 1.3), saturation_range=(0.7, 1.3)),
    dict(type='PackAnomalySegInputs'),
]
test_pipeline = [test_resize if t.type == 'Resize' else t for t in _base_.test_pipeline]
# the base's flip x multi-scale TTA, its first branch (the test-time resize) replaced by this config's
tta_pipeline = [
    dict(t, transforms=[[test_resize]] + t.transforms[1:]) if t.type == 'TestTimeAug' else t
    for t in _base_.tta_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
