# SegFormer-B5, basic augmentation, AdamW 1e-4 / wd 0.01, batch 2 (study: 35.57 with ADE20K init — set load_from
# to an mmseg ADE20K SegFormer-B5 checkpoint; its 150-class classifier is re-initialised for the 13 classes).
_base_ = [
    '../_base_/models/segformer_mit-b5.py',
    '../_base_/datasets/street_hazards_basic.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adamw_plateau_40e.py',
]
crop_size = (512, 512)
model = dict(data_preprocessor=dict(size=crop_size), decode_head=dict(num_classes=13))
train_dataloader = dict(batch_size=2)
