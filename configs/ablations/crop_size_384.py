# Ablation of the headline recipe: crop size 384 (headline: 512). Crop output and base_size are both 384: at a given
# s a crop shows 1/s output pixels per frame pixel (native at s = 1, so the test on the native frame stays right);
# what varies is the *context*, a 384*s-pixel window (192..720 on 1280x720), and through the clamp of the square to
# the 720-pixel frame height the cap s <= 720/384 = 1.875: effective scale [0.5, 1.88], 8% of the draws on the cap,
# magnification >= 0.53. (It was named resolution_384.)
_base_ = ['../deeplabv3plus/deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py']
crop_size = (384, 384)
model = dict(data_preprocessor=dict(size=crop_size))
# the headline pipeline with the crop's output and base size changed
train_pipeline = [
    dict(t, output_size=crop_size, base_size=384) if t.type == 'MultiScaleSquareCrop' else t
    for t in _base_.train_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
