"""The files AnomalyMetric writes, read back and checked by value against scikit-learn on the same small data.

``anomaly_metrics.json`` / ``.csv`` (both protocols, counts, rules), ``anomaly_per_image.csv`` (one row per image
and scorer, percent columns under ``_%`` headers, the raw F1 threshold) and the per-image ``F1_threshold``
summary (the median of the images' optimal thresholds). Scores are multiples of 1/4 (no two distinct scores share
a histogram bin), so the pooled histogram protocol is exact here and is compared at 1e-9.
"""
import csv
import json
import math

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from reference_metrics import fpr_first, fpr_nearest
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from anomseg_plugins.evaluation import AnomalyMetric
from anomseg_plugins.evaluation.functional import ScoreHistogram
from anomseg_plugins.scorers import BaseAnomalyScorer, MaxLogit

H, W, C = 20, 24, 4
NUM = 7
EMPTY = 3  # image without anomaly: skipped by the per-image protocol, counted by the pooled one


class FirstLogit(BaseAnomalyScorer):

    def score(self, logits, feats=None):
        return -logits[:, 0].float()


SCORE_FNS = dict(MaxLogit=lambda z: -z.max(0), FirstLogit=lambda z: -z[0])


def make_samples(seed=0):
    g = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(NUM):
        gt = torch.zeros(1, H, W, dtype=torch.uint8)
        if i != EMPTY:
            y, x = 2 + i, 3 + 2 * i
            gt[0, y:y + 4 + i % 3, x:x + 5] = 1
        logits = torch.round(torch.randn(C, H, W, generator=g) * 8) / 4
        # images differ in how far anomalies sit below: their optimal F1 thresholds differ
        logits[:, gt[0] == 1] -= 0.5 + 0.5 * i
        gt[0, :2, :] = 255
        logits[:, :2, :] = 1e3  # ignored pixels would dominate any ranking that used them
        s = SegDataSample(metainfo=dict(img_path=f'img_{i}.png'))
        s.seg_logits = PixelData(data=logits)
        s.gt_anomaly_map = PixelData(data=gt)
        samples.append(s)
    return samples


def reference(scores, labels):
    """sklearn's values (fractions) and the official FPR rules on one score / label set."""
    precision, recall, thr = precision_recall_curve(labels, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-300)
    k = int(np.argmax(f1[:-1]))
    return dict(
        AUROC=roc_auc_score(labels, scores),
        AUPR=average_precision_score(labels, scores),
        FPR95_first=fpr_first(labels, scores),
        FPR95_nearest=fpr_nearest(labels, scores),
        F1=float(f1[k]),
        F1_threshold=float(thr[k]))


def f1_at(scores, labels, threshold):
    """F1 of flagging score >= threshold (an independent count, no curve)."""
    flagged = scores >= threshold
    tp = float(np.sum(flagged & (labels == 1)))
    return 2 * tp / (flagged.sum() + labels.sum())


def kept(sample, fn):
    z = sample.seg_logits.data.numpy().astype(np.float64)
    gt = sample.gt_anomaly_map.data.numpy()[0]
    keep = gt != 255
    return fn(z)[keep], gt[keep].astype(int)


@pytest.fixture(scope='module')
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp('anomaly_out')
    samples = make_samples()
    metric = AnomalyMetric(scorers=[MaxLogit(), FirstLogit()], output_dir=str(out), save_figures=False)
    for i in range(0, NUM, 3):
        metric.process({}, [s.to_dict() for s in samples[i:i + 3]])
    metrics = metric.evaluate(NUM)
    return out, samples, metrics


def test_anomaly_metrics_json_by_value(written):
    out, samples, metrics = written
    summary = json.load(open(out / 'anomaly_metrics.json'))
    assert list(summary) == ['pooled', 'per_image'] and list(summary['pooled']) == ['MaxLogit', 'FirstLogit']
    for name, fn in SCORE_FNS.items():
        pairs = [kept(s, fn) for s in samples]
        scores = np.concatenate([p[0] for p in pairs])
        labels = np.concatenate([p[1] for p in pairs])
        ref = reference(scores, labels)
        pooled = summary['pooled'][name]
        for key, ref_key in (('AUROC', 'AUROC'), ('AUPR', 'AUPR'), ('FPR95', 'FPR95_first'), ('F1', 'F1')):
            assert pooled[key] == pytest.approx(100 * ref[ref_key], abs=1e-9), (name, key)
            assert metrics[f'anomaly/pooled/{name}/{key}'] == pytest.approx(pooled[key], abs=1e-12)
        assert f1_at(scores, labels, pooled['F1_threshold']) == pytest.approx(ref['F1'], abs=1e-12)
        assert (pooled['num_images'], pooled['num_pixels'], pooled['num_anomaly_pixels']) == \
            (NUM, labels.size, int(labels.sum()))
        assert pooled['FPR95_rule'] == 'first' and pooled['exact'] is False and pooled['num_bits'] == 22
        # ranks of distinct scores are exact in the histogram: every bound is 0 on this data
        assert all(pooled[f'{k}_tie_bound'] >= 0 for k in ('AUROC', 'AUPR', 'FPR95'))

        per = [reference(*p) for p in pairs if 0 < p[1].sum() < p[1].size]
        assert len(per) == NUM - 1
        entry = summary['per_image'][name]
        for key, ref_key in (('AUROC', 'AUROC'), ('AUPR', 'AUPR'), ('FPR95', 'FPR95_nearest'), ('F1', 'F1')):
            want = 100 * float(np.mean([r[ref_key] for r in per]))
            assert entry[key] == pytest.approx(want, abs=1e-9), (name, key)
            assert metrics[f'anomaly/per_image/{name}/{key}'] == pytest.approx(want, abs=1e-9)
        # thresholds of equal F1 are equally right: each image's is read off the per-image file, which is checked
        # (test below) to reach that image's best F1
        rows = [r for r in csv.DictReader(open(out / 'anomaly_per_image.csv')) if r['scorer'] == name]
        thresholds = [float(r['F1_threshold']) for r in rows if int(r['index']) != EMPTY]
        assert len(thresholds) == len(per)
        # the data makes the median differ from the max and the min of the per-image thresholds
        assert min(thresholds) < np.median(thresholds) < max(thresholds)
        assert entry['F1_threshold'] == pytest.approx(float(np.median(thresholds)), abs=1e-6)
        assert (entry['num_images'], entry['num_images_skipped']) == (NUM - 1, 1)
        assert entry['FPR95_rule'] == 'nearest' and entry['exact'] is True
        assert all(entry[f'{k}_tie_bound'] == 0.0 for k in ('AUROC', 'AUPR', 'FPR95'))


def test_anomaly_metrics_csv_equals_json(written):
    out, _, _ = written
    summary = json.load(open(out / 'anomaly_metrics.json'))
    with open(out / 'anomaly_metrics.csv') as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == [
            'protocol', 'scorer', 'FPR95', 'AUROC', 'AUPR', 'F1', 'F1_threshold', 'num_images', 'num_pixels',
            'num_anomaly_pixels', 'FPR95_rule', 'exact', 'FPR95_tie_bound', 'AUROC_tie_bound', 'AUPR_tie_bound'
        ]
        rows = list(reader)
    assert [(r['protocol'], r['scorer']) for r in rows] == [(p, n) for p in ('pooled', 'per_image')
                                                            for n in ('MaxLogit', 'FirstLogit')]
    for r in rows:
        entry = summary[r['protocol']][r['scorer']]
        for key in ('FPR95', 'AUROC', 'AUPR', 'F1', 'F1_threshold', 'FPR95_tie_bound', 'AUROC_tie_bound',
                    'AUPR_tie_bound'):
            assert float(r[key]) == pytest.approx(entry[key], rel=1e-12, abs=1e-12), (r['protocol'], key)
        assert int(r['num_images']) == entry['num_images']
        assert r['FPR95_rule'] == entry['FPR95_rule'] and r['exact'] == str(entry['exact'])
        if r['protocol'] == 'pooled':
            assert int(r['num_pixels']) == entry['num_pixels']
            assert int(r['num_anomaly_pixels']) == entry['num_anomaly_pixels']


def test_anomaly_per_image_csv_by_value(written):
    out, samples, _ = written
    with open(out / 'anomaly_per_image.csv') as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == [
            'index', 'img_path', 'num_anomaly_pixels', 'num_normal_pixels', 'scorer', 'AUROC_%', 'AUPR_%', 'FPR95_%',
            'F1_%', 'F1_threshold'
        ]
        rows = list(reader)
    assert len(rows) == NUM * 2
    for row in rows:
        i = int(row['index'])
        sample = samples[i]
        assert row['img_path'] == sample.img_path
        scores, labels = kept(sample, SCORE_FNS[row['scorer']])
        assert (int(row['num_anomaly_pixels']), int(row['num_normal_pixels'])) == \
            (int(labels.sum()), int((labels == 0).sum()))
        if i == EMPTY:  # one class only: no metric
            assert all(math.isnan(float(row[k])) for k in ('AUROC_%', 'AUPR_%', 'FPR95_%', 'F1_%'))
            continue
        ref = reference(scores, labels)
        # percent columns hold percent (x100), the threshold is a raw score
        assert float(row['AUROC_%']) == pytest.approx(100 * ref['AUROC'], abs=1e-9)
        assert float(row['AUPR_%']) == pytest.approx(100 * ref['AUPR'], abs=1e-9)
        assert float(row['FPR95_%']) == pytest.approx(100 * ref['FPR95_nearest'], abs=1e-9)
        assert float(row['F1_%']) == pytest.approx(100 * ref['F1'], abs=1e-9)
        # a threshold reaching the image's best F1 (ties in F1 between thresholds: any of them)
        assert f1_at(scores, labels, float(row['F1_threshold'])) == pytest.approx(ref['F1'], abs=1e-12)


def test_per_image_csv_of_the_histogram_protocol_reports_bounds_in_percent(tmp_path):
    samples = make_samples(seed=1)
    metric = AnomalyMetric(scorers=[MaxLogit()], output_dir=str(tmp_path), save_figures=False, per_image_exact=False)
    metric.process({}, [s.to_dict() for s in samples])
    metric.evaluate(NUM)
    with open(tmp_path / 'anomaly_per_image.csv') as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames[-3:] == ['AUROC_tie_bound_%', 'AUPR_tie_bound_%', 'FPR95_tie_bound_%']
        rows = list(reader)
    for row in rows:
        i = int(row['index'])
        if i == EMPTY:
            continue
        ref = reference(*kept(samples[i], SCORE_FNS['MaxLogit']))
        # distinct scores never share a 22-bit bin: the histogram values are exact and their bounds 0
        assert float(row['AUROC_%']) == pytest.approx(100 * ref['AUROC'], abs=1e-9)
        assert float(row['FPR95_%']) == pytest.approx(100 * ref['FPR95_nearest'], abs=1e-9)
        # the bounds are the image histogram's, in percent like the metrics
        scores, labels = kept(samples[i], SCORE_FNS['MaxLogit'])
        hist = ScoreHistogram.from_scores(torch.from_numpy(scores.astype(np.float32)), torch.from_numpy(labels), 22)
        bounds = hist.error_bounds(0.95, 'nearest')
        for k in ('AUROC', 'AUPR', 'FPR95'):
            assert float(row[f'{k}_tie_bound_%']) == pytest.approx(100 * bounds[k], abs=1e-9), k
