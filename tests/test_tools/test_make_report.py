"""tools/analysis/make_report.py on a fabricated work dir: tables, copied figures, links that resolve."""
import importlib.util
import json
import os.path as osp
import re

import numpy as np


def load_tool(repo_root, rel):
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(rel))[0], osp.join(repo_root, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def png(path):
    from anomseg_plugins.visualization import save_rgb
    save_rgb(str(path), np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8))


def fabricate(work):
    test = work / 'test'
    anomaly = test / '20250101_000000' / 'anomaly'
    panels = test / 'show' / 'anomaly_panels'
    anomaly.mkdir(parents=True)
    panels.mkdir(parents=True)
    metrics = {'mIoU': 41.5, 'aAcc': 88.0}
    summary = {}
    for protocol in ('pooled', 'per_image'):
        summary[protocol] = {}
        for name, (fpr, auroc, aupr) in {'MSP': (60.0, 80.0, 5.0), 'Mahalanobis': (30.0, 90.0, 12.0)}.items():
            summary[protocol][name] = dict(
                AUROC=auroc,
                AUPR=aupr,
                FPR95=fpr,
                F1=9.0,
                F1_threshold=-0.5,
                num_images=4,
                num_pixels=1000,
                num_anomaly_pixels=10)
            metrics.update({
                f'anomaly/{protocol}/{name}/{k}': v
                for k, v in summary[protocol][name].items() if k in ('AUROC', 'AUPR', 'FPR95', 'F1', 'F1_threshold')
            })
    json.dump(
        dict(config='configs/nonexistent.py', checkpoint='epoch_1.pth', metrics=metrics),
        open(test / 'test_results.json', 'w'))
    json.dump(summary, open(anomaly / 'anomaly_metrics.json', 'w'))
    (anomaly / 'anomaly_metrics.csv').write_text('protocol,scorer\n')
    png(anomaly / 'roc_curves.png')
    png(anomaly / 'pr_curves.png')
    index = dict(
        scorer='MSP',
        threshold=-0.4,
        operating_point='95% recall (pooled)',
        grid='grid.png',
        scorer_grid='scorer_grid.png',
        panels=[])
    for i in range(4):
        png(panels / f't5_{i}_panel.png')
        index['panels'].append(
            dict(image=f't5/{i}.png', file=f't5_{i}_panel.png', mIoU=40.0, precision=5.0, recall=96.0))
    png(panels / 'grid.png')
    png(panels / 'scorer_grid.png')
    json.dump(index, open(panels / 'panels.json', 'w'))


def test_report_gathers_tables_curves_panels_and_data(repo_root, tmp_path, tiny_street_hazards, capsys):
    tool = load_tool(repo_root, 'tools/analysis/make_report.py')
    work = tmp_path / 'demo'
    fabricate(work)
    assert tool.main([str(work), '--data-root', tiny_street_hazards, '--num-panels', '2']) == 0
    assert 'report: ' in capsys.readouterr().out
    report = work / 'report'
    text = (report / 'README.md').read_text()
    assert '| Mahalanobis | **30.00** | **90.00** | **12.00** |' in text  # best pooled FPR95 / AUROC / AUPR
    assert '| MSP | 60.00 | 80.00 | 5.00 |' in text
    assert '| 41.50 |' in text  # mIoU
    assert text.count('_panel.png)') == 2 and '2 more panel(s)' in text
    assert 'OK: 18 images checked' in text  # integrity check of the data root
    assert '| anomaly | 0.000 | 0.000 |' in text  # class distribution: no anomaly in train / val
    links = re.findall(r'!\[[^\]]*\]\(([^)]+)\)', text)
    assert {
        'roc_curves.png', 'pr_curves.png', 'comparison_bars.png', 'panels/grid.png', 'panels/scorer_grid.png',
        'class_distribution.png'
    } <= set(links)
    for link in links:
        assert (report / link).is_file(), link
    # a second run does not pick up its own report folder, and an empty dir is an error
    assert tool.main([str(work), '--no-data']) == 0
    assert tool.main([str(tmp_path / 'empty_missing')]) == 1
    (tmp_path / 'empty').mkdir()
    assert tool.main([str(tmp_path / 'empty')]) == 1
    assert 'holds no test_results.json' in capsys.readouterr().err
