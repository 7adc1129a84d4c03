"""tools/infer.py with the demo model (random weights, checkpoint in tmp_path) on a folder with a corrupt image."""
import importlib.util
import json
import os.path as osp
import shutil

import numpy as np
import pytest
import torch

CONFIG = 'configs/demo/deeplab_r18_tiny_demo.py'


def load_tool(repo_root, rel):
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(rel))[0], osp.join(repo_root, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def model_and_ckpt(repo_root, tmp_path_factory):
    from mmengine.config import Config
    from mmseg.apis import init_model

    from anomseg_plugins.datasets import StreetHazardsDataset
    torch.manual_seed(0)
    model = init_model(Config.fromfile(osp.join(repo_root, CONFIG)), None, device='cpu')
    path = str(tmp_path_factory.mktemp('ckpt') / 'random.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(StreetHazardsDataset.METAINFO))), path)
    return model, path


@pytest.fixture
def image_folder(tmp_path, tiny_street_hazards):
    import mmcv
    folder = tmp_path / 'images'
    (folder / 'sub').mkdir(parents=True)
    shutil.copy(osp.join(tiny_street_hazards, 'test', 'images', 'test', 't5', '0.png'), folder / 'scene.png')
    rng = np.random.default_rng(0)
    mmcv.imwrite(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8), str(folder / 'sub' / 'small.jpg'))
    mmcv.imwrite(rng.integers(0, 255, (37, 41), dtype=np.uint8), str(folder / 'gray.png'))
    (folder / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n truncated')
    (folder / 'notes.txt').write_text('not an image, not an image extension')
    return folder


def test_infer_folder_skips_the_corrupt_image(repo_root, model_and_ckpt, image_folder, tmp_path, capsys):
    import mmcv

    from anomseg_plugins.datasets import StreetHazardsDataset
    tool = load_tool(repo_root, 'tools/infer.py')
    out = tmp_path / 'out'
    rc = tool.main([
        osp.join(repo_root, CONFIG), model_and_ckpt[1],
        str(image_folder), '--out',
        str(out), '--threshold', '0.0', '--save-scores'
    ])
    assert rc == 0
    captured = capsys.readouterr()
    assert f'skipped {image_folder / "broken.png"}: unreadable' in captured.err
    assert 'processed 3 of 4 image(s)' in captured.out
    summary = json.load(open(out / 'infer_summary.json'))
    assert [osp.basename(s['file']) for s in summary['skipped']] == ['broken.png']
    assert sorted(osp.basename(p['file']) for p in summary['processed']) == ['gray.png', 'scene.png', 'small.jpg']
    palette = {tuple(c) for c in StreetHazardsDataset.METAINFO['palette']}
    for stem, (h, w) in (('scene', (96, 160)), ('sub/small', (50, 70)), ('gray', (37, 41))):
        for kind in ('seg', 'anomaly', 'overlay'):
            img = mmcv.imread(str(out / f'{stem}_{kind}.png'), channel_order='rgb')
            assert img.shape == (h, w, 3), (stem, kind)
        seg = mmcv.imread(str(out / f'{stem}_seg.png'), channel_order='rgb')
        assert {tuple(c) for c in seg.reshape(-1, 3)} <= palette
        score = np.load(out / f'{stem}_anomaly.npy')
        assert score.shape == (h, w) and np.isfinite(score).all()
    assert not (out / 'broken_seg.png').exists()


@pytest.mark.slow  # a test run to fit, then inference
def test_infer_fitted_scorers_load_the_test_statistics(repo_root, model_and_ckpt, image_folder, tmp_path, capsys):
    """SML and Mahalanobis (backbone features) load AnomalyTestLoop's stats file; other weights are refused."""
    from anomseg_plugins.engine.scorer_stats import model_stats_key
    from anomseg_plugins.scorers import SML, Mahalanobis
    tool = load_tool(repo_root, 'tools/infer.py')
    model, ckpt = model_and_ckpt
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = list(model.backbone(x))
    logits = torch.randn(2, 13, 64, 64)
    gt = torch.randint(0, 13, (2, 64, 64))
    scorers = [SML(), Mahalanobis(feature_stage=2)]
    for s in scorers:
        s.fit_begin()
        s.fit_step(logits, feats, gt)
        s.fit_end()
    stats = dict(
        meta=dict(model_stats_key(model), fit_data=None, fit_pipeline=None),
        scorers={s.name: dict(signature=s.fit_signature(), state_dict=s.state_dict())
                 for s in scorers})
    stats_file = tmp_path / 'anomaly_scorer_stats.pth'
    torch.save(stats, stats_file)
    image = str(image_folder / 'scene.png')
    for name in ('SML', 'Mahalanobis'):
        out = tmp_path / name
        assert tool.main(
            [osp.join(repo_root, CONFIG), ckpt, image, '--out',
             str(out), '--scorer', name, '--stats',
             str(stats_file)]) == 0
        assert f'loaded the fitted statistics of {name}' in capsys.readouterr().out
        assert (out / 'scene_anomaly.png').is_file()
    # stale statistics are refused naming what changed: the weights, or e.g. the model's test_cfg
    for part, value, message in (('model', 'other weights', 'the model weights changed'), (
            'test_cfg', dict(mode='slide', crop_size=[8, 8], stride=[4, 4]),
            "the model test_cfg changed (crop_size: [8, 8] -> '<unset>'; mode: 'slide' -> 'whole'")):
        stale = dict(stats, meta=dict(stats['meta'], **{part: value}))
        torch.save(stale, stats_file)
        with pytest.raises(ValueError, match='fitted for another model') as info:
            tool.main([
                osp.join(repo_root, CONFIG), ckpt, image, '--out',
                str(tmp_path / 'x'), '--scorer', 'SML', '--stats',
                str(stats_file)
            ])
        assert message in str(info.value)
    with pytest.raises(FileNotFoundError, match='needs fitted statistics'):
        tool.main([
            osp.join(repo_root, CONFIG), ckpt, image, '--out',
            str(tmp_path / 'y'), '--scorer', 'SML', '--stats',
            str(tmp_path / 'nothing.pth')
        ])


def test_infer_glob_input(repo_root, model_and_ckpt, image_folder, tmp_path, capsys):
    tool = load_tool(repo_root, 'tools/infer.py')
    ckpt = model_and_ckpt[1]
    out = tmp_path / 'glob'
    assert tool.main(
        [osp.join(repo_root, CONFIG), ckpt,
         str(image_folder / '*.png'), '--out',
         str(out), '--scorer', 'Energy']) == 0
    summary = json.load(open(out / 'infer_summary.json'))
    assert summary['scorer'] == 'Energy' and len(summary['processed']) == 2  # scene.png, gray.png (broken skipped)
    assert tool.main(
        [osp.join(repo_root, CONFIG), ckpt,
         str(tmp_path / 'nothing' / '*.png'), '--out',
         str(tmp_path / 'w')]) == 1
    assert 'matches no image file' in capsys.readouterr().err


@pytest.mark.parametrize('case', ['five_classes', 'missing_aux_head'])
def test_infer_refuses_a_checkpoint_that_does_not_fit(repo_root, model_and_ckpt, image_folder, tmp_path, case):
    """Missing or differently shaped weights: refused before any image, naming the file, the keys and the shapes."""
    from anomseg_plugins.utils import CheckpointMismatchError
    tool = load_tool(repo_root, 'tools/infer.py')
    weights = dict(model_and_ckpt[0].state_dict())
    if case == 'five_classes':  # a checkpoint trained for 5 classes
        weights.update({
            'decode_head.conv_seg.weight': torch.zeros(5, 64, 1, 1),
            'decode_head.conv_seg.bias': torch.zeros(5)
        })
        expected = ('- 2 weight(s) of another shape (checkpoint vs model): decode_head.conv_seg.weight (5, 64, 1, 1) '
                    'vs (13, 64, 1, 1), decode_head.conv_seg.bias (5,) vs (13,)')
    else:
        weights = {k: v for k, v in weights.items() if not k.startswith('auxiliary_head.conv_seg')}
        expected = ('- 2 weight(s) of the model missing from the checkpoint: auxiliary_head.conv_seg.weight '
                    '(13, 32, 1, 1), auxiliary_head.conv_seg.bias (13,)')
    bad_ckpt = str(tmp_path / f'{case}.pth')
    torch.save(dict(state_dict=weights, meta={}), bad_ckpt)
    out = tmp_path / 'out'
    with pytest.raises(CheckpointMismatchError) as info:
        tool.main([osp.join(repo_root, CONFIG), bad_ckpt, str(image_folder), '--out', str(out)])
    msg = str(info.value)
    assert msg.startswith(f'checkpoint {bad_ckpt} does not fit the model: ')
    assert expected in msg.split('\n')
    assert not out.exists()  # nothing was processed
