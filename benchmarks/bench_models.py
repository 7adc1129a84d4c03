"""Model zoo speed benchmark (issue: lightweight DeepLab >= 3x faster than DeepLabV3+ R50 on CPU at 512x512).

Runs ``tools/analysis/benchmark.py`` on DeepLabV3+ R50 (the reference), PSPNet R18, PSPNet MobileNetV2 and
the lightweight DeepLab, side by side in one process, and prints the table plus the lightweight model's
parameter count and its speed-up over R50 measured in that same run::

    python benchmarks/bench_models.py [--shape 512 512] [--runs 5] [--threads N] [--device cpu]
"""
import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))
import benchmark

CONFIGS = [
    'configs/deeplabv3plus/deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py',
    'configs/pspnet/pspnet_r18-d8_1xb4-40e_streethazards-512x512.py',
    'configs/pspnet/pspnet_mobilenet-v2-d8_1xb4-40e_streethazards-512x512.py',
    'configs/light_deeplab/light-deeplab_mobilenet-v2-d16_1xb4-40e_streethazards-512x512.py',
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--shape', type=int, nargs='+', default=[512, 512])
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    argv = [osp.join(REPO, c) for c in CONFIGS] + [
        '--shape', *map(str, args.shape), '--runs',
        str(args.runs), '--warmup',
        str(args.warmup), '--device', args.device, '--reference', 'first'
    ]
    if args.threads:
        argv += ['--threads', str(args.threads)]
    results = benchmark.main(argv)
    r50, light = results[0], results[-1]
    speedup = r50['latency_ms']['median'] / light['latency_ms']['median']
    print(f'lightweight DeepLab: {light["params"] / 1e6:.2f}M parameters (goal <= 2.6M), '
          f'{speedup:.1f}x faster than DeepLabV3+ R50 in this run (goal >= 3x)')


if __name__ == '__main__':
    main()
