"""Data integrity check: each kind of bad file is found and named, via the API, the CLI and train --check-data."""
import json
import os
import os.path as osp
import runpy
import sys

import cv2
import numpy as np
import pytest
from tool_runner import DEMO_CONFIG, copy_dataset, run_tool, small_run_options

from anomseg_plugins.datasets import SPLIT_PREFIXES, StreetHazardsDataset, data_path_problems, integrity
from anomseg_plugins.datasets.integrity import (DataIntegrityError, LabelSpec, check_config_data, check_dataset_cfg,
                                                check_pairs, check_street_hazards, label_spec_for)

TRAIN_IMG = 'train/images/training/t1-3'
TRAIN_ANN = 'train/annotations/training/t1-3'
VAL_ANN = 'train/annotations/validation/t4'


@pytest.fixture(scope='module')
def broken(tiny_street_hazards, tmp_path_factory):
    """A copy of the generated dataset with one file of each kind of fault; returns (root, expected faults)."""
    root = copy_dataset(tiny_street_hazards, str(tmp_path_factory.mktemp('broken') / 'data'))
    p = lambda rel: osp.join(root, rel)  # noqa: E731
    data = open(p(f'{TRAIN_IMG}/0.png'), 'rb').read()
    open(p(f'{TRAIN_IMG}/0.png'), 'wb').write(data[:len(data) // 2])  # truncated PNG
    open(p(f'{TRAIN_IMG}/1.png'), 'w').write('this is not an image')  # not an image
    os.remove(p(f'{TRAIN_ANN}/2.png'))  # annotation missing
    ann = cv2.imread(p(f'{TRAIN_ANN}/3.png'), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(p(f'{TRAIN_ANN}/3.png'), ann[:48, :80])  # wrong size
    ann = cv2.imread(p(f'{TRAIN_ANN}/4.png'), cv2.IMREAD_UNCHANGED)
    ann[0, :3] = 0
    ann[1, :2] = 20
    cv2.imwrite(p(f'{TRAIN_ANN}/4.png'), ann)  # labels 0 and 20 (valid: 1..14)
    ann = cv2.imread(p(f'{VAL_ANN}/0.png'), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(p(f'{VAL_ANN}/0.png'), np.dstack([ann] * 3))  # colour annotation
    expected = {
        (p(f'{TRAIN_IMG}/0.png'), 'unreadable_image'),
        (p(f'{TRAIN_IMG}/1.png'), 'unreadable_image'),
        (p(f'{TRAIN_IMG}/2.png'), 'missing_annotation'),
        (p(f'{TRAIN_ANN}/3.png'), 'size_mismatch'),
        (p(f'{TRAIN_ANN}/4.png'), 'label_out_of_range'),
        (p(f'{VAL_ANN}/0.png'), 'not_single_channel'),
    }
    return root, expected


def test_clean_dataset_passes_with_statistics(tiny_street_hazards):
    report = check_street_hazards(tiny_street_hazards, progress=False)
    assert report.ok and report.issues == []
    assert [s.num_images for s in report.splits] == [8, 4, 6]
    for split in report.splits:
        assert split.image_sizes == {'160x96': split.num_images}
        # every pixel of every annotation is counted once; values within 1..14
        assert sum(split.label_counts.values()) == 160 * 96 * split.num_images
        assert min(split.label_counts) >= 1 and max(split.label_counts) <= 14
    assert 14 in report.splits[2].label_counts and 14 not in report.splits[0].label_counts
    assert 'OK: 18 images checked' in report.format()


def test_every_fault_is_found_and_named(broken):
    root, expected = broken
    report = check_street_hazards(root, progress=False)
    assert not report.ok
    assert {(i.path, i.problem) for i in report.issues} == expected
    by_problem = {i.problem: i for i in report.issues}
    assert 'truncated or not an image' in by_problem['unreadable_image'].detail
    assert 'annotation is 80x48 but the image' in by_problem['size_mismatch'].detail
    assert 'label value(s) [0, 20] at 5 pixel(s); expected 1..14' in by_problem['label_out_of_range'].detail
    assert 'no annotation at' in by_problem['missing_annotation'].detail
    assert '(96, 160, 3)' in by_problem['not_single_channel'].detail
    assert [s.num_bad_files for s in report.splits] == [5, 1, 0]
    text = report.format()
    assert 'FAILED: 6 problem(s) in 6 file(s)' in text
    for path, problem in expected:
        assert f'{path}: {problem}' in text
    with pytest.raises(DataIntegrityError, match='FAILED: 6 problem'):
        report.raise_for_issues()
    json.dumps(report.to_dict())  # serialisable for the reports / analysis tools


def test_parallel_check_matches_serial(broken, monkeypatch, capsys):
    root, _ = broken
    serial = check_street_hazards(root, splits=['train'], num_workers=1, progress=False)
    monkeypatch.setattr(integrity, 'MIN_PARALLEL', 0)
    parallel = check_street_hazards(root, splits=['train'], num_workers=2, progress=True)
    assert [(i.path, i.problem, i.detail) for i in parallel.issues] == \
        [(i.path, i.problem, i.detail) for i in serial.issues]
    assert parallel.splits[0].label_counts == serial.splits[0].label_counts
    out = capsys.readouterr().out  # a header per split, then mmengine's progress bar
    assert '[check_integrity] train: 8 files in' in out and '8/8' in out and 'ETA' in out


def test_missing_and_empty_splits(tmp_path):
    (tmp_path / 'train/images/training/t1-3').mkdir(parents=True)
    (tmp_path / 'train/annotations/training/t1-3').mkdir(parents=True)
    report = check_street_hazards(str(tmp_path), splits=['train', 'test'], progress=False)
    problems = {(i.split, i.problem) for i in report.issues}
    assert problems == {('train', 'empty_split'), ('test', 'missing_folder')}
    missing = check_street_hazards(str(tmp_path / 'nope'), progress=False)
    (issue, ) = missing.issues  # the root once, not once per split
    assert issue.problem == 'missing_folder' and 'nope' in issue.path
    assert 'generate_streethazards.py --out' in issue.detail


def test_pairs_are_the_datasets_data_list(tiny_street_hazards, monkeypatch):
    """The check reads the files the dataset the config builds lists (here: its ``indices`` subset)."""
    cfg = dict(type='StreetHazardsDataset', data_root=tiny_street_hazards, data_prefix=SPLIT_PREFIXES['val'], indices=3)
    checked = []
    monkeypatch.setattr(integrity, 'check_pair', lambda task: checked.append(task[1:3]) or ([], None, None))
    report = check_dataset_cfg(cfg, 'val', num_workers=1, progress=False)
    ds = StreetHazardsDataset(**{k: v for k, v in cfg.items() if k != 'type'})
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert checked == [(d['img_path'], d['seg_map_path']) for d in infos] and len(checked) == 3
    assert report.ok and report.splits[0].num_images == 3


def test_missing_paths_use_the_shared_message(tiny_street_hazards):
    """Config key, path and fix, worded as the config checks and the dataset word them."""
    cfg = dict(
        type='StreetHazardsDataset',
        data_root=tiny_street_hazards,
        data_prefix=dict(img_path='train/images/trainig', seg_map_path='train/annotations/training'))
    report = check_dataset_cfg(cfg, 'train', progress=False, key='train_dataloader.dataset')
    (issue, ) = report.issues
    (expected, ) = data_path_problems(cfg['data_root'], cfg['data_prefix'], key='train_dataloader.dataset')
    assert (issue.problem, issue.path, issue.detail) == ('missing_folder', expected.path, expected.message)
    assert issue.detail.startswith("train_dataloader.dataset.data_prefix.img_path = 'train/images/trainig': folder")
    ann_file = check_dataset_cfg(
        dict(cfg, data_prefix=SPLIT_PREFIXES['val'], ann_file='splits/val.txt'), 'val', progress=False).issues
    assert [(i.problem, i.path) for i in ann_file] == [('missing_folder', f'{tiny_street_hazards}/splits/val.txt')]
    assert ann_file[0].detail.startswith("ann_file = 'splits/val.txt': file")


def test_unbuildable_dataset_is_an_issue(tiny_street_hazards):
    report = check_dataset_cfg(
        dict(type='StreetHazardDataset', data_root=tiny_street_hazards),
        'train',
        progress=False,
        key='train_dataloader.dataset')
    (issue, ) = report.issues
    assert issue.problem == 'dataset_error' and issue.path == 'train_dataloader.dataset'
    assert 'StreetHazardDataset' in issue.detail and not report.ok


def test_label_spec_follows_the_dataset():
    assert label_spec_for(dict(type='StreetHazardsDataset')) == LabelSpec(1, 14)
    assert label_spec_for(dict(type='CityscapesDataset')) == LabelSpec(0, 18, (255, ))
    assert label_spec_for(dict(type='ADE20KDataset')) == LabelSpec(0, 150, (255, ))  # reduce_zero_label
    # a class subset is mapped on loading: the files still hold the values of all 19 classes
    assert label_spec_for(dict(type='CityscapesDataset', metainfo=dict(classes=('road', 'car')))) == \
        LabelSpec(0, 18, (255, ))


def test_check_pairs_without_annotations(tiny_street_hazards):
    img = osp.join(tiny_street_hazards, TRAIN_IMG, '5.png')
    report = check_pairs([(img, None)], split='images', progress=False)
    assert report.ok and report.splits[0].image_sizes == {'160x96': 1} and report.splits[0].label_counts == {}


def test_config_data_check_uses_dataloaders(broken, repo_root):
    from mmengine.config import Config
    root, _ = broken
    cfg = Config.fromfile(osp.join(repo_root, DEMO_CONFIG))
    for key in ('train_dataloader', 'val_dataloader'):
        cfg[key].dataset.data_root = root
    report = check_config_data(cfg, progress=False)
    assert [s.split for s in report.splits] == ['train', 'val']
    assert len(report.issues) == 6 and report.splits[0].label_spec == '1..14'


@pytest.mark.slow  # runs the tools in subprocesses
def test_cli_lists_offenders_and_exits_nonzero(broken, repo_root, tmp_path):
    root, expected = broken
    out_json = str(tmp_path / 'report.json')
    proc = run_tool(repo_root, ['tools/dataset/check_integrity.py', root, '--json', out_json], expect_rc=1)
    for path, problem in expected:
        assert f'{path}: {problem}' in proc.stdout
    report = json.load(open(out_json))
    assert report['ok'] is False and len(report['issues']) == 6 and report['num_images'] == 18


def test_cli_ok_exits_zero(tiny_street_hazards, repo_root, monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', ['check_integrity.py', tiny_street_hazards, '--splits', 'val'])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(osp.join(repo_root, 'tools/dataset/check_integrity.py'), run_name='__main__')
    assert info.value.code == 0
    assert 'OK: 4 images checked' in capsys.readouterr().out


@pytest.mark.slow  # runs the tools in subprocesses
def test_train_check_data_stops_before_training(broken, repo_root, tmp_path):
    root, expected = broken
    work_dir = str(tmp_path / 'run')
    proc = run_tool(
        repo_root, ['tools/train.py', DEMO_CONFIG, '--work-dir', work_dir, '--check-data'] + small_run_options(root, 1),
        expect_rc=1)
    for path, problem in expected:
        assert f'{path}: {problem}' in proc.stdout
    assert '--check-data found 6 problem(s) in 6 file(s)' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not osp.exists(osp.join(work_dir, 'epoch_1.pth')) and 'Epoch(train)' not in proc.stdout
