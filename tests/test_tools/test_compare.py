"""tools/analysis/compare.py on fabricated test_results.json files: ordering, best marks, written files."""
import csv
import importlib.util
import json
import os.path as osp

import pytest


def load_tool(repo_root, rel):
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(rel))[0], osp.join(repo_root, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the headline config's name (model names default to the config file names)
R50 = 'deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512'


def results(miou, scorers, config):
    """A test_results.json as tools/test.py writes it; per-image values = pooled + 1 (FPR95, AUPR) / - 1 (AUROC)."""
    metrics = {'aAcc': 90.0, 'mIoU': miou, 'mAcc': 60.0}
    for name, (fpr, auroc, aupr) in scorers.items():
        for protocol, d in (('pooled', 0.0), ('per_image', 1.0)):
            metrics.update({
                f'anomaly/{protocol}/{name}/FPR95': fpr + d,
                f'anomaly/{protocol}/{name}/AUROC': auroc - d,
                f'anomaly/{protocol}/{name}/AUPR': aupr + d,
                f'anomaly/{protocol}/{name}/F1': 10.0,
                f'anomaly/{protocol}/{name}/F1_threshold': -1.0
            })
    return dict(config=config, checkpoint='epoch_1.pth', metrics=metrics)


@pytest.fixture
def runs(tmp_path):
    a = tmp_path / 'runs' / 'r50' / 'test'
    b = tmp_path / 'runs' / 'segformer'
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    # the study's numbers (README "Anomaly scoring") for R50, invented ones for the second model
    json.dump(
        results(50.26, {
            'MSP': (33.57, 86.71, 6.21),
            'MaxLogit': (33.12, 90.50, 8.43)
        }, f'configs/deeplabv3plus/{R50}.py'), open(a / 'test_results.json', 'w'))
    json.dump(
        results(35.57, {
            'MSP': (40.0, 80.0, 5.0),
            'MaxLogit': (30.0, 91.0, 7.0)
        }, 'configs/segformer/b5.py'), open(b / 'test_results.json', 'w'))
    return str(tmp_path / 'runs' / 'r50'), str(b / 'test_results.json')


def test_compare_orders_marks_best_and_writes_files(repo_root, runs, tmp_path, capsys):
    tool = load_tool(repo_root, 'tools/analysis/compare.py')
    out = tmp_path / 'cmp'
    assert tool.main(list(runs) + ['--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert '8.43 *' in printed and '30.00 *' in printed and '50.26 *' in printed  # best AUPR, FPR95, mIoU
    for name in ('comparison.csv', 'comparison.md', 'comparison.json', 'comparison_bars.png'):
        assert (out / name).stat().st_size > 0, name
    data = json.load(open(out / 'comparison.json'))
    order = [(r['model'], r['scorer']) for r in data['rows']]  # best pooled AUPR first
    assert order == [(R50, 'MaxLogit'), ('b5', 'MaxLogit'), (R50, 'MSP'), ('b5', 'MSP')]
    assert data['best']['pooled/FPR95'] == dict(value=30.0, rows=[dict(model='b5', scorer='MaxLogit')])
    assert data['best']['per_image/AUPR']['value'] == pytest.approx(9.43)
    assert data['best']['mIoU']['rows'] == [dict(model=R50, scorer='MaxLogit'), dict(model=R50, scorer='MSP')]
    md = (out / 'comparison.md').read_text()
    assert f'| {R50} | MaxLogit | **50.26** | 33.12 | 90.50 | **8.43** |' in md
    assert '| b5 | MaxLogit | 35.57 | **30.00** | **91.00** | 7.00 |' in md
    rows = list(csv.DictReader(open(out / 'comparison.csv')))
    assert rows[0]['best_in'] == 'mIoU;pooled/AUPR;per_image/AUPR'
    assert float(rows[1]['per_image/FPR95']) == pytest.approx(31.0)


def test_compare_sort_by_fpr_names_and_skips_bad_inputs(repo_root, runs, tmp_path, capsys):
    tool = load_tool(repo_root, 'tools/analysis/compare.py')
    bad = tmp_path / 'bad.json'
    bad.write_text('{"metrics": ')
    out = tmp_path / 'cmp'
    argv = list(runs) + [
        str(bad),
        str(tmp_path / 'missing'), '--sort-by', 'pooled/FPR95', '--names', 'R50', 'B5', '--out',
        str(out), '--no-plot'
    ]
    assert tool.main(argv) == 0
    err = capsys.readouterr().err
    assert f'skipped: {bad}: not a readable JSON file' in err and 'missing: no such file or folder' in err
    rows = json.load(open(out / 'comparison.json'))['rows']
    assert [(r['model'], r['scorer']) for r in rows] == [('B5', 'MaxLogit'), ('R50', 'MaxLogit'), ('R50', 'MSP'),
                                                         ('B5', 'MSP')]  # lowest FPR95 first
    assert not (out / 'comparison_bars.png').exists()
    assert tool.main([str(bad), '--out', str(tmp_path / 'none')]) == 1
    assert 'no usable result file' in capsys.readouterr().err
