"""What AnomalyMetric tells the user through mmengine's current logger, read back from a handler on that logger (so
the real ``print_log`` runs): the component protocol's warnings and table, the float16 warning of the submission
files, the quantised per-image note, and ``merge``'s checks. Values in the texts are checked against independent
computations (the official component code, counts by hand, ``float16_loss`` of the hand-made map)."""
import json
import logging
import re

import numpy as np
import pytest
import reference_component_metrics as official
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from test_anomaly_metric import energy_scale_samples
from test_anomaly_metric import make_samples as pixel_samples
from test_anomaly_metric_components import MAPS, SIZES, SecondLogit, hand_maps, make_samples, run_metric

from anomseg_plugins.evaluation import AnomalyMetric
from anomseg_plugins.evaluation.functional import official_threshold
from anomseg_plugins.scorers import BaseAnomalyScorer, MaxLogit


def table_cells(text):
    """The rows of a PrettyTable string as lists of stripped cells (header first)."""
    return [[c.strip() for c in line.strip('|').split('|')] for line in text.strip().splitlines() if line[0] == '|']


def test_component_table_and_its_heading(tmp_path, logged):
    samples = make_samples(8, seed=31)
    metric = AnomalyMetric(
        scorers=[MaxLogit(), SecondLogit()], protocols='component', output_dir=str(tmp_path), **SIZES)
    metrics = run_metric(metric, samples)
    messages = [m for m, _ in logged()]
    heading = ('anomaly results, component protocol (SegmentMeIfYouCan anomaly track: predicted components < 4 px '
               'dropped, ground-truth components < 2 px void; at the pooled best-F1 threshold, score >= thr; %):')
    k = messages.index(heading)
    rows = table_cells(messages[k + 1])
    assert rows[0] == ['Scorer', 'sIoU', 'PPV', 'mean F1', 'F1@0.25', 'F1@0.5', 'F1@0.75', 'thr', 'mode']
    assert [r[0] for r in rows[1:]] == list(MAPS)
    for row in rows[1:]:
        name = row[0]
        thr = metrics[f'anomaly/component/{name}/threshold']
        want = official.evaluate(*hand_maps(samples, name), official_threshold(thr), 4, 2)
        assert want['num_pred_components'] > 5
        assert row[1:] == [f'{want[k]:.2f}' for k in ('sIoU', 'PPV', 'F1_mean', 'F1_25', 'F1_50', 'F1_75')] + \
            [f'{thr:.5g}', 'exact']


def test_grid_mode_message_and_table_give_the_pixel_gap(tmp_path, logged):
    samples = make_samples(12, seed=7)
    metric = AnomalyMetric(
        scorers=[MaxLogit(), SecondLogit()],
        protocols='component',
        component_cache_bytes=4000,
        output_dir=str(tmp_path),
        **SIZES)
    run_metric(metric, samples)
    with open(tmp_path / 'anomaly_metrics.json') as f:
        summary = json.load(f)['component']
    records = logged()
    messages = [m for m, _ in records]
    heading = next(i for i, m in enumerate(messages) if m.startswith('anomaly results, component protocol ('))
    rows = {r[0]: r for r in table_cells(messages[heading + 1])[1:]}
    for name in MAPS:
        entry = summary[name]
        maps, labels = hand_maps(samples, name)
        flat = np.concatenate([m[y != 255] for m, y in zip(maps, labels)])
        # pooled pixels flagged at the grid threshold relative to those at the exact best-F1 threshold, by hand
        gap = np.count_nonzero(flat >= entry['threshold']) / np.count_nonzero(flat >= entry['F1_threshold']) - 1
        assert gap != 0
        text = (f'AnomalyMetric: component protocol, scorer {name}: the compressed maps exceeded '
                'component_cache_bytes (4000 shared by 2 scorers); components were computed at the grid threshold '
                f'{entry["threshold"]:.6g}, which flags {100 * gap:+.2f}% pooled pixels relative to the exact '
                f'best-F1 threshold {entry["F1_threshold"]:.6g}')
        assert [level for m, level in records if m == text] == [logging.WARNING if abs(gap) > 0.05 else logging.INFO]
        assert rows[name][-1] == f'grid ({100 * gap:+.1f}% px)'


def test_component_protocol_without_anomalies_warns_that_there_is_no_threshold(logged):
    g = torch.Generator().manual_seed(3)
    samples = []
    for i in range(3):
        s = SegDataSample(metainfo=dict(img_path=f'normal_{i}.png'))
        s.seg_logits = PixelData(data=torch.randn(3, 16, 20, generator=g))
        s.gt_anomaly_map = PixelData(data=torch.zeros(1, 16, 20, dtype=torch.uint8))
        samples.append(s)
    metrics = run_metric(AnomalyMetric(scorers=[MaxLogit()], protocols='component', **SIZES), samples)
    assert all(np.isnan(v) for v in metrics.values())
    text = ('AnomalyMetric: component protocol, scorer MaxLogit: no anomalous pixel was evaluated, so there is no '
            'pooled best-F1 threshold; component metrics are NaN')
    assert [level for m, level in logged() if m == text] == [logging.WARNING]


def test_float16_warning_goes_to_the_current_logger(tmp_path, logged):
    pytest.importorskip('h5py')

    class Energy(BaseAnomalyScorer):  # hundreds, spanning a few units: float16 steps of 0.25

        def score(self, logits, feats=None):
            return 300.0 + logits[:, 0].float()

    samples = make_samples(3, seed=1)
    run_metric(AnomalyMetric(scorers=[Energy(), MaxLogit()], submission_dir=str(tmp_path)), samples)
    energy = (300.0 + samples[0].seg_logits.data[0].float()).numpy().astype(np.float64)  # as the scorer
    lo, hi = energy.min(), energy.max()
    step = 2.0**-2  # float16 spacing in [256, 512)
    assert 256 <= lo and hi < 512 and step / (hi - lo) > 1e-3
    why = (f'its values span [{lo:.4g}, {hi:.4g}]; float16 steps of {step:.3g} there are {step / (hi - lo):.1e} of '
           'the range (> 0.001), so close scores merge')
    text = (f"AnomalyMetric: scorer Energy: the submission format stores maps as float16 and img_0's map loses "
            f'precision: {why}. Submit a rescaled score (e.g. a normalised or probability-like map) for the '
            'official evaluation; this warning is shown once per scorer')
    assert [(m, level) for m, level in logged() if 'float16' in m] == [(text, logging.WARNING)]


def test_quantised_per_image_note_says_how_to_get_the_official_numbers(tmp_path, logged):
    samples = energy_scale_samples(seed=1)
    metric = AnomalyMetric(
        scorers=[MaxLogit()],
        protocols='per_image',
        per_image_exact=False,
        output_dir=str(tmp_path),
        save_figures=False)
    run_metric(metric, samples)
    with open(tmp_path / 'anomaly_metrics.json') as f:
        entry = json.load(f)['per_image']['MaxLogit']
    assert entry['FPR95_tie_bound'] > 0.1
    bounds = ', '.join(f'{k} +-{entry[f"{k}_tie_bound"]:.2g}' for k in ('FPR95', 'AUROC', 'AUPR'))
    text = (f'AnomalyMetric: per-image protocol, scorer MaxLogit: computed from 22-bit histograms '
            f'(per_image_exact=False), not exactly as the official code; over {entry["num_images"]} images {bounds} '
            'may differ from the exact per-image means by up to that many points. Use per_image_exact=True (the '
            'default) for the official numbers.')
    assert [level for m, level in logged() if m == text] == [logging.WARNING]


def test_merge_refuses_other_settings_and_says_which():
    metric = AnomalyMetric(scorers=[MaxLogit()])
    other = AnomalyMetric(scorers=[MaxLogit()], num_bits=20)
    text = ("AnomalyMetric.merge: the metrics differ in scorers, num_bits, ignore_index, protocols or component "
            "sizes: ['MaxLogit']/22/255/('pooled', 'per_image')/(500, 100) vs "
            "['MaxLogit']/20/255/('pooled', 'per_image')/(500, 100)")
    with pytest.raises(ValueError, match=f'^{re.escape(text)}$'):
        metric.merge(other)


def test_merge_keeps_the_image_count_that_tells_padding(logged):
    """A shard merged with an empty one still knows it processed three samples: evaluate(2) takes the third
    (the sampler's padding) out of the pooled histograms, as for one metric fed with the two genuine samples."""
    samples = pixel_samples(3, seed=4)
    shard = AnomalyMetric(scorers=[MaxLogit()])
    for s in samples:
        shard.process({}, [s.to_dict()])
    shard.merge(AnomalyMetric(scorers=[MaxLogit()]))
    got = shard.evaluate(2)
    want = run_metric(AnomalyMetric(scorers=[MaxLogit()]), samples[:2])
    everything = run_metric(AnomalyMetric(scorers=[MaxLogit()], protocols='pooled'), samples)
    assert got == want
    assert got['anomaly/pooled/MaxLogit/AUROC'] != everything['anomaly/pooled/MaxLogit/AUROC']
