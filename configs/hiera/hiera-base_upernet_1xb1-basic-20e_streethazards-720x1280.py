# The study's full-resolution row (32.83 mIoU): Hiera-Base at 1280x720, basic augmentation (whole frame at
# 1280x720, flip, jitter(0.3, 0.3, 0.3)), batch 1, 20 epochs; tested on whole 1280x720 frames.
# Hiera needs both input sides to be multiples of 32 (4x4 patches, 8x8-patch mask units, three 2x poolings):
# frames are padded at the bottom to 1280x736 (label 255 there, ignored) in training and testing, and mmseg
# crops the padding off the predictions. The optimiser is not recorded for this row: AdamW as for SegFormer-B5.
_base_ = [
    '../_base_/models/hiera_base_upernet.py',
    '../_base_/datasets/street_hazards.py',  # val/test: whole frames at 1280x720 (its test_resize)
    '../_base_/default_runtime.py',
    '../_base_/schedules/adamw_plateau_40e.py',
]
input_size = (736, 1280)  # (h, w) after padding
train_pipeline = [
    dict(type='LoadImageFromFileWithRetry'),
    dict(type='LoadStreetHazardsAnnotations'),
    _base_.test_resize,
    dict(type='RandomFlip', prob=0.5),
    # no hue jitter: mmseg's PhotoMetricDistortion crashes on hue_delta=0 (randint(-0, 0))
    dict(
        type='PhotoMetricDistortionNoHue', brightness_delta=32, contrast_range=(0.7, 1.3), saturation_range=(0.7, 1.3)),
    dict(type='PackAnomalySegInputs'),
]
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
# --tta: the model's input is fixed, so views may only shrink the frame (then padded like it).
img_ratios = [0.5, 0.75, 1.0]
tta_pipeline = [
    dict(type='LoadImageFromFileWithRetry'),
    dict(
        type='TestTimeAug',
        transforms=[
            [_base_.test_resize],
            [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in img_ratios],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ],
            [dict(type='LoadStreetHazardsAnnotations')],
            [dict(type='PackAnomalySegInputs')],
        ]),
]
# ImageNet init (not downloadable here): convert timm's hiera_base_224 weights for this input size once
# (anomseg_plugins.utils.hiera_weights.convert_hiera_checkpoint: position embedding resampled to the 184x320
# patch grid, head dropped, keys checked), then set
#   model.backbone.init_cfg=dict(type='Pretrained', checkpoint='pretrain/hiera_base_224_736x1280.pth')
model = dict(
    data_preprocessor=dict(size=input_size, test_cfg=dict(size=input_size)),
    backbone=dict(img_size=input_size),
    decode_head=dict(num_classes=13),
    auxiliary_head=dict(num_classes=13))
train_cfg = dict(max_epochs=20)
