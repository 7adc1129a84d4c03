# mmseg's Pascal VOC 2012 (21 classes, 512x512 crops) with an epoch sampler, as the lightweight-DeepLab study trained.
_base_ = ['mmseg::_base_/datasets/pascal_voc12.py']
train_dataloader = dict(sampler=dict(type='DefaultSampler', shuffle=True))
