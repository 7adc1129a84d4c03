# The Cityscapes demo model tested on the four road-anomaly benchmarks in one tools/test.py call, every scorer on each
# (configs/_base_/anomaly/road_anomaly_benchmarks.py; docs/road_anomaly_benchmarks.md), on the generated copies
# (tools/dataset/generate_road_anomaly_sets.py --out data/road_anomaly_demo):
#   python tools/test.py configs/cityscapes_demo/deeplab_r18_tiny_cityscapes_demo_road_anomaly.py CKPT --work-dir DIR
# reports <set>/anomaly/{pooled,per_image,component}/<scorer>/<metric> for road_anomaly21, road_obstacle21,
# lost_and_found and fishyscapes_laf (no mIoU: the sets have no class labels); SML and Mahalanobis are fitted once on
# the Cityscapes val split. The sets are the base's with the generated copies' roots, the demo's test resize (the
# frames at the scale the model trains at, as for Cityscapes) and no official LostAndFound subset (it selects frames
# by index in the full release).
_base_ = ['./deeplab_r18_tiny_cityscapes_demo.py', '../_base_/anomaly/road_anomaly_benchmarks.py']

road_anomaly_demo_root = 'data/road_anomaly_demo'
road_anomaly_demo_datasets = dict(
    road_anomaly21=dict(data_root=f'{road_anomaly_demo_root}/dataset_AnomalyTrack'),
    road_obstacle21=dict(data_root=f'{road_anomaly_demo_root}/dataset_ObstacleTrack'),
    lost_and_found=dict(data_root=f'{road_anomaly_demo_root}/dataset_LostAndFound', subset=None),
    fishyscapes_laf=dict(
        data_root=f'{road_anomaly_demo_root}/dataset_FishyLAF',
        laf_root=f'{road_anomaly_demo_root}/dataset_LostAndFound'),
)
# each set's pipeline with this model's test resize in place of the base's (1280, 720)
road_anomaly_demo_pipelines = {
    name: [_base_.test_resize if t.type == 'Resize' else t for t in loader.dataset.pipeline]
    for name, loader in _base_.road_anomaly_test_dataloaders.items()
}
road_anomaly_demo_dataloaders = {
    name:
    dict(
        loader,
        num_workers=1,
        dataset=dict(loader.dataset, pipeline=road_anomaly_demo_pipelines[name], **road_anomaly_demo_datasets[name]))
    for name, loader in _base_.road_anomaly_test_dataloaders.items()
}
# tools/test.py --tta: the base's views (ratios x flips) around each set's pipeline, as road_anomaly_benchmarks.py
road_anomaly_demo_tta_pipelines = {
    name: [
        pipeline[0],
        dict(
            type='TestTimeAug',
            transforms=[[pipeline[1]]] + _base_.road_anomaly_tta_views + [[t] for t in pipeline[2:]])
    ]
    for name, pipeline in road_anomaly_demo_pipelines.items()
}

test_dataloader = dict(road_anomaly_demo_dataloaders['road_anomaly21'], _delete_=True)
test_evaluator = _base_.road_anomaly_test_evaluators['road_anomaly21']
test_cfg = dict(
    _base_.road_anomaly_test_cfg,
    primary_set=dict(name='road_anomaly21', tta_pipeline=road_anomaly_demo_tta_pipelines['road_anomaly21']),
    test_sets={
        name:
        dict(
            dataloader=loader,
            evaluator=_base_.road_anomaly_test_evaluators[name],
            tta_pipeline=road_anomaly_demo_tta_pipelines[name])
        for name, loader in road_anomaly_demo_dataloaders.items() if name != 'road_anomaly21'
    })
