# Scorer set: the StreetHazards study's four scorers as it ran them, HEAT *with* its feature-norm term on
# ResNet layer3 (all_scorers.py runs HEAT on the smoothed energy alone). Use it as
#   _base_ = ['../deeplabv3plus/deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py',
#             '../_base_/anomaly/study_scorers.py']
#   test_cfg = _base_.anomaly_test_cfg
#   test_evaluator = _base_.anomaly_test_evaluator
# (see logit_scorers.py for why the keys carry the anomaly_ prefix).
# layer3 is backbone stage index 2 with mmseg's ResNet out_indices=(0, 1, 2, 3) (the aux head's input).
# With the feature term, HEAT's per-image metrics too depend on the images scored before (see HEAT's docstring).
# SML is fitted on the fit split (default: val_dataloader) and cached in <work_dir>/anomaly_scorer_stats.pth.
anomaly_test_cfg = dict(type='AnomalyTestLoop', stats_file='anomaly_scorer_stats.pth')
anomaly_test_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(
        type='AnomalyMetric',
        scorers=[
            dict(type='MSP'),
            dict(type='MaxLogit'),
            dict(type='SML'),
            dict(type='HEAT', alpha=0.9, kernel_size=3, feature_stage=2, feature_weight=1.0),
        ]),
]
