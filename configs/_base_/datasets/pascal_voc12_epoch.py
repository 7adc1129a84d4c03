# mmseg's Pascal VOC 2012 (21 classes, 512x512 crops) with an epoch sampler, as the lightweight-DeepLab study trained.
# Scale: RandomResize trains around the fit into 2048x512 (x1.37 on a 500x375 image at ratio 1) and the test resizes
# to that fit; mmseg's own tta_pipeline rescales the *original* image instead (its ratio 1.0 is x1, not the test
# scale), so here one `test_resize` starts the test pipeline and every TTA view.
_base_ = ['mmseg::_base_/datasets/pascal_voc12.py']
img_scale = (2048, 512)
test_resize = dict(type='Resize', scale=img_scale, keep_ratio=True)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    test_resize,
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [test_resize],
            [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in _base_.img_ratios],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ]),
]
train_dataloader = dict(sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
