"""Cost of the anomaly scorers on the outputs of one forward pass, next to plain inference.

Builds the model of a config (default: the headline DeepLabV3+ R50-D8, random weights), and times, side
by side and interleaved on the same ``512x512`` input:

- ``plain``: ``model.test_step`` (mmseg inference incl. resizing the logits to the image);
- ``with scorers``: the same ``test_step`` with ``AnomalyTestLoop``'s backbone-feature capture, then every
  scorer of the scorer-set config (default: all seven) on the logits / features of that pass.

Prints the median of each, the median cost of every scorer alone, and two ratios (goal: <= 1.15):
``with scorers / plain`` (end to end, interleaved runs) and ``(plain + sum of scorer medians) / plain``
(the same cost from its parts; steadier on a busy machine, where whole forward passes vary). SML and
Mahalanobis are fitted beforehand on one forward pass of another random image (fitting is a one-off,
not part of the per-image cost).

Usage::

    python benchmarks/bench_scorers.py                      # CPU, ~1-3 min on 2 cores
    python benchmarks/bench_scorers.py --device cuda --size 1024 --reps 20
"""
import argparse
import os.path as osp
import statistics
import sys
import time

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from anomseg_plugins.engine.feature_capture import BackboneFeatureCapture, batch_sample_features
from anomseg_plugins.registry import ANOMALY_SCORERS


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--config',
        default=osp.join(REPO, 'configs', 'deeplabv3plus', 'deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py'),
        help='model config (its `model` is built with random weights)')
    parser.add_argument(
        '--scorers',
        default=osp.join(REPO, 'configs', '_base_', 'anomaly', 'all_scorers.py'),
        help='scorer-set config (the `scorers` of its AnomalyMetric are timed)')
    parser.add_argument('--size', type=int, default=512, help='side of the square test image')
    parser.add_argument('--reps', type=int, default=5, help='timed repetitions of each variant')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    return parser.parse_args()


def make_batch(size: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    img = torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)
    sample = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
    sample.gt_sem_seg = PixelData(data=torch.randint(0, 13, (1, size, size), generator=g))
    return dict(inputs=[img], data_samples=[sample])


def sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    init_default_scope('mmseg')
    import anomseg_plugins  # noqa: F401  (registers the scorers)

    model = MODELS.build(Config.fromfile(args.config).model).to(args.device).eval()
    scorer_cfgs = [m for m in Config.fromfile(args.scorers).anomaly_test_evaluator if 'scorers' in m][0]['scorers']
    scorers = [ANOMALY_SCORERS.build(c).to(args.device) for c in scorer_cfgs]
    stages = sorted({s for sc in scorers for s in sc.feature_stages})
    capture = BackboneFeatureCapture(model.backbone, stages)

    def forward(batch: dict, with_capture: bool):
        with torch.no_grad():
            if not with_capture:
                return model.test_step(batch), None
            with capture:
                outputs = model.test_step(batch)
                calls = capture.pop()
            feats = [None if f is None else f[None] for f in batch_sample_features(calls, outputs)[0]]
            return outputs, feats

    # one-off fit of the scorers that need it
    outputs, feats = forward(make_batch(args.size, seed=1), True)
    logits, gt = outputs[0].seg_logits.data[None], outputs[0].gt_sem_seg.data.to(args.device)
    for scorer in scorers:
        if scorer.requires_fit:
            scorer.fit_begin()
            scorer.fit_step(logits, feats, gt)
            scorer.fit_end()

    batch = make_batch(args.size, seed=2)
    plain, full = [], []
    per_scorer = {s.name: [] for s in scorers}
    forward(batch, False)  # warm-up
    for rep in range(args.reps):
        sync(args.device)
        t0 = time.perf_counter()
        forward(batch, False)
        sync(args.device)
        plain.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        outputs, feats = forward(batch, True)
        logits = outputs[0].seg_logits.data[None]
        with torch.no_grad():
            for scorer in scorers:
                ts = time.perf_counter()
                scorer.score(logits, feats)
                sync(args.device)
                per_scorer[scorer.name].append(time.perf_counter() - ts)
        sync(args.device)
        full.append(time.perf_counter() - t0)
        print(
            f'rep {rep + 1}/{args.reps}: plain {plain[-1] * 1e3:.0f} ms, with scorers {full[-1] * 1e3:.0f} ms',
            flush=True)

    med = statistics.median
    print(f'\nmodel {osp.relpath(args.config, REPO)} (random weights), input {args.size}x{args.size}, '
          f'device {args.device}, threads {torch.get_num_threads()}, {args.reps} reps, medians:')
    print(f'{"plain inference":<24}{med(plain) * 1e3:>10.1f} ms')
    for name, times in per_scorer.items():
        print(f'  {name:<22}{med(times) * 1e3:>10.1f} ms')
    scorers_ms = sum(med(t) for t in per_scorer.values()) * 1e3
    print(f'{"sum of scorers":<24}{scorers_ms:>10.1f} ms')
    print(f'{"inference + scorers":<24}{med(full) * 1e3:>10.1f} ms')
    print(f'ratio (inference + scorers) / plain inference = {med(full) / med(plain):.3f}  (end to end; goal <= 1.15)')
    print(f'ratio (plain + sum of scorers) / plain        = {1 + scorers_ms / (med(plain) * 1e3):.3f}  (from parts)')


if __name__ == '__main__':
    main()
