# Ablation of the headline recipe: focal + Dice through mmseg's list-of-losses mechanism (summed by the head).
_base_ = ['../deeplabv3plus/deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py']
model = dict(
    decode_head=dict(loss_decode=[
        dict(type='SoftmaxFocalLoss', alpha=0.25, gamma=2.0, loss_weight=1.0),
        dict(type='DiceLoss', use_sigmoid=False, loss_weight=1.0),
    ]))
