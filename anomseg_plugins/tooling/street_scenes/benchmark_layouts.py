"""Offline copies of a Cityscapes-layout training set and of four road-anomaly test sets, in their official layouts.

None of the real datasets can be downloaded everywhere, so the loaders of these layouts are tested (and demos run)
on copies drawn by the street-scenes renderer (:mod:`.scene`, :mod:`.benchmark_scenes`) and written here exactly
as the real releases lay them out and encode them. Layouts below ``<out>`` (``{...}`` are fields; the file ids
follow the real releases' patterns):

``cityscapes/`` -- the training set, as mmseg's ``CityscapesDataset`` reads it (no anomalies)::

    leftImg8bit/{train,val}/{city}/{city}_{seq:06d}_{frame:06d}_leftImg8bit.png        RGB
    gtFine/{train,val}/{city}/{city}_{seq:06d}_{frame:06d}_gtFine_labelTrainIds.png   uint8, 0..18, 255 = ignore
    gtFine/{train,val}/{city}/{city}_{seq:06d}_{frame:06d}_gtFine_labelIds.png        uint8, Cityscapes label ids

  Real train cities (``aachen``, ``bochum``, ...) and val cities (``frankfurt``, ``lindau``, ``munster``), 16
  frames per city, frame number ``000019`` as in gtFine. The renderer's StreetHazards classes map to Cityscapes
  label ids (``STREETHAZARDS_TO_CITYSCAPES``) and those to train ids by the official table
  (``CITYSCAPES_LABELS``): road and road line -> road (7 / 0), sidewalk (kerb included) -> sidewalk (8 / 1),
  building 11 / 2, wall 12 / 3, fence 13 / 4, pole 17 / 5, traffic sign 20 / 7, vegetation (trees, hedges, grass
  verge) 21 / 8, pedestrian -> person 24 / 11, car 26 / 13; the renderer's ``unlabeled`` is exactly its sky (the
  sky is the only thing painted with it) -> sky 23 / 10; ``other`` (bins, benches, crates, barriers, bollards,
  which Cityscapes leaves unlabelled) -> static 4 / 255. Train ids 6 (traffic light), 9 (terrain), 12 (rider)
  and 14-18 (truck, bus, train, motorcycle, bicycle) never occur.

``dataset_AnomalyTrack/`` -- SegmentMeIfYouCan RoadAnomaly21 (16:9 frames)::

    images/{fid}.jpg                              fid: validation0000, ... (labelled) or cow0000, tractor0001, ...
    labels_masks/{fid}_labels_semantic.png        uint8: 0 = not anomaly, 1 = anomaly, 255 = void

  As in the real release only the ``validation*`` frames have labels; the others (the "hidden test" frames, named
  after their main anomaly like the real ``cow0003`` or ``caravan0002``) have images only. One to three large
  anomalies (2-18 % of the image each) on or next to the road; void = a one-pixel band (more at larger sizes)
  under every anomaly, where its contact with the ground is ambiguous (never a closed ring: see
  :func:`anomaly_track_label`).

``dataset_ObstacleTrack/`` -- SegmentMeIfYouCan RoadObstacle21 (16:9 frames)::

    images/{fid}.webp                             WebP at quality 100; fid = {scene}_{index}, index from 1
    labels_masks/{fid}_labels_semantic.png        uint8: 0 = road, 1 = obstacle, 255 = everything off the road

  Scenes from the official set: ``validation`` (labelled), and image-only frames of ``curvy-street``,
  ``one-way-street`` (wet), ``gravel``, ``greyasphalt``, ``motorway``, ``paving``, ``darkasphalt``,
  ``darkasphalt2`` (a dog), ``snowstorm1``/``snowstorm2`` and ``driveway`` (night), each with its road surface or
  weather. One to three small obstacles (0.15-1.2 m) lying on the road, each surrounded by road.

``dataset_LostAndFound/`` -- Lost and Found in its Cityscapes-like layout (2:1 frames)::

    leftImg8bit/{split}/{NN:02d}_{scene}/{fid}_leftImg8bit.png              split: test and train
    gtCoarse/{split}/{NN:02d}_{scene}/{fid}_gtCoarse_labelIds.png           uint8: 0 = void (off the road, ego
                                                                            vehicle), 1 = free road, 2..200 =
                                                                            obstacle (its LAF class id)
    gtCoarse/{split}/{NN:02d}_{scene}/{fid}_gtCoarse_instanceIds.png        uint16: 0/1 as labelIds, obstacle k of
                                                                            class c = c * 1000 + k (Cityscapes rule)

  fid = ``{NN:02d}_{scene}_{seq:06d}_{frame:06d}`` (matches ``([0-9]{2})_(.*)_([0-9]{6})_([0-9]{6})``), e.g.
  ``01_Hanns_Klemm_Str_45_000000_000080``. labelIds hold, as in the real release, the obstacle's class of the
  Lost and Found label table (``OBSTACLE_KINDS[...].laf_id``: 2 = crate, 9 = cardboard box, 16 = euro pallet,
  17 = pylon, 21 = tire, 23 = plastic bag, 25 = ball, 27 = dog, 30 = bobby car, 34 = post, 36 = timber); the
  instanceIds tell obstacles of one class apart. The ego vehicle's bonnet covers the bottom of every frame.

``dataset_FishyLAF/`` -- Fishyscapes Lost and Found re-labelling of a subset of those frames::

    labels/val/{fid}_fishy-labels.png             uint8: 0 = in-distribution, 1 = anomaly, 255 = void (ego vehicle)

  Every other test frame and the first train frame of ``dataset_LostAndFound`` (Fishyscapes takes frames from
  both splits); every fid exists there.

Anomalies and obstacles are drawn as :mod:`.benchmark_scenes` describes: known classes' colours and textures
on out-of-place shapes, so colour alone does not find them. Each frame is drawn from its own generator seeded by
``(seed, set, index)`` (:func:`.benchmark_scenes.render_frame`), so the output is byte-identical for a seed and
does not depend on the number of worker processes.
"""
import io
import math
import os
import os.path as osp
import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.utils import track_parallel_progress, track_progress

from .benchmark_scenes import (ANOMALY_KINDS, EGO_VEHICLE, OBSTACLE_SET_LAF, ROAD_LABELS, SCENE_STYLES,
                               VALIDATION_STYLES, Instance, choose, render_frame)
from .classes import (BUILDING, CAR, FENCE, OTHER, PEDESTRIAN, POLE, ROAD, ROAD_LINE, SIDEWALK, TRAFFIC_SIGN, UNLABELED,
                      VEGETATION, WALL)

#: Defaults: the whole generation takes well under a minute on 2 cores.
DEFAULT_NUM_TRAIN = 48
DEFAULT_NUM_VAL = 16
DEFAULT_NUM_TEST = 24
DEFAULT_SIZE = (512, 256)
#: Sets the generator writes, and the folders below the root each one owns.
SETS = ('cityscapes', 'anomaly', 'obstacle', 'laf')
SET_DIRS: Dict[str, Tuple[str, ...]] = {
    'cityscapes': ('cityscapes', ),
    'anomaly': ('dataset_AnomalyTrack', ),
    'obstacle': ('dataset_ObstacleTrack', ),
    'laf': ('dataset_LostAndFound', 'dataset_FishyLAF'),
}

#: The official Cityscapes label table (cityscapesscripts ``labels.py``): name -> (label id, train id).
CITYSCAPES_LABELS: Dict[str, Tuple[int, int]] = {
    'unlabeled': (0, 255), 'ego vehicle': (1, 255), 'rectification border': (2, 255), 'out of roi': (3, 255),
    'static': (4, 255), 'dynamic': (5, 255), 'ground': (6, 255), 'road': (7, 0), 'sidewalk': (8, 1),
    'parking': (9, 255), 'rail track': (10, 255), 'building': (11, 2), 'wall': (12, 3), 'fence': (13, 4),
    'guard rail': (14, 255), 'bridge': (15, 255), 'tunnel': (16, 255), 'pole': (17, 5), 'polegroup': (18, 255),
    'traffic light': (19, 6), 'traffic sign': (20, 7), 'vegetation': (21, 8), 'terrain': (22, 9), 'sky': (23, 10),
    'person': (24, 11), 'rider': (25, 12), 'car': (26, 13), 'truck': (27, 14), 'bus': (28, 15),
    'caravan': (29, 255), 'trailer': (30, 255), 'train': (31, 16), 'motorcycle': (32, 17), 'bicycle': (33, 18),
}  # yapf: disable
#: Train id of every label id (index = label id; ids the table lacks are 255).
CITYSCAPES_TRAIN_ID_OF_LABEL_ID = np.full(256, 255, np.uint8)
for _lid, _tid in CITYSCAPES_LABELS.values():
    CITYSCAPES_TRAIN_ID_OF_LABEL_ID[_lid] = _tid
#: The renderer's classes (canvas values of :mod:`.classes`) -> Cityscapes class names.
STREETHAZARDS_TO_CITYSCAPES: Dict[int, str] = {
    UNLABELED: 'sky', BUILDING: 'building', FENCE: 'fence', OTHER: 'static', PEDESTRIAN: 'person', POLE: 'pole',
    ROAD_LINE: 'road', ROAD: 'road', SIDEWALK: 'sidewalk', VEGETATION: 'vegetation', CAR: 'car', WALL: 'wall',
    TRAFFIC_SIGN: 'traffic sign', EGO_VEHICLE: 'ego vehicle',
}  # yapf: disable
_CANVAS_TO_LABEL_ID = np.zeros(256, np.uint8)  # anything else (no anomaly occurs in the training set): unlabeled
for _canvas, _name in STREETHAZARDS_TO_CITYSCAPES.items():
    _CANVAS_TO_LABEL_ID[_canvas] = CITYSCAPES_LABELS[_name][0]

CITYSCAPES_CITIES = {
    'train': ('aachen', 'bochum', 'bremen', 'cologne', 'darmstadt', 'dusseldorf', 'erfurt', 'hamburg', 'hanover',
              'jena', 'krefeld', 'monchengladbach', 'strasbourg', 'stuttgart', 'tubingen', 'ulm', 'weimar', 'zurich'),
    'val': ('frankfurt', 'lindau', 'munster'),
}
FRAMES_PER_CITY = 16
#: Lost and Found sequences (number, street) frames are named after, per split.
LAF_SCENES = {
    'test': ((1, 'Hanns_Klemm_Str_45'), (4, 'Maurener_Weg_8'), (10, 'Schlossberg_9'), (13, 'Elly_Beinhorn_Str'),
             (15, 'Rechbergstr_Deckenpfronn')),
    'train': ((3, 'Hanns_Klemm_Str_19'), (6, 'Galgenbergstr_40'), (11, 'Parkplatz_Flugfeld'),
              (12, 'Umberto_Nobile_Str'), (14, 'Otto_Lilienthal_Str_24')),
}
#: Image-only ObstacleTrack scenes, in the order hidden frames cycle through them.
OBSTACLE_HIDDEN_SCENES = ('curvy-street', 'gravel', 'greyasphalt', 'motorway', 'paving', 'darkasphalt',
                          'one-way-street', 'darkasphalt2', 'snowstorm1', 'driveway', 'snowstorm2')
#: Seeding stream of each set (frame ``i`` of a set: ``SeedSequence([seed, id, i, attempt])``).
SET_IDS = {'cityscapes-train': 100, 'cityscapes-val': 101, 'anomaly': 200, 'obstacle': 300, 'laf-test': 400,
           'laf-train': 401}  # yapf: disable
_PLAN_STREAM = 2**31 - 1


@dataclass(frozen=True)
class Frame:
    """One frame to draw: where its files go (role -> path relative to the root) and how to draw it."""
    set: str
    index: int
    fid: str
    size: Tuple[int, int]
    files: Dict[str, str]
    mode: str
    scene: Dict = field(default_factory=dict)


def hidden_share(num: int) -> int:
    """How many of ``num`` frames of RoadAnomaly21 / RoadObstacle21 are hidden-test (image-only) frames: a third."""
    return int(num) // 3


def wide_size(size: Tuple[int, int]) -> Tuple[int, int]:
    """The 16:9 size of the SegmentMeIfYouCan sets matching a 2:1 ``size``: same width."""
    return int(size[0]), int(round(size[0] * 9 / 16))


def _plan_rng(seed: int, set_name: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), SET_IDS[set_name], _PLAN_STREAM]))


def plan_cityscapes(split: str, num: int, size: Tuple[int, int]) -> List[Frame]:
    """Cityscapes frames of ``split`` (``train``/``val``): :data:`FRAMES_PER_CITY` per city, frame ``000019``."""
    cities = CITYSCAPES_CITIES[split]
    frames = []
    for i in range(int(num)):
        block, city_index = divmod(i // FRAMES_PER_CITY, len(cities))  # wraps round the cities when there are many
        city, seq = cities[city_index], block * FRAMES_PER_CITY + i % FRAMES_PER_CITY
        stem = f'{city}_{seq:06d}_{19:06d}'
        files = dict(
            image=f'cityscapes/leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png',
            label_train_ids=f'cityscapes/gtFine/{split}/{city}/{stem}_gtFine_labelTrainIds.png',
            label_ids=f'cityscapes/gtFine/{split}/{city}/{stem}_gtFine_labelIds.png')
        frames.append(Frame(f'cityscapes-{split}', i, stem, tuple(size), files, 'clean'))
    return frames


def plan_anomaly_track(num: int, size: Tuple[int, int], seed: int) -> List[Frame]:
    """RoadAnomaly21 frames: ``validation%04d`` (labelled) first, then hidden-test frames named by main anomaly."""
    r = _plan_rng(seed, 'anomaly')
    n_hidden = hidden_share(num)
    weights = {k: v.weight for k, v in ANOMALY_KINDS.items()}
    counts: Dict[str, int] = {}
    frames = []
    for i in range(int(num)):
        kind = choose(r, weights)[0]
        names = ANOMALY_KINDS[kind].names
        name = names[int(r.integers(len(names)))]
        if i < num - n_hidden:
            fid = f'validation{i:04d}'
            files = dict(
                image=f'dataset_AnomalyTrack/images/{fid}.jpg',
                label=f'dataset_AnomalyTrack/labels_masks/{fid}_labels_semantic.png')
        else:
            fid = f'{name}{counts.get(name, 0):04d}'
            counts[name] = counts.get(name, 0) + 1
            files = dict(image=f'dataset_AnomalyTrack/images/{fid}.jpg')
        frames.append(Frame('anomaly', i, fid, tuple(size), files, 'anomaly', dict(main_kind=kind)))
    return frames


def plan_obstacle_track(num: int, size: Tuple[int, int], seed: int) -> List[Frame]:
    """RoadObstacle21 frames: ``validation_{k}`` (labelled) first, then image-only frames of the other scenes."""
    r = _plan_rng(seed, 'obstacle')
    n_hidden = hidden_share(num)
    counts: Dict[str, int] = {}
    frames = []
    for i in range(int(num)):
        if i < num - n_hidden:
            scene_name = 'validation'
            style = VALIDATION_STYLES[int(r.integers(len(VALIDATION_STYLES)))]
        else:
            scene_name = OBSTACLE_HIDDEN_SCENES[(i - (num - n_hidden)) % len(OBSTACLE_HIDDEN_SCENES)]
            style = SCENE_STYLES[scene_name]
        counts[scene_name] = counts.get(scene_name, 0) + 1
        fid = f'{scene_name}_{counts[scene_name]}'
        files = dict(image=f'dataset_ObstacleTrack/images/{fid}.webp')
        if scene_name == 'validation':
            files['label'] = f'dataset_ObstacleTrack/labels_masks/{fid}_labels_semantic.png'
        scene = dict(style=style, max_obstacles=3, main_kind='dog' if scene_name == 'darkasphalt2' else None)
        frames.append(Frame('obstacle', i, fid, tuple(size), files, 'obstacle', scene))
    return frames


def plan_lost_and_found(num_test: int, size: Tuple[int, int]) -> List[Frame]:
    """Lost and Found frames: ``num_test`` test frames and a third as many train frames (at least one), spread over
    the sequences; every other test frame and the first train frame also get a Fishyscapes label."""
    frames = []
    num_train = max(1, int(num_test) // 3) if num_test > 0 else 0
    for split, num in (('test', int(num_test)), ('train', num_train)):
        scenes = LAF_SCENES[split]
        per_scene = max(1, math.ceil(num / len(scenes)))
        for i in range(num):
            sid, street = scenes[i // per_scene]
            j = i % per_scene
            seq = j // 3
            frame_no = 30 + 60 * (j % 3) + 10 * (seq % 3)
            folder, fid = f'{sid:02d}_{street}', f'{sid:02d}_{street}_{seq:06d}_{frame_no:06d}'
            files = dict(
                image=f'dataset_LostAndFound/leftImg8bit/{split}/{folder}/{fid}_leftImg8bit.png',
                label_ids=f'dataset_LostAndFound/gtCoarse/{split}/{folder}/{fid}_gtCoarse_labelIds.png',
                instance_ids=f'dataset_LostAndFound/gtCoarse/{split}/{folder}/{fid}_gtCoarse_instanceIds.png')
            if (split == 'test' and i % 2 == 0) or (split == 'train' and i == 0):
                files['fishy'] = f'dataset_FishyLAF/labels/val/{fid}_fishy-labels.png'
            scene = dict(obstacle_kinds=OBSTACLE_SET_LAF, max_obstacles=4, ego_vehicle=True)
            frames.append(Frame(f'laf-{split}', i, fid, tuple(size), files, 'obstacle', scene))
    return frames


# --------------------------------------------------------------------------------------------------
# label encodings
# --------------------------------------------------------------------------------------------------
def cityscapes_label_ids(lab: np.ndarray) -> np.ndarray:
    """Cityscapes label ids of a canvas label map (:data:`STREETHAZARDS_TO_CITYSCAPES`; anything else 0)."""
    return _CANVAS_TO_LABEL_ID[lab]


def cityscapes_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Cityscapes train ids (0..18, 255) of label ids, by the official table."""
    return CITYSCAPES_TRAIN_ID_OF_LABEL_ID[label_ids]


def _instance_mask(lab: np.ndarray, instances: Sequence[Instance]) -> np.ndarray:
    return np.isin(lab, [i.label for i in instances])


def anomaly_track_label(lab: np.ndarray, instances: Sequence[Instance]) -> np.ndarray:
    """RoadAnomaly21 encoding: 1 = anomaly, 255 = the ground-contact band below each anomaly, 0 elsewhere.

    The void band lies only *under* the anomaly (the pixels up to ``band`` rows below an anomaly pixel): ambiguous
    contact with the ground, as annotators leave it. It must not enclose the anomaly: the component metrics
    (``AnomalyMetric`` protocol ``component``) restrict predictions to the non-void pixels, and a closed void ring
    would cut a flag-everything prediction into one component per anomaly, scoring it a perfect sIoU.
    """
    anomaly = _instance_mask(lab, instances)
    band = max(1, int(round(lab.shape[1] / 640)))
    below = np.zeros_like(anomaly)
    for d in range(1, band + 1):
        below[d:] |= anomaly[:-d]
    out = np.zeros(lab.shape, np.uint8)
    out[below & ~anomaly] = 255
    out[anomaly] = 1
    return out


def obstacle_track_label(lab: np.ndarray, instances: Sequence[Instance]) -> np.ndarray:
    """RoadObstacle21 encoding: 0 = road, 1 = obstacle, 255 = everything off the road."""
    out = np.full(lab.shape, 255, np.uint8)
    out[np.isin(lab, ROAD_LABELS)] = 0
    out[_instance_mask(lab, instances)] = 1
    return out


def lost_and_found_labels(lab: np.ndarray, instances: Sequence[Instance]) -> Tuple[np.ndarray, np.ndarray]:
    """Lost and Found ``(labelIds uint8, instanceIds uint16)``: 0 void, 1 free road, obstacles by class id."""
    label_ids = np.zeros(lab.shape, np.uint8)
    label_ids[np.isin(lab, ROAD_LABELS)] = 1
    instance_ids = label_ids.astype(np.uint16)
    seen: Dict[int, int] = {}
    for inst in instances:
        if inst.laf_id is None or not 2 <= inst.laf_id <= 200:
            raise ValueError(f'obstacle {inst.kind!r} has no Lost and Found class id in 2..200 ({inst.laf_id})')
        m = lab == inst.label
        label_ids[m] = inst.laf_id
        instance_ids[m] = inst.laf_id * 1000 + seen.get(inst.laf_id, 0)
        seen[inst.laf_id] = seen.get(inst.laf_id, 0) + 1
    return label_ids, instance_ids


def fishy_label(lab: np.ndarray, instances: Sequence[Instance]) -> np.ndarray:
    """Fishyscapes Lost and Found encoding: 1 = anomaly, 255 = void (ego vehicle), 0 = in-distribution."""
    out = np.zeros(lab.shape, np.uint8)
    out[lab == EGO_VEHICLE] = 255
    out[_instance_mask(lab, instances)] = 1
    return out


def encode(frame: Frame, lab: np.ndarray, instances: Sequence[Instance]) -> Dict[str, np.ndarray]:
    """The label files of ``frame`` (role -> array) from its canvas label map."""
    out: Dict[str, np.ndarray] = {}
    if frame.set.startswith('cityscapes'):
        out['label_ids'] = cityscapes_label_ids(lab)
        out['label_train_ids'] = cityscapes_train_ids(out['label_ids'])
    elif frame.set == 'anomaly':
        out['label'] = anomaly_track_label(lab, instances)
    elif frame.set == 'obstacle':
        out['label'] = obstacle_track_label(lab, instances)
    else:
        out['label_ids'], out['instance_ids'] = lost_and_found_labels(lab, instances)
        out['fishy'] = fishy_label(lab, instances)
    return {k: v for k, v in out.items() if k in frame.files}


# --------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------
def _write(path: str, arr: np.ndarray) -> None:
    ext = osp.splitext(path)[1]
    params = {
        '.png': [cv2.IMWRITE_PNG_COMPRESSION, 3],
        '.jpg': [cv2.IMWRITE_JPEG_QUALITY, 95],
        '.webp': [cv2.IMWRITE_WEBP_QUALITY, 100],  # lossy at the highest quality (lossless is 10x slower)
    }[ext]
    if not cv2.imwrite(path, np.ascontiguousarray(arr), params):
        raise OSError(f'could not write {path} (cv2.imwrite failed; check free space, permissions and that this '
                      f'OpenCV build writes {ext} files)')


def _work(task: tuple) -> Tuple[str, int, Dict[str, int]]:
    """Draw one frame and write its files; returns ``(set, index, pixel counts)``."""
    root, frame, seed = task
    w, h = frame.size
    try:
        rgb, lab, instances = render_frame(w, h, [seed, SET_IDS[frame.set], frame.index], frame.mode, **frame.scene)
        labels = encode(frame, lab, instances)
    except Exception as err:
        raise RuntimeError(f'drawing {frame.set} frame {frame.index} ({frame.fid}, seed {seed}, {w}x{h}) failed: '
                           f'{type(err).__name__}: {err}') from err
    _write(osp.join(root, frame.files['image']), rgb[..., ::-1])
    for role, arr in labels.items():
        _write(osp.join(root, frame.files[role]), arr)
    anomaly = int(_instance_mask(lab, instances).sum())
    return frame.set, frame.index, dict(pixels=int(lab.size), anomaly=anomaly, labelled=int(len(frame.files) > 1))


def _render_all(tasks: List[tuple], workers: int, verbose: bool) -> List[Tuple[str, int, Dict[str, int]]]:
    """Run ``_work`` on every task, in ``workers`` processes, with mmengine's progress bar when ``verbose``."""
    out = sys.stdout if verbose else io.StringIO()
    if workers <= 1 or len(tasks) <= 1:
        return track_progress(_work, tasks, file=out)
    # as in .writer: limit OpenCV's threads before forking (a forked child must not touch the parent's pool)
    cv2_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        return track_parallel_progress(
            _work, tasks, workers, chunksize=max(1, min(8,
                                                        len(tasks) // (4 * workers))), file=out)
    finally:
        cv2.setNumThreads(cv2_threads)


def _check_size(name: str, size: Tuple[int, int]) -> Tuple[int, int]:
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f'{name}={size!r}: expected (width, height)')
    if w < 48 or h < 24:
        raise ValueError(f'{name}={size!r}: images must be at least 48x24 pixels (width, height) for the obstacles '
                         'to fit on the road')
    return w, h


def plan_frames(sets: Sequence[str], num_train: int, num_val: int, num_test: int, size: Tuple[int, int],
                size_wide: Tuple[int, int], seed: int) -> List[Frame]:
    """Every frame of the selected sets, in writing order."""
    frames: List[Frame] = []
    if 'cityscapes' in sets:
        frames += plan_cityscapes('train', num_train, size) + plan_cityscapes('val', num_val, size)
    if 'anomaly' in sets:
        frames += plan_anomaly_track(num_test, size_wide, seed)
    if 'obstacle' in sets:
        frames += plan_obstacle_track(num_test, size_wide, seed)
    if 'laf' in sets:
        frames += plan_lost_and_found(num_test, size)
    return frames


def generate_road_anomaly_sets(out_dir: str,
                               num_train: int = DEFAULT_NUM_TRAIN,
                               num_val: int = DEFAULT_NUM_VAL,
                               num_test: int = DEFAULT_NUM_TEST,
                               size: Tuple[int, int] = DEFAULT_SIZE,
                               size_wide: Optional[Tuple[int, int]] = None,
                               seed: int = 0,
                               sets: Sequence[str] = SETS,
                               workers: int = 1,
                               overwrite: bool = False,
                               verbose: bool = True,
                               log: Callable[[str], None] = print) -> Dict:
    """Write the Cityscapes-layout training set and the road-anomaly test sets below ``out_dir``.

    Args:
        out_dir: root; each set goes to its own folders below it (:data:`SET_DIRS`), other contents are kept.
        num_train, num_val: Cityscapes ``train`` / ``val`` frames.
        num_test: frames of each test set: RoadAnomaly21 and RoadObstacle21 (a third of them image-only), Lost and
            Found ``test`` (plus a third as many ``train`` frames; Fishyscapes labels for about half of them).
        size: ``(width, height)`` of the 2:1 sets (Cityscapes, Lost and Found; real: 2048x1024).
        size_wide: ``(width, height)`` of the 16:9 SegmentMeIfYouCan sets (real: 1280x720 and 1920x1080); default
            :func:`wide_size` of ``size``.
        seed: base seed; same seed and arguments -> identical files.
        sets: which of :data:`SETS` to write (``laf`` includes ``dataset_FishyLAF``).
        workers: processes drawing in parallel (output does not depend on it).
        overwrite: replace the selected sets' folders when they exist; without it an existing one raises
            ``FileExistsError``.
        verbose: report the start and the end through ``log`` and show mmengine's progress bar on stdout.
        log: where the start and end lines go.

    Returns:
        dict with ``root``, ``seed``, ``size``, ``size_wide``, ``seconds`` and per set name (``cityscapes-train``,
        ``cityscapes-val``, ``anomaly``, ``obstacle``, ``laf-test``, ``laf-train``) ``num_frames``,
        ``num_labelled`` and ``anomaly_pixel_fraction`` (anomaly or obstacle pixels over all pixels of its frames),
        plus ``num_fishy``.
    """
    size = _check_size('size', size)
    size_wide = _check_size('size_wide', wide_size(size) if size_wide is None else size_wide)
    unknown = sorted(set(sets) - set(SETS))
    if unknown or not sets:
        raise ValueError(f'sets={list(sets)!r}: expected one or more of {SETS}')
    for name, num in (('num_train', num_train), ('num_val', num_val), ('num_test', num_test)):
        if int(num) < 0:
            raise ValueError(f'{name}={num}: the number of frames must be >= 0')
    workers = max(1, int(workers))
    root = osp.abspath(out_dir)
    if osp.exists(root) and not osp.isdir(root):
        raise NotADirectoryError(f'output path {root} exists and is not a directory')
    targets = [osp.join(root, d) for s in SETS if s in sets for d in SET_DIRS[s]]
    existing = [t for t in targets if osp.exists(t)]
    if existing and not overwrite:
        raise FileExistsError(f'{", ".join(existing)} already exist; pass --overwrite (overwrite=True) to replace '
                              'them, or choose another --out')
    frames = plan_frames(sets, num_train, num_val, num_test, size, size_wide, seed)
    for t in existing:
        shutil.rmtree(t) if osp.isdir(t) else os.remove(t)
    for d in sorted({osp.dirname(osp.join(root, p)) for f in frames for p in f.files.values()}):
        os.makedirs(d, exist_ok=True)

    start = time.time()
    if verbose:
        log(f'[generate_road_anomaly_sets] drawing {len(frames)} frames ({", ".join(s for s in SETS if s in sets)}) '
            f'at {size[0]}x{size[1]} (16:9 sets {size_wide[0]}x{size_wide[1]}) with {workers} worker(s) into {root}')
    results = _render_all([(root, f, int(seed)) for f in frames], workers, verbose)

    summary: Dict = dict(root=root, seed=int(seed), size=size, size_wide=size_wide, sets=list(sets))
    for set_name, _, stats in results:
        s = summary.setdefault(set_name, dict(num_frames=0, num_labelled=0, pixels=0, anomaly=0))
        s['num_frames'] += 1
        s['num_labelled'] += stats['labelled']
        s['pixels'] += stats['pixels']
        s['anomaly'] += stats['anomaly']
    for set_name in SET_IDS:
        if set_name in summary:
            s = summary[set_name]
            s['anomaly_pixel_fraction'] = s.pop('anomaly') / max(s.pop('pixels'), 1)
    summary['num_fishy'] = sum('fishy' in f.files for f in frames)
    summary['seconds'] = time.time() - start
    if verbose:
        log(f'[generate_road_anomaly_sets] done in {summary["seconds"]:.1f} s')
    return summary
