# The outlier-exposure demo model evaluated with every anomaly scorer from one forward pass (mIoU + anomaly tables).
_base_ = ['./deeplab_r18_tiny_demo_oe.py', '../_base_/anomaly/all_scorers.py']
test_cfg = _base_.anomaly_test_cfg
test_evaluator = _base_.anomaly_test_evaluator
