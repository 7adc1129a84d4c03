# Cityscapes demo model: the demo recipe (configs/demo/deeplab_r18_tiny_demo.py: the headline DeepLabV3+ shrunk to R18
# at 1/4 width, 256 crops, Adam 2e-3) trained on the 19 Cityscapes classes of the generated Cityscapes-layout set
# (tools/dataset/generate_road_anomaly_sets.py --out data/road_anomaly_demo: 48 train / 16 val frames at 512x256,
# mmseg's CityscapesDataset with the labelTrainIds maps), the model the four road-anomaly benchmarks test
# (deeplab_r18_tiny_cityscapes_demo_road_anomaly.py). Only the data, the classes and the schedule change.
_base_ = ['../demo/deeplab_r18_tiny_demo.py']

data_root = 'data/road_anomaly_demo/cityscapes'
num_classes = 19
crop_size = (256, 256)
# test on the native generated frame, as the demo does: the 256*s crops are clamped to the 256-pixel frame height,
# so s is effectively in [0.5, 1] and s = 1 shows the frame at its own scale
img_scale = (512, 256)
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
test_resize = dict(type='Resize', scale=img_scale, keep_ratio=True)
model = dict(decode_head=dict(num_classes=num_classes), auxiliary_head=dict(num_classes=num_classes))

# the demo pipelines with mmseg's LoadAnnotations (Cityscapes train ids) instead of the StreetHazards loader
train_pipeline = [
    dict(type='LoadAnnotations') if t.type == 'LoadStreetHazardsAnnotations' else t for t in _base_.train_pipeline
]
test_pipeline = [
    dict(type='LoadImageFromFileWithRetry'),
    test_resize,
    # after Resize: the ground truth stays at the original resolution (mmseg resizes the logits back to it)
    dict(type='LoadAnnotations'),
    dict(type='PackAnomalySegInputs'),
]
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
            [dict(type='LoadAnnotations')],
            [dict(type='PackAnomalySegInputs')],
        ]),
]
cityscapes_dataset = dict(type='CityscapesDataset', data_root=data_root)
train_dataloader = dict(
    dataset=dict(
        cityscapes_dataset,
        _delete_=True,
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        cityscapes_dataset,
        _delete_=True,
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
test_dataloader = dict(
    dataset=dict(
        cityscapes_dataset,
        _delete_=True,
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
# 48 frames / batch 4 = 12 iterations per epoch; 40 epochs took 25 min on the shared 2-core machine (load 3-5)
train_cfg = dict(max_epochs=40, val_interval=10)
default_hooks = dict(checkpoint=dict(interval=10))
