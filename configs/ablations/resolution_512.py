# Ablation of the headline recipe: training resolution 512x512 = the headline itself (the reference row of the sweep).
_base_ = ['../deeplab_r50_multiscale.py']
