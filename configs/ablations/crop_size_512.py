# Ablation of the headline recipe: crop size 512 = the headline itself (the reference row of the sweep). Crop output
# and base_size are both 512: at a given s a crop shows 1/s output pixels per frame pixel (native at s = 1, so the
# test on the native frame stays right); what varies is the *context*, a 512*s-pixel window (256..720 on 1280x720),
# and through the clamp of the square to the 720-pixel frame height the cap s <= 720/512 = 1.41: effective scale
# [0.5, 1.41], 40% of the draws on the cap, magnification >= 0.71. (It was named resolution_512.)
_base_ = ['../deeplabv3plus/deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py']
