# SegmentMeIfYouCan RoadAnomaly21 (AnomalyTrack): 110 frames of anomalies on roads, labels only for the 10 public
# validation frames (validation0000..0009); the other 100 are listed with no label (scored, not evaluated).
# Layout (dataset_AnomalyTrack): images/{fid}.jpg, labels_masks/{fid}_labels_semantic.png (0 normal, 1 anomaly,
# 255 void). Evaluate only the labelled frames: road_anomaly21_test_dataloader.dataset.require_labels=True.
# Keys are prefixed so that one config can inherit all four benchmark bases (road_obstacle21.py, fishyscapes_laf.py,
# lost_and_found.py) without clashes; use it as
#   _base_ = [..., '../_base_/datasets/road_anomaly21.py']
#   test_dataloader = _base_.road_anomaly21_test_dataloader
# with an evaluator without mIoU (no class labels: the samples have gt_anomaly_map, no gt_sem_seg). The dataset names
# no classes: give dataset.metainfo=dict(classes=..., palette=...) of the model's training set to draw predictions.
road_anomaly21_data_root = 'data/dataset_AnomalyTrack'
# the frame (mostly 1280x720, some other sizes) fitted into the StreetHazards test scale the models are trained at
road_anomaly21_test_scale = (1280, 720)
road_anomaly21_test_pipeline = [
    dict(type='LoadImageFromFileWithRetry'),
    dict(type='Resize', scale=road_anomaly21_test_scale, keep_ratio=True),
    # after Resize: the ground truth stays at the original resolution (mmseg resizes the logits back to it)
    dict(type='LoadAnomalyAnnotations'),
    dict(type='PackAnomalySegInputs'),
]
road_anomaly21_test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='RoadAnomaly21Dataset', data_root=road_anomaly21_data_root, pipeline=road_anomaly21_test_pipeline))
