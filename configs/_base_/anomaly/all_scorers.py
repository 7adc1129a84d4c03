# Scorer set: all seven scorers from one forward pass, next to mmseg's mIoU. Use it as
#   _base_ = ['../deeplab_r50_multiscale.py', '../_base_/anomaly/all_scorers.py']
#   test_cfg = _base_.anomaly_test_cfg
#   test_evaluator = _base_.anomaly_test_evaluator
# (see logit_scorers.py for why the keys carry the anomaly_ prefix).
# SML and Mahalanobis are fitted before the test on the fit split (fit_dataloader; default: the config's
# val_dataloader); the statistics are cached in <work_dir>/anomaly_scorer_stats.pth.
# Mahalanobis reads backbone stage 2 = ResNet stage 3 (the aux-head input) with out_indices=(0, 1, 2, 3).
# HEAT runs without its optional feature term here; study_scorers.py has the study's HEAT (with layer3 features).
anomaly_test_cfg = dict(type='AnomalyTestLoop', stats_file='anomaly_scorer_stats.pth')
anomaly_test_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(
        type='AnomalyMetric',
        scorers=[
            dict(type='MSP'),
            dict(type='MaxLogit'),
            dict(type='Energy', temperature=1.0),
            dict(type='Entropy'),
            dict(type='SML'),
            dict(type='HEAT', alpha=0.9, kernel_size=3),
            dict(type='Mahalanobis', feature_stage=2, label_downsample='nearest'),
        ]),
]
