# The study's schedule: Adam 1e-4, 40 epochs, LR x0.5 when val mIoU has not improved for 3 epochs
# (mmengine's ReduceOnPlateauLR), early stop after 8 epochs without improvement, best-mIoU checkpoint.
optimizer = dict(type='Adam', lr=1e-4, weight_decay=0.0)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type='ReduceOnPlateauLR', monitor='mIoU', rule='greater', factor=0.5, patience=3, by_epoch=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=40, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=True, interval=1, max_keep_ckpts=2, save_best='mIoU', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
# PerEpochSeedHook reseeds every epoch from (seed, epoch), so a resumed run continues bit-exactly.
custom_hooks = [
    dict(type='EarlyStoppingHook', monitor='mIoU', rule='greater', patience=8),
    dict(type='PerEpochSeedHook'),
]
