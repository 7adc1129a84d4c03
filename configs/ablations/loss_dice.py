# Ablation of the headline recipe: mmseg's Dice loss on the decode head (aux head keeps CE at 0.4).
_base_ = ['../deeplabv3plus/deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py']
model = dict(decode_head=dict(loss_decode=dict(_delete_=True, type='DiceLoss', use_sigmoid=False, loss_weight=1.0)))
