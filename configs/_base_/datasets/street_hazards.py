# StreetHazards, headline augmentation (SPEC section 2): multi-scale square crop (s in [0.5, 2],
# side 512*s, never padded, resized to 512), horizontal flip, colour jitter, Gaussian blur.
dataset_type = 'StreetHazardsDataset'
data_root = 'data/streethazards'
crop_size = (512, 512)
img_scale = (1280, 720)

train_pipeline = [
    dict(type='LoadImageFromFileWithRetry'),
    dict(type='LoadStreetHazardsAnnotations'),
    dict(type='MultiScaleSquareCrop', output_size=crop_size, scale_range=(0.5, 2.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion', brightness_delta=32, contrast_range=(0.7, 1.3),
         saturation_range=(0.7, 1.3), hue_delta=9),
    dict(type='RandomGaussianBlur', prob=0.5),
    dict(type='PackAnomalySegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFileWithRetry'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    # annotations after Resize: ground truth stays at the original resolution
    dict(type='LoadStreetHazardsAnnotations'),
    dict(type='PackAnomalySegInputs'),
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
