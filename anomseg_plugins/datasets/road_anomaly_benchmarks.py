"""The road-anomaly benchmarks the field reports: RoadAnomaly21, RoadObstacle21, Fishyscapes L&F, LostAndFound.

Each dataset reads one official release in its own folder layout and label encoding, exactly as the official
evaluation code (SegmentMeIfYouCan ``road-anomaly-benchmark``, ``datasets/tracks.py`` and ``tracks_extra.py``)
discovers the frames and selects its subsets, and puts on every data_info the set's encoding
(``anomaly_label_map``, :mod:`~anomseg_plugins.datasets.anomaly_labels`). One transform,
:class:`~anomseg_plugins.datasets.transforms.LoadAnomalyAnnotations`, then writes ``gt_anomaly_map`` (uint8,
1 = anomaly, 0 = normal, 255 = void), the map StreetHazards gives, so ``AnomalyMetric``, the test loop and the panels
work unchanged. These sets have no class labels: there is no ``gt_sem_seg`` and mIoU does not apply.

Layouts (``<data_root>`` = the unpacked release; ``{fid}`` = frame id, the sort key)::

    RoadAnomaly21  (dataset_AnomalyTrack)   images/{fid}.jpg           labels_masks/{fid}_labels_semantic.png
    RoadObstacle21 (dataset_ObstacleTrack)  images/{fid}.webp          labels_masks/{fid}_labels_semantic.png
    LostAndFound   (dataset_LostAndFound)   leftImg8bit/{split}/{NN}_{scene}/{fid}_leftImg8bit.png (.webp, .jpg)
                                            gtCoarse/{split}/{NN}_{scene}/{fid}_gtCoarse_labelIds.png
    Fishyscapes L&F (dataset_FishyLAF)      labels/{split}/{fid}_fishy-labels.png, images from LostAndFound:
                                            <laf_root>/leftImg8bit/{train|test}/{NN}_{scene}/{fid}_leftImg8bit.png

Label encodings: RoadAnomaly21 / RoadObstacle21 / Fishyscapes 0 = normal, 1 = anomaly, 255 = void (RoadObstacle21:
0 = road, 255 = everything off the road, which the obstacle track does not evaluate); LostAndFound ``labelIds``
1 = free space (normal), 2..200 = obstacle (anomaly), 0 = void.

The public SegmentMeIfYouCan releases hold labels only for their validation frames; an image without its label
file is listed with ``seg_map_path=None`` (scored, not evaluated) unless ``require_labels=True``. In LostAndFound and
Fishyscapes every image has its label: a missing one is an error.

``metainfo`` carries no ``classes``: the classes a test shows are the model's (a StreetHazards or Cityscapes model),
so pass ``metainfo=dict(classes=..., palette=...)`` of the training set when visualising predictions; without it the
panels fall back to StreetHazards' classes.
"""
import copy
import glob
import logging
import os.path as osp
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from mmengine.logging import print_log
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .anomaly_labels import (FISHYSCAPES_LAF_ENCODING, LOST_AND_FOUND_ENCODING, ROAD_ANOMALY21_ENCODING,
                             ROAD_OBSTACLE21_ENCODING, describe_label_encoding, normalize_label_encoding)
from .street_hazards import ANOMALY_COLOR, DataPathError, DataPathProblem

#: RoadObstacle21 scenes (``fid.split('_')[0]``) of the official ``ObstacleTrack-all``.
OBSTACLE_TRACK_SCENES = frozenset({
    'curvy-street', 'one-way-street', 'gravel', 'greyasphalt', 'motorway', 'paving', 'darkasphalt', 'darkasphalt2',
    'snowstorm1', 'snowstorm2', 'driveway', 'validation'
})
#: The official RoadObstacle21 subsets (``subset=`` of :class:`RoadObstacle21Dataset`): scenes, excluded fid
#: prefixes and the number of frames of the official release (``None``: not stated there).
ROAD_OBSTACLE21_SUBSETS: Dict[str, dict] = {
    'ObstacleTrack-all':
    dict(scenes=sorted(OBSTACLE_TRACK_SCENES), expected_length=None),
    # the test split of the benchmark: special weather, night and validation frames excluded
    'ObstacleTrack-test':
    dict(
        scenes=sorted(OBSTACLE_TRACK_SCENES - {'snowstorm1', 'snowstorm2', 'driveway', 'validation'}),
        expected_length=327),
    'ObstacleTrack-noNight':
    dict(scenes=sorted(OBSTACLE_TRACK_SCENES - {'driveway'}), expected_length=382),
    'ObstacleTrack-night':
    dict(scenes=['driveway'], expected_length=30),
    'ObstacleTrack-snowstorm':
    dict(scenes=['snowstorm1', 'snowstorm2'], expected_length=55),
    # the public validation frames (with labels)
    'ObstacleTrack-validation':
    dict(scenes=['validation'], exclude_prefixes=[f'validation_{i}' for i in (19, *range(21, 30))], expected_length=30),
}
#: LostAndFound frame indices (in sorted fid order) whose labels are empty, per the official code.
LOST_AND_FOUND_INVALID_TEST_FRAMES = (17, 37, 55, 72, 91, 110, 129, 153, 174, 197, 218, 353, 490, 618, 686, 792, 793)
#: fid prefixes of LostAndFound-testNoKnown: frames with known classes (children, bicycles) as the obstacle.
LOST_AND_FOUND_KNOWN_PREFIXES = ('15_Rechbergstr_Deckenpfronn', '01_Hanns_Klemm_Str_45_000006',
                                 '01_Hanns_Klemm_Str_45_000007', '10_Schlossberg_9_000004')
#: The official LostAndFound subsets (``subset=`` of :class:`LostAndFoundDataset`). ``LostAndFound-testNoKnown``
#: (1043 frames) is the "LostAndFound" SegmentMeIfYouCan reports.
LOST_AND_FOUND_SUBSETS: Dict[str, dict] = {
    'LostAndFound-train':
    dict(split='train', expected_length=1036),
    'LostAndFound-trainValid':
    dict(split='train', exclude_frame_indices=[44, 67, 88, 109, 131, 614], expected_length=1030),
    'LostAndFound-test':
    dict(split='test', expected_length=1203),
    'LostAndFound-testValid':
    dict(split='test', exclude_frame_indices=list(LOST_AND_FOUND_INVALID_TEST_FRAMES), expected_length=1186),
    'LostAndFound-testNoKnown':
    dict(
        split='test',
        exclude_frame_indices=list(LOST_AND_FOUND_INVALID_TEST_FRAMES),
        exclude_prefixes=list(LOST_AND_FOUND_KNOWN_PREFIXES),
        expected_length=1043),
}
#: LostAndFound frame ids: ``{NN}_{scene}_{sequence:06d}_{frame:06d}``.
LAF_FID_PATTERN = re.compile(r'([0-9]{2})_(.*)_([0-9]{6})_([0-9]{6})')
#: LostAndFound image suffixes, in the order the official code tries them.
LAF_IMAGE_EXTS = ('png', 'webp', 'jpg')
GENERATOR_HINT = 'or generate a small copy with tools/dataset/generate_road_anomaly_sets.py'


def _fid_matches(fid: str, prefixes: Optional[Iterable[str]]) -> bool:
    return any(fid.startswith(p) for p in (prefixes or ()))


class RoadAnomalyBenchmarkDataset(BaseSegDataset):
    """Common part of the four benchmark datasets: the encoding, data_info keys, path checks and messages.

    Subclasses find their frames (:meth:`find_frames`: ``fid``, ``img_path``, ``seg_map_path`` or ``None`` and
    set-specific keys, sorted by fid); this class checks the configured folders first (a wrong ``data_root`` fails
    naming the path and the expected layout) and completes each data_info with ``benchmark``,
    ``anomaly_label_map`` (the encoding), ``label_map=None``, ``reduce_zero_label=False`` and ``seg_fields=[]``.

    Args:
        label_encoding: the on-disk encoding (default: the release's, ``LABEL_ENCODING``).
        check_files: raise when an image has no label file where every image must have one (LostAndFound,
            Fishyscapes). The integrity check turns it off to list every bad file. Missing folders always raise.
        data_prefix: folders below ``data_root`` (default ``DEFAULT_PREFIX``; keys given replace those).
        **kwargs: :class:`mmseg.datasets.BaseSegDataset` arguments (``data_root``, ``pipeline``, ``metainfo``, ...).
    """

    BENCHMARK = ''
    LABEL_ENCODING: dict = {}
    DEFAULT_PREFIX: dict = {}
    IMG_SUFFIX = '.png'
    SEG_MAP_SUFFIX = '.png'
    #: the expected layout below data_root, as the messages name it
    LAYOUT = ''
    #: where the release comes from
    SOURCE = ''

    def __init__(self,
                 label_encoding: Optional[Mapping[str, Any]] = None,
                 check_files: bool = True,
                 data_prefix: Optional[dict] = None,
                 img_suffix: Optional[str] = None,
                 seg_map_suffix: Optional[str] = None,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        name = type(self).__name__
        encoding = copy.deepcopy(dict(label_encoding if label_encoding is not None else self.LABEL_ENCODING))
        normalize_label_encoding(encoding, where=f'{name}.label_encoding')
        self.label_encoding = encoding
        self.check_files = check_files
        prefix = dict(self.DEFAULT_PREFIX, **(data_prefix or {}))
        # the paths as configured: BaseDataset joins them with data_root, the messages name them as written
        self.configured_paths = dict(data_prefix=copy.copy(prefix))
        metainfo = dict(metainfo or {}, label_encoding=encoding)
        super().__init__(
            img_suffix=img_suffix if img_suffix is not None else self.IMG_SUFFIX,
            seg_map_suffix=seg_map_suffix if seg_map_suffix is not None else self.SEG_MAP_SUFFIX,
            data_prefix=prefix,
            metainfo=metainfo,
            reduce_zero_label=False,
            **kwargs)

    # ------------------------------------------------------------------------------------------ messages
    @classmethod
    def data_hint(cls, data_root: Any) -> Tuple[str, str]:
        """Where the benchmark comes from and its layout, for the config checks' path errors
        (:func:`~anomseg_plugins.datasets.street_hazards.dataset_data_hint`)."""
        return f'{cls.BENCHMARK}: {cls.SOURCE}, {GENERATOR_HINT}', f'{cls.BENCHMARK} layout: {cls.LAYOUT}'

    def expected_layout(self) -> str:
        """The layout sentence the errors end with."""
        return (f'Expected the {self.BENCHMARK} layout: {self.LAYOUT} (labels: '
                f'{describe_label_encoding(self.label_encoding)}); {self.SOURCE}.')

    def root_problems(self) -> List[DataPathProblem]:
        """``data_root`` and the configured ``data_prefix`` folders that do not exist (``[]`` when all do).

        ``optional`` prefix keys (:meth:`optional_prefixes`) may be missing: a release without labels.
        """
        name = type(self).__name__
        root = self.data_root
        if isinstance(root, str) and root and '://' not in root and not osp.isdir(root):
            where = '' if osp.isabs(root) else f' (relative to the working directory {osp.abspath(".")!r})'
            return [
                DataPathProblem(
                    'data_root', root, f'{name}: data_root = {root!r} does not exist{where}. Set the dataset\'s '
                    f'data_root (e.g. --cfg-options test_dataloader.dataset.data_root=/path/to/{self.BENCHMARK}) '
                    f'or put the release there ({GENERATOR_HINT}). {self.expected_layout()}')
            ]
        problems = []
        for key, value in self.configured_paths['data_prefix'].items():
            full = self.data_prefix.get(key)
            if key in self.optional_prefixes() or not isinstance(full, str) or '://' in full:
                continue
            if not osp.isdir(full):
                problems.append(
                    DataPathProblem(
                        f'data_prefix.{key}', full,
                        f'{name}: data_prefix.{key} = {value!r}: folder {full!r} does not exist (data_root = '
                        f'{root!r}). {self.expected_layout()}'))
        return problems

    def optional_prefixes(self) -> Sequence[str]:
        """``data_prefix`` keys whose folder may be missing."""
        return ()

    def missing_labels_error(self, missing: List[str], total: int, where: str) -> FileNotFoundError:
        shown = '\n  '.join(missing[:10])
        more = f'\n  ... and {len(missing) - 10} more' if len(missing) > 10 else ''
        return FileNotFoundError(
            f'{type(self).__name__}: {len(missing)} of {total} images under {where!r} have no label file; every '
            f'{self.BENCHMARK} image has one. Missing:\n  {shown}{more}\n{self.expected_layout()}')

    def warn_length(self, subset: Optional[str], found: int, expected: Optional[int]) -> None:
        """Log a warning when an official subset does not have its official number of frames."""
        if subset and expected is not None and found != expected:
            print_log(
                f'{type(self).__name__}: subset {subset!r} has {expected} frames in the official release; found '
                f'{found} below {self.data_root!r} (a partial or generated copy?)',
                logger='current',
                level=logging.WARNING)

    # ------------------------------------------------------------------------------------------ loading
    def find_frames(self) -> List[dict]:
        """The frames of the set: dicts with ``fid``, ``img_path``, ``seg_map_path`` (or ``None``), sorted by fid."""
        raise NotImplementedError

    def load_data_list(self) -> List[dict]:
        """Check the folders, find the frames and complete their data_infos (see the class doc)."""
        problems = self.root_problems()
        if problems:
            raise DataPathError(problems)
        data_list = []
        for frame in self.find_frames():
            data_list.append(
                dict(
                    frame,
                    benchmark=self.BENCHMARK,
                    anomaly_label_map=copy.deepcopy(self.label_encoding),
                    label_map=self.label_map,
                    reduce_zero_label=False,
                    seg_fields=[]))
        return data_list


class _SegmentMeIfYouCanDataset(RoadAnomalyBenchmarkDataset):
    """A SegmentMeIfYouCan track: ``images/{fid}{img_suffix}`` and ``labels_masks/{fid}_labels_semantic.png``.

    Args:
        require_labels: list only the images that have a label file (the public validation frames); by default
            an image without one is listed with ``seg_map_path=None`` (hidden test split: scored, not evaluated).
        exclude_prefixes: leave out frames whose fid starts with any of these.
        **kwargs: :class:`RoadAnomalyBenchmarkDataset` arguments.
    """

    DEFAULT_PREFIX = dict(img_path='images', seg_map_path='labels_masks')
    SEG_MAP_SUFFIX = '_labels_semantic.png'

    def __init__(self,
                 require_labels: bool = False,
                 exclude_prefixes: Optional[Sequence[str]] = None,
                 **kwargs) -> None:
        self.require_labels = require_labels
        self.exclude_prefixes = list(exclude_prefixes) if exclude_prefixes is not None else None
        super().__init__(**kwargs)

    def optional_prefixes(self) -> Sequence[str]:
        # a copy of the hidden test split has no labels_masks folder
        return () if self.require_labels else ('seg_map_path', )

    def select(self, fids: List[str]) -> List[str]:
        """The fids of the configured subset (all but ``exclude_prefixes`` here)."""
        return [f for f in fids if not _fid_matches(f, self.exclude_prefixes)]

    def find_frames(self) -> List[dict]:
        name = type(self).__name__
        img_dir, ann_dir = self.data_prefix['img_path'], self.data_prefix.get('seg_map_path')
        files = glob.glob(osp.join(glob.escape(img_dir), '*' + self.img_suffix))
        fids = sorted(osp.basename(f)[:-len(self.img_suffix)] for f in files)
        if not fids:
            raise FileNotFoundError(f'{name}: no *{self.img_suffix} images in {img_dir!r}. {self.expected_layout()}')
        selected = self.select(fids)
        if not selected:
            raise FileNotFoundError(f'{name}: none of the {len(fids)} images in {img_dir!r} is in the selected '
                                    f'frames ({self.describe_selection()}); fids found: {fids[:5]}')
        frames = []
        for fid in selected:
            label = osp.join(ann_dir, fid + self.seg_map_suffix) if ann_dir else None
            frames.append(
                dict(
                    fid=fid,
                    img_path=osp.join(img_dir, fid + self.img_suffix),
                    seg_map_path=label if label is not None and osp.isfile(label) else None,
                    **self.frame_extras(fid)))
        self.after_selection(len(frames))
        if self.require_labels:
            labelled = [f for f in frames if f['seg_map_path'] is not None]
            if not labelled:
                raise FileNotFoundError(
                    f'{name}: require_labels=True but none of the {len(frames)} selected images has its label file '
                    f'{osp.join(ann_dir or "", "{fid}" + self.seg_map_suffix)!r}. {self.expected_layout()}')
            if len(labelled) < len(frames):
                print_log(
                    f'{name}: require_labels=True: {len(frames) - len(labelled)} of {len(frames)} images without a '
                    f'label file left out',
                    logger='current')
            frames = labelled
        return frames

    def describe_selection(self) -> str:
        return f'exclude_prefixes={self.exclude_prefixes}'

    def frame_extras(self, fid: str) -> dict:
        return {}

    def after_selection(self, found: int) -> None:
        """Hook after the subset is selected (before ``require_labels``)."""


@DATASETS.register_module()
class RoadAnomaly21Dataset(_SegmentMeIfYouCanDataset):
    """SegmentMeIfYouCan RoadAnomaly21 (``AnomalyTrack``): 110 frames (10 public validation frames labelled).

    Layout (``dataset_AnomalyTrack``): ``images/{fid}.jpg``, ``labels_masks/{fid}_labels_semantic.png`` with
    0 = not anomaly, 1 = anomaly, 255 = void. ``AnomalyTrack-all`` (official) = every image; the public labels are
    those of ``validation0000`` .. ``validation0009`` (``require_labels=True`` selects them).

    Args:
        require_labels / exclude_prefixes: see :class:`_SegmentMeIfYouCanDataset`.
        label_encoding / check_files / data_prefix / img_suffix / **kwargs: see
            :class:`RoadAnomalyBenchmarkDataset` (``img_suffix`` default ``.jpg``).
    """

    BENCHMARK = 'RoadAnomaly21'
    LABEL_ENCODING = ROAD_ANOMALY21_ENCODING
    IMG_SUFFIX = '.jpg'
    LAYOUT = '<data_root>/images/{fid}.jpg and <data_root>/labels_masks/{fid}_labels_semantic.png'
    SOURCE = ("SegmentMeIfYouCan's dataset_AnomalyTrack from https://segmentmeifyoucan.com/datasets "
              '(labels only for the public validation frames)')
    METAINFO = dict(
        benchmark=BENCHMARK,
        anomaly_classes=('normal', 'anomaly'),
        anomaly_class='anomaly',
        anomaly_palette=list(ANOMALY_COLOR),
        label_encoding=LABEL_ENCODING)


@DATASETS.register_module()
class RoadObstacle21Dataset(_SegmentMeIfYouCanDataset):
    """SegmentMeIfYouCan RoadObstacle21 (``ObstacleTrack``): obstacles on the road; only the road is evaluated.

    Layout (``dataset_ObstacleTrack``): ``images/{fid}.webp``, ``labels_masks/{fid}_labels_semantic.png`` with
    0 = road (not obstacle), 1 = obstacle, 255 = void (everything off the road). A frame's scene is
    ``fid.split('_')[0]``; the official subsets select scenes and exclude fid prefixes
    (:data:`ROAD_OBSTACLE21_SUBSETS`: ``ObstacleTrack-all``, ``-test`` (327 frames: no snowstorm1/2, driveway,
    validation), ``-noNight``, ``-night``, ``-snowstorm``, ``-validation`` (30 labelled frames)).

    Args:
        subset: an official subset by name (sets ``scenes`` and ``exclude_prefixes``; give neither then);
            ``None`` (default): every image found, whatever its scene.
        scenes: keep only frames of these scenes (``None``: all).
        require_labels / exclude_prefixes: see :class:`_SegmentMeIfYouCanDataset`.
        **kwargs: see :class:`RoadAnomalyBenchmarkDataset` (``img_suffix`` default ``.webp``).

    data_info keys added: ``scene``.
    """

    BENCHMARK = 'RoadObstacle21'
    LABEL_ENCODING = ROAD_OBSTACLE21_ENCODING
    IMG_SUFFIX = '.webp'
    LAYOUT = '<data_root>/images/{fid}.webp and <data_root>/labels_masks/{fid}_labels_semantic.png'
    SOURCE = ("SegmentMeIfYouCan's dataset_ObstacleTrack from https://segmentmeifyoucan.com/datasets "
              '(labels only for the public validation frames)')
    METAINFO = dict(
        benchmark=BENCHMARK,
        anomaly_classes=('normal', 'anomaly'),
        anomaly_class='anomaly',
        anomaly_palette=list(ANOMALY_COLOR),
        label_encoding=LABEL_ENCODING)

    def __init__(self,
                 subset: Optional[str] = None,
                 scenes: Optional[Sequence[str]] = None,
                 exclude_prefixes: Optional[Sequence[str]] = None,
                 **kwargs) -> None:
        self.subset = subset
        self.expected_length = None
        if subset is not None:
            if subset not in ROAD_OBSTACLE21_SUBSETS:
                raise ValueError(f'RoadObstacle21Dataset: unknown subset {subset!r}; the official ones are '
                                 f'{sorted(ROAD_OBSTACLE21_SUBSETS)} (or give scenes / exclude_prefixes)')
            if scenes is not None or exclude_prefixes is not None:
                raise ValueError(f'RoadObstacle21Dataset: give subset={subset!r} or scenes / exclude_prefixes, '
                                 f'not both')
            preset = ROAD_OBSTACLE21_SUBSETS[subset]
            scenes, exclude_prefixes = preset['scenes'], preset.get('exclude_prefixes')
            self.expected_length = preset['expected_length']
        if isinstance(scenes, str):
            scenes = [scenes]
        self.scenes = sorted(scenes) if scenes is not None else None
        super().__init__(exclude_prefixes=exclude_prefixes, **kwargs)

    def select(self, fids: List[str]) -> List[str]:
        if self.scenes is not None:
            fids = [f for f in fids if f.split('_')[0] in self.scenes]
        return super().select(fids)

    def describe_selection(self) -> str:
        return f'subset={self.subset!r}, scenes={self.scenes}, exclude_prefixes={self.exclude_prefixes}'

    def frame_extras(self, fid: str) -> dict:
        return dict(scene=fid.split('_')[0])

    def after_selection(self, found: int) -> None:
        self.warn_length(self.subset, found, self.expected_length)


def _parse_laf_fid(fid: str, path: str, what: str) -> re.Match:
    match = LAF_FID_PATTERN.fullmatch(fid)
    if match is None:
        raise ValueError(f'{what} {path!r}: its frame id {fid!r} is not a LostAndFound id '
                         f'{{NN}}_{{scene}}_{{sequence:06d}}_{{frame:06d}} (pattern {LAF_FID_PATTERN.pattern!r})')
    return match


@DATASETS.register_module()
class LostAndFoundDataset(RoadAnomalyBenchmarkDataset):
    """LostAndFound (Pinggera et al. 2016), Cityscapes-style: obstacles on the road, free space as normal.

    Layout (``dataset_LostAndFound``): ``leftImg8bit/{split}/{NN}_{scene}/{fid}_leftImg8bit.png`` (``.webp`` /
    ``.jpg`` accepted, as officially: the first suffix found) and
    ``gtCoarse/{split}/{NN}_{scene}/{fid}_gtCoarse_labelIds.png`` with 0 = void, 1 = free space (normal),
    2..200 = obstacle (anomaly); fid = ``{NN}_{scene}_{sequence:06d}_{frame:06d}``.

    Subsets as the official code builds them: the frames of ``split`` sorted by fid, ``exclude_frame_indices``
    removed by position in that order, then the frames whose fid starts with one of ``exclude_prefixes``
    (:data:`LOST_AND_FOUND_SUBSETS`): ``LostAndFound-test`` (1203), ``-testValid`` (1186: 17 frames with empty
    labels removed), ``-testNoKnown`` (1043: also children and bicycles, the LostAndFound SegmentMeIfYouCan
    reports), ``-train`` (1036), ``-trainValid`` (1030).

    Args:
        split: ``'test'`` (default) or ``'train'``.
        subset: an official subset by name (sets split and exclusions; give no exclusions then).
        exclude_frame_indices: positions in the sorted frames of the split to leave out; an index beyond the frames
            found raises (the indices refer to the full release).
        exclude_prefixes: fid prefixes to leave out.
        **kwargs: see :class:`RoadAnomalyBenchmarkDataset`.

    data_info keys added: ``scene`` (``{NN}_{scene}`` folder), ``split``.
    """

    BENCHMARK = 'LostAndFound'
    LABEL_ENCODING = LOST_AND_FOUND_ENCODING
    DEFAULT_PREFIX = dict(img_path='leftImg8bit', seg_map_path='gtCoarse')
    IMG_SUFFIX = '_leftImg8bit.png'
    SEG_MAP_SUFFIX = '_gtCoarse_labelIds.png'
    LAYOUT = ('<data_root>/leftImg8bit/{split}/{NN}_{scene}/{fid}_leftImg8bit.png (or .webp / .jpg) and '
              '<data_root>/gtCoarse/{split}/{NN}_{scene}/{fid}_gtCoarse_labelIds.png')
    SOURCE = ('the LostAndFound release (leftImg8bit.zip, gtCoarse.zip) from '
              'http://www.6d-vision.com/lostandfounddataset')
    METAINFO = dict(
        benchmark=BENCHMARK,
        anomaly_classes=('normal', 'anomaly'),
        anomaly_class='anomaly',
        anomaly_palette=list(ANOMALY_COLOR),
        label_encoding=LABEL_ENCODING)

    def __init__(self,
                 split: Optional[str] = None,
                 subset: Optional[str] = None,
                 exclude_frame_indices: Optional[Sequence[int]] = None,
                 exclude_prefixes: Optional[Sequence[str]] = None,
                 **kwargs) -> None:
        self.subset = subset
        self.expected_length = None
        if subset is not None:
            if subset not in LOST_AND_FOUND_SUBSETS:
                raise ValueError(f'LostAndFoundDataset: unknown subset {subset!r}; the official ones are '
                                 f'{sorted(LOST_AND_FOUND_SUBSETS)} (or give split / exclude_frame_indices / '
                                 f'exclude_prefixes)')
            preset = LOST_AND_FOUND_SUBSETS[subset]
            if exclude_frame_indices is not None or exclude_prefixes is not None:
                raise ValueError(f'LostAndFoundDataset: give subset={subset!r} or exclude_frame_indices / '
                                 f'exclude_prefixes, not both')
            if split is not None and split != preset['split']:
                raise ValueError(f"LostAndFoundDataset: subset {subset!r} is of split {preset['split']!r}, "
                                 f'not split={split!r}')
            split = preset['split']
            exclude_frame_indices = preset.get('exclude_frame_indices')
            exclude_prefixes = preset.get('exclude_prefixes')
            self.expected_length = preset['expected_length']
        self.split = split if split is not None else 'test'
        indices = list(exclude_frame_indices or [])
        bad = [i for i in indices if not isinstance(i, int) or isinstance(i, bool) or i < 0]
        if bad:
            raise ValueError(f'LostAndFoundDataset: exclude_frame_indices must be indices >= 0, got {bad}')
        self.exclude_frame_indices = sorted(set(indices))
        self.exclude_prefixes = list(exclude_prefixes) if exclude_prefixes is not None else None
        super().__init__(**kwargs)

    def root_problems(self) -> List[DataPathProblem]:
        problems = super().root_problems()
        if problems:
            return problems
        img_dir = osp.join(self.data_prefix['img_path'], self.split)
        if not osp.isdir(img_dir):
            return [
                DataPathProblem(
                    'split', img_dir, f'LostAndFoundDataset: split {self.split!r}: folder {img_dir!r} does not exist. '
                    f'{self.expected_layout()}')
            ]
        return []

    def find_frames(self) -> List[dict]:
        img_dir = osp.join(self.data_prefix['img_path'], self.split)
        ann_dir = osp.join(self.data_prefix['seg_map_path'], self.split)
        files: List[str] = []
        suffix = ''
        for ext in LAF_IMAGE_EXTS:
            suffix = f'_leftImg8bit.{ext}'
            files = glob.glob(osp.join(glob.escape(img_dir), '*', '*' + suffix))
            if files:
                break
        if not files:
            raise FileNotFoundError(f'LostAndFoundDataset: no {{NN}}_{{scene}}/*_leftImg8bit.png (.webp, .jpg) '
                                    f'images in {img_dir!r}. {self.expected_layout()}')
        frames = []
        for path in files:
            fid = osp.basename(path)[:-len(suffix)]
            match = _parse_laf_fid(fid, path, 'LostAndFound image')
            scene = f'{int(match.group(1)):02d}_{match.group(2)}'
            frames.append(
                dict(
                    fid=fid,
                    img_path=path,
                    seg_map_path=osp.join(ann_dir, scene, fid + self.seg_map_suffix),
                    scene=scene,
                    split=self.split))
        frames.sort(key=lambda f: f['fid'])
        out_of_range = [i for i in self.exclude_frame_indices if i >= len(frames)]
        if out_of_range:
            raise ValueError(
                f'LostAndFoundDataset: exclude_frame_indices {out_of_range} are beyond the {len(frames)} frames found '
                f'in {img_dir!r}; the indices refer to the sorted frames of the full release (LostAndFound-test: '
                f'1203). For a partial or generated copy use subset=None and no exclude_frame_indices.')
        excluded = set(self.exclude_frame_indices)
        frames = [f for i, f in enumerate(frames) if i not in excluded]
        frames = [f for f in frames if not _fid_matches(f['fid'], self.exclude_prefixes)]
        if not frames:
            raise FileNotFoundError(f'LostAndFoundDataset: every frame in {img_dir!r} is excluded '
                                    f'(exclude_frame_indices={self.exclude_frame_indices}, '
                                    f'exclude_prefixes={self.exclude_prefixes})')
        self.warn_length(self.subset, len(frames), self.expected_length)
        if self.check_files:
            missing = [f['seg_map_path'] for f in frames if not osp.isfile(f['seg_map_path'])]
            if missing:
                raise self.missing_labels_error(missing, len(frames), img_dir)
        return frames


@DATASETS.register_module()
class FishyscapesLAFDataset(RoadAnomalyBenchmarkDataset):
    """Fishyscapes Lost & Found (Blum et al. 2021): LostAndFound frames re-labelled as anomaly / in-distribution.

    Layout: the labels ``<data_root>/labels/{split}/{fid}_fishy-labels.png`` (``dataset_FishyLAF``; 0 =
    in-distribution, 1 = anomaly, 255 = void) and the images of those fids from LostAndFound,
    ``<laf_root>/leftImg8bit/{train|test}/{NN}_{scene}/{fid}_leftImg8bit.png`` (``.webp`` / ``.jpg`` accepted;
    train is looked in first, as officially). The dataset is every label file present. The official ``val`` has
    100 frames (``FishyLAFAnomaly-val``; the fid list is ``FishyscapesLAFSubset.FRAME_IDS_SETS['Anomaly-val']`` in
    road-anomaly-benchmark's ``datasets/tracks_extra.py``: scenes 01_Hanns_Klemm_Str_45, 04_Maurener_Weg_8 and
    13_Elly_Beinhorn_Str); it is not hard-coded here.

    Args:
        laf_root: the LostAndFound release root (relative paths: to the working directory, as ``data_root``).
        split: the labels folder below ``labels/`` (``'val'``).
        laf_splits: the LostAndFound splits searched for the images, in order.
        **kwargs: see :class:`RoadAnomalyBenchmarkDataset` (``data_root`` = the Fishyscapes L&F root).

    data_info keys added: ``scene`` (``{NN}_{scene}``), ``laf_split`` (where the image was found).
    """

    BENCHMARK = 'FishyscapesLAF'
    LABEL_ENCODING = FISHYSCAPES_LAF_ENCODING
    DEFAULT_PREFIX = dict(seg_map_path='labels')
    IMG_SUFFIX = '_leftImg8bit.png'
    SEG_MAP_SUFFIX = '_fishy-labels.png'
    LAYOUT = ('<data_root>/labels/{split}/{fid}_fishy-labels.png and the LostAndFound images '
              '<laf_root>/leftImg8bit/{train|test}/{NN}_{scene}/{fid}_leftImg8bit.png')
    SOURCE = ('the Fishyscapes Lost & Found labels (https://fishyscapes.com/dataset) with the LostAndFound release '
              '(http://www.6d-vision.com/lostandfounddataset)')
    METAINFO = dict(
        benchmark=BENCHMARK,
        anomaly_classes=('normal', 'anomaly'),
        anomaly_class='anomaly',
        anomaly_palette=list(ANOMALY_COLOR),
        label_encoding=LABEL_ENCODING)
    OFFICIAL_LENGTHS = dict(val=100)

    def __init__(self,
                 laf_root: Optional[str] = None,
                 split: str = 'val',
                 laf_splits: Sequence[str] = ('train', 'test'),
                 **kwargs) -> None:
        self.laf_root = laf_root
        self.split = split
        self.laf_splits = list(laf_splits)
        super().__init__(**kwargs)

    def root_problems(self) -> List[DataPathProblem]:
        problems = super().root_problems()
        if problems:
            return problems
        label_dir = osp.join(self.data_prefix['seg_map_path'], self.split)
        if not osp.isdir(label_dir):
            problems.append(
                DataPathProblem(
                    'split', label_dir, f'FishyscapesLAFDataset: split {self.split!r}: folder {label_dir!r} does not '
                    f'exist. {self.expected_layout()}'))
        if not isinstance(self.laf_root, str) or not self.laf_root:
            problems.append(
                DataPathProblem(
                    'laf_root', str(self.laf_root),
                    f'FishyscapesLAFDataset: laf_root is not set ({self.laf_root!r}); set it to the LostAndFound '
                    f'release, which holds the images. {self.expected_layout()}'))
            return problems
        laf_images = osp.join(self.laf_root, 'leftImg8bit')
        if not osp.isdir(laf_images):
            problems.append(
                DataPathProblem(
                    'laf_root', str(self.laf_root),
                    f'FishyscapesLAFDataset: laf_root = {self.laf_root!r}: the LostAndFound images folder '
                    f'{laf_images!r} does not exist; set laf_root to the LostAndFound release '
                    f'(its leftImg8bit/{{train,test}} folders hold the images). {self.expected_layout()}'))
        return problems

    def find_frames(self) -> List[dict]:
        label_dir = osp.join(self.data_prefix['seg_map_path'], self.split)
        labels = sorted(glob.glob(osp.join(glob.escape(label_dir), '*' + self.seg_map_suffix)))
        if not labels:
            raise FileNotFoundError(f'FishyscapesLAFDataset: no *{self.seg_map_suffix} labels in {label_dir!r}. '
                                    f'{self.expected_layout()}')
        frames, missing = [], []
        for label in labels:
            fid = osp.basename(label)[:-len(self.seg_map_suffix)]
            match = _parse_laf_fid(fid, label, 'Fishyscapes label')
            scene = f'{int(match.group(1)):02d}_{match.group(2)}'
            candidates = [(s, osp.join(self.laf_root, 'leftImg8bit', s, scene, f'{fid}_leftImg8bit.{ext}'))
                          for s in self.laf_splits for ext in LAF_IMAGE_EXTS]
            found = [(s, p) for s, p in candidates if osp.isfile(p)]
            if not found:
                missing.append(f'{label}: no image {candidates[0][1]} (nor in the other splits / as .webp, .jpg)')
            laf_split, img_path = found[0] if found else candidates[0]
            frames.append(dict(fid=fid, img_path=img_path, seg_map_path=label, scene=scene, laf_split=laf_split))
        if missing and self.check_files:
            shown = '\n  '.join(missing[:10])
            more = f'\n  ... and {len(missing) - 10} more' if len(missing) > 10 else ''
            raise FileNotFoundError(
                f'FishyscapesLAFDataset: {len(missing)} of {len(labels)} labels in {label_dir!r} have no LostAndFound '
                f'image below laf_root = {self.laf_root!r} (searched splits {self.laf_splits}):\n  {shown}{more}\n'
                f'{self.expected_layout()}')
        self.warn_length(
            f'{self.split} (FishyLAFAnomaly-{self.split})' if self.split in self.OFFICIAL_LENGTHS else None,
            len(frames), self.OFFICIAL_LENGTHS.get(self.split))
        return frames
