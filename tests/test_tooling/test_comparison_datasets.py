"""anomseg_plugins.tooling.comparison with multi-set results: datasets as rows, the component protocol's columns,
best values per dataset, grouping, filtering, mixed single- and multi-set inputs, the per-set summary; on
fabricated test_results.json files (values drawn at random, expectations computed here from the draws)."""
import json
import math

import numpy as np
import pytest

from anomseg_plugins.tooling import comparison as cmp

SCORERS = ('MaxLogit', 'SML')
DATASETS = ('road_anomaly21', 'road_obstacle21', 'lost_and_found')
COMPONENT = ('sIoU', 'PPV', 'F1_mean', 'F1_25')


def multi_set_result(rng, config, with_miou=('lost_and_found', )):
    """A multi-set test_results.json as tools/test.py writes it: flat prefixed keys and test_sets."""
    per_set = {}
    for dataset in DATASETS:
        values = {'mIoU': float(rng.uniform(20, 80))} if dataset in with_miou else {}
        for scorer in SCORERS:
            for protocol in ('pooled', 'per_image'):
                for m in ('AUROC', 'AUPR', 'FPR95', 'F1', 'F1_threshold'):
                    values[f'anomaly/{protocol}/{scorer}/{m}'] = float(rng.uniform(0.5, 99.5))
            for m in COMPONENT:
                values[f'anomaly/component/{scorer}/{m}'] = float(rng.uniform(0.5, 99.5))
        per_set[dataset] = values
    flat = {f'{d}/{k}': v for d, values in per_set.items() for k, v in values.items()}
    return dict(config=config, checkpoint='c.pth', metrics=flat, test_sets=per_set)


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(7)
    paths = []
    for model in ('m0', 'm1'):
        path = tmp_path / f'{model}.json'
        path.write_text(json.dumps(multi_set_result(rng, f'configs/x/{model}.py')))
        paths.append(str(path))
    return paths


def test_rows_per_model_dataset_scorer_with_component_columns(files):
    results = [cmp.load_result(p) for p in files]
    assert list(results[0]['datasets']) == list(DATASETS)
    rows = cmp.comparison_rows(results)
    assert [(r['model'], r['dataset'], r['scorer']) for r in rows] == [(m, d, s) for m in ('m0', 'm1') for d in DATASETS
                                                                       for s in SCORERS]
    for r, path in zip(rows, [p for p in files for _ in range(len(DATASETS) * len(SCORERS))]):
        values = json.load(open(path))['test_sets'][r['dataset']]
        for key in cmp.COLUMNS:
            if key == 'mIoU':
                want = values.get('mIoU', float('nan'))
            else:
                protocol, metric = key.split('/')
                want = values[f'anomaly/{protocol}/{r["scorer"]}/{metric}']
            assert r[key] == want or (math.isnan(want) and math.isnan(r[key])), (r['dataset'], key)
    assert cmp.used_columns(rows) == list(cmp.COLUMNS)  # mIoU where a set has it, the three component columns


def test_best_and_order_are_per_dataset(files, tmp_path):
    rows = cmp.sort_rows(cmp.comparison_rows([cmp.load_result(p) for p in files]), 'component/sIoU')
    # grouped by dataset in test order, highest sIoU first within each
    assert [r['dataset'] for r in rows] == [d for d in DATASETS for _ in range(4)]
    for d in DATASETS:
        group = [r['component/sIoU'] for r in rows if r['dataset'] == d]
        assert group == sorted(group, reverse=True)
    best = cmp.best_by_dataset(rows)
    for d in DATASETS:
        group = [r for r in rows if r['dataset'] == d]
        assert best[d]['pooled/FPR95'] == min(r['pooled/FPR95'] for r in group)
        assert best[d]['component/PPV'] == max(r['component/PPV'] for r in group)
        assert ('mIoU' in best[d]) == (d == 'lost_and_found')
    cmp.write_json(rows, str(tmp_path / 'c.json'), sort_by='component/sIoU')
    data = json.load(open(tmp_path / 'c.json'))
    assert data['datasets'] == list(DATASETS)
    holder = data['best']['road_obstacle21']['component/F1_mean']
    group = [r for r in rows if r['dataset'] == 'road_obstacle21']
    top = max(group, key=lambda r: r['component/F1_mean'])
    assert holder == dict(
        value=top['component/F1_mean'],
        rows=[dict(model=top['model'], dataset='road_obstacle21', scorer=top['scorer'])])
    md = cmp.to_markdown(rows).splitlines()
    assert md[0] == ('| Model | Dataset | Scorer | mIoU ↑ | FPR95 pooled ↓ | AUROC pooled ↑ | AUPR pooled ↑ | '
                     'FPR95 per-image ↓ | AUROC per-image ↑ | AUPR per-image ↑ | sIoU component ↑ | PPV component ↑ | '
                     'mean F1 component ↑ |')
    # one bold cell per anomaly column and dataset (random draws: no ties); mIoU only on lost_and_found, where both
    # scorer rows of the better model hold it
    assert sum(line.count('**') // 2 for line in md[2:]) == len(DATASETS) * (len(cmp.COLUMNS) - 1) + 2
    first = [c.strip() for c in md[2].split('|')[1:-1]]
    assert first[1] == 'road_anomaly21' and first[3] == '-'  # no mIoU on an anomaly-only set


def test_filter_mixed_inputs_and_summary(files, tmp_path):
    single = tmp_path / 'single.json'
    single.write_text(
        json.dumps(dict(config='configs/x/s.py', metrics={
            'mIoU': 50.0,
            'anomaly/pooled/MaxLogit/AUPR': 9.0
        })))
    rows = cmp.comparison_rows([cmp.load_result(p) for p in files + [str(single)]])
    assert rows[-1]['model'] == 's' and 'dataset' not in rows[-1] and rows[-1]['pooled/AUPR'] == 9.0
    table = cmp.to_prettytable(rows).get_string().splitlines()
    assert [c.strip() for c in table[1].strip('|').split('|')][:3] == ['Model', 'Dataset', 'Scorer']
    last = [c.strip() for c in table[-2].strip('|').split('|')]
    assert last[:4] == ['s', '-', 'MaxLogit', '50.00 *'] and last[6] == '9.00 *'  # its own group's best
    kept = cmp.filter_datasets(rows, ['lost_and_found'])
    assert {r['dataset'] for r in kept} == {'lost_and_found'} and len(kept) == 4
    with pytest.raises(ValueError, match=r"dataset\(s\) \['fishy'\] not in the results"):
        cmp.filter_datasets(rows, ['fishy'])
    summary = cmp.set_summary('lost_and_found', json.load(open(files[0]))['test_sets']['lost_and_found'])
    assert summary.splitlines()[0].startswith('test set lost_and_found: mIoU ')
    assert 'sIoU component' in summary and 'mIoU' not in summary.splitlines()[2]
    assert cmp.set_summary('cityscapes', {
        'mIoU': 61.234,
        'aAcc': 90.0
    }) == 'test set cityscapes: mIoU 61.23, aAcc 90.00'
    assert cmp.set_summary('x', {'anomaly/pooled/M/AUPR': 1.0}).startswith('test set x: no class labels (no mIoU); ')


def test_bad_test_sets_field_is_named(tmp_path):
    path = tmp_path / 'bad.json'
    path.write_text(json.dumps(dict(metrics={'a/mIoU': 1.0}, test_sets=['a'])))
    with pytest.raises(cmp.ResultFileError, match=r'"test_sets" must map each test set name to its metrics'):
        cmp.load_result(str(path))
