# LostAndFound test split (Cityscapes-style release): obstacles on the road, free space normal, the rest void.
# Layout (dataset_LostAndFound): leftImg8bit/test/{NN}_{scene}/{fid}_leftImg8bit.png and
# gtCoarse/test/{NN}_{scene}/{fid}_gtCoarse_labelIds.png (0 void, 1 free space, 2..200 obstacle).
# Subset: 'LostAndFound-testNoKnown' (1043 frames: the 17 frames with empty labels and the children / bicycle frames
# removed), the LostAndFound SegmentMeIfYouCan reports. Others (LOST_AND_FOUND_SUBSETS): 'LostAndFound-test' (all
# 1203), '-testValid' (1186). The subsets exclude frames by index in the full release: for a partial or generated
# copy set lost_and_found_test_dataloader.dataset.subset=None. Use it as road_anomaly21.py says
# (test_dataloader = _base_.lost_and_found_test_dataloader).
lost_and_found_data_root = 'data/dataset_LostAndFound'
lost_and_found_subset = 'LostAndFound-testNoKnown'
# the 2048x1024 frames fitted into the StreetHazards test scale the models are trained at (-> 1280x640)
lost_and_found_test_scale = (1280, 720)
lost_and_found_test_pipeline = [
    dict(type='LoadImageFromFileWithRetry'),
    dict(type='Resize', scale=lost_and_found_test_scale, keep_ratio=True),
    # after Resize: the ground truth stays at the original resolution (mmseg resizes the logits back to it)
    dict(type='LoadAnomalyAnnotations'),
    dict(type='PackAnomalySegInputs'),
]
lost_and_found_test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='LostAndFoundDataset',
        data_root=lost_and_found_data_root,
        subset=lost_and_found_subset,
        pipeline=lost_and_found_test_pipeline))
