"""tools/analysis/class_distribution.py on a copy of the generated data with planted bad files."""
import csv
import glob
import importlib.util
import json
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image


def load_tool(repo_root, rel):
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(rel))[0], osp.join(repo_root, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def data_copy(tmp_path, tiny_street_hazards):
    """train + test annotations of the generated set, plus a corrupt file and one holding label 15 in test."""
    root = tmp_path / 'sh'
    for rel in ('train/annotations/training', 'test/annotations/test'):
        shutil.copytree(osp.join(tiny_street_hazards, rel), root / rel)
    bad_dir = root / 'test/annotations/test/t6'
    (bad_dir / 'corrupt.png').write_bytes(b'\x89PNG broken')
    label15 = np.full((8, 8), 7, np.uint8)
    label15[:2] = 15
    Image.fromarray(label15).save(bad_dir / 'label15.png')
    return root


def recount(files):
    pixels, images, total = np.zeros(15, np.int64), np.zeros(15, np.int64), 0
    for f in files:
        raw = np.asarray(Image.open(f))
        counts = np.bincount(raw.reshape(-1), minlength=256)[:15]
        counts[0] = 0
        pixels += counts
        images += counts > 0
        total += raw.size
    return pixels, images, total


def test_class_distribution_counts_and_names_bad_files(repo_root, data_copy, tmp_path, capsys):
    tool = load_tool(repo_root, 'tools/analysis/class_distribution.py')
    out = tmp_path / 'dist'
    assert tool.main([str(data_copy), '--out', str(out)]) == 0
    captured = capsys.readouterr()
    assert 'corrupt.png' in captured.err and 'label15.png holds value(s) [15]' in captured.err
    assert 'train/annotations/validation does not exist' in captured.err  # the missing val split is named
    data = json.load(open(out / 'class_distribution.json'))
    assert data['classes'][-1] == 'anomaly' and len(data['classes']) == 14
    assert 'missing' in data['splits']['val']
    corrupt = str(data_copy / 'test/annotations/test/t6/corrupt.png')
    assert [b['file'] for b in data['splits']['test']['bad']] == [corrupt]
    rows = {r['class']: r for r in data['rows']}
    for split, rel in (('train', 'train/annotations/training'), ('test', 'test/annotations/test')):
        files = [
            f for f in sorted(glob.glob(str(data_copy / rel / '**' / '*.png'), recursive=True))
            if not f.endswith('corrupt.png')
        ]
        pixels, images, total = recount(files)
        for k, name in enumerate(data['classes']):
            assert rows[name][f'{split}/pixels'] == pixels[k + 1]
            assert rows[name][f'{split}/pixel_%'] == pytest.approx(100 * pixels[k + 1] / total)
            assert rows[name][f'{split}/image_%'] == pytest.approx(100 * images[k + 1] / len(files))
    assert rows['anomaly']['train/pixels'] == 0 and rows['anomaly']['test/pixels'] > 0
    assert (out / 'class_distribution.png').stat().st_size > 10000
    md = (out / 'class_distribution.md').read_text()
    assert md.splitlines()[0].startswith('| class | train pixel % | test pixel %')
    assert len(list(csv.DictReader(open(out / 'class_distribution.csv')))) == 14
    assert tool.main([str(tmp_path / 'nowhere'), '--out', str(out)]) == 1
