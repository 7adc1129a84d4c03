# Ablation of the headline recipe: crop size 640 (headline: 512). Crop output and base_size are both 640: at a given
# s a crop shows 1/s output pixels per frame pixel (native at s = 1, so the test on the native frame stays right);
# what varies is the *context*, a 640*s-pixel window (320..720 on 1280x720), and through the clamp of the square to
# the 720-pixel frame height the cap s <= 720/640 = 1.125: effective scale [0.5, 1.13], 58% of the draws on the cap,
# magnification >= 0.89. (It was named resolution_640.)
_base_ = ['../deeplabv3plus/deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py']
crop_size = (640, 640)
model = dict(data_preprocessor=dict(size=crop_size))
# the headline pipeline with the crop's output and base size changed
train_pipeline = [
    dict(t, output_size=crop_size, base_size=640) if t.type == 'MultiScaleSquareCrop' else t
    for t in _base_.train_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
