"""Dataset integrity check: every image readable, every annotation present, same size, labels in range.

A broken file found at epoch 12 costs hours; found before training it costs seconds. This module reads
every image / annotation pair of a split the way the training pipeline does (images decoded by
``cv2`` as mmcv's ``LoadImageFromFile`` does, annotations by ``pillow`` with ``flag='unchanged'`` as
``LoadStreetHazardsAnnotations`` does) and reports, per file, what is wrong:

==========================  ======================================================================
problem                     meaning
==========================  ======================================================================
``missing_folder``          the split's image (or annotation) folder does not exist
``empty_split``             the split holds no image with the dataset's suffix
``unreadable_image``        the image cannot be read or does not decode (truncated, empty, not an image)
``missing_annotation``      no annotation at the expected path (image path with images -> annotations)
``unreadable_annotation``   the annotation cannot be read or decoded
``not_single_channel``      the annotation is not an ``(H, W)`` label map
``size_mismatch``           annotation and image differ in size
``label_out_of_range``      label values outside the dataset's range (StreetHazards: 1..14)
==========================  ======================================================================

Files are checked in parallel (``multiprocessing``, fork) with progress lines and an ETA. The result is an
:class:`IntegrityReport` (issues + per-split image sizes and label histograms), used by
``tools/dataset/check_integrity.py``, ``tools/train.py --check-data`` and dataset analysis tools.

Entry points: :func:`check_street_hazards` (a StreetHazards root, by split), :func:`check_dataset_cfg`
(any mmseg dataset config), :func:`check_config_data` (the dataloaders of a training config),
:func:`check_pairs` (explicit ``(image, annotation)`` paths).
"""
import inspect
import multiprocessing
import os
import os.path as osp
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .street_hazards import ANOMALY_FILE_VALUE, LABEL_OFFSET, SPLIT_PREFIXES

PROBLEMS = ('missing_folder', 'empty_split', 'unreadable_image', 'missing_annotation', 'unreadable_annotation',
            'not_single_channel', 'size_mismatch', 'label_out_of_range')
#: StreetHazards' on-disk label values: 1..13 known classes, 14 anomaly.
STREET_HAZARDS_LABELS = (LABEL_OFFSET, ANOMALY_FILE_VALUE)
#: Below this many pairs the check runs in the calling process (a pool costs more than it saves).
MIN_PARALLEL = 32


class DataIntegrityError(ValueError):
    """The data failed the integrity check; ``report`` holds the :class:`IntegrityReport`."""

    def __init__(self, report: 'IntegrityReport') -> None:
        self.report = report
        super().__init__(report.format())


@dataclass(frozen=True)
class LabelSpec:
    """Valid annotation values: ``low..high`` (inclusive) plus the values in ``extra`` (e.g. ignore 255)."""
    low: int
    high: int
    extra: Tuple[int, ...] = ()

    def describe(self) -> str:
        extra = f' or {", ".join(map(str, self.extra))}' if self.extra else ''
        return f'{self.low}..{self.high}{extra}'


@dataclass
class IntegrityIssue:
    """One problem with one file (or folder)."""
    split: str
    path: str
    problem: str
    detail: str

    def __str__(self) -> str:
        return f'[{self.split}] {self.path}: {self.problem}: {self.detail}'


@dataclass
class SplitSummary:
    """What was found in one split: counts, image sizes and the annotation value histogram."""
    split: str
    img_dir: str
    ann_dir: Optional[str]
    label_spec: str
    num_images: int = 0
    num_bad_files: int = 0
    #: ``'WxH'`` -> number of images of that size (readable images only).
    image_sizes: Dict[str, int] = field(default_factory=dict)
    #: on-disk annotation value -> number of pixels (readable annotations only).
    label_counts: Dict[int, int] = field(default_factory=dict)


@dataclass
class IntegrityReport:
    """Result of an integrity check: ``ok`` when no issue was found."""
    splits: List[SplitSummary] = field(default_factory=list)
    issues: List[IntegrityIssue] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.issues

    @property
    def num_images(self) -> int:
        return sum(s.num_images for s in self.splits)

    @property
    def offenders(self) -> List[str]:
        """Paths of the files (or folders) with at least one issue, in report order, without duplicates."""
        return list(dict.fromkeys(i.path for i in self.issues))

    def merge(self, other: 'IntegrityReport') -> 'IntegrityReport':
        self.splits += other.splits
        self.issues += other.issues
        self.seconds += other.seconds
        return self

    def format(self, max_issues: int = 50) -> str:
        """Human-readable summary: one line per split, then the issues (first ``max_issues``)."""
        lines = []
        for s in self.splits:
            sizes = ', '.join(f'{k} x{v}' for k, v in sorted(s.image_sizes.items(), key=lambda kv: -kv[1])[:3])
            lines.append(f'{s.split}: {s.num_images} images in {s.img_dir}, {s.num_bad_files} with problems; '
                         f'sizes {sizes or "-"}; labels expected {s.label_spec}')
        if self.ok:
            lines.append(f'OK: {self.num_images} images checked in {self.seconds:.1f} s, no problems found.')
            return '\n'.join(lines)
        counts = Counter(i.problem for i in self.issues)
        lines.append(f'FAILED: {len(self.issues)} problem(s) in {len(self.offenders)} file(s) (' +
                     ', '.join(f'{k}: {v}' for k, v in counts.most_common()) + f'), {self.seconds:.1f} s:')
        lines += [f'  {issue}' for issue in self.issues[:max_issues]]
        if len(self.issues) > max_issues:
            lines.append(f'  ... and {len(self.issues) - max_issues} more (see the JSON report)')
        return '\n'.join(lines)

    def to_dict(self) -> dict:
        """JSON-serialisable form (``ok``, ``num_images``, ``seconds``, ``splits``, ``issues``)."""
        return dict(
            ok=self.ok,
            num_images=self.num_images,
            seconds=self.seconds,
            splits=[asdict(s) for s in self.splits],
            issues=[asdict(i) for i in self.issues])

    def raise_for_issues(self) -> 'IntegrityReport':
        """Raise :class:`DataIntegrityError` (message = :meth:`format`) when there are issues; else return self."""
        if not self.ok:
            raise DataIntegrityError(self)
        return self


# ------------------------------------------------------------------------------------------------ one pair
def _decode(path: str, flag: str, backend: str) -> Tuple[Optional[np.ndarray], str]:
    """``(array, '')`` or ``(None, why)``: the file read and decoded as the training pipeline does."""
    import mmcv
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as exc:
        return None, f'cannot be read ({type(exc).__name__}: {exc.strerror or exc})'
    if not data:
        return None, 'empty file (0 bytes)'
    try:
        arr = mmcv.imfrombytes(data, flag=flag, backend=backend)
    except Exception as exc:  # noqa: BLE001  - pillow raises OSError / ValueError / SyntaxError ...
        return None, f'does not decode ({type(exc).__name__}: {exc}); truncated or not an image'
    if arr is None:
        return None, f'does not decode ({len(data)} bytes); truncated or not an image'
    return arr, ''


def check_pair(task: Tuple[str, str, Optional[str], LabelSpec]) -> Tuple[list, Optional[str], Optional[dict]]:
    """Check one ``(split, image, annotation or None, label spec)``.

    Returns:
        ``(issues, size, label_counts)``: ``issues`` a list of ``(problem, path, detail)``; ``size``
        ``'WxH'`` of a readable image; ``label_counts`` ``{value: pixels}`` of a readable annotation.
    """
    split, img_path, ann_path, spec = task
    issues = []
    img, why = _decode(img_path, 'color', 'cv2')
    size = None
    if img is None:
        issues.append(('unreadable_image', img_path, f'image {why}'))
    else:
        size = f'{img.shape[1]}x{img.shape[0]}'
    if ann_path is None:
        return issues, size, None
    if not osp.isfile(ann_path):
        issues.append(('missing_annotation', img_path, f'no annotation at {ann_path}'))
        return issues, size, None
    ann, why = _decode(ann_path, 'unchanged', 'pillow')
    if ann is None:
        issues.append(('unreadable_annotation', ann_path, f'annotation {why}'))
        return issues, size, None
    if ann.ndim != 2:
        issues.append(('not_single_channel', ann_path,
                       f'annotation has shape {ann.shape}; expected a single-channel (H, W) label map'))
        return issues, size, None
    if img is not None and ann.shape != img.shape[:2]:
        issues.append(('size_mismatch', ann_path, f'annotation is {ann.shape[1]}x{ann.shape[0]} but the image '
                       f'{img_path} is {img.shape[1]}x{img.shape[0]} (WxH)'))
    counts = np.bincount(ann.ravel().astype(np.int64))
    values = np.flatnonzero(counts)
    bad = [int(v) for v in values if not (spec.low <= v <= spec.high or v in spec.extra)]
    if bad:
        issues.append(('label_out_of_range', ann_path,
                       f'label value(s) {bad[:10]} at {int(counts[bad].sum())} pixel(s); expected '
                       f'{spec.describe()}'))
    return issues, size, {int(v): int(counts[v]) for v in values}


# ------------------------------------------------------------------------------------------------ runners
def _progress_printer(total: int, what: str, stream=None) -> Callable[[int], None]:
    """A callback printing ``what: done/total`` with elapsed time and ETA about every 10 % (and at the end)."""
    start = time.time()
    every = max(1, total // 10)
    stream = stream or sys.stdout

    def report(done: int) -> None:
        if done % every and done != total:
            return
        elapsed = time.time() - start
        eta = elapsed / max(done, 1) * (total - done)
        print(
            f'[check_integrity] {what}: {done}/{total} files ({100 * done // max(total, 1)}%), '
            f'{elapsed:.0f} s elapsed, ETA {eta:.0f} s',
            file=stream,
            flush=True)

    return report


def _map(fn: Callable, tasks: Sequence, num_workers: Optional[int], progress: Optional[Callable[[int],
                                                                                                None]]) -> Iterable:
    """``fn`` over ``tasks`` in order, in a fork pool when worthwhile, calling ``progress(done)``."""
    workers = num_workers if num_workers is not None else min(8, os.cpu_count() or 1)
    if workers <= 1 or len(tasks) < MIN_PARALLEL or 'fork' not in multiprocessing.get_all_start_methods():
        for i, task in enumerate(tasks, 1):
            yield fn(task)
            if progress:
                progress(i)
        return
    ctx = multiprocessing.get_context('fork')
    chunk = max(1, min(16, len(tasks) // (workers * 8)))
    with ctx.Pool(workers) as pool:
        for i, result in enumerate(pool.imap(fn, tasks, chunksize=chunk), 1):
            yield result
            if progress:
                progress(i)


def check_pairs(pairs: Sequence[Tuple[str, Optional[str]]],
                label_spec: LabelSpec = LabelSpec(*STREET_HAZARDS_LABELS),
                split: str = 'split',
                img_dir: str = '',
                ann_dir: Optional[str] = None,
                num_workers: Optional[int] = None,
                progress: bool = True) -> IntegrityReport:
    """Check explicit ``(image path, annotation path or None)`` pairs.

    Args:
        pairs: the files to check; annotation ``None`` checks the image only.
        label_spec: valid annotation values (default StreetHazards 1..14).
        split / img_dir / ann_dir: names used in the report.
        num_workers: processes (default ``min(8, cpu_count)``; 1 or fewer than 32 pairs: in-process).
        progress: print progress lines with ETA to stdout.
    """
    start = time.time()
    summary = SplitSummary(
        split=split, img_dir=img_dir, ann_dir=ann_dir, label_spec=label_spec.describe(), num_images=len(pairs))
    report = IntegrityReport(splits=[summary])
    tasks = [(split, img, ann, label_spec) for img, ann in pairs]
    printer = _progress_printer(len(tasks), split) if progress and tasks else None
    sizes: Counter = Counter()
    labels: Counter = Counter()
    for issues, size, counts in _map(check_pair, tasks, num_workers, printer):
        if size:
            sizes[size] += 1
        if counts:
            labels.update(counts)
        if issues:
            summary.num_bad_files += 1
            report.issues += [IntegrityIssue(split, path, problem, detail) for problem, path, detail in issues]
    summary.image_sizes = dict(sizes)
    summary.label_counts = {k: labels[k] for k in sorted(labels)}
    report.seconds = time.time() - start
    return report


def find_pairs(img_dir: str,
               ann_dir: Optional[str],
               img_suffix: str = '.png',
               seg_map_suffix: str = '.png',
               ann_file: Optional[str] = None) -> List[Tuple[str, Optional[str]]]:
    """Image / annotation pairs as mmseg's ``BaseSegDataset`` finds them.

    Without ``ann_file``: every file under ``img_dir`` (recursively) ending in ``img_suffix``, sorted; its
    annotation is the same relative path under ``ann_dir`` with ``seg_map_suffix``. With ``ann_file``:
    one image name (without suffix) per line.
    """
    if ann_file:
        with open(ann_file) as f:
            names = [line.strip() for line in f if line.strip()]
    else:
        names = []
        for dirpath, _, files in os.walk(img_dir, followlinks=True):
            for fname in files:
                if fname.endswith(img_suffix):
                    rel = osp.relpath(osp.join(dirpath, fname), img_dir)
                    names.append(rel[:-len(img_suffix)])
        names.sort()
    return [(osp.join(img_dir, n + img_suffix), osp.join(ann_dir, n + seg_map_suffix) if ann_dir else None)
            for n in names]


def _check_split(split: str, img_dir: str, ann_dir: Optional[str], label_spec: LabelSpec, img_suffix: str,
                 seg_map_suffix: str, ann_file: Optional[str], num_workers: Optional[int],
                 progress: bool) -> IntegrityReport:
    """Find the pairs of one split (reporting missing / empty folders) and check them."""
    missing = [(k, d) for k, d in (('image', img_dir), ('annotation', ann_dir)) if d and not osp.isdir(d)]
    if ann_file and not osp.isfile(ann_file):
        missing.append(('ann_file', ann_file))
    if missing:
        report = IntegrityReport(splits=[SplitSummary(split, img_dir, ann_dir, label_spec.describe())])
        report.issues = [
            IntegrityIssue(split, d, 'missing_folder', f'{k} folder of split {split!r} does not exist')
            for k, d in missing
        ]
        return report
    pairs = find_pairs(img_dir, ann_dir, img_suffix, seg_map_suffix, ann_file)
    if not pairs:
        report = IntegrityReport(splits=[SplitSummary(split, img_dir, ann_dir, label_spec.describe())])
        report.issues = [IntegrityIssue(split, img_dir, 'empty_split', f'no *{img_suffix} image found (recursively)')]
        return report
    return check_pairs(pairs, label_spec, split, img_dir, ann_dir, num_workers, progress)


def check_street_hazards(data_root: str,
                         splits: Sequence[str] = ('train', 'val', 'test'),
                         num_workers: Optional[int] = None,
                         progress: bool = True) -> IntegrityReport:
    """Check a StreetHazards root (layout of SPEC section 1) split by split.

    Args:
        data_root: folder holding ``train/`` and ``test/``.
        splits: any of ``'train'``, ``'val'``, ``'test'``.
        num_workers / progress: see :func:`check_pairs`.

    Returns:
        An :class:`IntegrityReport` over all splits (labels must be 1..14).
    """
    bad = [s for s in splits if s not in SPLIT_PREFIXES]
    if bad:
        raise ValueError(f'check_street_hazards: unknown split(s) {bad}; choose from {list(SPLIT_PREFIXES)}')
    report = IntegrityReport()
    if not osp.isdir(data_root):
        report.issues.append(IntegrityIssue('-', data_root, 'missing_folder', 'StreetHazards data_root does not exist'))
        return report
    for split in splits:
        prefix = SPLIT_PREFIXES[split]
        report.merge(
            _check_split(split, osp.join(data_root, prefix['img_path']), osp.join(data_root, prefix['seg_map_path']),
                         LabelSpec(*STREET_HAZARDS_LABELS), '.png', '.png', None, num_workers, progress))
    return report


# ------------------------------------------------------------------------------------------------ configs
def _default(cls: Any, name: str, fallback: Any) -> Any:
    """Default of ``name`` in ``cls.__init__`` or its bases (mmseg datasets set suffixes there)."""
    for klass in getattr(cls, '__mro__', ()):
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        param = inspect.signature(init).parameters.get(name)
        if param is not None and param.default is not inspect.Parameter.empty:
            return param.default
    return fallback


def label_spec_for(dataset_cfg: dict) -> LabelSpec:
    """Valid annotation values of a dataset config.

    StreetHazards-style datasets (``METAINFO`` with ``label_offset`` and ``anomaly_file_value``): that
    range (1..14). Other mmseg datasets: ``0..C-1`` plus ``ignore_index`` (255); with
    ``reduce_zero_label``: ``0..C`` plus 255 (0 becomes ignore, 1..C the classes).
    """
    from mmseg.registry import DATASETS
    cls = DATASETS.get(dataset_cfg['type']) if isinstance(dataset_cfg.get('type'), str) else dataset_cfg.get('type')
    meta = dict(getattr(cls, 'METAINFO', None) or {})
    meta.update(dataset_cfg.get('metainfo') or {})
    if 'anomaly_file_value' in meta:
        return LabelSpec(int(meta.get('label_offset', 0)), int(meta['anomaly_file_value']))
    num_classes = len(meta.get('classes') or ()) or 256
    ignore = int(dataset_cfg.get('ignore_index', _default(cls, 'ignore_index', 255)))
    if dataset_cfg.get('reduce_zero_label', _default(cls, 'reduce_zero_label', False)):
        return LabelSpec(0, num_classes, (ignore, ))
    return LabelSpec(0, num_classes - 1, (ignore, ))


def check_dataset_cfg(dataset_cfg: dict,
                      split: str = 'dataset',
                      num_workers: Optional[int] = None,
                      progress: bool = True) -> IntegrityReport:
    """Check the files of an mmseg dataset config (``type``, ``data_root``, ``data_prefix``, suffixes,
    ``ann_file``); wrappers (``RepeatDataset``, ``ConcatDataset``, ...) are followed to their datasets."""
    if isinstance(dataset_cfg.get('dataset'), dict):
        return check_dataset_cfg(dataset_cfg['dataset'], split, num_workers, progress)
    if dataset_cfg.get('datasets'):
        report = IntegrityReport()
        for i, ds in enumerate(dataset_cfg['datasets']):
            report.merge(check_dataset_cfg(ds, f'{split}[{i}]', num_workers, progress))
        return report
    from mmseg.registry import DATASETS
    cls = DATASETS.get(dataset_cfg['type']) if isinstance(dataset_cfg.get('type'), str) else dataset_cfg.get('type')
    root = dataset_cfg.get('data_root') or ''
    prefix = dataset_cfg.get('data_prefix') or {}

    def join(p: Optional[str]) -> Optional[str]:
        return None if not p else (p if osp.isabs(p) or not root else osp.join(root, p))

    img_dir = join(prefix.get('img_path', '')) or root
    ann_dir = join(prefix.get('seg_map_path'))
    ann_file = join(dataset_cfg.get('ann_file'))
    return _check_split(split, img_dir, ann_dir, label_spec_for(dataset_cfg),
                        dataset_cfg.get('img_suffix', _default(cls, 'img_suffix', '.jpg')),
                        dataset_cfg.get('seg_map_suffix', _default(cls, 'seg_map_suffix', '.png')), ann_file,
                        num_workers, progress)


def check_config_data(cfg: Any,
                      dataloaders: Sequence[str] = ('train_dataloader', 'val_dataloader'),
                      num_workers: Optional[int] = None,
                      progress: bool = True) -> IntegrityReport:
    """Check the datasets of the given dataloaders of an mmengine config (``tools/train.py --check-data``).

    Dataloaders missing from the config are skipped; the report's split names are the dataloader keys.
    """
    report = IntegrityReport()
    for key in dataloaders:
        loader = cfg.get(key)
        if isinstance(loader, dict) and isinstance(loader.get('dataset'), dict):
            report.merge(check_dataset_cfg(loader['dataset'], key.replace('_dataloader', ''), num_workers, progress))
    return report
