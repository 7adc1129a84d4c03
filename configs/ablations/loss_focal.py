# Ablation of the headline recipe: softmax focal loss (alpha 0.25, gamma 2) instead of cross-entropy, both heads.
_base_ = ['../deeplabv3plus/deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py']
model = dict(
    decode_head=dict(loss_decode=dict(_delete_=True, type='SoftmaxFocalLoss', alpha=0.25, gamma=2.0, loss_weight=1.0)),
    auxiliary_head=dict(
        loss_decode=dict(_delete_=True, type='SoftmaxFocalLoss', alpha=0.25, gamma=2.0, loss_weight=0.4)))
