# Ablation of the headline recipe: multi-scale square crop only (scale_range (0.5, 2.0), effective [0.5, 1.41] on
# 1280x720: the square is clamped to the frame height), tested on the native frame as the headline.
_base_ = ['../deeplabv3plus/deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py']
# the headline pipeline without flip, jitter and blur
train_pipeline = [
    t for t in _base_.train_pipeline if t.type not in ('RandomFlip', 'PhotoMetricDistortion', 'RandomGaussianBlur')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
