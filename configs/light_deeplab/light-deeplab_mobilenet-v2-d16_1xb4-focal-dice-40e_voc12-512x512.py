# Lightweight DeepLab on VOC with the study's focal + Dice loss, through mmseg's list-of-losses mechanism.
_base_ = ['./light-deeplab_mobilenet-v2-d16_1xb4-40e_voc12-512x512.py']
model = dict(
    decode_head=dict(loss_decode=[
        dict(type='SoftmaxFocalLoss', alpha=0.25, gamma=2.0, loss_weight=1.0),
        dict(type='DiceLoss', use_sigmoid=False, loss_weight=1.0),
    ]))
