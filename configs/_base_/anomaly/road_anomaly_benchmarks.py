# The four road-anomaly benchmarks in one tools/test.py call (AnomalyTestLoop test sets), every scorer of
# all_scorers.py on each, under the protocols their leaderboards use (docs/road_anomaly_benchmarks.md):
#   road_anomaly21   SegmentMeIfYouCan RoadAnomaly21 (AnomalyTrack)     component_track='anomaly'
#   road_obstacle21  SegmentMeIfYouCan RoadObstacle21 (ObstacleTrack)   component_track='obstacle'
#   lost_and_found   LostAndFound test, as SMIYC's obstacle track       component_track='obstacle'
#   fishyscapes_laf  Fishyscapes Lost & Found validation                component_track='anomaly'
# Each set: pixel metrics pooled over the set (AUPR, FPR95, AUROC), per image, and component metrics (sIoU, PPV, mean
# F1). The sets have no class labels: no mIoU. Use it as (the model's own test_dataloader is replaced, hence _delete_)
#   _base_ = ['../pspnet/pspnet_r18-d8_1xb4-40e_streethazards-512x512.py',
#             '../_base_/anomaly/road_anomaly_benchmarks.py']
#   test_dataloader = dict(_base_.road_anomaly_test_dataloader, _delete_=True)
#   test_evaluator = _base_.road_anomaly_test_evaluator
#   test_cfg = _base_.road_anomaly_test_cfg
# Metric keys: <set>/anomaly/<protocol>/<scorer>/<metric>, e.g. road_obstacle21/anomaly/component/MaxLogit/sIoU;
# each set's files in <log_dir>/anomaly/<set>/. The scorers that need fitting (SML, Mahalanobis) are fitted once, on
# the model's val_dataloader (its training distribution), and used for every set. Data roots, subsets and the test
# resize are the dataset bases' (configs/_base_/datasets/{road_anomaly21,road_obstacle21,lost_and_found,
# fishyscapes_laf}.py); change one set with --cfg-options test_cfg.test_sets.<set>.dataloader.dataset.data_root=...
# (the first set is test_dataloader), drop one with test_cfg.test_sets.<set>=None, or rebuild the sets from the
# pieces below as configs/cityscapes_demo/deeplab_r18_tiny_cityscapes_demo_road_anomaly.py does.
_base_ = [
    '../datasets/road_anomaly21.py',
    '../datasets/road_obstacle21.py',
    '../datasets/lost_and_found.py',
    '../datasets/fishyscapes_laf.py',
    './all_scorers.py',
]
# every scorer of all_scorers.py (the same scorer configs in every set: SML and Mahalanobis are fitted once)
road_anomaly_metric = dict(
    type='AnomalyMetric',
    scorers=_base_.anomaly_test_evaluator[1].scorers,
    protocols=('pooled', 'per_image', 'component'))
# the component protocol's size limits follow the track each benchmark is reported in
road_anomaly_tracks = dict(
    road_anomaly21='anomaly', road_obstacle21='obstacle', lost_and_found='obstacle', fishyscapes_laf='anomaly')
road_anomaly_test_evaluators = {
    name: [dict(road_anomaly_metric, component_track=track)]
    for name, track in road_anomaly_tracks.items()
}
# the sets in test order; the first is the runner's test_dataloader (test_cfg.primary_set)
road_anomaly_test_dataloaders = dict(
    road_anomaly21=_base_.road_anomaly21_test_dataloader,
    road_obstacle21=_base_.road_obstacle21_test_dataloader,
    lost_and_found=_base_.lost_and_found_test_dataloader,
    fishyscapes_laf=_base_.fishyscapes_laf_test_dataloader)
# tools/test.py --tta: the augmentations of the StreetHazards TTA (ratios of the test scale x horizontal flip) around
# each set's own test pipeline ([load image, test resize, LoadAnomalyAnnotations, pack] in the dataset bases): the
# annotations are loaded after the augmentations, at the original size
road_anomaly_tta_views = [
    [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)],
    [
        dict(type='RandomFlip', prob=0., direction='horizontal'),
        dict(type='RandomFlip', prob=1., direction='horizontal')
    ],
]
road_anomaly_tta_pipelines = {
    name: [
        loader.dataset.pipeline[0],
        dict(
            type='TestTimeAug',
            transforms=[[loader.dataset.pipeline[1]]] + road_anomaly_tta_views + [[t]
                                                                                  for t in loader.dataset.pipeline[2:]])
    ]
    for name, loader in road_anomaly_test_dataloaders.items()
}
road_anomaly_test_dataloader = road_anomaly_test_dataloaders['road_anomaly21']
road_anomaly_test_evaluator = road_anomaly_test_evaluators['road_anomaly21']
road_anomaly_test_cfg = dict(
    _base_.anomaly_test_cfg,
    primary_set=dict(name='road_anomaly21', tta_pipeline=road_anomaly_tta_pipelines['road_anomaly21']),
    test_sets={
        name:
        dict(
            dataloader=loader,
            evaluator=road_anomaly_test_evaluators[name],
            tta_pipeline=road_anomaly_tta_pipelines[name])
        for name, loader in road_anomaly_test_dataloaders.items() if name != 'road_anomaly21'
    })
