"""The colour-only baseline: finds anomalies of a unique colour, not ordinary-coloured ones, and its pooled
metrics are the metrics of its own scores (cross-checked against scikit-learn by value)."""
import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from anomseg_plugins.tooling import colour_baseline as cb

SIZE = (40, 32)  # (w, h)
#: Three known colours (RGB) and the classes (on-disk values) painted with them.
KNOWN = {7: (70, 70, 75), 2: (150, 110, 60), 10: (40, 60, 150)}
UNIQUE = (230, 20, 230)


def _scene(rng: np.random.Generator, anomaly_colour=None):
    """Three horizontal bands of the known classes, with noise; optionally a 6x6 anomaly square."""
    w, h = SIZE
    lab = np.zeros((h, w), np.uint8)
    img = np.zeros((h, w, 3), np.float32)
    for k, (value, colour) in enumerate(KNOWN.items()):
        rows = slice(k * h // 3, (k + 1) * h // 3 if k < 2 else h)
        lab[rows] = value
        img[rows] = colour
    if anomaly_colour is not None:
        y, x = rng.integers(0, h - 6), rng.integers(0, w - 6)
        lab[y:y + 6, x:x + 6] = 14
        img[y:y + 6, x:x + 6] = anomaly_colour
    img += rng.normal(0, 4.0, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), lab


def _write(root: str, split_dir: str, i: int, img: np.ndarray, lab: np.ndarray) -> None:
    top, sub = split_dir.split('/', 1)
    for kind, arr in (('images', img[..., ::-1]), ('annotations', lab)):
        d = osp.join(root, top, kind, sub)
        os.makedirs(d, exist_ok=True)
        assert cv2.imwrite(osp.join(d, f'{i}.png'), np.ascontiguousarray(arr))


def make_dataset(root: str, anomaly_colours, seed: int = 0) -> str:
    """A hand-made StreetHazards layout: 6 train images (known classes only), one test image per colour."""
    rng = np.random.default_rng(seed)
    for i in range(6):
        _write(root, 'train/training/t1-3', i, *_scene(rng))
    for i, colour in enumerate(anomaly_colours):
        _write(root, 'test/test/t5', i, *_scene(rng, colour))
    return root


@pytest.fixture(scope='module')
def unique_root(tmp_path_factory):
    return make_dataset(str(tmp_path_factory.mktemp('unique')), [UNIQUE] * 4)


@pytest.fixture(scope='module')
def ordinary_root(tmp_path_factory):
    colours = [KNOWN[v] for v in (7, 2, 10, 7, 2, 10)]  # anomalies painted in the known classes' colours
    return make_dataset(str(tmp_path_factory.mktemp('ordinary')), colours)


def _metrics(root, **kw):
    return cb.colour_baseline_metrics(root, **dict(dict(n_components=4, max_train_pixels=3000, progress=False), **kw))


def test_unique_colour_is_found(unique_root):
    res = _metrics(unique_root)
    assert res['AUROC'] > 99.0 and res['AUPR'] > 90.0 and res['FPR95'] < 1.0
    assert res['num_pixels'] == 4 * SIZE[0] * SIZE[1] and res['num_anomaly_pixels'] == 4 * 36
    assert res['num_train_images'] == 6 and res['num_test_images'] == 4 and res['exact']


def test_known_colours_are_not_found(ordinary_root):
    res = _metrics(ordinary_root)
    share = 100.0 * res['num_anomaly_pixels'] / res['num_pixels']
    assert res['AUROC'] < 75.0
    assert res['AUPR'] < 4 * share  # chance level is the anomaly share
    assert res['FPR95'] > 50.0


def test_metrics_equal_sklearn_on_the_same_scores(ordinary_root):
    """Refit the mixture with the module's parts and rank the scores with scikit-learn, independently."""
    res = _metrics(ordinary_root, seed=3)
    model = cb.fit_colour_model(cb.sample_train_colours(ordinary_root, 3000, seed=3), 4, seed=3)
    scores, labels = [], []
    for img_path, ann_path in cb.split_pairs(ordinary_root, 'test'):
        scores.append(cb.colour_scores(model, cb.read_lab(img_path)).ravel())
        labels.append((cv2.imread(ann_path, cv2.IMREAD_UNCHANGED) == 14).ravel())
    s, y = np.concatenate(scores), np.concatenate(labels)
    assert res['AUROC'] == pytest.approx(100 * roc_auc_score(y, s), abs=1e-6)
    assert res['AUPR'] == pytest.approx(100 * average_precision_score(y, s), abs=1e-6)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    assert res['FPR95'] == pytest.approx(100 * fpr[np.argmax(tpr >= 0.95)], abs=1e-6)  # first threshold


def test_histogram_path_agrees_with_exact(ordinary_root, monkeypatch):
    exact = _metrics(ordinary_root)
    monkeypatch.setattr(cb, 'EXACT_PIXEL_LIMIT', 2000)  # switch to the pooled histogram after the first image
    binned = _metrics(ordinary_root)
    assert not binned['exact'] and binned['num_pixels'] == exact['num_pixels']
    for key in ('AUROC', 'AUPR', 'FPR95'):
        assert binned[key] == pytest.approx(exact[key], abs=0.05), key


def test_same_seed_same_numbers(unique_root):
    assert _metrics(unique_root, seed=5) == _metrics(unique_root, seed=5)


def test_missing_root_names_the_path(tmp_path):
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError, match='nowhere'):
        _metrics(missing)


def test_cli_prints_a_table_and_writes_json(repo_root, unique_root, tmp_path, capsys):
    path = osp.join(repo_root, 'tools', 'analysis', 'colour_baseline.py')
    spec = importlib.util.spec_from_file_location('colour_baseline_cli', path)
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out = str(tmp_path / 'res' / 'colour.json')
    assert cli.main([unique_root, '--out', out, '--n-components', '4', '--max-train-pixels', '3000', '--quiet']) == 0
    printed = capsys.readouterr().out
    with open(out) as f:
        saved = json.load(f)
    assert f'{saved["AUPR"]:.2f}' in printed and 'AUROC' in printed
    assert saved == pytest.approx(_metrics(unique_root))
    assert cli.main([str(tmp_path / 'nowhere'), '--quiet']) == 1
    assert 'nowhere' in capsys.readouterr().err
