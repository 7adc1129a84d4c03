# Ablation of the headline recipe: no augmentation, on the whole frame resized to 512x512, trained *and* tested
# at that scale (the basic recipe's data base: one `test_resize` for train, val, test and TTA; the headline's
# multi-scale crops are tested on the native frame instead). Model, optimiser and 40 epochs as the headline.
_base_ = ['../deeplabv3plus/deeplabv3plus_r50-d8_1xb4-basic-30e_streethazards-512x512.py']
# the basic pipeline without flip and jitter
train_pipeline = [t for t in _base_.train_pipeline if t.type not in ('RandomFlip', 'PhotoMetricDistortionNoHue')]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
train_cfg = dict(max_epochs=40)
