"""Bad configs fail before the Runner is built, with one clear message per mistake naming key and choices."""
import copy
import os.path as osp

import pytest
from mmengine.config import Config
from tool_runner import DEMO_CONFIG, run_tool, small_run_options

from anomseg_plugins.registry import ANOMALY_SCORERS
from anomseg_plugins.utils.config_checks import ConfigError, check_config


@pytest.fixture(scope='module')
def demo_cfg(repo_root, tiny_street_hazards):
    cfg = Config.fromfile(osp.join(repo_root, DEMO_CONFIG))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = tiny_street_hazards
    return cfg


@pytest.fixture
def cfg(demo_cfg):
    return copy.deepcopy(demo_cfg)


def anomaly(cfg, scorers, test_cfg=None):
    cfg.test_cfg = test_cfg or dict(type='AnomalyTestLoop')
    cfg.test_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']), dict(type='AnomalyMetric', scorers=scorers)]
    return cfg


def problems(cfg, mode) -> list:
    with pytest.raises(ConfigError) as info:
        check_config(cfg, mode)
    assert str(info.value).startswith(f'{len(info.value.problems)} problem(s) in config')
    return info.value.problems


def test_valid_configs_pass(cfg):
    check_config(cfg, 'train')
    check_config(anomaly(cfg, [dict(type='MaxLogit'), dict(type='SML')]), 'test')


def test_unknown_scorer(cfg):
    (msg, ) = problems(anomaly(cfg, [dict(type='MSP'), dict(type='MaxLogits')]), 'test')
    assert msg.startswith("test_evaluator[1].scorers[1].type = 'MaxLogits' is not a registered anomaly scorer type")
    assert "Did you mean 'MaxLogit'?" in msg
    # every registered type, sorted (a test may have registered its own scorer in this session)
    builtins = ['Energy', 'Entropy', 'HEAT', 'MSP', 'Mahalanobis', 'MaxLogit', 'SML', 'ScoreFusion']
    assert f"Valid choices: {', '.join(sorted(ANOMALY_SCORERS.module_dict))}." in msg
    assert set(builtins) <= set(ANOMALY_SCORERS.module_dict)


def test_unknown_fused_child_scorer(cfg):
    fusion = dict(type='ScoreFusion', mode='rank', scorers=[dict(type='MaxLogit'), dict(type='Energie')])
    (msg, ) = problems(anomaly(cfg, [fusion]), 'test')
    assert "test_evaluator[1].scorers[0].scorers[1].type = 'Energie'" in msg and "Did you mean 'Energy'" in msg


def test_unknown_head_lists_heads_only(cfg):
    cfg.model.decode_head.type = 'DepthwiseSeparableASPPHaed'
    (msg, ) = problems(cfg, 'train')
    assert msg.startswith("model.decode_head.type = 'DepthwiseSeparableASPPHaed' is not a registered decode_head type")
    assert "Did you mean 'DepthwiseSeparableASPPHead'" in msg
    choices = msg.split('Valid choices: ')[1]
    assert 'ASPPHead' in choices and 'LightDeepLabHead' in choices and 'ResNet' not in choices


def test_unknown_transform_and_dataset(cfg):
    cfg.train_dataloader.dataset.pipeline[2].type = 'MultiScaleSquareCorp'
    cfg.test_dataloader.dataset.type = 'StreetHazardDataset'
    (train_msg, ) = problems(cfg, 'train')
    assert train_msg.startswith("train_dataloader.dataset.pipeline[2].type = 'MultiScaleSquareCorp' is not a "
                                'registered transform type')
    assert "Did you mean 'MultiScaleSquareCrop'" in train_msg and 'LoadStreetHazardsAnnotations' in train_msg
    (test_msg, ) = problems(cfg, 'test')
    assert "test_dataloader.dataset.type = 'StreetHazardDataset'" in test_msg
    assert "Did you mean 'StreetHazardsDataset'" in test_msg and 'CityscapesDataset' in test_msg


def test_missing_data_root(cfg, tmp_path):
    missing = str(tmp_path / 'no_such_root')
    cfg.val_dataloader.dataset.data_root = missing
    (msg, ) = problems(cfg, 'train')
    assert msg.startswith(f"val_dataloader.dataset.data_root = '{missing}' does not exist")
    assert 'val_dataloader.dataset.data_root=/path/to/data' in msg
    check_config(cfg, 'test')  # testing does not read the val split ...
    anomaly(cfg, [dict(type='SML')])
    (msg, ) = problems(cfg, 'test')  # ... unless a scorer is fitted on it
    assert msg.startswith('val_dataloader.dataset.data_root')


def test_missing_data_prefix_folder(cfg):
    from anomseg_plugins.datasets import data_path_problems
    ds = cfg.train_dataloader.dataset
    ds.data_prefix.img_path = 'train/images/trainig'
    (msg, ) = problems(cfg, 'train')
    assert msg.startswith("train_dataloader.dataset.data_prefix.img_path = 'train/images/trainig': folder")
    # the same check and wording as the dataset and the integrity check
    assert [msg
            ] == [p.message for p in data_path_problems(ds.data_root, ds.data_prefix, key='train_dataloader.dataset')]


def test_missing_ann_file(cfg):
    cfg.val_dataloader.dataset.ann_file = 'splits/val.txt'
    (msg, ) = problems(cfg, 'train')
    assert msg.startswith("val_dataloader.dataset.ann_file = 'splits/val.txt': file")


def test_scorer_that_needs_fitting_without_fit_data(cfg):
    anomaly(cfg, [dict(type='MaxLogit'), dict(type='Mahalanobis', feature_stage=2)])
    cfg.val_dataloader = None
    (msg, ) = problems(cfg, 'test')
    assert msg.startswith('scorer(s) Mahalanobis (test_evaluator[1].scorers[1]) need fitting, but there is no fit data')
    assert 'test_cfg.fit_dataloader=dict(' in msg
    cfg.test_cfg.fit_dataloader = dict(cfg.test_dataloader)
    check_config(cfg, 'test')


def test_scorer_that_needs_fitting_without_anomaly_loop(cfg):
    anomaly(cfg, [dict(type='SML')], test_cfg=dict(type='TestLoop'))
    (msg, ) = problems(cfg, 'test')
    assert msg.startswith("test_cfg.type = 'TestLoop': scorer(s) SML (test_evaluator[1].scorers[0]) need fitting, "
                          'which only AnomalyTestLoop does')


def test_num_classes_disagrees_with_dataset(cfg):
    cfg.model.auxiliary_head.num_classes = 19
    (msg, ) = problems(cfg, 'train')
    assert msg == ("model.auxiliary_head.num_classes = 19 but the dataset of train_dataloader has 13 classes "
                   "(StreetHazardsDataset.METAINFO['classes']); set model.auxiliary_head.num_classes=13 (or give the "
                   'dataset metainfo=dict(classes=...) with 19 names).')


def test_all_problems_reported_together(cfg):
    cfg.model.backbone.norm_cfg.type = 'BNN'
    cfg.optim_wrapper.optimizer.type = 'Adamm'
    cfg.custom_hooks = [dict(type='EarlyStopingHook')]
    msgs = problems(cfg, 'train')
    assert [m.split(' = ')[0]
            for m in msgs] == ['model.backbone.norm_cfg.type', 'custom_hooks[0].type', 'optim_wrapper.optimizer.type']
    assert "Did you mean 'BN'" in msgs[0] and "'EarlyStoppingHook'" in msgs[1] and "'Adam'" in msgs[2]


@pytest.mark.slow  # runs tools/train.py in a subprocess
def test_train_tool_exits_with_the_message(repo_root, tiny_street_hazards, tmp_path):
    work_dir = str(tmp_path / 'run')
    proc = run_tool(
        repo_root, ['tools/train.py', DEMO_CONFIG, '--work-dir', work_dir] +
        small_run_options(tiny_street_hazards, 1, 'model.decode_head.type=DepthwiseSeparableASPPHaed',
                          f'val_dataloader.dataset.data_root={tmp_path}/missing'),
        expect_rc=1)
    assert f'tools/train.py: 2 problem(s) in config {DEMO_CONFIG}' in proc.stderr
    assert "- model.decode_head.type = 'DepthwiseSeparableASPPHaed'" in proc.stderr
    assert f"- val_dataloader.dataset.data_root = '{tmp_path}/missing' does not exist" in proc.stderr
    assert 'Traceback' not in proc.stderr and not osp.exists(osp.join(work_dir, 'epoch_1.pth'))


def test_checks_can_be_switched_off(cfg):
    cfg.model.decode_head.type = 'NoSuchHead'
    cfg.skip_config_checks = True
    check_config(cfg, 'train')


def _no_workers_msg(key: str) -> str:
    return (f'{key}.persistent_workers=True needs {key}.num_workers > 0 (it is 0): also pass '
            f'{key}.persistent_workers=False, or set {key}.num_workers to 1 or more.')


@pytest.mark.parametrize('loader', ['train_dataloader', 'val_dataloader'])
def test_no_workers_with_persistent_workers_names_the_key(repo_root, tiny_street_hazards, loader):
    """`--cfg-options <loader>.num_workers=0` on a config with persistent workers (torch: a bare ValueError)."""
    from anomseg_plugins.utils import load_tool_config
    roots = {f'{key}.dataset.data_root': tiny_street_hazards for key in ('train_dataloader', 'val_dataloader')}
    cfg = load_tool_config(osp.join(repo_root, DEMO_CONFIG), dict(roots, **{f'{loader}.num_workers': 0}))
    assert cfg[loader].persistent_workers is True
    (msg, ) = problems(cfg, 'train')
    assert msg == _no_workers_msg(loader)
    cfg.merge_from_dict({f'{loader}.persistent_workers': False})  # the fix the message gives
    check_config(cfg, 'train')


def test_no_workers_in_test_and_fit_dataloaders(cfg):
    cfg.test_dataloader.num_workers = 0
    fit_loader = copy.deepcopy(cfg.val_dataloader)
    fit_loader.num_workers = 0
    anomaly(cfg, [dict(type='SML')], dict(type='AnomalyTestLoop', fit_dataloader=fit_loader))
    assert problems(cfg, 'test') == [_no_workers_msg('test_dataloader'), _no_workers_msg('test_cfg.fit_dataloader')]
    cfg.test_cfg.fit_dataloader.persistent_workers = False
    cfg.test_cfg.fit_dataloader.prefetch_factor = 2
    (_, msg) = problems(cfg, 'test')
    assert msg == ('test_cfg.fit_dataloader.prefetch_factor=2 needs test_cfg.fit_dataloader.num_workers > 0 (it is 0): '
                   'also pass test_cfg.fit_dataloader.prefetch_factor=None, or set test_cfg.fit_dataloader.num_workers '
                   'to 1 or more.')


@pytest.mark.parametrize('ds_type, source, layout', [
    ('RoadAnomaly21Dataset', "SegmentMeIfYouCan's dataset_AnomalyTrack", 'labels_masks/{fid}_labels_semantic.png'),
    ('LostAndFoundDataset', 'the LostAndFound release', 'gtCoarse_labelIds.png'),
])
def test_data_path_errors_name_the_configured_datasets_source(cfg, tmp_path, ds_type, source, layout):
    """A road-anomaly test set's path errors say where that benchmark comes from, not how to get StreetHazards."""
    ds = cfg.test_dataloader.dataset
    ds.type, ds.data_root, ds.data_prefix = ds_type, str(tmp_path / 'nowhere'), dict(img_path='images')
    (msg, ) = problems(cfg, 'test')
    assert msg.startswith(f"test_dataloader.dataset.data_root = '{tmp_path / 'nowhere'}' does not exist")
    assert source in msg and 'generate_road_anomaly_sets.py' in msg
    assert 'StreetHazards' not in msg and 'generate_streethazards' not in msg
    ds.data_root = str(tmp_path)  # exists; its prefix folder does not
    (msg, ) = problems(cfg, 'test')
    assert msg.startswith("test_dataloader.dataset.data_prefix.img_path = 'images': folder")
    assert layout in msg and 'StreetHazards' not in msg


def test_data_path_errors_of_other_datasets_name_their_type(cfg, tmp_path):
    """mmseg's own datasets (no data_hint) get a hint naming their type, never the StreetHazards one."""
    ds = cfg.test_dataloader.dataset
    ds.type, ds.data_root = 'CityscapesDataset', str(tmp_path / 'cityscapes')
    (msg, ) = [m for m in problems(cfg, 'test') if 'data_root' in m]  # (and the 19 vs 13 classes problems)
    assert 'CityscapesDataset: the release in the layout its class reads' in msg and 'StreetHazards' not in msg


def test_street_hazards_path_errors_keep_their_hint(cfg, tmp_path):
    cfg.test_dataloader.dataset.data_root = str(tmp_path / 'sh')
    (msg, ) = problems(cfg, 'test')
    assert msg.endswith('(StreetHazards: unpack streethazards_train.tar and streethazards_test.tar, or generate a '
                        f"copy with `python tools/dataset/generate_streethazards.py --out {tmp_path / 'sh'}`).")
