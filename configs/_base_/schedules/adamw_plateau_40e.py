# Transformer schedule of the study (SegFormer-B5): AdamW 1e-4, weight decay 0.01, plateau LR on val mIoU.
_base_ = ['./adam_plateau_40e.py']
optimizer = dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.01)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer)
