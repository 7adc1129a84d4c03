# mmseg's Cityscapes (19 classes, 512x1024 crops) with an epoch sampler, as the PSPNet study trained.
# Scale: trains on RandomResize around 2048x1024 (ratio 1 = the native frame) and tests at 2048x1024, so mmseg's
# tta_pipeline (ratios of the original frame) has its ratio 1.0 at the test scale and stays as it is.
_base_ = ['mmseg::_base_/datasets/cityscapes.py']
train_dataloader = dict(sampler=dict(type='DefaultSampler', shuffle=True))
