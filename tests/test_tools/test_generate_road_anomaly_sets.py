"""tools/dataset/generate_road_anomaly_sets.py: writes the selected sets, refuses to overwrite without --overwrite,
names what is wrong in its arguments, and documents the layouts in --help."""
import importlib.util
import os
import os.path as osp
import re

import cv2
import pytest


@pytest.fixture(scope='module')
def cli(repo_root):
    path = osp.join(repo_root, 'tools', 'dataset', 'generate_road_anomaly_sets.py')
    spec = importlib.util.spec_from_file_location('generate_road_anomaly_sets', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_writes_then_refuses_then_overwrites(cli, tmp_path, capsys):
    out = str(tmp_path / 'sets')
    args = ['--out', out, '--size', '64x32', '--size-wide', '80x45', '--num-test', '3', '--sets', 'obstacle,laf']
    assert cli.main(args + ['--quiet']) == 0
    assert sorted(os.listdir(out)) == ['dataset_FishyLAF', 'dataset_LostAndFound', 'dataset_ObstacleTrack']
    images = sorted(os.listdir(osp.join(out, 'dataset_ObstacleTrack', 'images')))
    assert images == ['curvy-street_1.webp', 'validation_1.webp', 'validation_2.webp']
    assert cv2.imread(osp.join(out, 'dataset_ObstacleTrack', 'images', images[0])).shape == (45, 80, 3)
    printed = capsys.readouterr().out
    assert re.search(r'dataset_ObstacleTrack +3 frames, +2 labelled, anomaly pixels [0-9.]+ %', printed)
    assert re.search(r'dataset_LostAndFound test +3 frames, +3 labelled', printed)
    assert re.search(r'dataset_LostAndFound train +1 frames, +1 labelled', printed)
    assert re.search(r'dataset_FishyLAF +3 labelled frames', printed)  # 2 of the 3 test frames, the train frame

    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert 'already exist' in err and osp.join(out, 'dataset_ObstacleTrack') in err and '--overwrite' in err

    assert cli.main(args + ['--overwrite', '--num-test', '1']) == 0
    assert os.listdir(osp.join(out, 'dataset_ObstacleTrack', 'images')) == ['validation_1.webp']
    printed = capsys.readouterr().out
    assert '[generate_road_anomaly_sets] drawing' in printed and 'done in' in printed  # progress without --quiet


@pytest.mark.parametrize('args, message', [
    (['--size', '64'], "'64': expected WIDTHxHEIGHT"),
    (['--sets', 'cityscapes,kitti'], "--sets 'cityscapes,kitti': expected a comma-separated subset"),
])
def test_cli_names_malformed_arguments(cli, args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_rejects_sizes_too_small(cli, tmp_path, capsys):
    assert cli.main(['--out', str(tmp_path / 'x'), '--size', '32x16', '--quiet']) == 2
    assert 'at least 48x24' in capsys.readouterr().err
    assert not osp.exists(tmp_path / 'x' / 'cityscapes')


def test_help_documents_layouts_and_defaults(cli, capsys):
    with pytest.raises(SystemExit):
        cli.parse_args(['--help'])
    text = capsys.readouterr().out
    for needle in ('dataset_AnomalyTrack/', 'labels_masks/{fid}_labels_semantic.png', 'dataset_FishyLAF/',
                   '_gtCoarse_labelIds.png', '_gtFine_labelTrainIds.png', 'default 512x256', '512x288',
                   'pedestrian -> person'):
        assert needle in text, needle
