"""Write an offline, procedurally generated StreetHazards copy in the real layout and label encoding.

    python tools/dataset/generate_streethazards.py --out data/streethazards
    python tools/dataset/generate_streethazards.py --out data/sh_full --num-train 5125 --num-val 1031 \
        --num-test 1500 --size 1280x720 --workers 8

Defaults (48 train / 16 val / 24 test images at 480x270) are the demo dataset: about 5 s of
drawing with --workers 2 on 2 cores, plus the package import; a 1280x720 image takes about 0.35 s.
The scenes and the anomaly model are described in
``anomseg_plugins/tooling/street_scenes/`` (package docstring and ``anomalies.py``); check that a
colour lookup cannot find the anomalies of a copy with ``tools/analysis/colour_baseline.py DATA_ROOT``.
"""
import argparse
import os.path as osp
import sys

try:
    from anomseg_plugins.tooling import street_scenes as shg
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from anomseg_plugins.tooling import street_scenes as shg


def parse_size(text: str):
    try:
        w, h = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'--size {text!r}: expected WIDTHxHEIGHT, e.g. 1280x720')
    return w, h


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='data/streethazards', help='dataset root to create')
    parser.add_argument('--num-train', type=int, default=shg.DEFAULT_NUM_TRAIN, help='images in training/t1-3')
    parser.add_argument('--num-val', type=int, default=shg.DEFAULT_NUM_VAL, help='images in validation/t4')
    parser.add_argument('--num-test', type=int, default=shg.DEFAULT_NUM_TEST, help='images in test/t5 + test/t6')
    parser.add_argument(
        '--size',
        type=parse_size,
        default=shg.DEFAULT_SIZE,
        help='WIDTHxHEIGHT (default %dx%d; the real dataset is 1280x720)' % shg.DEFAULT_SIZE)
    parser.add_argument('--seed', type=int, default=0, help='base seed (same seed -> identical files)')
    parser.add_argument(
        '--anomaly-fraction',
        type=float,
        default=0.01,
        help='expected share of anomaly pixels in the test split (real data: 0.0103)')
    parser.add_argument('--workers', type=int, default=1, help='parallel processes (output does not depend on it)')
    parser.add_argument(
        '--overwrite', action='store_true', help='replace the train/ and test/ folders of a non-empty --out')
    parser.add_argument('--quiet', action='store_true', help='no progress output')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        res = shg.generate_street_hazards(
            args.out,
            num_train=args.num_train,
            num_val=args.num_val,
            num_test=args.num_test,
            size=args.size,
            seed=args.seed,
            anomaly_fraction=args.anomaly_fraction,
            workers=args.workers,
            overwrite=args.overwrite,
            verbose=not args.quiet)
    except (FileExistsError, NotADirectoryError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    w, h = res['size']
    print(f'wrote {res["root"]} ({w}x{h}, seed {res["seed"]}, {res["seconds"]:.1f} s)')
    for split in ('train', 'val', 'test'):
        info = res[split]
        dirs = ', '.join(osp.relpath(d, res['root']) for d in info['image_dirs'])
        print(f'  {split:5s} {info["num_images"]:6d} images in {dirs}; index {osp.relpath(info["odgt"], res["root"])}')
    print(f'  anomaly pixels in test: {100 * res["anomaly_pixel_fraction"]:.2f} %')
    return 0


if __name__ == '__main__':
    sys.exit(main())
