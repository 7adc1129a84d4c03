"""Benchmark: pooled anomaly metrics from the score histogram vs scikit-learn, and memory of a full stream.

Measured side by side in one run:

1. Memory: a StreetHazards-sized stream (default 1500 images of 512 x 512 = 393M pixels) fed image by
   image into one :class:`ScoreHistogram`; each image's scores are generated on the fly. Reports the peak
   of Python-tracked allocations (tracemalloc; numpy registers its buffers there) above the baseline and
   the growth of the process's peak RSS, plus the throughput of the accumulation alone.
2. Speed and accuracy: on the same ``--pixels`` arrays (default 10M, ~1% anomalies), scikit-learn's
   ``roc_auc_score`` + ``average_precision_score`` vs our accumulation (fed in 720 x 1280 chunks, as the
   metric does per StreetHazards image) + ``compute``; throughput ratio and |difference| of AUROC / AUPR / FPR95, for
   normal scores and for energy-scale scores (hundreds).
3. Optionally (``--metric-images N``): ``AnomalyMetric.process`` per image with the four logit scorers on
   13-class 720 x 1280 logits: the per-image protocol's own cost per scorer and image, exact (the default, as
   the official code) vs from the image's histogram (``per_image_exact=False``), ``process`` end to end with
   and without the per-image protocol, and the per-image state kept (one row of numbers per image).

Run: ``python benchmarks/bench_anomaly_metric.py [--images 1500] [--pixels 10000000] [--num-bits 22]
[--metric-images 8]``; ``--images 300`` for a shorter stream.
"""
import argparse
import os
import os.path as osp
import resource
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from anomseg_plugins.evaluation.functional import ScoreHistogram


def rss_mb() -> float:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_image(rng: np.random.Generator, size: int, energy: bool = True):
    """Scores of one image, an anomalous rectangle shifted up: energy-like (-300 +- 25, +40 on anomalies), or
    N(0, 1) (+1.6), which crosses zero (~40 occupied binades)."""
    scores = rng.standard_normal((size, size), dtype=np.float32)
    labels = np.zeros((size, size), np.uint8)
    h, w = rng.integers(size // 16, size // 6, 2)
    y, x = rng.integers(0, size - h), rng.integers(0, size - w)
    labels[y:y + h, x:x + w] = 1
    scores[y:y + h, x:x + w] += 1.6
    labels[:2] = 255  # a border of ignored pixels
    if energy:
        scores *= 25.0
        scores -= 300.0
    return scores, labels


def bench_stream(num_images: int, size: int, num_bits: int, energy: bool) -> None:
    print(f'== stream: {num_images} images of {size}x{size} = {num_images * size * size / 1e6:.0f}M pixels, '
          f'{"energy-scale" if energy else "zero-crossing N(0,1)"} scores, fed image by image '
          f'(num_bits={num_bits}) ==')
    rng = np.random.default_rng(0)
    hist = ScoreHistogram(num_bits=num_bits)
    rss0, peak0 = rss_mb(), peak_rss_mb()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    t_acc = 0.0
    t0 = time.perf_counter()
    for i in range(num_images):
        scores, labels = make_image(rng, size, energy)
        t = time.perf_counter()
        hist.update(scores, labels)
        t_acc += time.perf_counter() - t
        del scores, labels
        if (i + 1) % max(1, num_images // 5) == 0:
            cur, peak = tracemalloc.get_traced_memory()
            print(f'  {i + 1:5d}/{num_images} images: histogram {hist.nbytes / 2**20:.2f} MiB, traced now '
                  f'{(cur - base) / 2**20:.1f} MiB, traced peak {(peak - base) / 2**20:.1f} MiB, RSS '
                  f'{rss_mb() - rss0:+.1f} MiB, {time.perf_counter() - t0:.0f} s')
    t = time.perf_counter()
    res = hist.compute()
    t_compute = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    npix = hist.num_pos + hist.num_neg
    print(f'  pixels evaluated {npix / 1e6:.1f}M ({hist.num_pos / npix:.2%} anomalous); '
          f'{len(hist.blocks)} occupied binades')
    print(f'  AUROC {100 * res["AUROC"]:.3f}  AUPR {100 * res["AUPR"]:.3f}  FPR95 {100 * res["FPR95"]:.3f}  '
          f'(AUROC tie bound {hist.auroc_tie_bound():.1e})')
    print(f'  accumulate {t_acc:.2f} s ({npix / t_acc / 1e6:.0f} Mpx/s), compute {t_compute * 1e3:.1f} ms, '
          f'wall incl. generation {time.perf_counter() - t0:.1f} s')
    print(f'  PEAK EXTRA MEMORY: traced {(peak - base) / 2**20:.1f} MiB (histogram {hist.nbytes / 2**20:.2f} MiB '
          f'+ one image\'s temporaries); peak RSS growth {peak_rss_mb() - peak0:.1f} MiB '
          f'(RSS now {rss_mb() - rss0:+.1f} MiB)')


def bench_vs_sklearn(num_pixels: int, num_bits: int, chunk: int = 720 * 1280) -> None:
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    print(f'== vs scikit-learn on the same {num_pixels / 1e6:.0f}M-pixel arrays (num_bits={num_bits}) ==')
    rng = np.random.default_rng(1)
    labels = (rng.random(num_pixels) < 0.01).astype(np.uint8)
    base = rng.standard_normal(num_pixels, dtype=np.float32) + labels * np.float32(1.6)
    for kind, scores in (('normal N(0,1)', base), ('energy-scale (-300 +- 25)', base * 25 - 300),
                         ('MSP-like -max p', -1.0 / (1.0 + np.exp(base - np.float32(4.0))))):
        scores = scores.astype(np.float32)
        t = time.perf_counter()
        sk_auroc = roc_auc_score(labels, scores)
        sk_ap = average_precision_score(labels, scores)
        t_sk = time.perf_counter() - t
        fpr, tpr, _ = roc_curve(labels, scores)
        sk_fpr = fpr[np.argmax(tpr >= 0.95)]
        t = time.perf_counter()
        hist = ScoreHistogram(num_bits=num_bits)
        for start in range(0, num_pixels, chunk):
            hist.update(scores[start:start + chunk], labels[start:start + chunk])
        res = hist.compute()
        t_ours = time.perf_counter() - t
        print(f'  {kind:26s} sklearn {t_sk:6.2f} s ({num_pixels / t_sk / 1e6:5.1f} Mpx/s) | ours {t_ours:6.3f} s '
              f'({num_pixels / t_ours / 1e6:6.1f} Mpx/s) | speed-up x{t_sk / t_ours:6.1f} | '
              f'|dAUROC| {abs(res["AUROC"] - sk_auroc):.1e} |dAUPR| {abs(res["AUPR"] - sk_ap):.1e} '
              f'|dFPR95| {abs(res["FPR95"] - sk_fpr):.1e}')


def bench_metric(num_images: int, height: int = 720, width: int = 1280) -> None:
    """Cost of the per-image protocol per scorer and image, exact vs from histograms, and end to end."""
    import pickle

    import torch

    import anomseg_plugins  # noqa: F401  (registers everything)
    from anomseg_plugins.evaluation import AnomalyMetric
    from anomseg_plugins.evaluation.functional import exact_anomaly_metrics

    print(f'\n== per-image protocol: {num_images} images of 13x{height}x{width} logits, 4 logit scorers ==')
    scorers = [dict(type='MSP'), dict(type='MaxLogit'), dict(type='Energy'), dict(type='Entropy')]
    metrics = {
        label: AnomalyMetric(scorers=scorers, output_dir=None, save_figures=False, **kwargs)
        for label, kwargs in (('pooled only', dict(protocols=('pooled', ))), ('pooled + per-image exact (default)',
                                                                              dict()))
    }
    parts = dict(hist=[], quantised=[], exact=[])
    ends = {label: [] for label in metrics}
    rng = torch.Generator().manual_seed(0)
    for i in range(num_images + 1):  # image 0 warms up (not timed)
        logits = torch.randn(13, height, width, generator=rng) * 3
        gt = torch.zeros(1, height, width, dtype=torch.uint8)
        gt[0, 300:380, 500:620] = 1  # ~1% anomalous
        logits[:, 300:380, 500:620] *= 0.7
        sample = dict(seg_logits=dict(data=logits), gt_anomaly_map=dict(data=gt), img_path=f'{i}.png')
        for label, metric in metrics.items():  # interleaved: both see the same load
            t = time.perf_counter()
            metric.process({}, [sample])
            if i:
                ends[label].append(time.perf_counter() - t)
        for scorer in metrics['pooled only'].scorers:
            score = scorer(logits[None])[0]
            t0 = time.perf_counter()
            hist = ScoreHistogram.from_scores(score, gt[0])
            t1 = time.perf_counter()
            hist.compute(0.95, 'nearest', warn=False)
            hist.error_bounds(0.95, 'nearest')
            t2 = time.perf_counter()
            exact_anomaly_metrics(score, gt[0], 255, 0.95, 'nearest', warn=False)
            t3 = time.perf_counter()
            if i:
                for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2)):
                    parts[key].append(dt)
    med = {k: float(np.median(v)) * 1e3 for k, v in parts.items()}
    print(f'  per scorer and image (median): histogram of the image {med["hist"]:.1f} ms (pooled needs it anyway); '
          f'per-image metrics from it + bounds (per_image_exact=False) {med["quantised"]:.1f} ms; '
          f'exact per-image metrics (default) {med["exact"]:.1f} ms')
    extra = (med['exact'] - med['quantised']) / 1e3
    print(f'  exact default vs per_image_exact=False: +{extra * 1e3:.1f} ms per scorer and image = '
          f'+{extra * 1500 * 7 / 60:.1f} min for 1500 test images x 7 scorers (one CPU core)')
    e2e = {k: float(np.median(v)) * 1e3 for k, v in ends.items()}
    for label, ms in e2e.items():
        print(f'  AnomalyMetric.process, {label:34s} {ms:6.0f} ms per image (median, scoring included)')
    rows = metrics['pooled + per-image exact (default)'].results
    print(f'  per-image state kept: {len(pickle.dumps(rows)) / len(rows):.0f} bytes per image (4 scorers), '
          'independent of the pixel count')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=int, default=1500, help='images in the memory stream (0: skip)')
    parser.add_argument('--size', type=int, default=512, help='side of a stream image')
    parser.add_argument('--pixels', type=int, default=10_000_000, help='pixels of the sklearn comparison (0: skip)')
    parser.add_argument('--num-bits', type=int, default=22)
    parser.add_argument('--metric-images', type=int, default=0, help='images for the AnomalyMetric timing')
    args = parser.parse_args()
    if args.images:
        for energy in (True, False):
            bench_stream(args.images, args.size, args.num_bits, energy)
            print()
    if args.pixels:
        bench_vs_sklearn(args.pixels, args.num_bits)
    if args.metric_images:
        bench_metric(args.metric_images)


if __name__ == '__main__':
    main()
