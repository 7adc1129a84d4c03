"""A scorer from a user's module, registered into ANOMALY_SCORERS, is built from a config by name."""
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from anomseg_plugins.registry import ANOMALY_SCORERS


def test_custom_scorer_via_custom_imports(monkeypatch, repo_root):
    data_dir = osp.join(repo_root, 'tests', 'data')
    monkeypatch.syspath_prepend(data_dir)
    cfg = Config.fromfile(osp.join(data_dir, 'custom_scorer_config.py'))  # imports `custom_imports`
    # built as inside a runner, whose default scope is mmseg
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        scorers = [ANOMALY_SCORERS.build(c) for c in cfg.scorers]
    assert [type(s).__name__ for s in scorers] == ['MaxLogit', 'SecondBestMargin']
    assert scorers[1].name == 'margin'
    logits = torch.tensor([[4.0, 1.0], [3.0, 0.9], [0.0, 0.0]]).view(1, 3, 1, 2)
    torch.testing.assert_close(scorers[1].score(logits), torch.tensor([[[-1.0, -0.1]]]))
