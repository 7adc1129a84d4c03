# StreetHazards, headline augmentation (README "Configs"): multi-scale square crop (s in [0.5, 2],
# side 512*s, never padded, resized to 512), horizontal flip, colour jitter, Gaussian blur.
# Scale: a crop shows 512 / (512 * s) output pixels per frame pixel, the native 1.0 at the nominal s = 1, and the
# test runs on the native frame (img_scale = the 1280x720 frame), so train and test agree at s = 1. The square never
# exceeds the 720-pixel frame height, so s is effectively in [0.5, 1.41] (~40% of the draws sit on the cap; the
# transform records `effective_crop_scale`). tests/test_configs/test_train_test_scale.py checks every config.
dataset_type = 'StreetHazardsDataset'
data_root = 'data/streethazards'
crop_size = (512, 512)
img_scale = (1280, 720)
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
# the one test-time resize: test_pipeline and every tta_pipeline branch start from it
test_resize = dict(type='Resize', scale=img_scale, keep_ratio=True)

train_pipeline = [
    dict(type='LoadImageFromFileWithRetry'),
    dict(type='LoadStreetHazardsAnnotations'),
    dict(type='MultiScaleSquareCrop', output_size=crop_size, scale_range=(0.5, 2.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='PhotoMetricDistortion',
        brightness_delta=32,
        contrast_range=(0.7, 1.3),
        saturation_range=(0.7, 1.3),
        hue_delta=9),
    dict(type='RandomGaussianBlur', prob=0.5),
    dict(type='PackAnomalySegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFileWithRetry'),
    test_resize,
    # annotations after Resize: ground truth stays at the original resolution (mmseg resizes the logits back to it)
    dict(type='LoadStreetHazardsAnnotations'),
    dict(type='PackAnomalySegInputs'),
]
# `tools/test.py --tta` (with the tta_model of ../default_runtime.py, which averages logits): mmseg's flip x
# multi-scale TTA, every view a ratio of the test scale (ratio 1.0 = test_pipeline).
tta_pipeline = [
    dict(type='LoadImageFromFileWithRetry'),
    dict(
        type='TestTimeAug',
        transforms=[
            [test_resize],
            [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in img_ratios],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ],
            [dict(type='LoadStreetHazardsAnnotations')],
            [dict(type='PackAnomalySegInputs')],
        ]),
]

train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='train/images/training', seg_map_path='train/annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='train/images/validation', seg_map_path='train/annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='test/images/test', seg_map_path='test/annotations/test'),
        pipeline=test_pipeline))
# closed-set mIoU over the 13 known classes; anomaly pixels are 255 in gt_sem_seg and ignored
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
