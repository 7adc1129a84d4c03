"""Class distribution of a StreetHazards copy: pixel share and image presence of every class, per split.

Reads the annotation PNGs of each split (layout of :data:`~anomseg_plugins.datasets.SPLIT_PREFIXES`,
on-disk values 1..14: 1..13 the known classes 0..12, 14 the anomaly) and counts, per class ``k``:

- ``pixel share`` = pixels labelled ``k`` / all pixels of the split (%),
- ``image presence`` = images holding at least one ``k`` pixel / images of the split (%).

Files that cannot be read are named and skipped; values outside 1..14 are counted apart and their files
named (``tools/dataset/check_integrity.py`` is the full integrity check). Used by
``tools/analysis/class_distribution.py`` and ``tools/analysis/make_report.py``.
"""
import csv
import json
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Sequence

import numpy as np

from anomseg_plugins.datasets.street_hazards import (ANOMALY_COLOR, ANOMALY_FILE_VALUE, LABEL_OFFSET, SPLIT_PREFIXES,
                                                     StreetHazardsDataset)

CLASS_NAMES = tuple(StreetHazardsDataset.METAINFO['classes']) + ('anomaly', )
CLASS_COLORS = [tuple(c) for c in StreetHazardsDataset.METAINFO['palette']] + [tuple(ANOMALY_COLOR)]


def annotation_files(data_root: str, split: str, suffix: str = '.png') -> List[str]:
    """Annotation files of ``split`` (recursive, sorted); raises ``FileNotFoundError`` naming a missing folder.

    The label files on disk, images or not: this counts what the annotations hold (the pairing of images and
    labels is the integrity check's, which lists them from the dataset the config builds)."""
    if split not in SPLIT_PREFIXES:
        raise KeyError(f'unknown split {split!r}; choose from {list(SPLIT_PREFIXES)}')
    folder = osp.join(data_root, SPLIT_PREFIXES[split]['seg_map_path'])
    if not osp.isdir(folder):
        raise FileNotFoundError(f'split {split}: annotation folder {folder} does not exist (expected the StreetHazards '
                                'layout; see README "Data")')
    files = []
    for dirpath, _, names in os.walk(folder):
        files += [osp.join(dirpath, n) for n in names if n.endswith(suffix)]
    return sorted(files)


def count_split(files: Sequence[str], progress: bool = True) -> dict:
    """Count on-disk label values over ``files``.

    Returns:
        dict with ``pixels`` / ``images``: ``(15,)`` int64 indexed by on-disk value 0..14 (pixel counts / number
        of images containing the value), ``num_images`` (read), ``num_pixels``, ``bad``: ``[{file, reason}]``
        of unreadable files, ``out_of_range``: ``[{file, values, pixels}]`` for values outside 1..14.
    """
    from mmengine.utils import ProgressBar
    from PIL import Image
    pixels = np.zeros(ANOMALY_FILE_VALUE + 1, np.int64)
    images = np.zeros(ANOMALY_FILE_VALUE + 1, np.int64)
    bad, out_of_range = [], []
    num_images = num_pixels = 0
    bar = ProgressBar(len(files)) if progress and files else None
    for path in files:
        try:
            with Image.open(path) as im:
                raw = np.asarray(im)
            if raw.ndim != 2:
                raise ValueError(f'has shape {raw.shape}; expected a single-channel label map')
        except Exception as exc:  # unreadable: name it, go on
            bad.append(dict(file=path, reason=str(exc)))
            if bar:
                bar.update()
            continue
        counts = np.bincount(raw.reshape(-1).astype(np.int64), minlength=ANOMALY_FILE_VALUE + 1)
        outside = counts.copy()
        outside[LABEL_OFFSET:ANOMALY_FILE_VALUE + 1] = 0
        if outside.any():
            values = np.flatnonzero(outside)
            out_of_range.append(dict(file=path, values=values.tolist()[:10], pixels=int(outside.sum())))
        counts = counts[:ANOMALY_FILE_VALUE + 1]
        counts[:LABEL_OFFSET] = 0
        pixels += counts
        images += counts > 0
        num_images += 1
        num_pixels += raw.size
        if bar:
            bar.update()
    if bar:
        print()
    return dict(
        pixels=pixels, images=images, num_images=num_images, num_pixels=num_pixels, bad=bad, out_of_range=out_of_range)


def class_distribution(data_root: str,
                       splits: Sequence[str] = ('train', 'val', 'test'),
                       progress: bool = True) -> Dict[str, dict]:
    """``{split: count_split(...)}`` plus ``files`` per split; a split whose folder is missing gets
    ``missing`` (its message) instead of counts."""
    out = OrderedDict()
    for split in splits:
        try:
            files = annotation_files(data_root, split)
        except FileNotFoundError as exc:
            out[split] = dict(missing=str(exc))
            continue
        if progress:
            print(f'{split}: {len(files)} annotation files')
        out[split] = count_split(files, progress)
        out[split]['num_files'] = len(files)
    return out


def distribution_rows(dist: Dict[str, dict]) -> List[dict]:
    """One row per class (13 known + anomaly): ``{class, <split>/pixel_%, <split>/image_%, <split>/pixels}``."""
    rows = []
    for k, name in enumerate(CLASS_NAMES):
        value = k + LABEL_OFFSET
        row = OrderedDict([('class', name), ('index', k if name != 'anomaly' else None)])
        for split, d in dist.items():
            if 'missing' in d:
                continue
            total_px, total_img = max(1, d['num_pixels']), max(1, d['num_images'])
            row[f'{split}/pixel_%'] = 100.0 * d['pixels'][value] / total_px
            row[f'{split}/image_%'] = 100.0 * d['images'][value] / total_img
            row[f'{split}/pixels'] = int(d['pixels'][value])
        rows.append(row)
    return rows


def _present(dist: Dict[str, dict]) -> List[str]:
    return [s for s, d in dist.items() if 'missing' not in d]


def to_prettytable(dist: Dict[str, dict]):
    from prettytable import PrettyTable
    splits = _present(dist)
    table = PrettyTable()
    table.field_names = ['class'] + [f'{s} px %' for s in splits] + [f'{s} img %' for s in splits]
    for r in distribution_rows(dist):
        table.add_row([r['class']] + [f'{r[f"{s}/pixel_%"]:.3f}'
                                      for s in splits] + [f'{r[f"{s}/image_%"]:.1f}' for s in splits])
    return table


def to_markdown(dist: Dict[str, dict]) -> str:
    splits = _present(dist)
    head = ['class'] + [f'{s} pixel %' for s in splits] + [f'{s} image %' for s in splits]
    lines = ['| ' + ' | '.join(head) + ' |', '|---|' + '---:|' * (len(head) - 1)]
    for r in distribution_rows(dist):
        lines.append('| ' + ' | '.join([r['class']] + [f'{r[f"{s}/pixel_%"]:.3f}'
                                                       for s in splits] + [f'{r[f"{s}/image_%"]:.1f}'
                                                                           for s in splits]) + ' |')
    totals = ', '.join(f'{s}: {dist[s]["num_images"]} images, {dist[s]["num_pixels"]} pixels' for s in splits)
    return '\n'.join(lines) + f'\n\n{totals}\n'


def write_outputs(dist: Dict[str, dict], out_dir: str, plot: bool = True) -> List[str]:
    """``class_distribution.csv/.md/.json`` (+ ``.png``) in ``out_dir``; returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    rows = distribution_rows(dist)
    paths = [osp.join(out_dir, 'class_distribution.' + ext) for ext in ('csv', 'md', 'json')]
    with open(paths[0], 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f'{v:.6f}' if isinstance(v, float) else v) for k, v in r.items()})
    with open(paths[1], 'w') as f:
        f.write(to_markdown(dist))
    summary = OrderedDict()
    for split, d in dist.items():
        if 'missing' in d:
            summary[split] = dict(missing=d['missing'])
        else:
            summary[split] = dict(
                num_images=d['num_images'],
                num_pixels=d['num_pixels'],
                num_files=d['num_files'],
                bad=d['bad'],
                out_of_range=d['out_of_range'])
    with open(paths[2], 'w') as f:
        json.dump(dict(classes=list(CLASS_NAMES), splits=summary, rows=rows), f, indent=2)
    if plot and _present(dist):
        paths.append(plot_class_distribution(dist, osp.join(out_dir, 'class_distribution.png')))
    return paths


def plot_class_distribution(dist: Dict[str, dict], path: str, dpi: int = 110) -> str:
    """Two bar charts (pixel share, log scale; image presence), one bar per split and class; class names
    are underlined with their palette colour."""
    from matplotlib.patches import Rectangle

    from anomseg_plugins.visualization.panels import _new_figure
    splits = _present(dist)
    rows = distribution_rows(dist)
    x = np.arange(len(rows))
    width = 0.8 / max(1, len(splits))
    fig = _new_figure(12, 7.5, dpi)
    axes = fig.subplots(2, 1)
    for ax, key, title in ((axes[0], 'pixel_%', 'pixel share per class (% of the split\'s pixels, log scale)'),
                           (axes[1], 'image_%', 'image presence per class (% of the split\'s images)')):
        for i, split in enumerate(splits):
            vals = np.array([r[f'{split}/{key}'] for r in rows])
            ax.bar(
                x - 0.4 + width * (i + 0.5),
                vals,
                width,
                label=f'{split} ({dist[split]["num_images"]} images)',
                color=f'C{i}')
        ax.set_title(title, fontsize=10)
        ax.set_xticks(x)
        ax.set_xticklabels([r['class'] for r in rows], rotation=30, ha='right', fontsize=8)
        ax.grid(axis='y', alpha=0.3)
        ax.set_xlim(-0.6, len(rows) - 0.4)
        for k, color in enumerate(CLASS_COLORS):
            ax.add_patch(
                Rectangle((k - 0.4, 0),
                          0.8,
                          0.025,
                          transform=ax.get_xaxis_transform(),
                          clip_on=False,
                          facecolor=np.asarray(color) / 255.0,
                          edgecolor='0.4',
                          lw=0.4))
        if key == 'pixel_%':
            positive = [r[f'{s}/{key}'] for r in rows for s in splits if r[f'{s}/{key}'] > 0]
            ax.set_yscale('log')
            if positive:
                ax.set_ylim(min(positive) / 2, 150)
        else:
            ax.set_ylim(0, 105)
    axes[0].legend(fontsize=8, loc='upper right')
    fig.tight_layout()
    fig.savefig(path)
    return path


def problems(dist: Dict[str, dict]) -> List[str]:
    """Messages for missing splits, unreadable files and out-of-range values (each names the file)."""
    out = []
    for split, d in dist.items():
        if 'missing' in d:
            out.append(d['missing'])
            continue
        out += [f'{split}: skipped {b["file"]}: {b["reason"]}' for b in d['bad']]
        out += [
            f'{split}: {o["file"]} holds value(s) {o["values"]} outside 1..{ANOMALY_FILE_VALUE} '
            f'({o["pixels"]} pixels, not counted)' for o in d['out_of_range']
        ]
    return out


__all__ = [
    'CLASS_NAMES', 'annotation_files', 'count_split', 'class_distribution', 'distribution_rows', 'to_prettytable',
    'to_markdown', 'write_outputs', 'plot_class_distribution', 'problems'
]
