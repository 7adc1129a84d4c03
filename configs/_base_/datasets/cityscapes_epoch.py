# mmseg's Cityscapes (19 classes, 512x1024 crops) with an epoch sampler, as the PSPNet study trained.
_base_ = ['mmseg::_base_/datasets/cityscapes.py']
train_dataloader = dict(sampler=dict(type='DefaultSampler', shuffle=True))
