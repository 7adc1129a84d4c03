# Ablation of the headline recipe: every augmentation (multi-scale crop, flip, jitter, blur) = the headline
# config itself (the reference row of the augmentation ablations).
_base_ = ['../deeplab_r50_multiscale.py']
