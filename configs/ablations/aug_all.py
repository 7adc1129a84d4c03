# Ablation of the headline recipe: every augmentation (multi-scale crop, flip, jitter, blur) = the headline
# config itself (the reference row of the augmentation ablations).
_base_ = ['../deeplabv3plus/deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py']
