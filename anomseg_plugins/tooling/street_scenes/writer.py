"""Writes a generated StreetHazards copy: file names, ``.odgt`` indexes, splits, parallel rendering.

The layout and encoding are exactly those of the real archives (``streethazards_train.tar`` and
``streethazards_test.tar``)::

    <out>/train/images/training/t1-3/<i>.png     <out>/train/annotations/training/t1-3/<i>.png
    <out>/train/images/validation/t4/<i>.png     <out>/train/annotations/validation/t4/<i>.png
    <out>/test/images/test/t5/<i>.png, t6/...    <out>/test/annotations/test/t5/..., t6/...
    <out>/train/train.odgt  <out>/train/validation.odgt  <out>/test/test.odgt

Images are 8-bit RGB PNGs; annotations single-channel uint8 PNGs holding ``index + 1`` of the class
table (:mod:`.classes`). The anomaly label occurs only in the test split; the ``.odgt`` files are JSON
lines ``{"fpath_img": ..., "fpath_segm": ..., "width": W, "height": H}`` as in the real archives.

Determinism: each image is drawn from its own ``numpy`` generator seeded by ``(seed, split, index)``
(:func:`image_rng`), so the output depends neither on the number of worker processes nor on the other
split sizes.
"""
import io
import json
import os
import os.path as osp
import shutil
import sys
import time
from typing import Callable, Dict, List, Tuple

import cv2
import numpy as np
from mmengine.utils import track_parallel_progress, track_progress

from .classes import ANOMALY, CLASS_NAMES
from .scene import render_street_scene

#: Defaults of the demo dataset (generation takes a few seconds on 2 cores).
DEFAULT_NUM_TRAIN = 48
DEFAULT_NUM_VAL = 16
DEFAULT_NUM_TEST = 24
DEFAULT_SIZE = (480, 270)

#: Where each split goes: (archive folder, image sub-folders, odgt file), relative to the root.
SPLIT_LAYOUT = {
    'train': ('train', ('training/t1-3', ), 'train/train.odgt'),
    'val': ('train', ('validation/t4', ), 'train/validation.odgt'),
    'test': ('test', ('test/t5', 'test/t6'), 'test/test.odgt'),
}
_SPLIT_IDS = {'train': 0, 'val': 1, 'test': 2}


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator that draws image ``index`` of ``split`` (independent of all other images)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), _SPLIT_IDS[split], int(index)]))


def split_files(split: str, num: int) -> List[Tuple[str, str]]:
    """Relative (image, annotation) paths of a split; the test split is halved over t5 and t6."""
    top, subs, _ = SPLIT_LAYOUT[split]
    if len(subs) == 1:
        folders = [subs[0]] * num
        local = list(range(num))
    else:
        first = (num + 1) // 2
        folders = [subs[0] if i < first else subs[1] for i in range(num)]
        local = [i if i < first else i - first for i in range(num)]
    return [(f'{top}/images/{fo}/{li}.png', f'{top}/annotations/{fo}/{li}.png') for fo, li in zip(folders, local)]


def _work(task: tuple) -> Tuple[str, int, np.ndarray]:
    """Render one image and write its two PNGs; returns per-class pixel counts (index = label value)."""
    root, split, index, img_rel, ann_rel, width, height, seed, anomaly_fraction = task
    try:
        rgb, lab = render_street_scene(
            width, height, image_rng(seed, split, index), anomalies=split == 'test', anomaly_fraction=anomaly_fraction)
    except Exception as err:
        raise RuntimeError(f'drawing {split} image {index} ({img_rel}, seed {seed}, {width}x{height}) failed: '
                           f'{type(err).__name__}: {err}') from err
    for rel, arr in ((img_rel, rgb[..., ::-1]), (ann_rel, lab)):
        path = osp.join(root, rel)
        if not cv2.imwrite(path, np.ascontiguousarray(arr), [cv2.IMWRITE_PNG_COMPRESSION, 3]):
            raise OSError(f'could not write {path} (cv2.imwrite failed; check free space and permissions)')
    return split, index, np.bincount(lab.ravel(), minlength=16)[:16]


def _render_all(tasks: List[tuple], workers: int, verbose: bool) -> List[Tuple[str, int, np.ndarray]]:
    """Run ``_work`` on every task, in ``workers`` processes, with mmengine's progress bar when ``verbose``."""
    out = sys.stdout if verbose else io.StringIO()
    if workers <= 1 or len(tasks) <= 1:
        return track_progress(_work, tasks, file=out)
    # Workers render single-threaded. The limit is set here, before the fork, because calling
    # cv2.setNumThreads inside a forked child (with torch loaded) deadlocks on the parent's
    # thread pool; the parent's setting is restored afterwards.
    cv2_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        return track_parallel_progress(
            _work, tasks, workers, chunksize=max(1, min(8,
                                                        len(tasks) // (4 * workers))), file=out)
    finally:
        cv2.setNumThreads(cv2_threads)


def generate_street_hazards(out_dir: str,
                            num_train: int = DEFAULT_NUM_TRAIN,
                            num_val: int = DEFAULT_NUM_VAL,
                            num_test: int = DEFAULT_NUM_TEST,
                            size: Tuple[int, int] = DEFAULT_SIZE,
                            seed: int = 0,
                            anomaly_fraction: float = 0.01,
                            workers: int = 1,
                            overwrite: bool = False,
                            verbose: bool = True,
                            log: Callable[[str], None] = print) -> Dict:
    """Write a generated StreetHazards copy in the real layout and label encoding.

    Args:
        out_dir: dataset root to create (``data_root`` of ``StreetHazardsDataset``).
        num_train, num_val, num_test: images per split (``training/t1-3``, ``validation/t4``,
            ``test/t5`` + ``test/t6``).
        size: ``(width, height)`` in pixels (the real dataset: 1280x720).
        seed: base seed; image ``i`` of a split is drawn from ``image_rng(seed, split, i)``.
        anomaly_fraction: expected share of anomaly pixels over the test split (real: ~0.0103).
        workers: processes rendering in parallel (output does not depend on it).
        overwrite: replace the ``train/`` and ``test/`` folders of a non-empty ``out_dir``;
            without it a non-empty ``out_dir`` raises ``FileExistsError``.
        verbose: report the start and the end through ``log`` and show mmengine's progress bar on stdout.
        log: where the start and end lines go.

    Returns:
        dict with ``root``, ``size``, ``seed``, ``seconds``, per split (``train``/``val``/``test``)
        ``num_images``, ``odgt``, ``image_dirs``, ``annotation_dirs``, ``class_pixels`` (class name ->
        pixel count), and ``anomaly_pixel_fraction`` (measured over the test split).
    """
    width, height = (int(v) for v in size)
    if width < 32 or height < 24:
        raise ValueError(f'size={size!r}: images must be at least 32x24 pixels (width, height)')
    for name, num in (('num_train', num_train), ('num_val', num_val), ('num_test', num_test)):
        if int(num) < 0:
            raise ValueError(f'{name}={num}: the number of images must be >= 0')
    if not 0.0 <= anomaly_fraction <= 0.2:
        raise ValueError(f'anomaly_fraction={anomaly_fraction}: expected a share in [0, 0.2] (real data: 0.0103)')
    workers = max(1, int(workers))
    root = osp.abspath(out_dir)
    if osp.exists(root) and not osp.isdir(root):
        raise NotADirectoryError(f'output path {root} exists and is not a directory')
    if osp.isdir(root) and os.listdir(root):
        if not overwrite:
            raise FileExistsError(f'output directory {root} is not empty; pass --overwrite (overwrite=True) to '
                                  'replace its train/ and test/ folders, or choose another --out')
        for sub in ('train', 'test'):
            if osp.isdir(osp.join(root, sub)):
                shutil.rmtree(osp.join(root, sub))
    counts = dict(train=int(num_train), val=int(num_val), test=int(num_test))
    tasks, files = [], {}
    for split, num in counts.items():
        top, subs, _ = SPLIT_LAYOUT[split]
        for sub in subs:
            for kind in ('images', 'annotations'):
                os.makedirs(osp.join(root, top, kind, sub), exist_ok=True)
        files[split] = split_files(split, num)
        tasks += [(root, split, i, img, ann, width, height, int(seed), float(anomaly_fraction))
                  for i, (img, ann) in enumerate(files[split])]

    start = time.time()
    if verbose:
        log(f'[generate_streethazards] drawing {len(tasks)} images at {width}x{height} '
            f'(train {counts["train"]}, val {counts["val"]}, test {counts["test"]}) with {workers} worker(s) '
            f'into {root}')
    pixels = {s: np.zeros(16, np.int64) for s in counts}
    for split, _, hist in _render_all(tasks, workers, verbose):
        pixels[split] += hist

    summary = dict(root=root, size=(width, height), seed=int(seed), anomaly_fraction=float(anomaly_fraction))
    for split in counts:
        top, subs, odgt = SPLIT_LAYOUT[split]
        with open(osp.join(root, odgt), 'w') as f:
            for img, ann in files[split]:
                f.write(json.dumps({'fpath_img': img, 'fpath_segm': ann, 'width': width, 'height': height}) + '\n')
        summary[split] = dict(
            num_images=counts[split],
            odgt=osp.join(root, odgt),
            image_dirs=[osp.join(root, top, 'images', s) for s in subs],
            annotation_dirs=[osp.join(root, top, 'annotations', s) for s in subs],
            class_pixels={CLASS_NAMES[v - 1]: int(pixels[split][v])
                          for v in range(1, 15)})
    n_test = pixels['test'][1:15].sum()
    summary['anomaly_pixel_fraction'] = float(pixels['test'][ANOMALY] / n_test) if n_test else 0.0
    summary['seconds'] = time.time() - start
    if verbose:
        log(f'[generate_streethazards] done in {summary["seconds"]:.1f} s; anomaly pixels in test: '
            f'{100 * summary["anomaly_pixel_fraction"]:.2f} %')
    return summary
