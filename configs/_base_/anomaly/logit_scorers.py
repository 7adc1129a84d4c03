# Scorer set: the four logit-only scorers (no fitting, no backbone features), next to mmseg's mIoU.
# mmengine forbids a key in two `_base_` files and model configs already define test_cfg /
# test_evaluator, so this file names them anomaly_test_cfg / anomaly_test_evaluator; a test config
# combines a model with a scorer set in three lines:
#   _base_ = ['../deeplabv3plus/deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py',
#             '../_base_/anomaly/logit_scorers.py']
#   test_cfg = _base_.anomaly_test_cfg
#   test_evaluator = _base_.anomaly_test_evaluator
anomaly_test_cfg = dict(type='AnomalyTestLoop')
anomaly_test_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(
        type='AnomalyMetric',
        scorers=[
            dict(type='MSP'),
            dict(type='MaxLogit'),
            dict(type='Energy', temperature=1.0),
            dict(type='Entropy'),
        ]),
]
