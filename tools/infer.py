"""Segment images and map their anomalies: a file, a folder or a glob of images of any size.

    python tools/infer.py CONFIG CHECKPOINT INPUT --out DIR [--scorer MaxLogit] [--device cpu|cuda:0] \
        [--stats anomaly_scorer_stats.pth] [--threshold T] [--score-range LO HI] [--opacity 0.5] [--save-scores]

``INPUT`` is an image file, a folder (searched recursively for .png/.jpg/.jpeg/.bmp/.tif/.tiff/.webp) or a
quoted glob pattern (``'data/*/t5/*.png'``). For every image, written under ``--out`` (sub-folders of a
folder input are kept):

- ``<name>_seg.png``: the predicted classes in the dataset palette (StreetHazards' by default);
- ``<name>_anomaly.png``: the anomaly map of ``--scorer`` as an inferno heat map, scaled to ``--score-range``
  or to the image's own 1st..99.9th percentile;
- ``<name>_overlay.png``: the input blended with the segmentation; with ``--threshold``, pixels scoring
  ``>= T`` are painted in the anomaly colour (60, 250, 240);
- ``<name>_anomaly.npy`` with ``--save-scores``: the raw float32 map.

The model is built with mmseg's ``init_model`` and runs through ``inference_model`` with the config's
test pipeline (annotation loading removed), so any image size is resized as in testing and the outputs
come back at the input's size. The checkpoint is read with safe (``weights_only``) unpickling (installed by
importing ``anomseg_plugins``) and must fit the model exactly: missing, unexpected or differently shaped
weights are refused with the file, keys and shapes named (:mod:`anomseg_plugins.utils.checkpoint_fit`, as
``tools/test.py``).

Scorers: any ``ANOMALY_SCORERS`` type (``MSP``, ``MaxLogit``, ``Energy``, ``Entropy``, ``HEAT``, ...). When the
config's ``test_evaluator`` has an ``AnomalyMetric`` listing a scorer of that name, its settings are used.
Scorers that need fitting (``SML``, ``Mahalanobis``, z-score fusion) load the statistics that
``tools/test.py`` saved (``AnomalyTestLoop``'s ``anomaly_scorer_stats.pth``): ``--stats FILE``, by default
found next to the checkpoint or one folder below it; they must have been fitted for these weights.
Feature scorers read the backbone stages from the same forward pass (a forward hook).

Unreadable images are reported by name and skipped; the exit code is 0 when at least one image was
processed (1 otherwise). ``<out>/infer_summary.json`` lists processed and skipped files.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
import time
from typing import List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import anomseg_plugins  # noqa: F401  (registers the plugins, safe checkpoint loading)
from anomseg_plugins.engine.scorer_stats import STATS_FILE

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Segment images and map their anomalies (file, folder or glob)')
    parser.add_argument('config', help='model config (the one used for training / testing)')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('input', help='an image file, a folder of images, or a quoted glob pattern')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--scorer', default='MaxLogit', help='anomaly scorer name / type (default MaxLogit)')
    parser.add_argument(
        '--stats',
        default=None,
        help=f'fitted scorer statistics ({STATS_FILE} written by tools/test.py) for SML / '
        'Mahalanobis / z-score fusion; default: searched next to the checkpoint')
    parser.add_argument('--device', default='cpu', help='torch device: cpu (default), cuda, cuda:1, ...')
    parser.add_argument(
        '--threshold',
        type=float,
        default=None,
        help='paint pixels with score >= THRESHOLD in the anomaly colour in the overlay')
    parser.add_argument(
        '--score-range',
        type=float,
        nargs=2,
        default=None,
        metavar=('LO', 'HI'),
        help='fixed heat-map range (default: each image\'s 1st..99.9th percentile)')
    parser.add_argument('--opacity', type=float, default=0.5, help='segmentation opacity in the overlay (0..1)')
    parser.add_argument('--save-scores', action='store_true', help='also write the raw anomaly map as .npy')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    args = parser.parse_args(argv)
    if not 0.0 <= args.opacity <= 1.0:
        parser.error(f'--opacity must be in [0, 1], got {args.opacity}')
    if args.score_range is not None and not args.score_range[1] > args.score_range[0]:
        parser.error(f'--score-range needs LO < HI, got {args.score_range}')
    return args


# ---------------------------------------------------------------------------------------------- inputs
def collect_images(pattern: str) -> Tuple[List[str], str]:
    """``(files, root)``: the image files of a file / folder / glob input and the folder outputs are
    made relative to."""
    if osp.isfile(pattern):
        return [pattern], osp.dirname(osp.abspath(pattern))
    if osp.isdir(pattern):
        files = []
        for dirpath, _, names in os.walk(pattern):
            files += [osp.join(dirpath, n) for n in names if n.lower().endswith(IMAGE_EXTENSIONS)]
        return sorted(files), osp.abspath(pattern)
    files = sorted(
        f for f in glob.glob(pattern, recursive=True) if osp.isfile(f) and f.lower().endswith(IMAGE_EXTENSIONS))
    root = osp.commonpath([osp.dirname(osp.abspath(f)) for f in files]) if files else ''
    return files, root


def read_image(path: str) -> np.ndarray:
    """BGR uint8 ``(H, W, 3)`` of an image file; raises ``ValueError`` naming the file if it cannot be decoded."""
    import mmcv
    with open(path, 'rb') as f:
        data = f.read()
    if not data:
        raise ValueError('empty file')
    img = mmcv.imfrombytes(data, flag='color', backend='cv2')
    if img is None or img.ndim != 3 or img.size == 0:
        raise ValueError('cannot be decoded as an image')
    return img


# ---------------------------------------------------------------------------------------------- model
def test_pipeline(cfg) -> list:
    """The config's test pipeline for bare images: annotation loading removed, images given as arrays."""
    pipeline = cfg.get('test_pipeline', None) or cfg.test_dataloader.dataset.pipeline
    pipeline = [dict(t) for t in pipeline if 'Annotation' not in t.get('type', '')]
    if not pipeline or 'LoadImage' not in pipeline[0].get('type', ''):
        raise ValueError(f'the test pipeline of the config must start with an image loading transform, got '
                         f'{[t.get("type") for t in pipeline]}')
    pipeline[0] = dict(type='LoadImageFromNDArray')
    return pipeline


def build_model(config: str, checkpoint: str, device: str, cfg_options: Optional[dict] = None):
    """``mmseg.apis.init_model`` + exact, safe checkpoint loading; returns ``(model, dataset_meta)``.

    Raises:
        anomseg_plugins.utils.checkpoint_fit.CheckpointMismatchError: the checkpoint does not fit the model.
    """
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmseg.apis import init_model
    from mmseg.registry import DATASETS

    from anomseg_plugins.utils.checkpoint_fit import load_checkpoint_exact

    if not osp.isfile(config):
        raise FileNotFoundError(f'config {config!r} does not exist')
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint!r} does not exist')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model = init_model(cfg, None, device='cpu')
    ckpt = load_checkpoint_exact(model, checkpoint, map_location='cpu')
    if device == 'cpu':
        model = revert_sync_batchnorm(model)
    model.to(device)
    model.eval()
    meta = (ckpt.get('meta') or {}).get('dataset_meta') if isinstance(ckpt, dict) else None
    if not meta or 'classes' not in meta or 'palette' not in meta:
        dataset_type = cfg.get('test_dataloader', {}).get('dataset', {}).get('type', 'StreetHazardsDataset')
        cls = DATASETS.get(dataset_type) or DATASETS.get('StreetHazardsDataset')
        meta = dict(cls.METAINFO)
    model.dataset_meta = meta
    model.cfg.test_pipeline = test_pipeline(model.cfg)
    return model, meta


def build_scorer(name: str, cfg, model, checkpoint: str, stats: Optional[str]):
    """The scorer ``name`` with the config's settings (if its AnomalyMetric lists it) and fitted state."""
    from anomseg_plugins.engine.scorer_lookup import config_scorers, resolve_scorer
    scorer = resolve_scorer(name, config_scorers(cfg.get('test_evaluator', [])), 'tools/infer.py',
                            'pass --scorer with one of them')
    if scorer.requires_fit and not scorer.is_fitted:
        load_fitted_state(scorer, model, checkpoint, stats)
    return scorer


def load_fitted_state(scorer, model, checkpoint: str, stats: Optional[str]) -> None:
    """Load the statistics of ``scorer`` from ``stats`` (default: found next to ``checkpoint``), which must have
    been fitted for this model: its weights, test_cfg, data preprocessor, settings and TTA wrapper."""
    from anomseg_plugins.engine.scorer_stats import (MODEL_KEY_PARTS, STATS_KEY_PARTS, find_stats_file, key_changes,
                                                     model_stats_key, read_stats)
    path = stats or find_stats_file(checkpoint)
    if path is None or not osp.isfile(path):
        raise FileNotFoundError(
            f'scorer {scorer.name} needs fitted statistics: pass --stats {STATS_FILE} (written by tools/test.py '
            f'with an AnomalyMetric listing {scorer.name}); none found' +
            (f' at {path}' if path else ' next to the checkpoint'))
    stored, entries = read_stats(path)
    entry = entries.get(scorer.name)
    if entry is None:
        raise KeyError(f'{path} holds no statistics for scorer {scorer.name} (it has {sorted(entries)})')
    changed = key_changes(stored, model_stats_key(model), [part for part in MODEL_KEY_PARTS if part in stored])
    if changed:
        raise ValueError(f'{path} was fitted for another model than {checkpoint} with this config: ' + '; '.join(
            f'{STATS_KEY_PARTS[part]} changed ({what})' if part != 'model' else f'{STATS_KEY_PARTS[part]} changed'
            for part, what in changed) +
                         '. Test this checkpoint and config with tools/test.py to fit the scorer, or pass the '
                         'matching --stats file')
    if entry.get('signature') not in (None, scorer.fit_signature()):
        print(
            f'warning: {path} stores {scorer.name} fitted as {entry.get("signature")}; now {scorer.fit_signature()}',
            file=sys.stderr)
    scorer.load_state_dict(entry['state_dict'])
    print(f'loaded the fitted statistics of {scorer.name} from {path}')


# ---------------------------------------------------------------------------------------------- one image
def segment(model, scorer, image_bgr: np.ndarray):
    """``(pred (H, W), anomaly score (H, W) float32)`` of one image, from one forward pass (backbone features
    captured from it for feature scorers)."""
    import torch
    from mmseg.apis import inference_model

    from anomseg_plugins.engine.feature_capture import BackboneFeatureCapture, batched_features
    capture = BackboneFeatureCapture.for_model(model, [scorer], 'tools/infer.py')
    with capture:
        result = inference_model(model, image_bgr)
        per_sample = capture.per_sample([result])
    feats = None if per_sample is None else batched_features(per_sample[0])
    logits = result.seg_logits.data
    with torch.no_grad():
        scorer.to(logits.device)
        score = scorer(logits[None].float(), feats)[0]
    return result.pred_sem_seg.data[0].cpu().numpy(), score.float().cpu().numpy()


def heat_map(score: np.ndarray, limits: Optional[Sequence[float]] = None) -> np.ndarray:
    """Inferno heat map ``(H, W, 3)`` uint8 RGB of a score map."""
    from matplotlib import colormaps

    from anomseg_plugins.visualization.panels import score_range
    lo, hi = limits if limits is not None else score_range(score)
    norm = np.clip((score - lo) / (hi - lo), 0.0, 1.0)
    norm = np.nan_to_num(norm, nan=0.0)
    return (colormaps['inferno'](norm)[..., :3] * 255 + 0.5).astype(np.uint8)


def write_outputs(out_prefix: str, image_bgr: np.ndarray, pred: np.ndarray, score: np.ndarray, palette,
                  args) -> List[str]:
    from anomseg_plugins.datasets.street_hazards import ANOMALY_COLOR
    from anomseg_plugins.visualization.panels import blend, colorize, save_rgb
    rgb = np.ascontiguousarray(image_bgr[..., ::-1])
    seg = colorize(pred, palette)
    overlay = blend(rgb, seg, args.opacity)
    if args.threshold is not None:
        overlay[score >= args.threshold] = ANOMALY_COLOR
    files = [
        save_rgb(out_prefix + '_seg.png', seg),
        save_rgb(out_prefix + '_anomaly.png', heat_map(score, args.score_range)),
        save_rgb(out_prefix + '_overlay.png', overlay)
    ]
    if args.save_scores:
        np.save(out_prefix + '_anomaly.npy', score.astype(np.float32))
        files.append(out_prefix + '_anomaly.npy')
    return files


def main(argv: Optional[Sequence[str]] = None) -> int:
    import warnings

    from mmengine.utils import ProgressBar
    args = parse_args(argv)
    files, root = collect_images(args.input)
    if not files:
        print(f'error: {args.input!r} matches no image file ({", ".join(IMAGE_EXTENSIONS)})', file=sys.stderr)
        return 1
    model, meta = build_model(args.config, args.checkpoint, args.device, args.cfg_options)
    scorer = build_scorer(args.scorer, model.cfg, model, args.checkpoint, args.stats)
    os.makedirs(args.out, exist_ok=True)
    print(f'{len(files)} image(s) -> {args.out} ({scorer.name}, {args.device})')
    done, skipped = [], []
    start = time.time()
    bar = ProgressBar(len(files))
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='.*auto_mkdir.*')
        for path in files:
            rel = osp.splitext(osp.relpath(osp.abspath(path), root))[0] if root else osp.splitext(osp.basename(path))[0]
            try:
                image = read_image(path)
            except Exception as exc:  # unreadable: name it, go on
                skipped.append(dict(file=path, reason=f'unreadable: {exc}'))
                bar.update()
                continue
            try:
                pred, score = segment(model, scorer, image)
                outputs = write_outputs(osp.join(args.out, rel), image, pred, score, meta['palette'], args)
            except Exception as exc:  # a failure on one image must not lose the others
                skipped.append(dict(file=path, reason=f'{type(exc).__name__}: {exc}'))
                bar.update()
                continue
            done.append(
                dict(
                    file=path,
                    size=[int(image.shape[1]), int(image.shape[0])],
                    outputs=outputs,
                    score_min=float(np.nanmin(score)),
                    score_max=float(np.nanmax(score))))
            bar.update()
    elapsed = time.time() - start
    with open(osp.join(args.out, 'infer_summary.json'), 'w') as f:
        json.dump(
            dict(
                config=args.config,
                checkpoint=args.checkpoint,
                scorer=scorer.name,
                device=args.device,
                processed=done,
                skipped=skipped,
                seconds=elapsed),
            f,
            indent=2)
    print(f'\nprocessed {len(done)} of {len(files)} image(s) in {elapsed:.1f} s; outputs in {args.out}')
    for item in skipped:
        print(f'skipped {item["file"]}: {item["reason"]}', file=sys.stderr)
    return 0 if done else 1


if __name__ == '__main__':
    from anomseg_plugins.utils import CheckpointMismatchError
    try:
        sys.exit(main())
    except CheckpointMismatchError as exc:  # the message names the file, keys and shapes: no traceback needed
        sys.exit(f'tools/infer.py: {exc}')
