# SegmentMeIfYouCan RoadObstacle21 (ObstacleTrack): small obstacles on the road; only the road is evaluated (off-road
# pixels are void). Layout (dataset_ObstacleTrack): images/{fid}.webp, labels_masks/{fid}_labels_semantic.png
# (0 road, 1 obstacle, 255 void); a frame's scene is fid.split('_')[0]. Default: every image found; official subsets
# by name with dataset.subset= (RoadObstacle21Dataset / ROAD_OBSTACLE21_SUBSETS: 'ObstacleTrack-all', '-test' (327,
# labels hidden), '-validation' (30 labelled frames), '-noNight', '-night', '-snowstorm'), or dataset.scenes=[...]
# / dataset.exclude_prefixes=[...]. Images without a label file are listed with none (scored, not evaluated) unless
# dataset.require_labels=True. Use it as road_anomaly21.py says
# (test_dataloader = _base_.road_obstacle21_test_dataloader).
road_obstacle21_data_root = 'data/dataset_ObstacleTrack'
road_obstacle21_subset = None
# the 1920x1080 frames fitted into the StreetHazards test scale the models are trained at (1280x720)
road_obstacle21_test_scale = (1280, 720)
road_obstacle21_test_pipeline = [
    dict(type='LoadImageFromFileWithRetry'),
    dict(type='Resize', scale=road_obstacle21_test_scale, keep_ratio=True),
    # after Resize: the ground truth stays at the original resolution (mmseg resizes the logits back to it)
    dict(type='LoadAnomalyAnnotations'),
    dict(type='PackAnomalySegInputs'),
]
road_obstacle21_test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='RoadObstacle21Dataset',
        data_root=road_obstacle21_data_root,
        subset=road_obstacle21_subset,
        pipeline=road_obstacle21_test_pipeline))
