# The anchored outlier-exposure demo model evaluated with every anomaly scorer from one forward pass.
_base_ = ['./deeplab_r18_tiny_demo_oe_anchored.py', '../_base_/anomaly/all_scorers.py']
test_cfg = _base_.anomaly_test_cfg
test_evaluator = _base_.anomaly_test_evaluator
