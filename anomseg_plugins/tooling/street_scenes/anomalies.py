"""Test-split anomalies: ordinary-coloured objects that are out of place.

Real StreetHazards anomalies (Hendrycks et al., ICML 2022) are CARLA assets that do not belong on a road
-- animals, furniture, debris, appliances -- with ordinary colours and materials. What sets them apart
is shape, size, placement and 3D context, not colour. This module draws anomalies the same way:

- **colours and textures** come from the known classes' own generators (:mod:`.textures`: facade with
  windows, block bond, wooden planks, foliage, bark, car paint, metal, paving, asphalt, painted
  clutter, ...), with the same jitter, so a colour-only detector sees ordinary colours. A
  class-frequency-like weighting (``APPEARANCE_WEIGHTS``) keeps the anomaly colours where the known
  pixels are, not in the rare classes' corners. The earlier design painted anomalies in hue bands no
  class used, and a 32-component Gaussian mixture on Lab colours alone then reached 89 % pooled AUROC
  (``anomseg_plugins.tooling.colour_baseline`` re-checks this on any generated copy);
- **out of context**: each object combines two or three known appearances (per part, or in patches),
  and shows them at the wrong scale (0.3-3x) or orientation (rotated planks, sideways facades);
- **shapes no known class has**: animal-like quadrupeds, furniture composed of boxes (tables, chairs,
  cabinets, sofas), debris piles of irregular slabs, irregular boulders/bags, fallen logs or pipes,
  standing on the road (80 %) or the sidewalk, 0.35-2.5 m in size;
- **shading consistent with the scene**: the scene's face shade factors (top, front, sides), a vertical
  ambient-occlusion gradient, a contact shadow on the ground, and the scene's haze with distance.

Anomalies cover ``anomaly_fraction`` of the test pixels on average (real StreetHazards: 1.03 %); about one
test image in seven has none, most have one to three. Every anomaly draws its randomness from its own
generator, spawned from the scene's, so scenes stay deterministic per seed.
"""
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .classes import ANOMALY
from .placement import place
from .textures import (FlatTexture, asphalt_colour, bark_colour, building_texture, car_paint_colour, clutter_colour,
                       fence_texture, flat, foliage_colour, grass_colour, kerb_colour, leafy, metal_colour, noise,
                       paving_colour, shirt_colour, wall_texture)

#: How often each known appearance is drawn for an anomaly part. Roughly the known classes' share of the
#: image area that is not sky, road or sidewalk surface (facades, foliage, vehicles, fences, street
#: furniture), with grey ground and metal surfaces kept for the grey share of the known pixels.
APPEARANCE_WEIGHTS: Dict[str, float] = {
    'building': 0.16,
    'wall': 0.13,
    'fence': 0.10,
    'foliage': 0.12,
    'bark': 0.05,
    'car': 0.13,
    'metal': 0.08,
    'paving': 0.09,
    'asphalt': 0.06,
    'kerb': 0.03,
    'clutter': 0.04,
    'shirt': 0.01,
}

#: Silhouette families and how often each is drawn.
SHAPE_WEIGHTS: Dict[str, float] = {
    'animal': 0.2,
    'furniture': 0.22,
    'debris': 0.2,
    'boulder': 0.2,
    'log': 0.18,
}


# --------------------------------------------------------------------------------------------------
# appearances: the known classes' textures, evaluated flat (h, w) at ``ppm`` texels per metre
# --------------------------------------------------------------------------------------------------
def _grain(colour: np.ndarray,
           r: np.random.Generator,
           streak: float,
           lf: float = 0.06,
           hf: float = 0.035) -> FlatTexture:
    """A flat colour with luminance noise, stretched along x by ``streak`` (wood/bark grain when > 1)."""

    def fn(th: int, tw: int, ppm: float) -> np.ndarray:
        n = noise(r, th, max(2, int(tw / streak)), max(2.0, 0.15 * ppm))
        n = cv2.resize(n, (tw, th), interpolation=cv2.INTER_LINEAR)
        return flat(r, th, tw, colour, lf=lf, lf_cell=max(3.0, 0.5 * ppm), hf=hf) * (1.0 + 0.06 * n)[..., None]

    return fn


def _paving(colour: np.ndarray, r: np.random.Generator) -> FlatTexture:
    """Paving tiles with joints (the sidewalk's texture), tile size 0.3-0.8 m."""
    ts, joint_w, dark = r.uniform(0.3, 0.8), r.uniform(0.03, 0.06), r.uniform(0.25, 0.4)
    table = r.uniform(-1, 1, (32, 32)).astype(np.float32)

    def fn(th: int, tw: int, ppm: float) -> np.ndarray:
        ym = (np.arange(th, dtype=np.float32) + 0.5)[:, None] / ppm / ts
        xm = (np.arange(tw, dtype=np.float32) + 0.5)[None, :] / ppm / ts
        tile = table[np.floor(ym).astype(np.int32) % 32, np.floor(xm).astype(np.int32) % 32]
        joint = ((ym % 1.0) < joint_w / ts) | ((xm % 1.0) < joint_w / ts)
        lum = 1.0 + 0.07 * tile - joint * dark
        return flat(r, th, tw, colour, lf=0.03, hf=0.03) * lum[..., None]

    return fn


def appearance(r: np.random.Generator, name: str) -> FlatTexture:
    """A known class's appearance ``fn(h, w, ppm) -> (h, w, 3)`` drawn with that class's own generator."""
    if name == 'building':
        return building_texture(r)
    if name == 'wall':
        return wall_texture(r)
    if name == 'fence':
        return fence_texture(r)
    if name == 'foliage':
        col = foliage_colour(r) if r.random() < 0.6 else grass_colour(r)
        return lambda th, tw, ppm: leafy(r, th, tw, col, max(1.0, 0.1 * ppm))
    if name == 'bark':
        return _grain(bark_colour(r), r, streak=6.0, lf=0.1)
    if name == 'car':
        return _grain(car_paint_colour(r), r, streak=1.0, lf=0.03, hf=0.02)
    if name == 'metal':
        return _grain(metal_colour(r), r, streak=4.0, lf=0.05)
    if name == 'paving':
        return _paving(paving_colour(r), r)
    if name == 'asphalt':
        return _grain(asphalt_colour(r), r, streak=1.0, lf=0.07, hf=0.035)
    if name == 'kerb':
        return _grain(kerb_colour(r), r, streak=1.0, lf=0.04, hf=0.04)
    if name == 'clutter':
        return _grain(clutter_colour(r), r, streak=1.0, lf=0.06)
    if name == 'shirt':
        return _grain(shirt_colour(r), r, streak=1.0, lf=0.1)
    raise KeyError(f'unknown anomaly appearance {name!r}; expected one of {sorted(APPEARANCE_WEIGHTS)}')


def _oriented(look: FlatTexture, h: int, w: int, ppm: float, angle: float) -> np.ndarray:
    """``look`` evaluated on ``h x w`` texels and turned by ``angle`` degrees (a known texture, wrong way up)."""
    if angle == 0.0:
        return look(h, w, ppm)
    if angle == 90.0:
        return np.ascontiguousarray(look(w, h, ppm).transpose(1, 0, 2))
    s = int(math.ceil(math.hypot(h, w))) + 2
    t = look(s, s, ppm)
    m = cv2.getRotationMatrix2D((s / 2.0, s / 2.0), angle, 1.0)
    t = cv2.warpAffine(t, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    y0, x0 = (s - h) // 2, (s - w) // 2
    return t[y0:y0 + h, x0:x0 + w]


# --------------------------------------------------------------------------------------------------
# silhouettes: part maps on a 128 x 128 sketch, ground at the bottom
# --------------------------------------------------------------------------------------------------
class Sketch:
    """A silhouette made of parts: ``parts`` (0 = empty, k = part k) and per part a texture slot and a shade.

    ``shade`` is a face orientation (``'top'``, ``'front'``, ``'side'``) resolved with the scene's
    lighting, or a number. ``patches`` asks for the parts to be split further into patches of two
    appearances (a blend of two classes' materials within one surface).
    """

    N = 128

    def __init__(self) -> None:
        self.parts = np.zeros((self.N, self.N), np.uint8)
        self.slots: List[int] = []
        self.shades: List[object] = []
        self.patches = False

    def _next(self, slot: int, shade) -> int:
        self.slots.append(int(slot))
        self.shades.append(shade)
        return len(self.slots)

    def poly(self, pts, slot: int, shade='front') -> None:
        k = self._next(slot, shade)
        cv2.fillPoly(self.parts, [np.round(np.asarray(pts, np.float64)).astype(np.int32)], int(k))

    def rect(self, x0: float, y0: float, x1: float, y1: float, slot: int, shade='front') -> None:
        self.poly([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], slot, shade)

    def ellipse(self, cx: float, cy: float, ax: float, ay: float, angle: float, slot: int, shade='front') -> None:
        k = self._next(slot, shade)
        cv2.ellipse(self.parts, (int(round(cx)), int(round(cy))), (max(1, int(round(ax))), max(1, int(round(ay)))),
                    float(angle), 0, 360, int(k), -1)

    def cropped(self) -> Optional[np.ndarray]:
        """The part map cropped to its bounding box (None when empty)."""
        ys, xs = np.nonzero(self.parts)
        if len(ys) == 0:
            return None
        return self.parts[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def _animal(r: np.random.Generator, n_slots: int) -> Sketch:
    """A quadruped (dog/deer/cow-like): body, neck and head, four legs, ears and a tail."""
    s = Sketch()
    fur, other = 0, int(r.integers(n_slots))
    bw, bh = r.uniform(28, 44), r.uniform(12, 22)
    cx, cy = 64.0, 64.0
    leg_h = r.uniform(16, 34)
    face = 1 if r.random() < 0.5 else -1
    for lx in (cx - bw * 0.75, cx - bw * 0.5, cx + bw * 0.45, cx + bw * 0.7):
        lw = r.uniform(2.5, 4.5)
        tilt = r.uniform(-5, 5)
        s.poly([[lx - lw, cy], [lx + lw, cy], [lx + lw + tilt, cy + bh + leg_h], [lx - lw + tilt, cy + bh + leg_h]],
               other if r.random() < 0.5 else fur, 0.85)
    s.ellipse(cx, cy, bw, bh, r.uniform(-6, 6), fur, 'front')
    nx = cx + face * bw * 0.85
    neck_up = r.uniform(10, 26)
    s.poly([[nx - 6, cy - bh * 0.3], [nx + 6, cy - bh * 0.3], [nx + face * 8 + 4, cy - bh - neck_up],
            [nx + face * 8 - 4, cy - bh - neck_up]], fur, 'front')
    hx, hy = nx + face * 12, cy - bh - neck_up
    s.ellipse(hx, hy, r.uniform(8, 13), r.uniform(5, 8), face * r.uniform(0, 25), other, 'top')
    for e in (-1, 1):  # ears / horns
        tip = [hx + e * 6 + face * 2, hy - r.uniform(10, 16)]
        s.poly([[hx + e * 3, hy - 4], [hx + e * 7, hy - 4], tip], other, 0.9)
    tx = cx - face * bw
    s.poly([[tx, cy - bh * 0.4], [tx - face * 3, cy - bh * 0.6], [tx - face * r.uniform(10, 20), cy + r.uniform(0, 18)],
            [tx - face * r.uniform(6, 10), cy + r.uniform(4, 20)]], fur, 0.9)
    return s


def _furniture(r: np.random.Generator, n_slots: int) -> Sketch:
    """Furniture composed of boxes: a table, a chair, a cabinet or a sofa (tops lit, fronts in shade)."""
    s = Sketch()
    kind = str(r.choice(['table', 'chair', 'cabinet', 'sofa']))
    a, b = 0, int(r.integers(n_slots))
    ground = 112.0
    if kind == 'table':
        w, h, top = r.uniform(60, 100), r.uniform(35, 60), r.uniform(5, 10)
        x0 = 64 - w / 2
        for lx in (x0 + 3, x0 + w - 10):
            s.rect(lx, ground - h, lx + 7, ground, b, 0.85)
        s.rect(x0, ground - h - top, x0 + w, ground - h, a, 'front')
        s.rect(x0 + 4, ground - h - top - r.uniform(4, 8), x0 + w - 4, ground - h - top, a, 'top')
    elif kind == 'chair':
        w, seat, back = r.uniform(30, 45), r.uniform(25, 40), r.uniform(30, 50)
        x0 = 64 - w / 2
        for lx in (x0, x0 + w - 5):
            s.rect(lx, ground - seat, lx + 5, ground, b, 0.85)
        s.rect(x0 - 2, ground - seat - 6, x0 + w + 2, ground - seat, a, 'top')
        s.rect(x0, ground - seat - 6 - back, x0 + w, ground - seat - 6, a if r.random() < 0.5 else b, 'front')
    elif kind == 'cabinet':
        w, h = r.uniform(40, 75), r.uniform(55, 100)
        x0 = 64 - w / 2
        s.rect(x0, ground - h, x0 + w, ground, a, 'front')
        s.rect(x0 + 3, ground - h - 6, x0 + w + 6, ground - h, a, 'top')
        s.rect(x0 + w, ground - h, x0 + w + 6, ground - 4, a, 'side')
        for k in range(int(r.integers(1, 4))):  # doors / drawers in another material
            dy0 = ground - h + 6 + k * (h - 10) / 3
            s.rect(x0 + 5, dy0, x0 + w - 5, dy0 + (h - 10) / 3 - 4, b, 0.95)
    else:
        w, h, back = r.uniform(80, 115), r.uniform(20, 32), r.uniform(18, 30)
        x0 = 64 - w / 2
        s.rect(x0 + 8, ground - h - back, x0 + w - 8, ground - h + 4, b, 'front')
        s.rect(x0 + 8, ground - h, x0 + w - 8, ground - 4, a, 'front')
        for ax0 in (x0, x0 + w - 12):
            s.rect(ax0, ground - h - r.uniform(6, 12), ax0 + 12, ground, a, 'side')
        s.rect(x0 + 6, ground - 4, x0 + w - 6, ground, b, 0.7)
    return s


def _debris(r: np.random.Generator, n_slots: int) -> Sketch:
    """A debris pile: 4-8 irregular slabs and fragments, larger in the middle, in 2-3 materials."""
    s = Sketch()
    n = int(r.integers(4, 9))
    for i in range(n):
        cx = 64 + r.uniform(-45, 45)
        size = (1.0 - 0.6 * abs(cx - 64) / 50.0) * r.uniform(14, 30)
        cy = 112 - size * r.uniform(0.4, 0.9)
        k = int(r.integers(4, 8))
        th = np.sort(r.uniform(0, 2 * np.pi, k))
        rad = size * r.uniform(0.5, 1.0, k)
        sq = r.uniform(0.4, 1.0)
        pts = np.stack([cx + rad * np.cos(th), cy + rad * np.sin(th) * sq], -1)
        s.poly(np.clip(pts, 0, 127), int(r.integers(n_slots)), 'top' if r.random() < 0.4 else r.uniform(0.75, 1.05))
    return s


def _boulder(r: np.random.Generator, n_slots: int) -> Sketch:
    """An irregular lump (rock, sack, bundle) with a flattened base, in patches of two materials."""
    s = Sketch()
    th = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    rad = np.ones_like(th)
    for k in range(2, 7):
        rad += r.uniform(0, 0.45 / k) * np.cos(k * th + r.uniform(0, 2 * np.pi))
    asp = r.uniform(0.7, 1.6)
    pts = np.stack([64 + 42 * rad * np.cos(th) * asp, 64 + 42 * rad * np.sin(th) / asp], -1)
    pts[:, 1] = np.minimum(pts[:, 1], 64 + 42 / asp * r.uniform(0.55, 0.85))  # resting on a flat base
    s.poly(np.clip(pts, 0, 127), 0, 'front')
    s.patches = n_slots > 1
    return s


def _log(r: np.random.Generator, n_slots: int) -> Sketch:
    """A fallen log, pipe or rolled carpet lying across the lane, with a visible end cap."""
    s = Sketch()
    length, thick = r.uniform(80, 120), r.uniform(14, 30)
    ang = r.uniform(-12, 12)
    box = cv2.boxPoints(((64.0, 100.0 - thick / 2), (length, thick), ang))
    s.poly(box, 0, 'front')
    end = box[np.argmax(box[:, 0])] if r.random() < 0.5 else box[np.argmin(box[:, 0])]
    s.ellipse(end[0], 100 - thick / 2, thick * 0.25, thick / 2, 0, int(r.integers(n_slots)), 'side')
    if r.random() < 0.5:  # a branch or a bent end
        bx = 64 + r.uniform(-length / 3, length / 3)
        tip = [bx + r.uniform(-12, 12), 100 - thick - r.uniform(15, 35)]
        s.poly([[bx - 3, 100 - thick], [bx + 3, 100 - thick], tip], 0, 0.9)
    return s


SHAPES: Dict[str, Callable[[np.random.Generator, int], Sketch]] = dict(
    animal=_animal, furniture=_furniture, debris=_debris, boulder=_boulder, log=_log)


def _choose(r: np.random.Generator, weights: Dict[str, float], k: int = 1) -> List[str]:
    """``k`` distinct names drawn with probability proportional to ``weights``."""
    names = sorted(weights)
    p = np.array([weights[n] for n in names], np.float64)
    return [str(n) for n in r.choice(names, size=k, replace=False, p=p / p.sum())]


# --------------------------------------------------------------------------------------------------
# placement and drawing
# --------------------------------------------------------------------------------------------------
def anomaly_items(scene) -> List[tuple]:
    """1-3 anomalies (none in ~15 % of images) covering ``anomaly_fraction`` of the pixels on average."""
    r, cam = scene.rng, scene.cam
    counts, probs = np.array([0, 1, 2, 3]), np.array([0.15, 0.4, 0.3, 0.15])
    k = int(r.choice(counts, p=probs))
    if k == 0:
        return []
    # expected covered share = anomaly_fraction: scale by k / E[k]; 1.08 offsets what near
    # objects and the image border hide
    total = scene.anomaly_fraction * scene.w * scene.h * k / float((counts * probs).sum()) * \
        r.uniform(0.75, 1.25) * 1.08
    shares = r.dirichlet(np.full(k, 2.0)) * total
    items = []
    for area in shares:
        area = max(float(area), 12.0)
        own = np.random.default_rng(int(r.integers(1 << 62)))  # this anomaly's own randomness
        n_slots = int(own.choice([1, 2, 3], p=[0.15, 0.55, 0.3]))
        shape = _choose(own, SHAPE_WEIGHTS)[0]
        sketch = SHAPES[shape](own, n_slots)
        parts = sketch.cropped()
        if parts is None:
            continue
        mh, mw = parts.shape
        scale = math.sqrt(area / max(float((parts > 0).sum()), 1.0))
        bw, bh = max(2, int(round(mw * scale))), max(2, int(round(mh * scale)))
        size_px = math.sqrt(area)

        def propose() -> Optional[Tuple[float, float, float, float]]:
            if r.random() < 0.8:
                rel = r.uniform(-scene.half_road + 0.4, scene.half_road - 0.4)
            else:
                side = int(r.choice([-1, 1]))
                sw = scene.sidewalk[0 if side < 0 else 1]
                rel = side * (scene.half_road + r.uniform(0.3, max(0.35, sw - 0.3)))
            # apparent size sqrt(area) corresponds to 0.35 .. 2.5 m objects
            zlo = max(cam.f * 0.35 / size_px, 3.0)
            zhi = min(max(cam.f * 2.5 / size_px, zlo + 1.0), 60.0)
            z = r.uniform(zlo, zhi)
            x = float(scene.xc(z)) + rel
            u, v = cam.project(x, 0.0, z)[0]
            inside = bw / 2 + 1 <= u <= scene.w - bw / 2 - 1 and bh + 1 <= v <= scene.h - 1
            return (x, z, u, v) if inside else None

        found = place(propose, 1, 25)
        if not found:
            continue
        x, z, u, v = found[0]
        half_m = bw / 2 / cam.scale(z)
        scene.anomaly_boxes.append((x - half_m, x + half_m, z))
        looks = _choose(own, APPEARANCE_WEIGHTS, n_slots)
        items.append(
            (z, lambda sketch=sketch, parts=parts, bw=bw, bh=bh, u=u, v=v, z=z, looks=looks, own=own: draw_anomaly(
                scene, sketch, parts, bw, bh, u, v, z, looks, own)))
    return items


def _resolve_shade(scene, shade) -> float:
    if shade == 'top':
        return scene.shade_top
    if shade == 'side':
        return 0.9 * min(scene.shade_left, scene.shade_right)
    if shade == 'front':
        return scene.shade_front
    return float(shade) * scene.shade_front


def draw_anomaly(scene, sketch: Sketch, parts: np.ndarray, bw: int, bh: int, u: float, v: float, z: float,
                 looks: Sequence[str], r: np.random.Generator) -> None:
    """Paint one anomaly standing on the ground at image point ``(u, v)`` (bottom centre), ``bw x bh`` pixels."""
    part_map = cv2.resize(parts, (bw, bh), interpolation=cv2.INTER_NEAREST)
    mask = part_map > 0
    if not mask.any():
        return
    x0, y0 = int(round(u - bw / 2)), int(round(v - bh))
    # contact shadow on the ground under the object (the ground keeps its label)
    cv = scene.canvas
    sh = np.zeros((bh + 8, bw + 8), np.uint8)
    cv2.ellipse(sh, (bw // 2 + 4, bh + 2), (max(1, int(bw * 0.55)), max(1, int(bh * 0.08) + 1)), 0, 0, 360, 1, -1)
    ys, xs = np.nonzero(sh)
    ys, xs = ys + y0 - 2, xs + x0 - 4
    ok = (ys >= 0) & (ys < cv.h) & (xs >= 0) & (xs < cv.w)
    cv.img[ys[ok], xs[ok]] *= np.float32(r.uniform(0.6, 0.85))

    # texture of each slot: a known appearance at the wrong scale / orientation
    ppm = scene.cam.scale(z)
    layers = []
    for name in looks:
        tex_scale = float(np.exp(r.uniform(math.log(0.3), math.log(3.0))))
        angle = float(r.choice([0.0, 90.0, r.uniform(-60, 60)], p=[0.4, 0.3, 0.3]))
        layers.append(_oriented(appearance(r, name), bh, bw, max(ppm * tex_scale, 1.0), angle))
    slot_lut = np.array([0] + sketch.slots, np.int64) % len(layers)
    slot_map = slot_lut[part_map]
    if sketch.patches and len(layers) > 1:  # patches of a second material across the surface
        blotch = noise(r, bh, bw, max(2.0, min(bh, bw) / r.uniform(1.5, 4.0)))
        slot_map = np.where(blotch > r.uniform(-0.4, 0.4), (slot_map + 1) % len(layers), slot_map)
    tex = np.stack(layers)[slot_map, np.arange(bh)[:, None], np.arange(bw)[None, :]]
    shade_lut = np.array([1.0] + [_resolve_shade(scene, s) for s in sketch.shades], np.float32)
    # ambient occlusion: darker towards the ground
    ao = (1.0 - r.uniform(0.1, 0.25) * (np.arange(bh, dtype=np.float32) / max(bh - 1, 1))**1.5)[:, None]
    tex = tex * (shade_lut[part_map] * ao)[..., None]
    cv.paint_mask(x0, y0, mask.astype(np.uint8), ANOMALY, scene.haze(tex, z))
