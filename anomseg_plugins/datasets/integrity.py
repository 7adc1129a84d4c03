"""Dataset integrity check: every image readable, every annotation present, same size, labels in range.

A broken file found at epoch 12 costs hours; found before training it costs seconds. This module reads
every image / annotation pair of a split the way the training pipeline does (images decoded by
``cv2`` as mmcv's ``LoadImageFromFile`` does, annotations by ``pillow`` with ``flag='unchanged'`` as
``LoadStreetHazardsAnnotations`` does) and reports, per file, what is wrong:

==========================  ======================================================================
problem                     meaning
==========================  ======================================================================
``missing_folder``          ``data_root``, a ``data_prefix`` folder or the ``ann_file`` does not exist
``dataset_error``           the dataset config cannot be built or cannot list its files (the detail says why)
``empty_split``             the split holds no image with the dataset's suffix
``unreadable_image``        the image cannot be read or does not decode (truncated, empty, not an image)
``missing_annotation``      no annotation at the expected path (image path with images -> annotations)
``unreadable_annotation``   the annotation cannot be read or decoded
``not_single_channel``      the annotation is not an ``(H, W)`` label map
``size_mismatch``           annotation and image differ in size
``label_out_of_range``      label values outside the dataset's range (StreetHazards: 1..14)
==========================  ======================================================================

The pairs checked are the dataset's own ``data_list`` (``img_path`` / ``seg_map_path``): the dataset config is
built with mmseg's ``DATASETS`` (``lazy_init=True``, no pipeline) and ``full_init()`` lists the files as training
does (suffixes, ``ann_file``, ``indices``), so the check and training agree on which files exist. Missing paths
are found by :func:`~anomseg_plugins.datasets.street_hazards.data_path_problems`, which the config checks and
the dataset use too.

Files are checked in parallel with mmengine's ``track_parallel_progress`` (``track_progress`` in-process), with
its progress bar and ETA. The result is an :class:`IntegrityReport` (issues + per-split image sizes and label
histograms), used by ``tools/dataset/check_integrity.py``, ``tools/train.py --check-data`` and dataset
analysis tools.

Entry points: :func:`check_street_hazards` (a StreetHazards root, by split), :func:`check_dataset_cfg`
(any mmseg dataset config), :func:`check_config_data` (the dataloaders of a training config),
:func:`check_pairs` (explicit ``(image, annotation)`` paths).
"""
import io
import os
import os.path as osp
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.utils import track_parallel_progress, track_progress

from .street_hazards import ANOMALY_FILE_VALUE, LABEL_OFFSET, SPLIT_PREFIXES, StreetHazardsDataset, data_path_problems

PROBLEMS = ('missing_folder', 'dataset_error', 'empty_split', 'unreadable_image', 'missing_annotation',
            'unreadable_annotation', 'not_single_channel', 'size_mismatch', 'label_out_of_range')
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
def _check_all(tasks: List[tuple], num_workers: Optional[int], progress: bool) -> List[tuple]:
    """:func:`check_pair` over ``tasks`` in order: mmengine's ``track_parallel_progress`` with ``num_workers``
    processes, or ``track_progress`` in-process (one worker, or fewer than ``MIN_PARALLEL`` tasks)."""
    workers = num_workers if num_workers is not None else min(8, os.cpu_count() or 1)
    stream = sys.stdout if progress else io.StringIO()  # the bar always draws; without progress, into nothing
    if workers > 1 and len(tasks) >= MIN_PARALLEL:
        chunk = max(1, min(16, len(tasks) // (workers * 8)))
        return track_parallel_progress(check_pair, tasks, workers, chunksize=chunk, file=stream)
    return track_progress(check_pair, tasks, file=stream)


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
        num_workers: processes (default ``min(8, cpu_count)``; 1 or fewer than ``MIN_PARALLEL`` pairs:
            in-process).
        progress: print a header line and mmengine's progress bar (with ETA) to stdout.
    """
    start = time.time()
    summary = SplitSummary(
        split=split, img_dir=img_dir, ann_dir=ann_dir, label_spec=label_spec.describe(), num_images=len(pairs))
    report = IntegrityReport(splits=[summary])
    tasks = [(split, img, ann, label_spec) for img, ann in pairs]
    if progress and tasks:
        print(f'[check_integrity] {split}: {len(tasks)} files in {img_dir or "-"}', flush=True)
    sizes: Counter = Counter()
    labels: Counter = Counter()
    for issues, size, counts in _check_all(tasks, num_workers, progress) if tasks else []:
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


# ------------------------------------------------------------------------------------------------ datasets
def build_dataset(dataset_cfg: dict) -> Any:
    """The dataset of a (leaf) dataset config, built by mmseg's ``DATASETS`` without listing its files yet.

    ``lazy_init=True`` (``full_init()`` lists them), ``serialize_data=False`` (``data_list`` stays a list) and
    no pipeline (transforms do not change which files exist). A dataset with ``check_files``
    (:class:`~anomseg_plugins.datasets.StreetHazardsDataset`) gets it off, so that an empty split or missing
    annotations are listed file by file instead of raising at the first one.
    """
    from mmseg.registry import DATASETS
    dataset = DATASETS.build(dict(dataset_cfg, lazy_init=True, serialize_data=False, pipeline=[]))
    if getattr(dataset, 'check_files', False):
        dataset.check_files = False
    return dataset


def label_spec_of(dataset: Any) -> LabelSpec:
    """Valid on-disk annotation values of a built dataset.

    StreetHazards-style datasets (``metainfo`` with ``label_offset`` and ``anomaly_file_value``): that range
    (1..14). Other mmseg datasets: ``0..C-1`` plus ``ignore_index`` (255), ``C`` the classes on disk (those of
    the class's ``METAINFO`` when the config picks a subset, which mmseg maps on loading); with
    ``reduce_zero_label``: ``0..C`` plus 255 (0 becomes ignore, 1..C the classes).
    """
    meta = dataset.metainfo
    if 'anomaly_file_value' in meta:
        return LabelSpec(int(meta.get('label_offset', 0)), int(meta['anomaly_file_value']))
    classes = type(dataset).METAINFO.get('classes') if getattr(dataset, 'label_map', None) else meta.get('classes')
    num_classes = len(classes or ()) or 256
    ignore = int(getattr(dataset, 'ignore_index', 255))
    if getattr(dataset, 'reduce_zero_label', False):
        return LabelSpec(0, num_classes, (ignore, ))
    return LabelSpec(0, num_classes - 1, (ignore, ))


def label_spec_for(dataset_cfg: dict) -> LabelSpec:
    """Valid on-disk annotation values of a dataset config (:func:`label_spec_of` of its lazily built dataset)."""
    return label_spec_of(build_dataset(dataset_cfg))


def _check_leaf(dataset_cfg: dict, split: str, key: str, num_workers: Optional[int], progress: bool) -> IntegrityReport:
    """Check one (non-wrapper) dataset config: its paths, then the pairs of the dataset it builds."""
    start = time.time()
    report = IntegrityReport(splits=[SplitSummary(split, '', None, '-')])
    summary = report.splits[0]
    where = key or split
    try:
        dataset = build_dataset(dataset_cfg)
        spec = label_spec_of(dataset)
    except Exception as exc:  # noqa: BLE001  - unknown type, bad metainfo, ...: report it with the others
        report.issues.append(
            IntegrityIssue(split, where, 'dataset_error',
                           f'the dataset config cannot be built: {type(exc).__name__}: {exc}'))
        return report
    summary.img_dir = dataset.data_prefix.get('img_path') or dataset.data_root or ''
    summary.ann_dir = dataset.data_prefix.get('seg_map_path') or None
    summary.label_spec = spec.describe()
    problems = data_path_problems(
        dataset_cfg.get('data_root'), dataset_cfg.get('data_prefix'), dataset_cfg.get('ann_file'), key)
    if problems:
        report.issues += [IntegrityIssue(split, p.path, 'missing_folder', p.message) for p in problems]
        return report
    try:
        dataset.full_init()
    except Exception as exc:  # noqa: BLE001  - an unreadable ann_file, a dataset's own check, ...
        report.issues.append(
            IntegrityIssue(split, where, 'dataset_error',
                           f'the dataset cannot list its files: {type(exc).__name__}: {exc}'))
        return report
    pairs = [(info['img_path'], info.get('seg_map_path')) for info in dataset.data_list]
    if not pairs:
        found = f'listed in {dataset.ann_file}' if dataset.ann_file else 'found (recursively)'
        report.issues.append(
            IntegrityIssue(split, summary.img_dir, 'empty_split', f'no *{dataset.img_suffix} image {found}'))
        return report
    report = check_pairs(pairs, spec, split, summary.img_dir, summary.ann_dir, num_workers, progress)
    report.seconds = time.time() - start
    return report


def check_dataset_cfg(dataset_cfg: dict,
                      split: str = 'dataset',
                      num_workers: Optional[int] = None,
                      progress: bool = True,
                      key: str = '') -> IntegrityReport:
    """Check the files of an mmseg dataset config: the pairs of the dataset it builds.

    Wrappers (``RepeatDataset``, ``ConcatDataset``, ...) are followed to their datasets (``datasets[i]`` is
    reported as split ``split[i]``).

    Args:
        dataset_cfg: the ``dataset`` of a dataloader config.
        split: name of the split in the report.
        num_workers / progress: see :func:`check_pairs`.
        key: dotted config key of ``dataset_cfg`` (``train_dataloader.dataset``), named by missing-path messages.
    """
    if isinstance(dataset_cfg.get('dataset'), dict):
        return check_dataset_cfg(dataset_cfg['dataset'], split, num_workers, progress, f'{key}.dataset'.lstrip('.'))
    if dataset_cfg.get('datasets'):
        report = IntegrityReport()
        for i, ds in enumerate(dataset_cfg['datasets']):
            report.merge(
                check_dataset_cfg(ds, f'{split}[{i}]', num_workers, progress, f'{key}.datasets[{i}]'.lstrip('.')))
        return report
    return _check_leaf(dataset_cfg, split, key, num_workers, progress)


def check_street_hazards(data_root: str,
                         splits: Sequence[str] = ('train', 'val', 'test'),
                         num_workers: Optional[int] = None,
                         progress: bool = True) -> IntegrityReport:
    """Check a StreetHazards root (the layout of the official archives, README "Data") split by split.

    Each split is the :class:`~anomseg_plugins.datasets.StreetHazardsDataset` of ``SPLIT_PREFIXES[split]``,
    as the configs of ``configs/_base_/datasets/street_hazards.py`` build it.

    Args:
        data_root: folder holding ``train/`` and ``test/``.
        splits: any of ``'train'``, ``'val'``, ``'test'``.
        num_workers / progress: see :func:`check_pairs`.

    Returns:
        An :class:`IntegrityReport` over all splits (labels must be 1..14); a missing ``data_root`` is one issue.
    """
    bad = [s for s in splits if s not in SPLIT_PREFIXES]
    if bad:
        raise ValueError(f'check_street_hazards: unknown split(s) {bad}; choose from {list(SPLIT_PREFIXES)}')
    report = IntegrityReport()
    problems = data_path_problems(data_root)
    if problems:
        report.issues = [IntegrityIssue('-', p.path, 'missing_folder', p.message) for p in problems]
        return report
    for split in splits:
        cfg = dict(type=StreetHazardsDataset, data_root=data_root, data_prefix=dict(SPLIT_PREFIXES[split]))
        report.merge(check_dataset_cfg(cfg, split, num_workers, progress))
    return report


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
            report.merge(
                check_dataset_cfg(loader['dataset'], key.replace('_dataloader', ''), num_workers, progress,
                                  f'{key}.dataset'))
    return report
