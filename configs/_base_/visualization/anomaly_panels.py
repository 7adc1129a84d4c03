# Qualitative anomaly panels during testing (anomseg_plugins.engine.hooks.AnomalyPanelHook): per image a
# 3x3 figure (input | ground truth | prediction; overlay | confidence | errors; anomaly heat map |
# detection | TP/FP/FN), a quick-look grid and a scorer-comparison grid, drawn from the test forward pass.
# mmengine forbids a key in two `_base_` files and the model configs define default_hooks, so this piece
# names the hook `anomaly_panel_hook`; a test config turns it on with
#   _base_ = ['../deeplabv3plus/deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py',
#             '../_base_/anomaly/all_scorers.py', '../_base_/visualization/anomaly_panels.py']
#   test_cfg = _base_.anomaly_test_cfg
#   test_evaluator = _base_.anomaly_test_evaluator
#   default_hooks = dict(visualization=_base_.anomaly_panel_hook)
# Files go to <--show-dir or the run's log dir>/anomaly_panels/. The shown scorer is a name of the test
# AnomalyMetric (fitted scorers are reused) and can be changed on the command line:
#   --cfg-options default_hooks.visualization.scorer=SML
anomaly_panel_hook = dict(
    type='AnomalyPanelHook',
    draw=True,
    scorer='MaxLogit',
    threshold=None,  # None: the threshold at `recall_level` recall over all test pixels (FPR95's point)
    operating_point='recall',  # or 'f1': the metric's pooled best-F1 threshold
    recall_level=0.95,
    interval=1,
    max_panels=8,
    grid_size=6,
    only_with_anomaly=True,
    compare_scorers=True)
