# R18 (OS 8) + mmseg OCR head (CascadeEncoderDecoder; FCN soft regions at loss 0.4) on StreetHazards.
_base_ = [
    '../_base_/models/ocrnet_r18-d8.py',
    '../_base_/datasets/street_hazards.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adam_plateau_40e.py',
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    # the base's two stages with StreetHazards' 13 classes (a list is replaced, not merged, so derive it)
    decode_head=[dict(head, num_classes=13) for head in _base_.model.decode_head])
