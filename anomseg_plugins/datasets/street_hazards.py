"""StreetHazards (Hendrycks et al., "Scaling Out-of-Distribution Detection for Real-World Settings").

CARLA road scenes at 1280x720. Annotation PNGs hold 1..14 on disk; training uses the 13 known
classes 0..12 (``unlabeled`` included, as the official code does) and class 14 on disk is the
anomaly, present only in the test split. The label mapping itself happens in
:class:`~anomseg_plugins.datasets.transforms.LoadStreetHazardsAnnotations`; this class finds the
image / annotation pairs of one split and validates the layout up front, so that a bad root or a
missing annotation fails before training starts, naming the path.

:func:`data_path_problems` is the one check of the configured data paths (``data_root``, the
``data_prefix`` folders, ``ann_file``) and the one wording of what to do when one is missing: the
dataset raises with it, the config checks (:mod:`anomseg_plugins.utils.config_checks`) and the
integrity check (:mod:`anomseg_plugins.datasets.integrity`) report it.

On-disk layout (after unpacking ``streethazards_train.tar`` and ``streethazards_test.tar``)::

    <data_root>/train/images/training/t1-3/*.png     train/annotations/training/t1-3/*.png
    <data_root>/train/images/validation/t4/*.png     train/annotations/validation/t4/*.png
    <data_root>/test/images/test/t5/*.png, t6/*.png  test/annotations/test/t5/..., t6/...
"""
import copy
import os.path as osp
from dataclasses import dataclass
from typing import Any, Iterable, List, Optional, Tuple, Union

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

#: Number of closed-set classes the models are trained on (0..12).
NUM_KNOWN_CLASSES = 13
#: Value of the anomaly class in the annotation files (1-indexed on disk).
ANOMALY_FILE_VALUE = 14
#: Offset between on-disk values and training indices (file value - 1 = index).
LABEL_OFFSET = 1
#: Colour of the anomaly class in visualisations (RGB).
ANOMALY_COLOR = (60, 250, 240)

#: Data prefixes of the three splits, relative to ``data_root``.
SPLIT_PREFIXES = {
    'train': dict(img_path='train/images/training', seg_map_path='train/annotations/training'),
    'val': dict(img_path='train/images/validation', seg_map_path='train/annotations/validation'),
    'test': dict(img_path='test/images/test', seg_map_path='test/annotations/test'),
}
#: The split folders below ``data_root``, as named in the message of a missing ``data_prefix`` folder.
LAYOUT = ('train/images/training/t1-3, train/images/validation/t4, test/images/test/t5|t6 and the same with '
          'images -> annotations')


@dataclass(frozen=True)
class DataPathProblem:
    """A configured data path that does not exist.

    Attributes:
        key: the dotted config key (``train_dataloader.dataset.data_root``; ``data_root`` without context).
        path: the path looked for (``data_prefix`` / ``ann_file`` joined with ``data_root``).
        message: what is missing and how to fix it, naming ``key`` and ``path``.
    """
    key: str
    path: str
    message: str

    def __str__(self) -> str:
        return self.message


class DataPathError(FileNotFoundError):
    """Configured data paths do not exist; ``problems`` holds one :class:`DataPathProblem` each."""

    def __init__(self, problems: Iterable[DataPathProblem]) -> None:
        self.problems = list(problems)
        super().__init__('\n'.join(p.message for p in self.problems))


def _is_local(path: Any) -> bool:
    """A non-empty local path (URIs such as ``s3://`` are left to their file backend)."""
    return isinstance(path, str) and bool(path) and '://' not in path


def dataset_data_hint(dataset_type: Union[str, type, None], data_root: Any) -> Tuple[str, str]:
    """``(where the data comes from, its layout below data_root)`` for the path errors about one dataset.

    A dataset class states both with a ``data_hint(data_root)`` classmethod (:class:`StreetHazardsDataset`, the
    road-anomaly benchmarks); ``dataset_type`` is the config's ``type`` (a name in mmseg's ``DATASETS``) or the
    class. Other datasets (mmseg's own, e.g. ``CityscapesDataset``) get a generic hint naming the type.
    """
    cls = DATASETS.get(dataset_type) if isinstance(dataset_type, str) else dataset_type
    hint = getattr(cls, 'data_hint', None)
    if callable(hint):
        return hint(data_root)
    name = getattr(cls, '__name__', None) or dataset_type or 'the dataset'
    return (f'{name}: the release in the layout its class reads; mmseg\'s docs/en/user_guides/2_dataset_prepare.md '
            f'shows the layouts of its datasets', f'the {name} layout below data_root')


def data_path_problems(data_root: Optional[str],
                       data_prefix: Optional[dict] = None,
                       ann_file: Optional[str] = None,
                       key: str = '',
                       dataset_type: Union[str, type, None] = 'StreetHazardsDataset') -> List[DataPathProblem]:
    """Check that the data paths of one dataset config exist; ``[]`` when they all do.

    This is the one place that decides whether ``data_root``, the ``data_prefix`` folders (``img_path``,
    ``seg_map_path``, ...) and ``ann_file`` exist and what to tell the user when not, so that the config
    checks, :class:`StreetHazardsDataset` and the integrity check fail alike. Paths are joined as mmengine's
    ``BaseDataset`` joins them (relative prefixes below ``data_root``). A missing ``data_root`` is reported
    alone (its sub-folders are missing too).

    Args:
        data_root / data_prefix / ann_file: as in the dataset config (before joining).
        key: dotted config key of the dataset (e.g. ``'train_dataloader.dataset'``), prefixed to the keys named
            in the messages; ``''`` when the dataset is built directly.
        dataset_type: the dataset's ``type`` (name or class): the messages say where its data comes from and its
            layout (:func:`dataset_data_hint`).
    """

    def name(k: str) -> str:
        return f'{key}.{k}' if key else k

    if _is_local(data_root) and not osp.isdir(data_root):
        where = '' if osp.isabs(data_root) else f' (relative to the working directory {osp.abspath(".")!r})'
        how = f'with --cfg-options {name("data_root")}=/path/to/data' if key else \
            'in the dataset config (e.g. --cfg-options train_dataloader.dataset.data_root=/path/to/data)'
        return [
            DataPathProblem(
                name('data_root'), data_root,
                f'{name("data_root")} = {data_root!r} does not exist{where}. Set it {how}, or put the data '
                f'there ({dataset_data_hint(dataset_type, data_root)[0]}).')
        ]
    root = data_root if isinstance(data_root, str) else ''
    problems = []
    paths = [(f'data_prefix.{k}', v, 'folder', osp.isdir) for k, v in (data_prefix or {}).items()]
    paths.append(('ann_file', ann_file, 'file', osp.exists))  # mmseg ignores an ann_file that is a folder
    for k, value, kind, exists in paths:
        if not _is_local(value):
            continue
        full = osp.join(root, value)
        if not exists(full):
            fix = (
                dataset_data_hint(dataset_type, data_root)[1]
                if kind == 'folder' else 'one image name without suffix per line')
            problems.append(
                DataPathProblem(
                    name(k), full, f'{name(k)} = {value!r}: {kind} {full!r} does not exist. Fix {k} or '
                    f'data_root={data_root!r} ({fix}).'))
    return problems


@DATASETS.register_module()
class StreetHazardsDataset(BaseSegDataset):
    """StreetHazards split: 13 known classes (0..12) plus the anomaly kept apart.

    Pair it with ``LoadStreetHazardsAnnotations`` (maps labels, checks their range) and
    ``PackAnomalySegInputs`` (packs the anomaly mask on every data sample). The anomaly class is
    *not* in ``classes``: closed-set training and mIoU ignore anomaly pixels, while
    ``metainfo['anomaly_class']`` / ``metainfo['anomaly_palette']`` describe it for evaluators and
    visualisers.

    Args:
        img_suffix / seg_map_suffix: file suffixes, ``.png`` for both in the real dataset.
        check_files: raise ``FileNotFoundError`` when loading finds no image or an image without its
            annotation. The integrity check turns it off to report every bad file instead of the first
            error. Missing folders always raise (:func:`data_path_problems`).
        **kwargs: everything :class:`mmseg.datasets.BaseSegDataset` takes (``data_root``,
            ``data_prefix``, ``pipeline``, ...). See ``SPLIT_PREFIXES`` for the prefixes of the splits.
    """

    METAINFO = dict(
        classes=('unlabeled', 'building', 'fence', 'other', 'pedestrian', 'pole', 'road line', 'road', 'sidewalk',
                 'vegetation', 'car', 'wall', 'traffic sign'),
        palette=[[0, 0, 0], [70, 70, 70], [190, 153, 153], [250, 170, 160], [220, 20, 60], [153, 153, 153],
                 [157, 234, 50], [128, 64, 128], [244, 35, 232], [107, 142, 35], [0, 0, 142], [102, 102, 156],
                 [220, 220, 0]],
        anomaly_class='anomaly',
        anomaly_palette=list(ANOMALY_COLOR),
        label_offset=LABEL_OFFSET,
        anomaly_file_value=ANOMALY_FILE_VALUE)

    @classmethod
    def data_hint(cls, data_root: Any) -> Tuple[str, str]:
        """Where StreetHazards comes from and its layout, for the path errors (:func:`dataset_data_hint`)."""
        return ('StreetHazards: unpack streethazards_train.tar and streethazards_test.tar, or generate a copy with '
                f'`python tools/dataset/generate_streethazards.py --out {data_root}`',
                f'StreetHazards layout below data_root: {LAYOUT}')

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 check_files: bool = True,
                 **kwargs) -> None:
        self.check_files = check_files
        # the paths as configured: BaseDataset joins them with data_root, the messages name them as written
        self.configured_paths = dict(data_prefix=copy.copy(kwargs.get('data_prefix')), ann_file=kwargs.get('ann_file'))
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, reduce_zero_label=False, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Scan the split recursively (town sub-folders) and check every image has its annotation."""
        problems = data_path_problems(self.data_root, **self.configured_paths, dataset_type=type(self))
        if problems:
            raise DataPathError(problems)
        data_list = super().load_data_list()
        if not self.check_files:
            return data_list
        img_dir = self.data_prefix.get('img_path', None)
        if not data_list:
            raise FileNotFoundError(
                f'StreetHazards split {img_dir!r} holds no *{self.img_suffix} images (searched recursively).')
        missing = [d['seg_map_path'] for d in data_list if 'seg_map_path' in d and not osp.isfile(d['seg_map_path'])]
        if missing:
            shown = '\n  '.join(missing[:10])
            more = f'\n  ... and {len(missing) - 10} more' if len(missing) > 10 else ''
            raise FileNotFoundError(
                f'{len(missing)} of {len(data_list)} images under {img_dir!r} have no annotation '
                f'(expected the image path with images -> annotations):\n  {shown}{more}\n'
                f'Restore or remove them; `python tools/dataset/check_integrity.py --config CONFIG` lists every '
                f'bad file.')
        return data_list
