# Outlier exposure fine-tuning of the demo model (configs/demo/deeplab_r18_tiny_demo.py): from its closed-set
# checkpoint (`make demo`): 16 epochs at half its learning rate (the OE papers fine-tune briefly at a lower LR).
# Measured (benchmarks/bench_outlier_exposure.py, pooled, %, best scorer of each model; the colour-normal test set
# data/streethazards_v2, whose train split is the demo's: base = work_dirs/demo/epoch_54.pth, mIoU 66.05, AUPR 10.95,
# FPR95 46.35; colour-only AUPR 2.27, FPR95 92.12):
#   this recipe (procedural + cutpaste)   mIoU 63.37  AUPR 22.48 (2.05x)  FPR95 18.44 (0.40x)
#     (on data/streethazards_demo: 64.62 / 24.93 / 26.96)
#   procedural only                       mIoU 63.23  AUPR 10.45 (0.95x)  FPR95 23.13 (0.50x)
#   cutpaste only                         mIoU 64.31  AUPR 18.44 (1.68x)  FPR95 25.29 (0.55x)
#   cosine decay over 20 epochs           mIoU 64.27  AUPR 16.98          FPR95 22.72
#   backbone frozen (frozen_stages=4), energy weight 0.5, 12 epochs: mIoU 62.89  AUPR 13.14  FPR95 19.58
#   LR 5e-4, 12 epochs, entropy 0.5, m_in -7, 1..4 pastes of 0.08..0.35: mIoU 65.38  AUPR 6.68  FPR95 39.04
# Not met: the mIoU drop (2.7 pt, target <= 1). Fine-tuning: 192 iterations (16 x 12, batch 4), ~0.7-0.8 s/iter at
# load 2-3 on 2 cores (~2.5-3 min), 2-16 s/iter under load 8-12.
_base_ = ['../demo/deeplab_r18_tiny_demo.py', '../_base_/outlier_exposure/paste_energy_entropy.py']
load_from = 'work_dirs/demo/epoch_54.pth'
model = dict(
    decode_head=dict(loss_decode=_base_.oe_decode_losses), auxiliary_head=dict(loss_decode=_base_.oe_aux_losses))
# PasteOutliers right after MultiScaleSquareCrop (index 2), before flip and the photometric transforms
train_pipeline = _base_.train_pipeline[:3] + [_base_.oe_paste_outliers] + _base_.train_pipeline[3:]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_epochs=16, val_interval=16)
default_hooks = dict(checkpoint=dict(interval=16))
