# Scorer set: MaxLogit and Mahalanobis alone and fused, by per-image ranks and by z-scores fitted on
# the fit split. Use it as
#   _base_ = ['../deeplabv3plus/deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py',
#             '../_base_/anomaly/fusion_scorers.py']
#   test_cfg = _base_.anomaly_test_cfg
#   test_evaluator = _base_.anomaly_test_evaluator
# (see logit_scorers.py for why the keys carry the anomaly_ prefix).
anomaly_test_cfg = dict(type='AnomalyTestLoop', stats_file='anomaly_scorer_stats.pth')
anomaly_test_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(
        type='AnomalyMetric',
        scorers=[
            dict(type='MaxLogit'),
            dict(type='Mahalanobis', feature_stage=2),
            dict(
                type='ScoreFusion',
                mode='rank',
                scorers=[dict(type='MaxLogit'), dict(type='Mahalanobis', feature_stage=2)]),
            dict(
                type='ScoreFusion',
                mode='zscore',
                scorers=[dict(type='MaxLogit'), dict(type='Mahalanobis', feature_stage=2)]),
        ]),
]
