"""tools/dist_train.sh and tools/dist_test.sh with 2 processes on CPU (gloo); merged metrics equal 1-process ones."""
import copy
import json
import os.path as osp
import shutil
import sys

import pytest
import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS
from tool_runner import DEMO_CONFIG, free_port, run_tool, small_run_options

from anomseg_plugins.utils.dist_env import replace_sync_bn, setup_cpu_distributed

pytestmark = pytest.mark.slow  # 2-process training and testing

ANOMALY_CONFIG = 'configs/demo/deeplab_r18_tiny_demo_anomaly.py'


# ------------------------------------------------------------------------------------------------ set-up logic
@pytest.fixture(scope='module')
def headline_cfg(repo_root):
    return Config.fromfile(
        osp.join(repo_root, 'configs/deeplabv3plus/deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py'))


def test_replace_sync_bn_in_headline_model(headline_cfg):
    model = copy.deepcopy(headline_cfg.model)
    changed = replace_sync_bn(model)
    assert changed == [
        'model.backbone.norm_cfg.type', 'model.decode_head.norm_cfg.type', 'model.auxiliary_head.norm_cfg.type'
    ]
    assert 'SyncBN' not in str(model) and model.backbone.norm_cfg == dict(type='BN', requires_grad=True)


def test_gpu_and_single_process_runs_are_left_alone(headline_cfg, monkeypatch):
    cfg = copy.deepcopy(headline_cfg)
    before = cfg.to_dict()
    assert setup_cpu_distributed(cfg, 'none') is False
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert setup_cpu_distributed(cfg, 'pytorch') is False  # CUDA: mmengine's own nccl path, untouched
    assert cfg.to_dict() == before and not torch_dist.is_initialized()


def test_cpu_launcher_errors_say_what_to_run(headline_cfg, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(RuntimeError, match='--launcher slurm needs CUDA.*tools/dist_train.sh'):
        setup_cpu_distributed(copy.deepcopy(headline_cfg), 'slurm')
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match='RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT is not set'):
        setup_cpu_distributed(copy.deepcopy(headline_cfg), 'pytorch')


def test_cpu_setup_initialises_gloo_and_ddp_without_device_ids(headline_cfg, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    for key, value in dict(RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port())).items():
        monkeypatch.setenv(key, value)
    cfg = copy.deepcopy(headline_cfg)
    cfg.model_wrapper_cfg = dict(find_unused_parameters=True)
    try:
        assert setup_cpu_distributed(cfg, 'pytorch') is True
        assert torch_dist.is_initialized() and torch_dist.get_backend() == 'gloo'
    finally:
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel', find_unused_parameters=True, broadcast_buffers=False, device_ids=None)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo' and 'SyncBN' not in str(cfg.model)


# ------------------------------------------------------------------------------------------------ 2 processes
def test_dist_train_two_processes_on_cpu(dist_trained, repo_root):
    work_dir, ckpt, log = dist_trained
    assert 'running 2 processes on CPU with the gloo backend' in log
    assert 'Distributed training: True' in log
    # 8 images / (2 processes x batch 4) = 1 iteration per epoch
    assert 'Epoch(train) [2][1/1]' in log.replace('  ', ' ')
    assert osp.isfile(ckpt)
    model = MODELS.build(Config.fromfile(osp.join(repo_root, DEMO_CONFIG)).model)
    load_checkpoint(model, ckpt, map_location='cpu', strict=True)  # plain (unwrapped) weights, loadable anywhere


def test_dist_test_metrics_equal_single_process(dist_trained, repo_root, tiny_street_hazards, tmp_path):
    """Every metric of the 2-process test equals the 1-process one on the same 5 images.

    5 test images on 2 ranks: rank 1 gets a repeated sample that the metrics must drop again. SML and
    Mahalanobis are fitted once (single process) and the stats file is reused, so that only the merging
    of the metric states is compared (fitting over ranks is tested in tests/test_scorers). HEAT is left
    out of the comparison: its running normalisation follows the image order, which differs per rank
    (see its docstring), so its scores legitimately depend on the sharding.
    """
    _, ckpt, _ = dist_trained
    options = small_run_options(tiny_street_hazards, 2, 'test_dataloader.dataset.indices=5')
    single, dist = str(tmp_path / 'single'), str(tmp_path / 'dist')
    run_tool(repo_root, ['tools/test.py', ANOMALY_CONFIG, ckpt, '--work-dir', single] + options)
    shutil.copytree(single, dist, ignore=shutil.ignore_patterns('2*'))  # the fitted stats file only
    proc = run_tool(
        repo_root, ['bash', 'tools/dist_test.sh', ANOMALY_CONFIG, ckpt, '2', '--work-dir', dist] + options,
        env=dict(PYTHON=sys.executable, PORT=str(free_port())))
    log = proc.stdout + proc.stderr
    assert 'running 2 processes on CPU with the gloo backend' in log
    assert 'loaded the fitted statistics of SML, Mahalanobis' in log
    one = json.load(open(osp.join(single, 'test_results.json')))['metrics']
    two = json.load(open(osp.join(dist, 'test_results.json')))['metrics']
    assert one.keys() == two.keys()
    compared = [k for k in one if '/HEAT/' not in k]
    assert {'mIoU', 'anomaly/pooled/MaxLogit/AUROC', 'anomaly/per_image/Mahalanobis/FPR95',
            'anomaly/pooled/SML/AUPR'} <= set(compared)
    assert {k: two[k] for k in compared} == {k: one[k] for k in compared}
