"""Scenes for the road-anomaly benchmarks: large anomalies near the road, small obstacles on it, road surfaces.

The street scenes of :mod:`.scene` drawn with other things in them, for the offline copies of
RoadAnomaly21, RoadObstacle21, Lost and Found and Fishyscapes Lost and Found (:mod:`.benchmark_layouts`
writes them):

- ``mode='clean'``: the StreetHazards training scene itself (no anomaly), for the Cityscapes-layout training set;
- ``mode='anomaly'`` (RoadAnomaly21): one to three *large* anomalies (2-18 % of the image each) standing on the
  road or next to it: animals (alone or in a small herd), tractors, caravans, boat trailers, small aircraft, hay
  bales, tents, rows of cones, furniture, debris, rocks, logs;
- ``mode='obstacle'`` (RoadObstacle21, Lost and Found): one to four *small* obstacles (0.15-1.2 m) lying on the
  road surface, each entirely surrounded by road: crates, cardboard boxes, pallets, pylons, tyres, bags, balls,
  dogs, bobby cars, posts, timber, buckets, canisters, stumps.

Like the StreetHazards anomalies (:mod:`.anomalies`), every anomaly and obstacle takes its colours and textures
from the known classes' own generators (:func:`.anomalies.appearance`), one to three per object at the wrong
scale or orientation, and is shaded and hazed as the scene, so that colour alone cannot find it (obstacles lean
towards the ground's own appearances: :data:`OBSTACLE_APPEARANCE_WEIGHTS`). Their kinds
are not what the outlier-exposure sources paste (``anomseg_plugins.datasets.transforms.outlier_sources``: flat
ellipses, polygons, blobs and composites with synthetic stripes, checkers, noise or gradients, and regions cut
from training images): here they are shaded 3D silhouettes of objects standing on the ground, with contact
shadows, depth-consistent size and the scene's haze.

Each anomaly or obstacle is painted with its own canvas label ``INSTANCE_BASE + k`` (k = 0, 1, ...), so the
writer knows every instance's pixels after occlusion; :attr:`BenchmarkScene.instances` lists them. Street
objects placed after the instances keep clear of them in the image (:meth:`BenchmarkScene.occludes_anomaly`),
and the writer re-draws a frame (:func:`render_frame`) until every obstacle is surrounded by road.

ObstacleTrack scenes differ by road surface and weather as the real recordings do (``ROAD_STYLES``): grey,
dark or wet asphalt, gravel, paving, a motorway, a curvy street, a snowstorm, night.
"""
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from . import anomalies as an
from . import layout, objects
from .anomalies import Sketch
from .classes import ANOMALY, ROAD, ROAD_LINE
from .placement import place
from .scene import Item, Scene
from .textures import car_paint_colour, hsv, noise

#: Canvas label of instance ``k`` (anomaly or obstacle) is ``INSTANCE_BASE + k``.
INSTANCE_BASE = 32
#: At most this many instances per frame (Lost and Found obstacle ids stay within 2..200).
MAX_INSTANCES = 8
#: Canvas label of the ego vehicle's bonnet (Lost and Found frames): void in every encoding.
EGO_VEHICLE = 30
#: Canvas labels of the drivable road surface.
ROAD_LABELS = (ROAD, ROAD_LINE)

#: Obstacle appearances: the known classes' appearances (:data:`.anomalies.APPEARANCE_WEIGHTS`), with the ground
#: and metal ones (asphalt, paving, kerb, metal) twice as often. RoadObstacle21 is scored on the road only, where
#: every non-asphalt colour is rarer than the road's: with the StreetHazards weights a colour-only detector
#: (Lab Gaussian mixture fitted on the training images) reached AUROC 80 / AUPR 4.4x the obstacle share there,
#: with these 75 / 3.2x (the StreetHazards test split's check: below 75 / 4x). Real road obstacles are mostly grey,
#: black or dull too (tyres, crates, boxes).
OBSTACLE_APPEARANCE_WEIGHTS: Dict[str, float] = dict(
    an.APPEARANCE_WEIGHTS, asphalt=0.12, paving=0.12, kerb=0.08, metal=0.12)


# --------------------------------------------------------------------------------------------------
# small obstacles (RoadObstacle21, Lost and Found): sketches on the 128 x 128 grid, ground at the bottom
# --------------------------------------------------------------------------------------------------
def _box_sketch(r: np.random.Generator, n_slots: int, w: float, h: float, top: float) -> Tuple[Sketch, float]:
    """A box standing on the ground seen slightly from above: front face and top face; returns (sketch, x0)."""
    s = Sketch()
    x0, ground = 64 - w / 2, 124.0
    s.rect(x0, ground - h, x0 + w, ground, 0, 'front')
    skew = r.uniform(-0.3, 0.3) * top
    s.poly([[x0 + skew, ground - h - top], [x0 + w + skew, ground - h - top], [x0 + w, ground - h], [x0, ground - h]],
           0, 'top')
    return s, x0


def _crate(r: np.random.Generator, n_slots: int) -> Sketch:
    """A plastic crate: a box with horizontal ribs and a hand hole in a second material."""
    w, h = r.uniform(70, 110), r.uniform(45, 80)
    s, x0 = _box_sketch(r, n_slots, w, h, r.uniform(8, 16))
    b = int(r.integers(n_slots))
    ground = 124.0
    for k in range(int(r.integers(2, 5))):
        y = ground - h + (k + 1) * h / 5
        s.rect(x0 + 3, y, x0 + w - 3, y + 3, b, 0.8)
    s.rect(64 - 10, ground - h + 5, 64 + 10, ground - h + 11, b, 0.5)
    return s


def _cardboard_box(r: np.random.Generator, n_slots: int) -> Sketch:
    """A cardboard box: front and top face, a tape strip across the top and open flaps."""
    w, h = r.uniform(55, 110), r.uniform(40, 90)
    s, x0 = _box_sketch(r, n_slots, w, h, r.uniform(10, 20))
    b = int(r.integers(n_slots))
    ground = 124.0
    s.rect(64 - 5, ground - h - 10, 64 + 5, ground - h + 12, b, 'top')
    if r.random() < 0.5:  # open flaps
        s.poly([[x0, ground - h], [x0 + w * 0.45, ground - h], [x0 + w * 0.35, ground - h - 18],
                [x0 - 6, ground - h - 14]], 0, 0.9)
    return s


def _pallet(r: np.random.Generator, n_slots: int) -> Sketch:
    """A pallet lying flat: a top deck and three blocks with gaps between them (road shows through)."""
    s = Sketch()
    b = int(r.integers(n_slots))
    w, h, ground = r.uniform(100, 124), r.uniform(16, 26), 124.0
    x0 = 64 - w / 2
    s.rect(x0, ground - h, x0 + w, ground - h + 6, 0, 'front')
    s.poly([[x0 + 6, ground - h - 10], [x0 + w + 6, ground - h - 10], [x0 + w, ground - h], [x0, ground - h]], 0, 'top')
    for bx in (x0, 64 - 7, x0 + w - 14):
        s.rect(bx, ground - h + 6, bx + 14, ground, b, 0.8)
    return s


def _pylon(r: np.random.Generator, n_slots: int) -> Sketch:
    """A traffic cone (pylon): square base plate, a cone with two bands of a second material."""
    s = Sketch()
    b = int(r.integers(n_slots))
    hgt, base, ground = r.uniform(80, 115), r.uniform(40, 60), 124.0
    s.rect(64 - base / 2, ground - 8, 64 + base / 2, ground, 0, 0.8)
    top_w, bot_w = 5.0, base * 0.38
    s.poly([[64 - bot_w, ground - 8], [64 + bot_w, ground - 8], [64 + top_w, ground - hgt], [64 - top_w, ground - hgt]],
           0, 'front')
    for t in (0.35, 0.62):
        y = ground - 8 - (hgt - 8) * t
        half = bot_w + (top_w - bot_w) * t
        s.poly([[64 - half, y], [64 + half, y], [64 + half * 0.9, y - 10], [64 - half * 0.9, y - 10]], b, 'front')
    return s


def _tyre(r: np.random.Generator, n_slots: int) -> Sketch:
    """A tyre, standing (a ring with a hub in a second material) or lying flat (a flat ring with a hole)."""
    s = Sketch()
    b = int(r.integers(n_slots))
    if r.random() < 0.6:
        rad = r.uniform(45, 60)
        s.ellipse(64, 124 - rad, rad * r.uniform(0.35, 1.0), rad, 0, 0, 'front')
        s.ellipse(64, 124 - rad, rad * 0.3, rad * 0.55, 0, b, 0.8)
    else:
        rx, ry = r.uniform(50, 62), r.uniform(14, 22)
        s.ellipse(64, 100, rx, ry, 0, 0, 'top')
        s.rect(64 - rx, 100, 64 + rx, 112, 0, 'front')
        s.ellipse(64, 112, rx, ry * 0.6, 0, 0, 'front')
        hole = np.zeros_like(s.parts)
        cv2.ellipse(hole, (64, 100), (int(rx * 0.55), int(ry * 0.55)), 0, 0, 360, 1, -1)
        s.parts[hole > 0] = 0
    return s


def _bag(r: np.random.Generator, n_slots: int) -> Sketch:
    """A bloated plastic bag or sack: an irregular lump with a knotted top, in patches of two materials."""
    s = an._boulder(r, n_slots)
    ys, xs = np.nonzero(s.parts)
    top = ys.min()
    cx = int(round(xs[ys == top].mean()))
    s.poly([[cx - 6, top + 4], [cx + 6, top + 4], [cx + 3, max(top - 14, 0)], [cx - 3, max(top - 14, 0)]], 0, 0.9)
    return s


def _ball(r: np.random.Generator, n_slots: int) -> Sketch:
    """A ball: a disc with a seam band in a second material."""
    s = Sketch()
    rad = r.uniform(40, 60)
    s.ellipse(64, 124 - rad, rad, rad, 0, 0, 'front')
    s.ellipse(64, 124 - rad, rad * r.uniform(0.2, 0.5), rad, r.uniform(-30, 30), int(r.integers(n_slots)), 0.9)
    return s


def _dog(r: np.random.Generator, n_slots: int) -> Sketch:
    """A dog: the quadruped of :mod:`.anomalies` (body, legs, neck and head, ears, tail)."""
    return an._animal(r, n_slots)


def _bobby_car(r: np.random.Generator, n_slots: int) -> Sketch:
    """A child's ride-on car: rounded body, seat, handlebar, four wheels in a second material."""
    s = Sketch()
    b = int(r.integers(n_slots))
    ground = 124.0
    length, hgt = r.uniform(90, 120), r.uniform(30, 45)
    x0 = 64 - length / 2
    s.poly([[x0, ground - 12], [x0 + length, ground - 12], [x0 + length - 8, ground - 12 - hgt],
            [x0 + length * 0.3, ground - 12 - hgt - 8], [x0 + 6, ground - 12 - hgt * 0.7]], 0, 'front')
    s.rect(x0 + length * 0.45, ground - 12 - hgt - 18, x0 + length * 0.7, ground - 12 - hgt, b, 'front')
    s.rect(x0 + length * 0.15, ground - 12 - hgt - 22, x0 + length * 0.2, ground - 12 - hgt, b, 0.8)
    for wx in (x0 + 14, x0 + length - 14):
        s.ellipse(wx, ground - 12, 12, 12, 0, b, 0.7)
    return s


def _post(r: np.random.Generator, n_slots: int) -> Sketch:
    """A marker post or delineator lying across the lane: a long thin bar with bands."""
    s = Sketch()
    b = int(r.integers(n_slots))
    length, thick, ang = r.uniform(100, 124), r.uniform(8, 14), r.uniform(-8, 8)
    s.poly(cv2.boxPoints(((64.0, 116.0), (length, thick), ang)), 0, 'front')
    for t in (-0.3, 0.0, 0.3):
        cx = 64 + t * length * math.cos(math.radians(ang))
        cy = 116 + t * length * math.sin(math.radians(ang))
        s.poly(cv2.boxPoints(((cx, cy), (length * 0.08, thick + 1), ang)), b, 'front')
    return s


def _timber(r: np.random.Generator, n_slots: int) -> Sketch:
    """A piece of timber, squared or round: the fallen log of :mod:`.anomalies` at obstacle size."""
    return an._log(r, n_slots)


def _bucket(r: np.random.Generator, n_slots: int) -> Sketch:
    """A bucket: a tapering body, a rim ellipse on top and a handle arc in a second material."""
    s = Sketch()
    b = int(r.integers(n_slots))
    top_w, bot_w, hgt, ground = r.uniform(36, 50), r.uniform(26, 36), r.uniform(60, 85), 124.0
    s.poly([[64 - bot_w, ground], [64 + bot_w, ground], [64 + top_w, ground - hgt], [64 - top_w, ground - hgt]], 0,
           'front')
    s.ellipse(64, ground - hgt, top_w, 7, 0, 0, 'top')
    arc = cv2.ellipse2Poly((64, int(ground - hgt)), (int(top_w), int(hgt * 0.45)), 0, 180, 360, 12)
    inner = cv2.ellipse2Poly((64, int(ground - hgt)), (int(top_w - 4), int(hgt * 0.45 - 4)), 0, 180, 360, 12)
    s.poly(np.concatenate([arc, inner[::-1]]), b, 0.8)
    return s


def _canister(r: np.random.Generator, n_slots: int) -> Sketch:
    """A jerrycan: an upright box with a handle opening and a spout in a second material."""
    w, h = r.uniform(55, 75), r.uniform(75, 100)
    s, x0 = _box_sketch(r, n_slots, w, h, r.uniform(6, 12))
    b = int(r.integers(n_slots))
    ground = 124.0
    s.rect(x0 + w - 16, ground - h - 18, x0 + w - 6, ground - h, b, 'front')
    hole = np.zeros_like(s.parts)
    cv2.rectangle(hole, (int(x0 + 10), int(ground - h + 6)), (int(x0 + w * 0.55), int(ground - h + 14)), 1, -1)
    s.parts[hole > 0] = 0
    return s


def _stump(r: np.random.Generator, n_slots: int) -> Sketch:
    """A tree stump or a log end standing upright: a short cylinder with its cut face in a second material."""
    s = Sketch()
    rad, hgt, ground = r.uniform(35, 55), r.uniform(40, 80), 124.0
    s.rect(64 - rad, ground - hgt, 64 + rad, ground - 8, 0, 'front')
    s.ellipse(64, ground - 8, rad, 8, 0, 0, 'front')
    s.ellipse(64, ground - hgt, rad, r.uniform(8, 14), 0, int(r.integers(n_slots)), 'top')
    return s


@dataclass(frozen=True)
class ObstacleKind:
    """A small obstacle: its sketch, its largest dimension in metres and its Lost and Found type id (or None)."""
    sketch: Callable[[np.random.Generator, int], Sketch]
    size_m: Tuple[float, float]
    laf_id: Optional[int]


#: Small obstacles. ``laf_id``: the class id of the Lost and Found label table (``2`` = crate, ``9`` = cardboard
#: box, ``16`` = euro pallet, ``17`` = pylon, ``21`` = tire, ``23`` = plastic bag, ``25`` = ball, ``27`` = dog,
#: ``30`` = bobby car, ``34`` = post lying, ``36`` = timber); kinds without one occur in ObstacleTrack only.
OBSTACLE_KINDS: Dict[str, ObstacleKind] = {
    'crate': ObstacleKind(_crate, (0.35, 0.6), 2),
    'cardboard_box': ObstacleKind(_cardboard_box, (0.3, 0.7), 9),
    'pallet': ObstacleKind(_pallet, (0.8, 1.2), 16),
    'pylon': ObstacleKind(_pylon, (0.3, 0.75), 17),
    'tyre': ObstacleKind(_tyre, (0.5, 0.75), 21),
    'bag': ObstacleKind(_bag, (0.3, 0.7), 23),
    'ball': ObstacleKind(_ball, (0.15, 0.35), 25),
    'dog': ObstacleKind(_dog, (0.5, 1.0), 27),
    'bobby_car': ObstacleKind(_bobby_car, (0.5, 0.75), 30),
    'post': ObstacleKind(_post, (0.8, 1.2), 34),
    'timber': ObstacleKind(_timber, (0.6, 1.2), 36),
    'bucket': ObstacleKind(_bucket, (0.25, 0.45), None),
    'canister': ObstacleKind(_canister, (0.3, 0.5), None),
    'stump': ObstacleKind(_stump, (0.25, 0.5), None),
}
#: Every obstacle kind, and the kinds Lost and Found has a class id for.
OBSTACLE_SET_ALL = tuple(sorted(OBSTACLE_KINDS))
OBSTACLE_SET_LAF = tuple(sorted(k for k, v in OBSTACLE_KINDS.items() if v.laf_id is not None))


# --------------------------------------------------------------------------------------------------
# large anomalies (RoadAnomaly21)
# --------------------------------------------------------------------------------------------------
def _tractor(r: np.random.Generator, n_slots: int) -> Sketch:
    """A tractor from the side: a large rear wheel, a small front wheel, bonnet, cabin frame and exhaust."""
    s = Sketch()
    a, b = 0, int(r.integers(n_slots))
    ground = 124.0
    face = 1 if r.random() < 0.5 else -1
    rear_r, front_r = r.uniform(26, 34), r.uniform(14, 20)
    rx, fx = 64 - face * 30, 64 + face * 34
    s.rect(min(rx, fx), ground - rear_r - 30, max(rx, fx), ground - front_r, a, 'front')  # chassis and bonnet
    s.rect(rx - 20, ground - rear_r * 2 - 40, rx + 20, ground - rear_r - 20, a, 'front')  # cabin
    s.rect(rx - 15, ground - rear_r * 2 - 34, rx + 15, ground - rear_r - 24, b, 0.6)  # cabin window
    s.rect(fx - face * 14 - 2, ground - rear_r - 52, fx - face * 14 + 2, ground - rear_r - 28, b, 0.8)  # exhaust
    s.ellipse(rx, ground - rear_r, rear_r, rear_r, 0, b, 0.7)
    s.ellipse(rx, ground - rear_r, rear_r * 0.4, rear_r * 0.4, 0, a, 0.9)
    s.ellipse(fx, ground - front_r, front_r, front_r, 0, b, 0.7)
    return s


def _caravan(r: np.random.Generator, n_slots: int) -> Sketch:
    """A caravan: a rounded box on one axle with windows, a door and a tow bar."""
    s = Sketch()
    a, b = 0, int(r.integers(n_slots))
    ground, length, hgt = 120.0, r.uniform(90, 110), r.uniform(50, 65)
    x0 = 64 - length / 2
    body = [[x0, ground - 12], [x0 + length, ground - 12], [x0 + length, ground - 12 - hgt + 8],
            [x0 + length - 8, ground - 12 - hgt], [x0 + 8, ground - 12 - hgt], [x0, ground - 12 - hgt + 8]]
    s.poly(body, a, 'front')
    for wx in (x0 + length * 0.15, x0 + length * 0.6):
        s.rect(wx, ground - 12 - hgt + 12, wx + length * 0.2, ground - 12 - hgt + 28, b, 0.6)
    s.rect(x0 + length * 0.4, ground - 12 - hgt + 12, x0 + length * 0.52, ground - 14, b, 0.85)
    s.ellipse(x0 + length * 0.5, ground - 6, 10, 10, 0, b, 0.6)
    side = 1 if r.random() < 0.5 else -1
    bar = x0 + length if side > 0 else x0
    s.poly([[bar, ground - 20], [bar, ground - 14], [bar + side * 16, ground - 12], [bar + side * 16, ground - 15]], b,
           0.8)
    return s


def _boat_trailer(r: np.random.Generator, n_slots: int) -> Sketch:
    """A boat on a trailer: a hull with a cabin on a low frame with two wheels."""
    s = Sketch()
    a, b = 0, int(r.integers(n_slots))
    ground, length = 124.0, r.uniform(100, 120)
    x0 = 64 - length / 2
    s.rect(x0 + 10, ground - 22, x0 + length - 10, ground - 16, b, 0.8)
    for wx in (x0 + length * 0.35, x0 + length * 0.55):
        s.ellipse(wx, ground - 9, 9, 9, 0, b, 0.6)
    bow = 1 if r.random() < 0.5 else -1
    xb, xs = (x0 + length, x0) if bow > 0 else (x0, x0 + length)
    s.poly([[xs, ground - 58], [xb, ground - 62], [xb - bow * 22, ground - 22], [xs + bow * 6, ground - 22]], a,
           'front')
    s.rect(
        min(xs, xs + bow * length * 0.5) + 10, ground - 80,
        max(xs, xs + bow * length * 0.5) - 5, ground - 58, b, 'front')
    return s


def _airplane(r: np.random.Generator, n_slots: int) -> Sketch:
    """A small aircraft on the ground: fuselage, a wing, a tail fin, landing gear."""
    s = Sketch()
    a, b = 0, int(r.integers(n_slots))
    ground = 124.0
    nose = 1 if r.random() < 0.5 else -1
    s.ellipse(64, ground - 34, 58, 12, 0, a, 'front')
    tail_x = 64 - nose * 52
    s.poly([[tail_x, ground - 40], [tail_x - nose * 10, ground - 80], [tail_x + nose * 6, ground - 78],
            [tail_x + nose * 22, ground - 42]], a, 'side')
    s.poly(
        [[64 - 10, ground - 30], [64 + 10, ground - 30], [64 + nose * 40, ground - 20], [64 + nose * 22, ground - 18]],
        b, 'top')
    for gx in (64 - nose * 10, 64 + nose * 38):
        s.rect(gx - 2, ground - 24, gx + 2, ground - 6, b, 0.7)
        s.ellipse(gx, ground - 5, 5, 5, 0, b, 0.6)
    return s


def _hay(r: np.random.Generator, n_slots: int) -> Sketch:
    """Hay bales: a round bale (cylinder seen from its end) or a stack of square bales."""
    s = Sketch()
    ground = 124.0
    if r.random() < 0.6:
        rad = r.uniform(40, 58)
        s.rect(64 - rad * 0.6, ground - 2 * rad, 64 + rad * 1.0, ground, 0, 'side')
        s.ellipse(64 - rad * 0.6, ground - rad, rad * 0.8, rad, 0, int(r.integers(n_slots)), 'front')
    else:
        bw, bh = r.uniform(40, 55), r.uniform(22, 30)
        for row, n in enumerate((3, 2, 1)):
            for k in range(n):
                x = 64 - n * bw / 2 + k * bw
                s.rect(x, ground - (row + 1) * bh, x + bw - 2, ground - row * bh - 1, int(r.integers(n_slots)),
                       'front' if row else 0.9)
    s.patches = n_slots > 1
    return s


def _tent(r: np.random.Generator, n_slots: int) -> Sketch:
    """A tent: a ridge or dome shape with a darker door opening."""
    s = Sketch()
    ground, w = 124.0, r.uniform(90, 120)
    if r.random() < 0.5:
        s.poly([[64 - w / 2, ground], [64 + w / 2, ground], [64 + w * 0.1, ground - w * 0.6],
                [64 - w * 0.1, ground - w * 0.6]], 0, 'front')
    else:
        s.ellipse(64, ground, w / 2, w * 0.5, 0, 0, 'front')
        s.parts[int(ground):] = 0
    s.poly([[64 - 12, ground], [64 + 12, ground], [64, ground - w * 0.35]], int(r.integers(n_slots)), 0.45)
    return s


def _cones(r: np.random.Generator, n_slots: int) -> Sketch:
    """A row of 3-5 traffic cones standing across the road."""
    s = Sketch()
    b = int(r.integers(n_slots))
    n = int(r.integers(3, 6))
    span, ground = 120.0, 124.0
    for k in range(n):
        cx = 4 + span * (k + 0.5) / n
        hgt, base = r.uniform(40, 55), span / n * 0.8
        s.rect(cx - base / 2, ground - 5, cx + base / 2, ground, 0, 0.8)
        s.poly([[cx - base * 0.32, ground - 5], [cx + base * 0.32, ground - 5], [cx + 2, ground - hgt],
                [cx - 2, ground - hgt]], 0, 'front')
        y = ground - 5 - (hgt - 5) * 0.5
        s.rect(cx - base * 0.2, y - 5, cx + base * 0.2, y + 2, b, 'front')
    return s


def _piano(r: np.random.Generator, n_slots: int) -> Sketch:
    """An upright piano: a tall body, a keyboard shelf in a second material, legs and pedals."""
    s = Sketch()
    b = int(r.integers(n_slots))
    ground, w, h = 124.0, r.uniform(90, 115), r.uniform(80, 100)
    x0 = 64 - w / 2
    s.rect(x0, ground - h, x0 + w, ground - 8, 0, 'front')
    s.rect(x0 + 4, ground - h - 6, x0 + w - 4, ground - h, 0, 'top')
    s.rect(x0 - 4, ground - h * 0.55, x0 + w + 4, ground - h * 0.55 + 8, b, 'top')
    for lx in (x0 + 4, x0 + w - 12):
        s.rect(lx, ground - h * 0.55 + 8, lx + 8, ground, 0, 0.8)
    return s


@dataclass(frozen=True)
class AnomalyKind:
    """A large anomaly: its sketch, its largest dimension in metres, and the RoadAnomaly file-name stems."""
    sketch: Callable[[np.random.Generator, int], Sketch]
    size_m: Tuple[float, float]
    names: Tuple[str, ...]
    weight: float


#: File-name stems of RoadAnomaly21's animal frames.
ANIMAL_NAMES = ('cow', 'sheep', 'horse', 'deer', 'elephant', 'donkey', 'pig', 'zebra', 'camel', 'bear')
#: Large anomalies of RoadAnomaly21 and how often each is the frame's main anomaly; ``names`` are the stems of
#: the real release's file names (``cow0003.jpg``) the hidden-test frames are named after.
ANOMALY_KINDS: Dict[str, AnomalyKind] = {
    'animal': AnomalyKind(an._animal, (1.2, 3.5), ANIMAL_NAMES, 0.4),
    'tractor': AnomalyKind(_tractor, (3.0, 4.5), ('tractor', ), 0.08),
    'caravan': AnomalyKind(_caravan, (4.0, 6.0), ('caravan', ), 0.06),
    'boat_trailer': AnomalyKind(_boat_trailer, (4.0, 6.5), ('boat_trailer', ), 0.05),
    'airplane': AnomalyKind(_airplane, (7.0, 11.0), ('airplane', ), 0.03),
    'hay': AnomalyKind(_hay, (1.2, 2.5), ('hay', ), 0.07),
    'tent': AnomalyKind(_tent, (2.0, 3.5), ('tent', ), 0.04),
    'cones': AnomalyKind(_cones, (2.0, 4.0), ('cones', ), 0.07),
    'piano': AnomalyKind(_piano, (1.4, 1.7), ('piano', ), 0.03),
    'furniture': AnomalyKind(an._furniture, (0.8, 2.0), ('furniture', ), 0.04),
    'debris': AnomalyKind(an._debris, (1.5, 3.5), ('debris', ), 0.05),
    'rock': AnomalyKind(an._boulder, (0.8, 2.2), ('rock', ), 0.04),
    'log': AnomalyKind(an._log, (2.0, 5.0), ('log', ), 0.04),
}  # yapf: disable


def choose(r: np.random.Generator, weights: Dict[str, float], k: int = 1) -> List[str]:
    """``k`` distinct names drawn with probability proportional to ``weights`` (sorted names: order-free)."""
    names = sorted(weights)
    p = np.array([weights[n] for n in names], np.float64)
    return [str(n) for n in r.choice(names, size=k, replace=False, p=p / p.sum())]


# --------------------------------------------------------------------------------------------------
# road surfaces and weather of the ObstacleTrack scenes
# --------------------------------------------------------------------------------------------------
#: Road style of each RoadObstacle21 scene name (``validation`` frames draw one of ``VALIDATION_STYLES``).
SCENE_STYLES: Dict[str, str] = {
    'curvy-street': 'curvy',
    'one-way-street': 'wet',
    'gravel': 'gravel',
    'greyasphalt': 'grey',
    'motorway': 'motorway',
    'paving': 'paving',
    'darkasphalt': 'dark',
    'darkasphalt2': 'dark',
    'snowstorm1': 'snow',
    'snowstorm2': 'snow',
    'driveway': 'night',
}
ROAD_STYLES = ('default', 'curvy', 'wet', 'gravel', 'grey', 'motorway', 'paving', 'dark', 'snow', 'night')
VALIDATION_STYLES = ('default', 'grey', 'dark', 'curvy', 'paving', 'wet')


def _ground_coords(scene, top: int) -> Tuple[np.ndarray, np.ndarray]:
    """Road-relative lateral position and depth (metres) of every pixel row from ``top`` down (ground plane)."""
    cam = scene.cam
    dv = np.maximum(np.arange(top, scene.h, dtype=np.float32) + 0.5 - cam.horizon, 0.3)
    z_row = np.minimum(cam.f * cam.cam_h / dv, 2000.0).astype(np.float32)
    uu = (np.arange(scene.w, dtype=np.float32) + 0.5 - cam.cx) / cam.f
    rel = uu[None, :] * z_row[:, None] - scene.xc(z_row).astype(np.float32)[:, None]
    return rel, np.broadcast_to(z_row[:, None], rel.shape)


def restyle_road(scene, style: str) -> None:
    """Repaint the road surface after :func:`.layout.draw_ground` for ``style`` (surface styles only)."""
    if style not in ('wet', 'gravel', 'grey', 'paving', 'dark'):
        return
    r, cv = scene.rng, scene.canvas
    top = int(min(max(math.floor(scene.cam.horizon) + 1, 0), scene.h))
    if top >= scene.h:
        return
    road = np.isin(cv.lab[top:], ROAD_LABELS)
    img = cv.img[top:]
    fog = (0.65 * (1.0 - np.exp(-_ground_coords(scene, top)[1] / scene.fog)))[..., None]
    if style == 'dark':
        img[road] *= np.float32(r.uniform(0.5, 0.7))
    elif style == 'grey':
        img[road] = np.clip(img[road] * np.float32(r.uniform(1.3, 1.6)), 0, 255)
    elif style == 'wet':  # sky reflected in the wet surface, stronger towards the horizon
        rows = np.linspace(1.0, 0.0, scene.h - top, dtype=np.float32)[:, None, None]**2
        refl = np.broadcast_to(rows * np.float32(r.uniform(0.35, 0.6)), img.shape[:2] + (1, ))
        mixed = img * (1 - refl) + scene.horizon_col * refl
        img[road] = mixed[road]
    else:
        rel, zz = _ground_coords(scene, top)
        if style == 'gravel':
            base = hsv(r, (20, 45), (0.12, 0.3), (0.35, 0.55))
            grain = r.standard_normal(rel.shape, dtype=np.float32)
            lum = 1.0 + 0.15 * grain + 0.08 * noise(r, rel.shape[0], rel.shape[1], 12.0)
        else:  # paving stones in world coordinates
            base = hsv(r, (0, 40), (0.03, 0.18), (0.35, 0.6))
            ts = r.uniform(0.12, 0.25)
            table = r.uniform(-1, 1, (32, 32)).astype(np.float32)
            row = np.floor(zz / ts).astype(np.int32)
            xo = rel / ts + 0.5 * (row % 2)
            joint = ((zz / ts) % 1.0 < 0.12) | (xo % 1.0 < 0.08)
            lum = 1.0 + 0.08 * table[row % 32, np.floor(xo).astype(np.int32) % 32] - 0.3 * joint
        surf = (base[None, None, :] * lum[..., None]) * (1 - fog) + scene.horizon_col * fog
        img[road] = surf[road]
        cv.lab[top:][road] = ROAD  # no painted lines on gravel or paving


def weather(scene, rgb: np.ndarray, style: str) -> np.ndarray:
    """Snowstorm or night applied to the finished image (labels are not changed: flakes and darkness are not
    objects)."""
    if style not in ('snow', 'night'):
        return rgb
    r, h, w = scene.rng, scene.h, scene.w
    img = rgb.astype(np.float32)
    if style == 'snow':
        grey = img.mean(-1, keepdims=True)
        img = 0.6 * img + 0.4 * grey
        fogged = r.uniform(0.2, 0.4)
        img = img * (1 - fogged) + np.float32(225.0) * fogged
        flakes = np.zeros((h, w), np.float32)
        n = max(4, int(w * h / r.uniform(120, 250)))
        xs, ys = r.uniform(0, w, n), r.uniform(0, h, n)
        dx, dy = r.uniform(-3, 3), r.uniform(1, 4)
        for x, y, a in zip(xs, ys, r.uniform(0.4, 1.0, n)):
            cv2.line(flakes, (int(x), int(y)), (int(x + dx), int(y + dy)), float(a), 1)
        img = img * (1 - flakes[..., None]) + np.float32(245.0) * flakes[..., None]
    else:
        img *= np.float32(r.uniform(0.22, 0.35))
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        beam = np.exp(-((xx - scene.cam.cx) / (0.3 * w))**2 - ((h - yy) / (0.45 * h))**2)
        img *= (1.0 + r.uniform(1.5, 2.5) * beam)[..., None]
        img += r.uniform(2.0, 5.0) * r.standard_normal(img.shape, dtype=np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# the scene
# --------------------------------------------------------------------------------------------------
@dataclass
class Instance:
    """One anomaly or obstacle: its canvas label, its kind, its Lost and Found type id and its image box."""
    label: int
    kind: str
    laf_id: Optional[int] = None
    box: Tuple[float, float, float, float] = field(default=(0.0, 0.0, 0.0, 0.0))


class BenchmarkScene(Scene):
    """A street scene with large anomalies (``mode='anomaly'``), small obstacles (``'obstacle'``) or neither.

    Args:
        width, height: image size in pixels.
        rng: the frame's generator; every choice is drawn from it in a fixed order.
        mode: ``'clean'``, ``'anomaly'`` or ``'obstacle'``.
        style: road surface / weather (:data:`ROAD_STYLES`).
        main_kind: kind of the first anomaly or obstacle (the frame's name may say it: ``cow0003``); None draws it.
        obstacle_kinds: kinds obstacles are drawn from (Lost and Found: those with a class id).
        max_obstacles: at most this many obstacles (1-4, fewer when there is no room).
        ego_vehicle: paint the ego vehicle's bonnet at the bottom (Lost and Found), label :data:`EGO_VEHICLE`.
    """

    def __init__(self,
                 width: int,
                 height: int,
                 rng: np.random.Generator,
                 mode: str,
                 style: str = 'default',
                 main_kind: Optional[str] = None,
                 obstacle_kinds: Sequence[str] = OBSTACLE_SET_ALL,
                 max_obstacles: int = 3,
                 ego_vehicle: bool = False) -> None:
        if mode not in ('clean', 'anomaly', 'obstacle'):
            raise ValueError(f"mode={mode!r}: expected 'clean', 'anomaly' or 'obstacle'")
        if style not in ROAD_STYLES:
            raise ValueError(f'style={style!r}: expected one of {ROAD_STYLES}')
        kinds = ANOMALY_KINDS if mode == 'anomaly' else OBSTACLE_KINDS
        if main_kind is not None and main_kind not in kinds:
            raise ValueError(f'main_kind={main_kind!r} is not a {mode} kind; expected one of {sorted(kinds)}')
        unknown = sorted(set(obstacle_kinds) - set(OBSTACLE_KINDS))
        if unknown:
            raise ValueError(f'unknown obstacle kinds {unknown}; expected some of {sorted(OBSTACLE_KINDS)}')
        super().__init__(width, height, rng, anomalies=False, anomaly_fraction=0.0)
        self.mode, self.style, self.main_kind = mode, style, main_kind
        self.obstacle_kinds = tuple(sorted(obstacle_kinds))
        self.max_obstacles = int(np.clip(max_obstacles, 1, MAX_INSTANCES))
        self.instances: List[Instance] = []
        self.keepout: List[Tuple[float, float, float, float]] = []  # image boxes street objects keep clear of
        r = rng
        if style == 'curvy':
            self.curv = float(r.choice([-1, 1])) * r.uniform(0.002, 0.004)
        elif style == 'motorway':  # three or four one-way lanes, gentle curve
            self.n_lanes, self.two_way = int(r.choice([3, 4])), False
            self.half_road = self.n_lanes * self.lane_w / 2.0
            self.cam_lane = int(r.integers(self.n_lanes))
            self.x0 = -self.lane_center(self.cam_lane) + r.uniform(-0.4, 0.4)
            self.curv = r.uniform(-1.0, 1.0) * 0.0005
        self.hood_top = float(height)
        self.hood = None
        if ego_vehicle:
            self.hood_top = height * (1.0 - r.uniform(0.07, 0.11))
            self.hood = (car_paint_colour(r), r.uniform(0.55, 0.75))

    # -- placement -----------------------------------------------------------------------------------
    def ground_rel(self, u: float, v: float) -> Optional[float]:
        """Road-relative lateral position (m) of the ground point seen at pixel ``(u, v)``; None above the horizon."""
        cam = self.cam
        if v - cam.horizon < 0.5:
            return None
        z = cam.f * cam.cam_h / (v - cam.horizon)
        return (u - cam.cx) * z / cam.f - float(self.xc(z))

    def occludes_anomaly(self, x_lo: float, x_hi: float, z_front: float, z_back: float) -> bool:
        """The world check of :class:`~.scene.Scene`, and in the image: a street object (standing on the ground at
        ``[x_lo, x_hi] x [z_front, z_back]`` and rising from there) must not reach an instance's keep-out box."""
        if super().occludes_anomaly(x_lo, x_hi, z_front, z_back):
            return True
        if not self.keepout:
            return False
        pts = self.cam.project([x_lo, x_hi, x_lo, x_hi], 0.0, [z_front, z_front, z_back, z_back])
        u0, u1, v_bottom = pts[:, 0].min(), pts[:, 0].max(), pts[:, 1].max()
        return any(u1 >= a0 and u0 <= a1 and v_bottom >= b0 for a0, b0, a1, _ in self.keepout)

    def _new_instance(self, kind: str, laf_id: Optional[int], box: Tuple[float, float, float, float], x: float,
                      z: float, half_m: float, margin_px: float) -> Instance:
        inst = Instance(INSTANCE_BASE + len(self.instances), kind, laf_id, box)
        self.instances.append(inst)
        self.anomaly_boxes.append((x - half_m, x + half_m, z))
        x0, y0, x1, y1 = box
        self.keepout.append((x0 - margin_px, y0 - margin_px, x1 + margin_px, y1 + margin_px))
        return inst

    def _draw_item(self, inst: Instance, sketch: Sketch, parts: np.ndarray, bw: int, bh: int, u: float, v: float,
                   z: float, looks: List[str], own: np.random.Generator) -> Item:
        """The drawing step of one instance: :func:`.anomalies.draw_anomaly`, then its pixels get its own label."""

        def draw() -> None:
            an.draw_anomaly(self, sketch, parts, bw, bh, u, v, z, looks, own)
            x0, y0 = int(round(u - bw / 2)), int(round(v - bh))
            sub = self.canvas.lab[max(y0, 0):max(y0 + bh, 0), max(x0, 0):max(x0 + bw, 0)]
            sub[sub == ANOMALY] = inst.label

        return z, draw

    def obstacle_items(self) -> List[Item]:
        """1 to ``max_obstacles`` small obstacles on the road surface, each surrounded by road in the image."""
        r, cam, w, h = self.rng, self.cam, self.w, self.h
        probs = np.array([0.5, 0.3, 0.15, 0.05])[:self.max_obstacles]
        n = int(r.choice(np.arange(1, len(probs) + 1), p=probs / probs.sum()))
        items: List[Item] = []
        weights = {k: 1.0 for k in self.obstacle_kinds}
        for i in range(n):
            own = np.random.default_rng(int(r.integers(1 << 62)))
            kind_name = self.main_kind if i == 0 and self.main_kind else choose(own, weights)[0]
            kind = OBSTACLE_KINDS[kind_name]
            n_slots = int(own.choice([1, 2, 3], p=[0.2, 0.55, 0.25]))
            sketch = kind.sketch(own, n_slots)
            parts = sketch.cropped()
            if parts is None:
                continue
            mh, mw = parts.shape
            size_m = own.uniform(*kind.size_m)
            width_m = size_m * mw / max(mw, mh)
            px_lo, px_hi = max(2.0, 0.04 * h), max(3.0, 0.18 * h)

            def propose() -> Optional[tuple]:
                zlo = max(3.0, cam.f * size_m / px_hi)
                zhi = max(min(cam.f * size_m / px_lo, 45.0), zlo + 1.0)
                z = zlo + (zhi - zlo) * r.random()**1.3
                edge = self.half_road - width_m / 2 - 0.3
                if edge <= 0:
                    return None
                rel = r.uniform(-edge, edge)
                x = float(self.xc(z)) + rel
                u, v = cam.project(x, 0.0, z)[0]
                unit = cam.scale(z) * size_m / max(mw, mh)
                bw, bh = max(2, int(round(mw * unit))), max(2, int(round(mh * unit)))
                x0, y0 = round(u - bw / 2), round(v - bh)
                box = (x0, y0, x0 + bw, y0 + bh)
                if x0 < 2 or x0 + bw > w - 2 or y0 < cam.horizon + 2 or y0 + bh > min(h, self.hood_top) - 2:
                    return None
                if any(x0 <= k1 + 2 and x0 + bw >= k0 - 2 and y0 <= l1 + 2 and y0 + bh >= l0 - 2
                       for k0, l0, k1, l1 in (o.box for o in self.instances)):
                    return None
                for uu, vv in ((x0 - 1, y0 - 1), (x0 + bw, y0 - 1), (x0 - 1, y0 + bh), (x0 + bw, y0 + bh)):
                    rr = self.ground_rel(uu + 0.5, vv + 0.5)  # the road around the box, with a margin
                    if rr is None or abs(rr) > self.half_road - 0.15:
                        return None
                return x, z, u, v, bw, bh, box

            found = place(propose, 1, 30)
            if not found:
                continue
            x, z, u, v, bw, bh, box = found[0]
            looks = choose(own, OBSTACLE_APPEARANCE_WEIGHTS, n_slots)
            inst = self._new_instance(kind_name, kind.laf_id, box, x, z, width_m / 2, 2.0 + 0.15 * max(bw, bh))
            items.append(self._draw_item(inst, sketch, parts, bw, bh, u, v, z, looks, own))
        return items

    def anomaly_items(self) -> List[Item]:
        """One to three large anomalies (a herd of two to four for animals) on or next to the road."""
        r, cam, w, h = self.rng, self.cam, self.w, self.h
        weights = {k: v.weight for k, v in ANOMALY_KINDS.items()}
        main = self.main_kind or choose(r, weights)[0]
        herd = main == 'animal' and r.random() < 0.35
        n = int(r.integers(2, 5)) if herd else int(r.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))
        items: List[Item] = []
        for i in range(n):
            own = np.random.default_rng(int(r.integers(1 << 62)))
            kind_name = main if i == 0 or herd else choose(own, weights)[0]
            kind = ANOMALY_KINDS[kind_name]
            n_slots = int(own.choice([1, 2, 3], p=[0.15, 0.55, 0.3]))
            sketch = kind.sketch(own, n_slots)
            parts = sketch.cropped()
            if parts is None:
                continue
            mh, mw = parts.shape
            fill = float((parts > 0).sum())
            size_m = own.uniform(*kind.size_m)
            share = own.uniform(0.02, 0.18) * (0.6 if herd or i > 0 else 1.0)

            def propose() -> Optional[tuple]:
                unit = math.sqrt(share * w * h / fill)  # pixels per sketch unit for the drawn area share
                z = cam.f * size_m / (unit * max(mw, mh))
                z_min = cam.min_visible_z(0.0) + 0.5
                if z < z_min:  # too close to stand in view: push it back, smaller
                    z = z_min + r.uniform(0.0, 3.0)
                    unit = cam.scale(z) * size_m / max(mw, mh)
                bw, bh = max(2, int(round(mw * unit))), max(2, int(round(mh * unit)))
                if r.random() < 0.65:
                    rel = r.uniform(-self.half_road + 0.3, self.half_road - 0.3)
                else:
                    side = int(r.choice([-1, 1]))
                    rel = side * (self.half_road + r.uniform(0.2, self.sidewalk[0 if side < 0 else 1] + 3.0))
                x = float(self.xc(z)) + rel
                u, v = cam.project(x, 0.0, z)[0]
                x0, y0 = round(u - bw / 2), round(v - bh)
                if x0 < 1 or x0 + bw > w - 1 or y0 < 1 or v > h - 1:
                    return None
                return x, z, u, v, bw, bh, (x0, y0, x0 + bw, y0 + bh)

            found = place(propose, 1, 30)
            if not found:
                continue
            x, z, u, v, bw, bh, box = found[0]
            looks = choose(own, an.APPEARANCE_WEIGHTS, n_slots)
            inst = self._new_instance(kind_name, None, box, x, z, bw / 2 / cam.scale(z), 2.0)
            items.append(self._draw_item(inst, sketch, parts, bw, bh, u, v, z, looks, own))
        return items

    # -- drawing -------------------------------------------------------------------------------------
    def draw_hood(self) -> None:
        """The ego vehicle's bonnet: a flat arc across the bottom of the image, with a reflection gradient."""
        if self.hood is None:
            return
        colour, gloss = self.hood
        w, h = self.w, self.h
        xs = np.linspace(-0.05 * w, 1.05 * w, 33)
        ys = self.hood_top + (h - self.hood_top) * ((xs - w / 2) / (0.62 * w))**2
        poly = np.concatenate([np.stack([xs, ys], -1), [[1.05 * w, h + 1.0], [-0.05 * w, h + 1.0]]])

        def tex(x0: int, y0: int, tw: int, th: int) -> np.ndarray:
            t = np.linspace(gloss, 0.35, th, dtype=np.float32)[:, None, None]
            return np.broadcast_to(colour * (1 - t) + self.horizon_col * t, (th, tw, 3)).copy()

        self.canvas.paint([poly], EGO_VEHICLE, tex)

    def render(self) -> Tuple[np.ndarray, np.ndarray]:
        """Paint the scene; returns ``(rgb uint8 (H, W, 3), canvas labels uint8 (H, W))``.

        Canvas labels: the StreetHazards values 1..13 of :mod:`.classes`, ``INSTANCE_BASE + k`` for instance
        ``k`` of :attr:`instances`, and :data:`EGO_VEHICLE`.
        """
        layout.draw_sky(self)
        layout.draw_ground(self)
        restyle_road(self, self.style)
        layout.draw_background(self)
        for _, fn in sorted(layout.roadside_items(self), key=lambda t: -t[0]):
            fn()
        street: List[Item] = []
        if self.mode == 'obstacle':
            street += self.obstacle_items()
        elif self.mode == 'anomaly':
            street += self.anomaly_items()
        street += objects.street_items(self)
        for _, fn in sorted(street, key=lambda t: -t[0]):
            fn()
        self.draw_hood()
        rgb, lab = self.finish()
        return weather(self, rgb, self.style), lab


def enclosed_by_road(lab: np.ndarray, instance_labels: Sequence[int]) -> bool:
    """Whether every listed instance is visible, clear of the image border, and its 8-neighbours outside it are
    road, road line or another instance."""
    allowed = np.isin(lab, list(ROAD_LABELS) + list(instance_labels))
    h, w = lab.shape
    kernel = np.ones((3, 3), np.uint8)
    for value in instance_labels:
        m = (lab == value).astype(np.uint8)
        ys, xs = np.nonzero(m)
        if len(ys) == 0 or ys.min() == 0 or xs.min() == 0 or ys.max() == h - 1 or xs.max() == w - 1:
            return False
        ring = (cv2.dilate(m, kernel) > 0) & (m == 0)
        if not allowed[ring].all():
            return False
    return True


def render_frame(width: int,
                 height: int,
                 seeds: Sequence[int],
                 mode: str,
                 max_attempts: int = 16,
                 min_anomaly_share: float = 0.01,
                 **scene_kwargs) -> Tuple[np.ndarray, np.ndarray, List[Instance]]:
    """Draw one frame, re-drawing it until it is valid; returns ``(rgb, canvas labels, instances)``.

    Attempt ``a`` draws from ``SeedSequence([*seeds, a])``, so a frame is deterministic. Valid: any clean frame;
    an anomaly frame whose anomalies cover at least ``min_anomaly_share`` of the image; an obstacle frame with at
    least one obstacle, every obstacle visible and surrounded by road (:func:`enclosed_by_road`).

    Raises:
        RuntimeError: no valid frame in ``max_attempts`` attempts (names the seeds and the size).
    """
    for attempt in range(int(max_attempts)):
        rng = np.random.default_rng(np.random.SeedSequence([int(s) for s in seeds] + [attempt]))
        scene = BenchmarkScene(width, height, rng, mode, **scene_kwargs)
        rgb, lab = scene.render()
        labels = [i.label for i in scene.instances]
        if mode == 'clean':
            return rgb, lab, []
        if mode == 'anomaly':
            if labels and np.isin(lab, labels).mean() >= min_anomaly_share:
                return rgb, lab, scene.instances
        elif labels and enclosed_by_road(lab, labels):
            return rgb, lab, scene.instances
    raise RuntimeError(f'no valid {mode} frame at {width}x{height} in {max_attempts} attempts (seeds {list(seeds)}); '
                       'the image may be too small for the objects to fit')
