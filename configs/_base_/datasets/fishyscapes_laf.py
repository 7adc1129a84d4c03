# Fishyscapes Lost & Found validation (100 LostAndFound frames re-labelled: 0 in-distribution, 1 anomaly, 255 void).
# Layout: labels <fishyscapes_laf_data_root>/labels/val/{fid}_fishy-labels.png (dataset_FishyLAF); images from the
# LostAndFound release <fishyscapes_laf_laf_root>/leftImg8bit/{train|test}/{NN}_{scene}/{fid}_leftImg8bit.png.
# The set is every label file present. Use it as road_anomaly21.py says
# (test_dataloader = _base_.fishyscapes_laf_test_dataloader).
fishyscapes_laf_data_root = 'data/dataset_FishyLAF'
fishyscapes_laf_laf_root = 'data/dataset_LostAndFound'
# the 2048x1024 frames fitted into the StreetHazards test scale the models are trained at (-> 1280x640)
fishyscapes_laf_test_scale = (1280, 720)
fishyscapes_laf_test_pipeline = [
    dict(type='LoadImageFromFileWithRetry'),
    dict(type='Resize', scale=fishyscapes_laf_test_scale, keep_ratio=True),
    # after Resize: the ground truth stays at the original resolution (mmseg resizes the logits back to it)
    dict(type='LoadAnomalyAnnotations'),
    dict(type='PackAnomalySegInputs'),
]
fishyscapes_laf_test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='FishyscapesLAFDataset',
        data_root=fishyscapes_laf_data_root,
        laf_root=fishyscapes_laf_laf_root,
        split='val',
        pipeline=fishyscapes_laf_test_pipeline))
