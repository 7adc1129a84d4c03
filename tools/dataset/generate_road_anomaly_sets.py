"""Write offline copies of a Cityscapes-layout training set and four road-anomaly test sets in their official layouts.

    python tools/dataset/generate_road_anomaly_sets.py --out data/road_anomaly
    python tools/dataset/generate_road_anomaly_sets.py --out data/ra_full --size 2048x1024 --size-wide 1280x720 \
        --num-train 2975 --num-val 500 --num-test 110 --workers 8

Below --out (exact file names in anomseg_plugins/tooling/street_scenes/benchmark_layouts.py):

  cityscapes/             leftImg8bit/{train,val}/{city}/{city}_{seq}_{frame}_leftImg8bit.png and gtFine/... with
                          _gtFine_labelTrainIds.png (0..18, 255) and _gtFine_labelIds.png (Cityscapes label ids);
                          no anomalies
  dataset_AnomalyTrack/   RoadAnomaly21: images/{fid}.jpg, labels_masks/{fid}_labels_semantic.png (0 / 1 anomaly /
                          255 void) for the validation* frames only; the others are image-only (hidden test)
  dataset_ObstacleTrack/  RoadObstacle21: images/{scene}_{index}.webp, labels_masks/..._labels_semantic.png (0 road /
                          1 obstacle / 255 off road) for the validation_* frames only
  dataset_LostAndFound/   leftImg8bit/{test,train}/{NN}_{scene}/{fid}_leftImg8bit.png, gtCoarse/... with
                          _gtCoarse_labelIds.png (0 void / 1 road / 2..200 obstacle class) and _gtCoarse_instanceIds.png
  dataset_FishyLAF/       labels/val/{fid}_fishy-labels.png (0 / 1 anomaly / 255 void) for a subset of those frames

The renderer's classes map to Cityscapes as: road and road line -> road, sidewalk, building, wall, fence, pole,
traffic sign, vegetation, pedestrian -> person, car; unlabeled (the renderer's sky) -> sky; other (bins, benches,
crates, barriers) -> static (ignored). The defaults (48 train / 16 val Cityscapes frames, 24 frames per test set,
512x256 and 512x288; 144 frames, 29 MB) took 24 s of drawing with one worker on a busy 2-core machine, 33-40 s with
the package import. The same --seed gives byte-identical files, whatever --workers.
"""
import argparse
import os.path as osp
import sys

try:
    from anomseg_plugins.tooling.street_scenes import benchmark_layouts as bl
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from anomseg_plugins.tooling.street_scenes import benchmark_layouts as bl


def parse_size(text: str):
    try:
        w, h = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r}: expected WIDTHxHEIGHT, e.g. 512x256')
    return w, h


def parse_sets(text: str):
    sets = [s.strip() for s in text.split(',') if s.strip()]
    unknown = sorted(set(sets) - set(bl.SETS))
    if unknown or not sets:
        raise argparse.ArgumentTypeError(f'--sets {text!r}: expected a comma-separated subset of {",".join(bl.SETS)}')
    return sets


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        epilog=__doc__.split('\n\n', 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='data/road_anomaly', help='root folder the sets are written below')
    parser.add_argument(
        '--num-train', type=int, default=bl.DEFAULT_NUM_TRAIN, help='Cityscapes train frames (default %(default)s)')
    parser.add_argument(
        '--num-val', type=int, default=bl.DEFAULT_NUM_VAL, help='Cityscapes val frames (default %(default)s)')
    parser.add_argument(
        '--num-test',
        type=int,
        default=bl.DEFAULT_NUM_TEST,
        help='frames per test set (default %(default)s): RoadAnomaly21 and RoadObstacle21 (a third image-only), Lost '
        'and Found test (plus a third as many train frames)')
    parser.add_argument(
        '--size',
        type=parse_size,
        default=bl.DEFAULT_SIZE,
        help='WIDTHxHEIGHT of the 2:1 sets, Cityscapes and Lost and Found (default %dx%d; real 2048x1024)' %
        bl.DEFAULT_SIZE)
    parser.add_argument(
        '--size-wide',
        type=parse_size,
        default=None,
        help='WIDTHxHEIGHT of the 16:9 sets, RoadAnomaly21 and RoadObstacle21 (default: --size width at 16:9, %dx%d)' %
        bl.wide_size(bl.DEFAULT_SIZE))
    parser.add_argument('--seed', type=int, default=0, help='base seed (same seed -> identical files)')
    parser.add_argument(
        '--sets',
        type=parse_sets,
        default=list(bl.SETS),
        help='comma-separated sets to write (default all: %s; laf includes FishyLAF)' % ','.join(bl.SETS))
    parser.add_argument('--workers', type=int, default=1, help='parallel processes (output does not depend on it)')
    parser.add_argument('--overwrite', action='store_true', help="replace the selected sets' folders if they exist")
    parser.add_argument('--quiet', action='store_true', help='no progress output')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        res = bl.generate_road_anomaly_sets(
            args.out,
            num_train=args.num_train,
            num_val=args.num_val,
            num_test=args.num_test,
            size=args.size,
            size_wide=args.size_wide,
            seed=args.seed,
            sets=args.sets,
            workers=args.workers,
            overwrite=args.overwrite,
            verbose=not args.quiet)
    except (FileExistsError, NotADirectoryError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    (w, h), (ww, wh) = res['size'], res['size_wide']
    print(f'wrote {res["root"]} ({w}x{h}, 16:9 sets {ww}x{wh}, seed {res["seed"]}, {res["seconds"]:.1f} s)')
    names = {
        'cityscapes-train': 'cityscapes train',
        'cityscapes-val': 'cityscapes val',
        'anomaly': 'dataset_AnomalyTrack',
        'obstacle': 'dataset_ObstacleTrack',
        'laf-test': 'dataset_LostAndFound test',
        'laf-train': 'dataset_LostAndFound train',
    }
    for key, name in names.items():
        if key in res:
            info = res[key]
            line = f'  {name:27s} {info["num_frames"]:5d} frames, {info["num_labelled"]:5d} labelled'
            if not key.startswith('cityscapes'):
                line += f', anomaly pixels {100 * info["anomaly_pixel_fraction"]:.2f} %'
            print(line)
    if 'laf' in res['sets']:
        print(f'  {"dataset_FishyLAF":27s} {res["num_fishy"]:5d} labelled frames')
    return 0


if __name__ == '__main__':
    sys.exit(main())
