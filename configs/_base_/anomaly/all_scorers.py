# Scorer set: all seven scorers from one forward pass, next to mmseg's mIoU: the logit scorers of
# logit_scorers.py plus the three that read fitted statistics or backbone features. Use it as
#   _base_ = ['../deeplabv3plus/deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py',
#             '../_base_/anomaly/all_scorers.py']
#   test_cfg = _base_.anomaly_test_cfg
#   test_evaluator = _base_.anomaly_test_evaluator
# (see logit_scorers.py for why the keys carry the anomaly_ prefix).
# SML and Mahalanobis are fitted before the test on the fit split (fit_dataloader; default: the config's
# val_dataloader); the statistics are cached in <work_dir>/anomaly_scorer_stats.pth.
# Mahalanobis reads backbone stage 2 = ResNet stage 3 (the aux-head input) with out_indices=(0, 1, 2, 3).
# HEAT runs without its optional feature term here; study_scorers.py has the study's HEAT (with layer3 features).
_base_ = ['./logit_scorers.py']
anomaly_test_cfg = dict(type='AnomalyTestLoop', stats_file='anomaly_scorer_stats.pth')
anomaly_test_evaluator = [
    _base_.anomaly_test_evaluator[0],  # mIoU
    dict(
        _base_.anomaly_test_evaluator[1],
        scorers=_base_.anomaly_test_evaluator[1].scorers + [
            dict(type='SML'),
            dict(type='HEAT', alpha=0.9, kernel_size=3),
            dict(type='Mahalanobis', feature_stage=2, label_downsample='nearest'),
        ]),
]
