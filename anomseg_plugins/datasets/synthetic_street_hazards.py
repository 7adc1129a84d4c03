"""Offline stand-in for StreetHazards: procedurally drawn road scenes in the real layout and encoding.

No copy of StreetHazards (Hendrycks et al., "Scaling Out-of-Distribution Detection for Real-World
Settings", CARLA, 1280x720) can be downloaded here, so tests and the demo run on scenes drawn by
this module. It writes exactly what the real archives hold (SPEC section 1)::

    <out>/train/images/training/t1-3/<i>.png     <out>/train/annotations/training/t1-3/<i>.png
    <out>/train/images/validation/t4/<i>.png     <out>/train/annotations/validation/t4/<i>.png
    <out>/test/images/test/t5/<i>.png, t6/...    <out>/test/annotations/test/t5/..., t6/...
    <out>/train/train.odgt  <out>/train/validation.odgt  <out>/test/test.odgt

Images are 8-bit RGB PNGs; annotations single-channel uint8 PNGs holding ``index + 1`` of the
class table (1 = unlabeled ... 13 = traffic sign, 14 = anomaly). The anomaly label occurs only in
the test split; the ``.odgt`` files are JSON lines
``{"fpath_img": ..., "fpath_segm": ..., "width": W, "height": H}`` as in the real archives.

How a scene is drawn
--------------------
A pinhole camera (90 deg horizontal field of view, height 1.5-2.0 m, horizon at 36-48 % of the
image height) looks down a road that may curve (centre line ``X_c(Z) = x0 + k Z^2``). Every pixel
below the horizon is mapped back to ground coordinates ``(X, Z)``, which gives road (with lane
and edge markings in world units, so dashes shrink with distance), kerbs and tiled sidewalks on
both sides, and grass beyond them; everything else is painted back to front (painter's
algorithm) as projected 3D geometry, writing the image and the label map in the same stroke, so
the annotation is exact by construction:

- sky (``unlabeled``): zenith-to-horizon gradient with clouds, or overcast grey;
- a distant skyline of buildings and a tree line near the horizon;
- along each sidewalk a sequence of frontage segments -- buildings (window grid, floors, cornice),
  walls (block/brick bond), fences (wooden planks and rails), hedges -- with set-back buildings
  and trees behind the low ones; textures are drawn flat and warped onto the facade plane;
- on the street, sorted by distance: cars (3D boxes with cabin, glass, wheels, lights) in the
  lanes, pedestrians (legs, torso, arms, head) and ``other`` clutter (bins, benches, crates,
  barriers) on the sidewalks, poles (posts and street lamps) carrying traffic signs;
- test split only: anomalies (blobs, polygons, ellipses, composites, animal-like and elongated
  shapes) on the road and sidewalks, textured with solid colours, stripes, checkers, dots, colour
  mosaics and colour gradients.

Every class has a characteristic appearance drawn with jitter (a hue / saturation / value range
around a class-typical colour, its own texture, per-image lighting direction, haze with distance,
a global light gradient, colour tint, blur and sensor grain), so a small CNN can learn it but a
colour lookup cannot. Anomaly colours are muted purple / magenta and aquamarine / teal tones (hue
bands no known class uses) and pastel tints; deliberately *not* strongly saturated, which makes a
small ReLU network confident rather than uncertain (see ``_ANOMALY_HUES``). One anomaly texture in
seven pairs such a colour with a mundane grey/brown to keep them from being trivial. Anomalies
cover ``anomaly_fraction`` of the test pixels on average (real StreetHazards: 1.03 %); about one
test image in six has none, most have one to three.

Determinism: each image is drawn from its own ``numpy`` generator seeded by ``(seed, split,
index)``, so the output does not depend on the number of worker processes or on the other split
sizes.
"""
import colorsys
import json
import math
import multiprocessing
import os
import os.path as osp
import shutil
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

#: Class names by on-disk value - 1 (SPEC section 1); value 14 (index 13) is the anomaly.
CLASS_NAMES = ('unlabeled', 'building', 'fence', 'other', 'pedestrian', 'pole', 'road line', 'road',
               'sidewalk', 'vegetation', 'car', 'wall', 'traffic sign', 'anomaly')

# On-disk label values (class index + 1).
UNLABELED, BUILDING, FENCE, OTHER, PEDESTRIAN, POLE, ROAD_LINE, ROAD, SIDEWALK, VEGETATION, CAR, \
    WALL, TRAFFIC_SIGN, ANOMALY = range(1, 15)
#: Label value of the anomaly class in the annotation files.
ANOMALY_LABEL = ANOMALY

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

Colour = np.ndarray  # (3,) float32 RGB in 0..255
Poly = np.ndarray  # (N, 2) float image coordinates (x, y)


# --------------------------------------------------------------------------------------------------
# colours and textures
# --------------------------------------------------------------------------------------------------
def _hsv(rng: np.random.Generator, h: Tuple[float, float], s: Tuple[float, float],
         v: Tuple[float, float]) -> Colour:
    """Draw an RGB colour (0..255) uniformly from a hue (degrees, may wrap) / saturation / value box."""
    hue = (rng.uniform(*h) % 360.0) / 360.0
    rgb = colorsys.hsv_to_rgb(hue, float(np.clip(rng.uniform(*s), 0, 1)), float(np.clip(rng.uniform(*v), 0, 1)))
    return np.array(rgb, np.float32) * 255.0


def _noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth value noise of roughly unit amplitude with features of ``cell`` pixels, (h, w) float32."""
    if cell <= 1.5:
        return rng.standard_normal((h, w), dtype=np.float32)
    grid = rng.standard_normal((int(h / cell) + 2, int(w / cell) + 2), dtype=np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def _flat(rng: np.random.Generator, h: int, w: int, colour: Colour, lf: float = 0.06, lf_cell: float = 20.,
          hf: float = 0.03, hf_cell: float = 1.) -> np.ndarray:
    """``colour`` modulated by low- and high-frequency luminance noise, (h, w, 3) float32."""
    lum = 1.0 + lf * _noise(rng, h, w, lf_cell) + hf * _noise(rng, h, w, hf_cell)
    return lum[..., None] * colour[None, None, :]


def _leafy(rng: np.random.Generator, h: int, w: int, colour: Colour, leaf_px: float) -> np.ndarray:
    """Foliage: clumps and leaf-sized speckles with dark gaps, (h, w, 3) float32."""
    clumps = _noise(rng, h, w, max(3.0, leaf_px * 6))
    leaves = _noise(rng, h, w, max(1.0, leaf_px))
    lum = 1.0 + 0.18 * clumps + 0.22 * leaves
    lum = np.where(leaves < -1.0, lum * 0.55, lum)
    tint = np.stack([np.ones_like(clumps), 1.0 + 0.06 * clumps, np.ones_like(clumps)], -1)
    return lum[..., None] * tint * colour[None, None, :]


# --------------------------------------------------------------------------------------------------
# camera and canvas
# --------------------------------------------------------------------------------------------------
class _Camera:
    """Pinhole camera at ``(0, height, 0)`` looking along +Z; image x right, y down."""

    z_near = 0.8

    def __init__(self, width: int, height: int, rng: np.random.Generator) -> None:
        self.w, self.h = width, height
        self.f = (width / 2.0) / math.tan(math.radians(rng.uniform(86.0, 94.0)) / 2.0)
        self.cx = width / 2.0 + rng.uniform(-0.02, 0.02) * width
        self.horizon = height * rng.uniform(0.36, 0.48)
        self.cam_h = rng.uniform(1.5, 2.0)

    def project(self, x, y, z) -> Poly:
        """World points -> (N, 2) image points (``z`` clipped to the near plane)."""
        x, y, z = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64),
                                      np.asarray(z, np.float64))
        z = np.maximum(z, self.z_near)
        return np.stack([self.cx + self.f * x / z, self.horizon + self.f * (self.cam_h - y) / z], -1).reshape(-1, 2)

    def scale(self, z: float) -> float:
        """Pixels per metre at depth ``z``."""
        return self.f / max(z, self.z_near)

    def min_visible_z(self, x: float, margin_px: float = 0.0) -> float:
        """Smallest depth at which lateral position ``x`` (at ground level) lies inside the image."""
        half = self.w / 2.0 - margin_px
        z_side = abs(x) * self.f / max(half, 1.0)
        z_bottom = self.f * self.cam_h / max(self.h - self.horizon - 1.0, 1.0)
        return max(z_side, z_bottom, 1.0)


class _Canvas:
    """Image (float RGB) and label map painted together."""

    def __init__(self, width: int, height: int) -> None:
        self.w, self.h = width, height
        self.img = np.zeros((height, width, 3), np.float32)
        self.lab = np.full((height, width), UNLABELED, np.uint8)

    def _roi(self, pts: np.ndarray) -> Optional[Tuple[int, int, int, int]]:
        x0 = max(int(math.floor(pts[:, 0].min())), 0)
        y0 = max(int(math.floor(pts[:, 1].min())), 0)
        x1 = min(int(math.ceil(pts[:, 0].max())) + 1, self.w)
        y1 = min(int(math.ceil(pts[:, 1].max())) + 1, self.h)
        if x1 <= x0 or y1 <= y0:
            return None
        return x0, y0, x1, y1

    def paint(self, polys: Sequence[Poly], label: int, tex: Union[Colour, Callable, np.ndarray],
              roi: Optional[Tuple[int, int, int, int]] = None) -> None:
        """Fill the union of ``polys`` with ``label`` and texture ``tex``.

        ``tex`` is a colour, a ``(h, w, 3)`` array covering ``roi`` or a callable
        ``tex(x0, y0, w, h) -> (h, w, 3)`` evaluated on the polygons' bounding box.
        """
        polys = [np.asarray(p, np.float64) for p in polys if len(p) >= 3]
        if not polys:
            return
        pts = np.clip(np.concatenate(polys), -1e5, 1e5)
        if roi is None:
            roi = self._roi(pts)
            if roi is None:
                return
        x0, y0, x1, y1 = roi
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        for p in polys:  # one call per polygon: fillPoly on a list would XOR the overlaps
            cv2.fillPoly(mask, [np.round((np.clip(p, -1e5, 1e5) - (x0, y0)) * 16).astype(np.int32)], 1,
                         cv2.LINE_8, 4)
        self.paint_mask(x0, y0, mask, label, tex)

    def paint_mask(self, x0: int, y0: int, mask: np.ndarray, label: int,
                   tex: Union[Colour, Callable, np.ndarray]) -> None:
        """Paint where ``mask`` (placed with its top-left corner at ``(x0, y0)``, may overhang) is set."""
        mh, mw = mask.shape
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + mw, self.w), min(y0 + mh, self.h)
        if cx1 <= cx0 or cy1 <= cy0:
            return
        m = mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0].astype(bool)
        if not m.any():
            return
        if callable(tex):
            t = tex(x0, y0, mw, mh)[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        elif np.ndim(tex) == 3:
            t = tex[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        else:
            t = None
        sub = self.img[cy0:cy1, cx0:cx1]
        sub[m] = np.asarray(tex, np.float32) if t is None else t[m]
        self.lab[cy0:cy1, cx0:cx1][m] = label


# --------------------------------------------------------------------------------------------------
# scene
# --------------------------------------------------------------------------------------------------
class _Scene:
    """One procedurally drawn road scene; ``render()`` returns ``(rgb uint8 HxWx3, label uint8 HxW)``."""

    def __init__(self, width: int, height: int, rng: np.random.Generator, anomalies: bool,
                 anomaly_fraction: float) -> None:
        self.rng = rng
        self.w, self.h = width, height
        self.cam = _Camera(width, height, rng)
        self.canvas = _Canvas(width, height)
        self.with_anomalies = anomalies and anomaly_fraction > 0
        self.anomaly_fraction = anomaly_fraction
        r = rng
        # road geometry (metres)
        self.lane_w = r.uniform(3.0, 3.8)
        self.n_lanes = int(r.choice([2, 2, 3, 4]))
        self.half_road = self.n_lanes * self.lane_w / 2.0
        self.two_way = self.n_lanes >= 2 and r.random() < 0.75
        own = [i for i in range(self.n_lanes) if not self.two_way or i >= self.n_lanes // 2]
        self.cam_lane = int(r.choice(own))
        self.x0 = -self.lane_center(self.cam_lane) + r.uniform(-0.4, 0.4)
        self.curv = r.uniform(-1.0, 1.0) * 0.0012 if r.random() < 0.7 else 0.0
        self.sidewalk = (r.uniform(2.0, 4.5), r.uniform(2.0, 4.5))  # left, right
        self.kerb = r.uniform(0.15, 0.3)
        # lighting: shade factors of faces by orientation
        self.shade_left = r.uniform(0.7, 1.1)  # faces whose normal points to +X (left side of the street)
        self.shade_right = r.uniform(0.7, 1.1)
        self.shade_front = r.uniform(0.82, 1.05)
        self.shade_top = r.uniform(1.05, 1.2)
        self.fog = r.uniform(150.0, 600.0)
        self.overcast = r.random() < 0.2
        if self.overcast:
            grey = r.uniform(0.62, 0.85)
            self.zenith = _hsv(r, (190, 230), (0.0, 0.08), (grey - 0.08, grey))
            self.horizon_col = _hsv(r, (190, 230), (0.0, 0.06), (grey, grey + 0.1))
        else:
            self.zenith = _hsv(r, (198, 225), (0.35, 0.7), (0.6, 0.9))
            self.horizon_col = _hsv(r, (190, 215), (0.08, 0.3), (0.82, 0.97))
        self.anomaly_boxes: List[Tuple[float, float, float]] = []  # (x_lo, x_hi, z) of placed anomalies

    # -- geometry helpers ------------------------------------------------------------------------
    def lane_center(self, i: int) -> float:
        return -self.half_road + (i + 0.5) * self.lane_w

    def xc(self, z) -> np.ndarray:
        """World X of the road centre line at depth ``z``."""
        return self.x0 + self.curv * np.asarray(z, np.float64) ** 2

    def side_edge(self, side: int) -> float:
        """Road-relative lateral position of the outer sidewalk edge (side -1 left, +1 right)."""
        return side * (self.half_road + self.sidewalk[0 if side < 0 else 1])

    def haze(self, tex: np.ndarray, z: float) -> np.ndarray:
        a = 0.65 * (1.0 - math.exp(-max(z, 0.0) / self.fog))
        return tex * (1.0 - a) + self.horizon_col * a

    def face_shade(self, normal_x: float) -> float:
        if normal_x > 0:
            return self.shade_left
        if normal_x < 0:
            return self.shade_right
        return self.shade_front

    # -- drawing -----------------------------------------------------------------------------------
    def render(self) -> Tuple[np.ndarray, np.ndarray]:
        self.draw_sky()
        self.draw_ground()
        self.draw_background()
        for _, fn in sorted(self.roadside_items(), key=lambda t: -t[0]):
            fn()
        street = self.street_items()
        for _, fn in sorted(street, key=lambda t: -t[0]):
            fn()
        return self.finish()

    def draw_sky(self) -> None:
        r, w, h = self.rng, self.w, self.h
        rows = int(min(h, math.ceil(self.cam.horizon) + 2))
        t = np.clip(np.arange(rows, dtype=np.float32) / max(self.cam.horizon, 1.0), 0, 1) ** 0.8
        grad = self.zenith[None, :] * (1 - t[:, None]) + self.horizon_col[None, :] * t[:, None]
        sky = np.repeat(grad[:, None, :], w, axis=1)
        if r.random() < 0.75:
            cover = r.uniform(0.0, 0.9)
            n = 0.65 * _noise(r, rows, w, w / r.uniform(4, 10)) + 0.35 * _noise(r, rows, w, w / 30.0)
            alpha = np.clip((n - (1.0 - cover)) * 1.5, 0, 0.9)[..., None]
            cloud = _hsv(r, (0, 360), (0.0, 0.04), (0.85, 1.0)) * (1.0 - 0.12 * np.clip(n, 0, 2)[..., None])
            sky = sky * (1 - alpha) + cloud * alpha
        self.canvas.img[:rows] = sky
        self.canvas.lab[:] = UNLABELED

    def draw_ground(self) -> None:
        """Road, road lines, kerbs, sidewalks and grass from the inverse ground projection."""
        r, cam, w, h = self.rng, self.cam, self.w, self.h
        top = int(min(max(math.floor(cam.horizon) + 1, 0), h))
        if top >= h:
            return
        rows = h - top
        dv = np.maximum(np.arange(top, h, dtype=np.float32) + 0.5 - cam.horizon, 0.3)
        z_row = np.minimum(cam.f * cam.cam_h / dv, 2000.0).astype(np.float32)  # depth of each row
        uu = (np.arange(w, dtype=np.float32) + 0.5 - cam.cx) / cam.f
        rel = uu[None, :] * z_row[:, None] - self.xc(z_row).astype(np.float32)[:, None]  # road-relative X
        zz = np.broadcast_to(z_row[:, None], rel.shape)
        hr = self.half_road
        arel = np.abs(rel)
        # colour index per pixel: 0 road, 1 white line, 2 yellow line, 3 sidewalk, 4 kerb, 5 grass
        road = arel <= hr
        side = (rel >= self.side_edge(-1)) & (rel <= self.side_edge(1)) & ~road
        idx = np.full(rel.shape, 5, np.uint8)
        idx[side] = 3
        idx[side & (arel <= hr + self.kerb)] = 4
        idx[road] = 0

        def world_noise(cell_m: float, size: int = 256) -> np.ndarray:
            """Smooth noise fixed to the ground plane (sampled by remap: perspective-correct)."""
            grid = r.standard_normal((size // 4, size // 4), dtype=np.float32)
            tile = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
            k = np.float32(4.0 / cell_m)
            return cv2.remap(tile, (rel * k) % size, (zz * k) % size, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)

        grain = r.standard_normal((rows, w), dtype=np.float32)
        palette = np.zeros((6, 3), np.float32)

        # road: dark asphalt, patches, tyre tracks
        palette[0] = _hsv(r, (0, 360), (0.0, 0.06), (0.22, 0.4))
        patches = world_noise(r.uniform(2.0, 6.0))
        to_centre = np.abs((rel + hr) % self.lane_w - self.lane_w / 2)  # distance to the lane centre
        tracks = np.exp(-((to_centre - 0.8) / 0.3) ** 2)
        lum = (1.0 + 0.07 * patches + 0.035 * grain) * (1.0 - r.uniform(0.0, 0.08) * tracks)

        # road lines (world units: dashes shrink with distance)
        lines = np.zeros(rel.shape, bool)
        lw = r.uniform(0.18, 0.35)
        dash, gap = r.uniform(2.5, 4.0), r.uniform(3.0, 8.0)
        phase = r.uniform(0, dash + gap)
        dashed = ((zz + phase) % (dash + gap)) < dash
        yellow = np.zeros(rel.shape, bool)
        centre_i = self.n_lanes // 2 if self.two_way else -1
        for i in range(1, self.n_lanes):
            pos = -hr + i * self.lane_w
            if i == centre_i and r.random() < 0.6:  # solid (double) yellow centre line
                gapw = r.uniform(0.1, 0.2)
                m = (np.abs(rel - pos - gapw) < lw / 2) | (np.abs(rel - pos + gapw) < lw / 2)
                yellow |= m
            else:
                m = (np.abs(rel - pos) < lw / 2) & dashed
            lines |= m
        if r.random() < 0.75:
            lines |= np.abs(arel - (hr - 0.35)) < lw / 2
        lines &= road
        palette[1] = _hsv(r, (40, 60), (0.0, 0.1), (0.8, 0.95))
        palette[2] = _hsv(r, (42, 54), (0.6, 0.85), (0.75, 0.92))
        wear = 1.0 + 0.08 * world_noise(0.5) + 0.03 * grain
        idx[lines] = 1
        idx[lines & yellow] = 2
        lum = np.where(lines, wear, lum)

        # sidewalk: paving tiles with joints and per-tile brightness; kerb stones
        palette[3] = _hsv(r, (5, 40), (0.04, 0.25), (0.5, 0.75))
        palette[4] = _hsv(r, (0, 360), (0.0, 0.05), (0.55, 0.85))
        ts = r.uniform(0.3, 0.8)
        table = r.uniform(-1, 1, size=(32, 32)).astype(np.float32)
        tile_j = table[np.floor(rel / ts).astype(np.int32) % 32, np.floor(zz / ts).astype(np.int32) % 32]
        joint_w = r.uniform(0.03, 0.06) / ts
        joint = ((rel / ts) % 1.0 < joint_w) | ((zz / ts) % 1.0 < joint_w)
        paving = 1.0 + 0.07 * tile_j + 0.03 * grain - joint * np.float32(r.uniform(0.25, 0.4))
        lum = np.where(idx == 3, paving, lum)
        lum = np.where(idx == 4, 1.0 + 0.04 * grain, lum)

        # grass verge beyond the sidewalks
        palette[5] = _hsv(r, (75, 115), (0.45, 0.8), (0.25, 0.5))
        lum = np.where(idx == 5, 1.0 + 0.15 * world_noise(r.uniform(1.0, 3.0)) + 0.12 * grain, lum)

        a = (0.65 * (1.0 - np.exp(-z_row / self.fog)))[:, None, None]
        self.canvas.img[top:] = (palette[idx] * lum[..., None]) * (1.0 - a) + self.horizon_col * a
        self.canvas.lab[top:] = np.array([ROAD, ROAD_LINE, ROAD_LINE, SIDEWALK, SIDEWALK, VEGETATION],
                                         np.uint8)[idx]

    # -- facades -----------------------------------------------------------------------------------
    def facade(self, xa: float, za: float, xb: float, zb: float, height: float, label: int,
               tex_fn: Callable[[int, int, float], np.ndarray], shade: float, base: float = 0.0) -> None:
        """Warp a flat texture onto the vertical rectangle from ``(xa, za)`` to ``(xb, zb)``."""
        cam = self.cam
        zmin = cam.z_near + 0.2
        if za < zmin and zb < zmin:
            return
        if za < zmin or zb < zmin:  # clip the bottom edge against the near plane
            t = (zmin - za) / (zb - za)
            if za < zmin:
                xa, za = xa + t * (xb - xa), zmin
            else:
                xb, zb = xa + t * (xb - xa), zmin
        length = math.hypot(xb - xa, zb - za)
        if length < 1e-3 or height < 1e-3:
            return
        pts = cam.project([xa, xb, xb, xa], [base + height, base + height, base, base], [za, zb, zb, za])
        roi = self.canvas._roi(np.clip(pts, -1e5, 1e5))
        if roi is None:
            return
        x0, y0, x1, y1 = roi
        # texture resolution: the near end's pixels per metre, but no more texels than ~3x the
        # on-screen area (a receding facade needs far fewer at its far end)
        screen = float((x1 - x0) * (y1 - y0))
        ppm = min(cam.scale(min(za, zb)), 48.0, math.sqrt(3.0 * screen / (length * height)))
        ppm = max(ppm, 1.0)
        tw, th = max(2, int(round(length * ppm))), max(2, int(round(height * ppm)))
        tex = tex_fn(th, tw, ppm) * shade
        tex = self.haze(tex, 0.5 * (za + zb))
        src = np.array([[0, 0], [tw, 0], [tw, th], [0, th]], np.float32)
        dst = (pts - (x0, y0)).astype(np.float32)
        m = cv2.getPerspectiveTransform(src, dst)
        warped = cv2.warpPerspective(tex, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE)
        self.canvas.paint([pts], label, warped, roi=roi)

    def building_tex(self) -> Callable[[int, int, float], np.ndarray]:
        r = self.rng
        base = _hsv(r, (15, 50), (0.03, 0.35), (0.45, 0.85)) if r.random() < 0.8 else \
            _hsv(r, (5, 20), (0.35, 0.55), (0.35, 0.55))  # plaster / brick
        glass = _hsv(r, (195, 225), (0.12, 0.4), (0.12, 0.32))
        frame = base * r.uniform(1.05, 1.25)
        floor_h, ground_h = r.uniform(2.9, 3.6), r.uniform(3.4, 4.6)
        spacing = r.uniform(2.4, 4.0)
        win_w = spacing * r.uniform(0.35, 0.65)
        win_h = floor_h * r.uniform(0.4, 0.6)
        sill = (floor_h - win_h) * r.uniform(0.45, 0.7)
        phase = r.uniform(0, spacing)
        shop = r.random() < 0.6
        lit_p = r.uniform(0.0, 0.2)

        def fn(th: int, tw: int, ppm: float) -> np.ndarray:
            tex = _flat(r, th, tw, base, lf=0.07, lf_cell=max(4.0, 3 * ppm), hf=0.04, hf_cell=max(1.0, 0.2 * ppm))
            ym = (th - (np.arange(th, dtype=np.float32) + 0.5)) / ppm  # height above ground (m)
            xm = (np.arange(tw, dtype=np.float32) + 0.5) / ppm
            upper = ym > ground_h
            fy = np.where(upper, (ym - ground_h) % floor_h, ym)
            fi = np.where(upper, np.floor((ym - ground_h) / floor_h).astype(np.int32) + 1, 0)
            fx = (xm - phase) % spacing
            col_i = np.floor((xm - phase) / spacing).astype(np.int32)
            row_in = (fy >= sill) & (fy < sill + win_h) & upper & (ym < th / ppm - 0.6)
            if shop:
                row_in = row_in | (~upper & (fy > 0.5) & (fy < ground_h - 0.6))
            win = row_in[:, None] & (fx < win_w)[None, :]
            border = 0.09
            inner = win & (((fy >= sill + border) & (fy < sill + win_h - border)) | ~upper)[:, None] & \
                ((fx >= border) & (fx < win_w - border))[None, :]
            frame_m = win & ~inner
            tex[frame_m] = frame
            # glass with a vertical reflection gradient; a few lit windows
            refl = (0.75 + 0.5 * (fy / floor_h))[:, None] * np.ones((1, tw), np.float32)
            lit = ((fi[:, None] * 7919 + col_i[None, :] * 104729) % 1000) < lit_p * 1000
            gl = np.where(lit[..., None], np.array([235, 205, 140], np.float32), glass * refl[..., None])
            tex[inner] = gl[inner]
            # floor ledges and cornice
            ledge = upper & ((ym - ground_h) % floor_h < 0.12)
            tex[ledge] *= 0.85
            tex[ym > th / ppm - 0.4] *= 0.75
            return tex

        return fn

    def wall_tex(self) -> Callable[[int, int, float], np.ndarray]:
        r = self.rng
        base = _hsv(r, (200, 260), (0.04, 0.2), (0.45, 0.75)) if r.random() < 0.65 else \
            _hsv(r, (30, 50), (0.05, 0.2), (0.5, 0.7))  # concrete / stone
        bh, bl = r.uniform(0.25, 0.6), r.uniform(0.5, 1.3)
        jw = r.uniform(0.02, 0.05)
        joint_dark = r.uniform(0.2, 0.35)
        table = r.uniform(-1, 1, (64, 64)).astype(np.float32)

        def fn(th: int, tw: int, ppm: float) -> np.ndarray:
            tex = _flat(r, th, tw, base, lf=0.05, lf_cell=max(4.0, 2 * ppm), hf=0.05, hf_cell=max(1.0, 0.1 * ppm))
            ym = (np.arange(th, dtype=np.float32) + 0.5)[:, None] / ppm
            xm = (np.arange(tw, dtype=np.float32) + 0.5)[None, :] / ppm
            row = np.floor(ym / bh).astype(np.int32)
            xo = xm + (row % 2) * bl / 2
            col = np.floor(xo / bl).astype(np.int32)
            joint = ((ym % bh) < jw) | ((xo % bl) < jw)
            lum = 1.0 + 0.06 * table[row % 64, col % 64] - joint * joint_dark
            lum = np.where(ym < 0.15, 1.12, lum)  # coping on top
            return tex * lum[..., None]

        return fn

    def fence_tex(self) -> Callable[[int, int, float], np.ndarray]:
        r = self.rng
        base = _hsv(r, (18, 38), (0.3, 0.6), (0.35, 0.65))
        pw, gap = r.uniform(0.09, 0.2), r.uniform(0.01, 0.04)
        rails = (r.uniform(0.15, 0.3), r.uniform(0.7, 0.85))
        table = r.uniform(-1, 1, 256).astype(np.float32)

        def fn(th: int, tw: int, ppm: float) -> np.ndarray:
            grain = _noise(r, th, max(tw // 3, 2), max(2.0, 0.5 * ppm))
            grain = cv2.resize(grain, (tw, th), interpolation=cv2.INTER_LINEAR)
            xm = (np.arange(tw, dtype=np.float32) + 0.5) / ppm
            yf = (np.arange(th, dtype=np.float32) + 0.5) / th
            plank = np.floor(xm / (pw + gap)).astype(np.int32)
            in_gap = (xm % (pw + gap)) > pw
            lum = 1.0 + 0.1 * table[plank % 256][None, :] + 0.07 * grain
            lum = np.where(in_gap[None, :], 0.35, lum)
            for rr in rails:
                lum = np.where((np.abs(yf - rr) < 0.05)[:, None], 0.8 + 0.05 * grain, lum)
            return lum[..., None] * base

        return fn

    def hedge_tex(self) -> Callable[[int, int, float], np.ndarray]:
        r = self.rng
        base = _hsv(r, (75, 125), (0.4, 0.8), (0.2, 0.5))
        return lambda th, tw, ppm: _leafy(r, th, tw, base, max(1.0, 0.08 * ppm))

    def tree(self, x: float, z: float, height: float, crown: float) -> None:
        """Trunk and an irregular crown of overlapping ellipses (vegetation)."""
        r, cam = self.rng, self.cam
        s = cam.scale(z)
        trunk_w = r.uniform(0.2, 0.45)
        trunk_top = height - crown * 1.2
        trunk = cam.project([x - trunk_w / 2, x + trunk_w / 2, x + trunk_w / 2, x - trunk_w / 2],
                            [trunk_top + 0.5, trunk_top + 0.5, 0, 0], z)
        bark = _hsv(r, (15, 35), (0.3, 0.55), (0.15, 0.35))
        self.canvas.paint([trunk], VEGETATION, self.haze(bark, z))
        polys = []
        cy = height - crown
        for _ in range(int(r.integers(3, 7))):
            ox, oy = r.uniform(-0.6, 0.6) * crown, r.uniform(-0.4, 0.5) * crown
            ax, ay = r.uniform(0.5, 0.9) * crown, r.uniform(0.45, 0.8) * crown
            c = cam.project(x + ox, cy + oy, z)[0]
            poly = cv2.ellipse2Poly((int(c[0] * 4), int(c[1] * 4)), (max(1, int(ax * s * 4)), max(1, int(ay * s * 4))),
                                    int(r.uniform(0, 180)), 0, 360, 15)
            polys.append(poly.astype(np.float64) / 4)
        col = _hsv(r, (70, 130), (0.4, 0.85), (0.18, 0.5))
        leaf = max(1.0, 0.12 * s)
        self.canvas.paint(polys, VEGETATION, lambda x0, y0, w, h: self.haze(_leafy(r, h, w, col, leaf), z))

    def draw_background(self) -> None:
        """Skyline of distant buildings and a tree line around the horizon."""
        r, cam = self.rng, self.cam
        if r.random() < 0.85:
            zb = r.uniform(140, 260)
            half = zb * (self.w / 2) / cam.f * 1.2
            x = -half - r.uniform(0, 20)
            while x < half:
                bw = r.uniform(10, 40)
                if r.random() < 0.8:
                    self.facade(x, zb, x + bw, zb, r.uniform(6, 45), BUILDING, self.building_tex(), self.shade_front)
                x += bw
        if r.random() < 0.7:
            zt = r.uniform(70, 130)
            half = zt * (self.w / 2) / cam.f * 1.2
            x = -half
            while x < half:
                if r.random() < 0.75:
                    self.tree(x, zt, r.uniform(6, 14), r.uniform(2.5, 5))
                x += r.uniform(3, 9)

    def roadside_items(self) -> List[Tuple[float, Callable[[], None]]]:
        """Frontage segments, set-back buildings and trees along both sides, keyed by nearest depth."""
        r = self.rng
        items: List[Tuple[float, Callable[[], None]]] = []
        kinds = ('building', 'wall', 'fence', 'hedge', 'gap')
        probs = np.array([0.36, 0.18, 0.18, 0.14, 0.14])
        lengths = dict(building=(8, 25), wall=(5, 22), fence=(4, 18), hedge=(4, 14), gap=(3, 12))
        segs = []
        for side in (-1, 1):
            z = r.uniform(0.0, 3.0)
            while z < 150:
                kind = str(r.choice(kinds, p=probs))
                length = r.uniform(*lengths[kind])
                segs.append(dict(side=side, kind=kind, za=z, zb=z + length))
                z += length + (r.uniform(0.5, 4.0) if r.random() < 0.2 else 0.0)
        # make sure walls and fences are visible in (nearly) every image
        for need in ('wall', 'fence'):
            near = [s for s in segs if s['za'] < 35 and s['zb'] > 6]
            if near and not any(s['kind'] == need for s in near):
                cand = [s for s in near if s['kind'] not in ('wall', 'fence')] or near
                cand[int(r.integers(len(cand)))]['kind'] = need
        for s in segs:
            items.extend(self.segment_items(s))
        return items

    def segment_items(self, s: dict) -> List[Tuple[float, Callable[[], None]]]:
        r = self.rng
        side, kind, za, zb = s['side'], s['kind'], s['za'], s['zb']
        setback = r.uniform(0.0, 1.0) if kind != 'gap' else 0.0
        rel = self.side_edge(side) + side * setback
        xa, xb = float(self.xc(za)) + rel, float(self.xc(zb)) + rel
        normal = -side  # facade faces the road
        shade = self.face_shade(normal)
        out: List[Tuple[float, Callable[[], None]]] = []
        if kind == 'building':
            height = r.uniform(6, 30)
            tex = self.building_tex()
            depth = r.uniform(8, 20)
            out.append((za, lambda: (self.facade(xa, za, xb, zb, height, BUILDING, tex, shade),
                                     self.facade(xa + side * depth, za, xa, za, height, BUILDING, tex,
                                                 self.shade_front * 0.9))))
            return out
        height = dict(wall=r.uniform(1.0, 3.0), fence=r.uniform(1.0, 2.2), hedge=r.uniform(0.8, 2.0), gap=0.0)[kind]
        if kind != 'gap':
            label = dict(wall=WALL, fence=FENCE, hedge=VEGETATION)[kind]
            tex = dict(wall=self.wall_tex, fence=self.fence_tex, hedge=self.hedge_tex)[kind]()
            out.append((za, lambda: self.facade(xa, za, xb, zb, height, label, tex, shade)))
        # behind low frontage: set-back buildings and trees
        if r.random() < 0.5:
            off = side * r.uniform(4.0, 12.0)
            bh = r.uniform(8, 28)
            btex = self.building_tex()
            zs, ze = za + r.uniform(0, 3), zb + r.uniform(-2, 6)
            if ze > zs + 3:
                bxa, bxb = float(self.xc(zs)) + rel + off, float(self.xc(ze)) + rel + off
                out.append((zs + 0.01, lambda: self.facade(bxa, zs, bxb, ze, bh, BUILDING, btex, shade)))
        for _ in range(int(r.integers(0, 3))):
            zt = r.uniform(za, zb)
            xt = float(self.xc(zt)) + rel + side * r.uniform(0.8, 4.0)
            th, cr = r.uniform(4, 11), r.uniform(1.2, 3.5)
            out.append((zt + 0.02, lambda xt=xt, zt=zt, th=th, cr=cr: self.tree(xt, zt, th, cr)))
        return out

    # -- street objects ----------------------------------------------------------------------------
    def occludes_anomaly(self, x_lo: float, x_hi: float, z_front: float, z_back: float) -> bool:
        """Whether an object spanning ``[x_lo, x_hi] x [z_front, z_back]`` would hide or overlap an anomaly."""
        for a_lo, a_hi, az in self.anomaly_boxes:
            if x_hi + 0.4 > a_lo and x_lo - 0.4 < a_hi and z_front < az + 1.5:
                return True
        return False

    def street_items(self) -> List[Tuple[float, Callable[[], None]]]:
        r, cam = self.rng, self.cam
        items: List[Tuple[float, Callable[[], None]]] = []
        if self.with_anomalies:
            items += self.anomaly_items()

        def sidewalk_rel(side: int, lo: float = 0.3, hi: float = 0.3) -> float:
            sw = self.sidewalk[0 if side < 0 else 1]
            return side * (self.half_road + r.uniform(lo, max(lo, sw - hi)))

        def pick_z(rel: float, zlo: float, zhi: float, margin_m: float = 1.0) -> Optional[float]:
            # biased towards the camera (objects large enough to learn), visible at the bottom/sides
            for _ in range(8):
                z = zlo + (zhi - zlo) * r.random() ** 1.5
                x = float(self.xc(z)) + rel
                if z >= cam.min_visible_z(abs(x) + margin_m):
                    return z
            return None

        # cars
        taken: List[Tuple[float, float]] = []
        n_cars = int(r.integers(2, 9))
        tries = 0
        while len(taken) < n_cars and tries < 40:
            tries += 1
            parked = r.random() < 0.25
            if parked:
                side = int(r.choice([-1, 1]))
                rel = side * (self.half_road - r.uniform(0.9, 1.2))
                oncoming = False
            else:
                lane = int(r.integers(self.n_lanes))
                rel = self.lane_center(lane) + r.uniform(-0.3, 0.3)
                oncoming = self.two_way and lane < self.n_lanes // 2
            zlo = 9.0 if abs(float(self.xc(5)) + rel) < 1.5 else 3.0
            z = pick_z(rel, zlo, 55.0, 1.0)
            if z is None or any(abs(rel - tr) < 2.2 and abs(z - tz) < 7.0 for tr, tz in taken):
                continue
            length, width = r.uniform(3.8, 4.8), r.uniform(1.7, 1.95)
            x = float(self.xc(z)) + rel
            if self.occludes_anomaly(x - width / 2, x + width / 2, z, z + length):
                continue
            taken.append((rel, z))
            items.append((z, lambda x=x, z=z, length=length, width=width, oncoming=oncoming:
                          self.car(x, z, length, width, oncoming)))

        # pedestrians
        for _ in range(int(r.integers(3, 10))):
            side = int(r.choice([-1, 1]))
            rel = sidewalk_rel(side)
            z = pick_z(rel, 3.0, 28.0, 0.5)
            if z is None:
                continue
            x = float(self.xc(z)) + rel
            if self.occludes_anomaly(x - 0.3, x + 0.3, z, z + 0.3):
                continue
            items.append((z, lambda x=x, z=z: self.pedestrian(x, z)))
        # poles with signs, street lamps
        n_poles = int(r.integers(2, 7))
        for k in range(n_poles):
            side = int(r.choice([-1, 1]))
            rel = side * (self.half_road + r.uniform(0.3, 0.8))
            z = pick_z(rel, 4.0, 35.0, 0.5)
            if z is None:
                continue
            x = float(self.xc(z)) + rel
            if self.occludes_anomaly(x - 0.3, x + 0.3, z, z + 0.3):
                continue
            kind = 'sign' if k == 0 or r.random() < 0.6 else 'lamp'
            items.append((z, lambda x=x, z=z, side=side, kind=kind: self.pole(x, z, side, kind)))
        # other: bins, benches, crates, barriers
        for _ in range(int(r.integers(2, 7))):
            side = int(r.choice([-1, 1]))
            rel = sidewalk_rel(side, 0.6, 0.5)
            z = pick_z(rel, 3.0, 28.0, 1.0)
            if z is None:
                continue
            x = float(self.xc(z)) + rel
            if self.occludes_anomaly(x - 1.0, x + 1.0, z, z + 1.0):
                continue
            items.append((z, lambda x=x, z=z: self.clutter(x, z)))
        return items

    def box(self, x0: float, x1: float, y0: float, y1: float, z0: float, z1: float, label: int,
            colour: Colour, noise: float = 0.04, top: bool = True) -> None:
        """Visible faces (top, side, front) of an axis-aligned box in front of the camera."""
        cam, r = self.cam, self.rng
        zc = 0.5 * (z0 + z1)

        def tex_of(shade: float):
            return lambda X0, Y0, w, h: self.haze(_flat(r, h, w, colour * shade, lf=noise, lf_cell=max(3.0, w / 3)), zc)

        if top and y1 < cam.cam_h:
            poly = cam.project([x0, x1, x1, x0], y1, [z0, z0, z1, z1])
            self.canvas.paint([poly], label, tex_of(self.shade_top))
        if x1 < 0:  # right-hand face visible
            poly = cam.project([x1, x1, x1, x1], [y0, y1, y1, y0], [z0, z0, z1, z1])
            self.canvas.paint([poly], label, tex_of(self.shade_left * 0.9))
        elif x0 > 0:
            poly = cam.project([x0, x0, x0, x0], [y0, y1, y1, y0], [z0, z0, z1, z1])
            self.canvas.paint([poly], label, tex_of(self.shade_right * 0.9))
        poly = cam.project([x0, x1, x1, x0], [y0, y0, y1, y1], z0)
        self.canvas.paint([poly], label, tex_of(self.shade_front))

    def car(self, xm: float, z: float, length: float, width: float, oncoming: bool) -> None:
        r, cam, cv = self.rng, self.cam, self.canvas
        kind = r.random()
        if kind < 0.45:
            body = _hsv(r, (205, 240), (0.45, 0.9), (0.25, 0.65))  # blue
        elif kind < 0.75:
            body = _hsv(r, (0, 360), (0.0, 0.08), (0.5, 0.82))  # silver / grey
        elif kind < 0.9:
            body = _hsv(r, (0, 360), (0.0, 0.1), (0.07, 0.2))  # black
        else:
            body = _hsv(r, (0, 360), (0.0, 0.05), (0.86, 0.95))  # white
        glass = _hsv(r, (190, 220), (0.1, 0.35), (0.08, 0.25))
        tyre = _hsv(r, (0, 360), (0.0, 0.1), (0.04, 0.1))
        h_car = r.uniform(1.35, 1.7)
        clear = 0.2
        belt = clear + (h_car - clear) * r.uniform(0.5, 0.6)
        x0, x1 = xm - width / 2, xm + width / 2
        z1 = z + length
        # rear/front wheels peeking below the body
        for wx in (x0 + 0.08, x1 - 0.33):
            cv.paint([cam.project([wx, wx + 0.25, wx + 0.25, wx], [0, 0, 0.45, 0.45], z + 0.7)], CAR,
                     self.haze(tyre, z))
        self.box(x0, x1, clear, belt, z, z1, CAR, body, noise=0.03)
        # wheels on the visible flank
        side_x = x1 if x1 < 0 else (x0 if x0 > 0 else None)
        if side_x is not None:
            for wz in (z + 0.75, z1 - 0.8):
                ang = np.linspace(0, 2 * np.pi, 16, endpoint=False)
                poly = cam.project(side_x, 0.33 + 0.33 * np.sin(ang), wz + 0.33 * np.cos(ang))
                cv.paint([poly], CAR, self.haze(tyre, z))
        # cabin with glass
        cz0, cz1 = z + length * r.uniform(0.18, 0.3), z + length * r.uniform(0.7, 0.8)
        cx0, cx1 = x0 + 0.1, x1 - 0.1
        self.box(cx0, cx1, belt, h_car, cz0, cz1, CAR, body, noise=0.03)
        m = 0.07
        cv.paint([cam.project([cx0 + m, cx1 - m, cx1 - m, cx0 + m], [belt + m, belt + m, h_car - m, h_car - m], cz0)],
                 CAR, lambda X0, Y0, w, h: self.haze(_flat(r, h, w, glass, lf=0.15, lf_cell=max(2.0, w / 2)), z))
        side_c = cx1 if cx1 < 0 else (cx0 if cx0 > 0 else None)
        if side_c is not None:
            poly = cam.project(side_c, [belt + m, belt + m, h_car - m, h_car - m], [cz0 + m, cz1 - m, cz1 - m, cz0 + m])
            cv.paint([poly], CAR, self.haze(glass * 1.1, z))
        # lights and plate on the visible end
        light = np.array([250, 245, 225], np.float32) if oncoming else _hsv(r, (350, 365), (0.75, 0.95), (0.6, 0.9))
        ly0, ly1 = belt - 0.22, belt - 0.06
        for lx in (x0 + 0.08, x1 - 0.33):
            cv.paint([cam.project([lx, lx + 0.25, lx + 0.25, lx], [ly0, ly0, ly1, ly1], z)], CAR, self.haze(light, z))
        cv.paint([cam.project([xm - 0.26, xm + 0.26, xm + 0.26, xm - 0.26], [0.35, 0.35, 0.47, 0.47], z)], CAR,
                 self.haze(np.array([225, 225, 215], np.float32), z))

    def pedestrian(self, x: float, z: float) -> None:
        r, cam, cv = self.rng, self.cam, self.canvas
        s = cam.scale(z)
        u0, v0 = cam.project(x, 0.0, z)[0]
        hgt = r.uniform(1.6, 1.95)
        shirt = _hsv(r, (-20, 15), (0.5, 0.88), (0.4, 0.82)) if r.random() < 0.7 else \
            _hsv(r, (-40, 30), (0.2, 0.5), (0.25, 0.5))
        pants = _hsv(r, (200, 240), (0.1, 0.5), (0.1, 0.35)) if r.random() < 0.7 else \
            _hsv(r, (0, 360), (0.0, 0.1), (0.08, 0.3))
        skin = _hsv(r, (15, 32), (0.25, 0.6), (0.35, 0.9))
        hair = _hsv(r, (15, 40), (0.2, 0.6), (0.05, 0.3))
        stride = r.uniform(0.0, 0.2)  # feet apart
        sw = r.uniform(0.4, 0.52)  # shoulder width

        def P(pts):  # local metres (x right, y up) -> image
            p = np.asarray(pts, np.float64)
            return np.stack([u0 + p[:, 0] * s, v0 - p[:, 1] * s], -1)

        leg_top = 0.47 * hgt
        lw = sw * 0.3
        for sgn in (-1, 1):
            hip = sgn * sw * 0.2
            foot = sgn * (0.05 + stride)
            cv.paint([P([[hip - lw / 2, leg_top], [hip + lw / 2, leg_top], [foot + lw / 2, 0.0],
                         [foot - lw / 2, 0.0]])], PEDESTRIAN, self.haze(pants * (1.0 + 0.1 * sgn), z))
        torso_top = 0.82 * hgt
        cv.paint([P([[-sw / 2, torso_top], [sw / 2, torso_top], [sw / 2 - 0.05, leg_top - 0.03],
                     [-sw / 2 + 0.05, leg_top - 0.03]])], PEDESTRIAN,
                 lambda X0, Y0, w, h: self.haze(_flat(r, h, w, shirt, lf=0.1, lf_cell=max(2.0, h / 3)), z))
        for sgn in (-1, 1):
            swing = r.uniform(-0.12, 0.12)
            cv.paint([P([[sgn * sw / 2, torso_top - 0.02], [sgn * (sw / 2 + 0.09), torso_top - 0.05],
                         [sgn * (sw / 2 + 0.08) + swing, 0.45 * hgt], [sgn * (sw / 2 - 0.01) + swing, 0.45 * hgt]])],
                     PEDESTRIAN, self.haze(shirt * 0.88, z))
        head_r = 0.105 * hgt / 1.75
        hc = P([[0.0, hgt - head_r]])[0]
        head = cv2.ellipse2Poly((int(hc[0] * 8), int(hc[1] * 8)), (max(1, int(head_r * s * 8 * 0.85)),
                                max(1, int(head_r * s * 8))), 0, 0, 360, 20).astype(np.float64) / 8
        neck = P([[-0.05, torso_top + 0.04], [0.05, torso_top + 0.04], [0.05, torso_top - 0.02],
                  [-0.05, torso_top - 0.02]])
        cv.paint([head, neck], PEDESTRIAN, self.haze(skin, z))
        hair_poly = cv2.ellipse2Poly((int(hc[0] * 8), int((hc[1] - head_r * s * 0.35) * 8)),
                                     (max(1, int(head_r * s * 8 * 0.9)), max(1, int(head_r * s * 8 * 0.7))),
                                     0, 180, 360, 20).astype(np.float64) / 8
        cv.paint([hair_poly], PEDESTRIAN, self.haze(hair, z))

    def pole(self, x: float, z: float, side: int, kind: str) -> None:
        r, cam, cv = self.rng, self.cam, self.canvas
        metal = _hsv(r, (0, 360), (0.0, 0.1), (0.35, 0.65))
        pw = r.uniform(0.22, 0.38)
        height = r.uniform(2.8, 4.2) if kind == 'sign' else r.uniform(5.0, 8.0)

        def cyl(X0, Y0, w, h):  # cylinder shading across the pole
            t = np.linspace(-1, 1, w, dtype=np.float32)
            lum = (0.75 + 0.35 * np.sqrt(np.clip(1 - t ** 2, 0, 1)))[None, :] * np.ones((h, 1), np.float32)
            return self.haze(lum[..., None] * metal, z)

        cv.paint([cam.project([x - pw / 2, x + pw / 2, x + pw / 2, x - pw / 2], [height, height, 0, 0], z)], POLE, cyl)
        if kind == 'lamp':
            arm = r.uniform(1.2, 2.5) * -side
            ax0, ax1 = sorted((x, x + arm))
            cv.paint([cam.project([ax0, ax1, ax1, ax0], [height, height, height - 0.12, height - 0.12], z)], POLE,
                     self.haze(metal, z))
            lx = x + arm
            cv.paint([cam.project([lx - 0.35, lx + 0.35, lx + 0.25, lx - 0.25], [height, height, height - 0.22,
                                  height - 0.22], z)], POLE, self.haze(metal * 0.8, z))
            return
        n_signs = 1 if r.random() < 0.75 else 2
        yc = height - r.uniform(0.3, 0.5)
        for _ in range(n_signs):
            size = r.uniform(0.8, 1.2)
            self.sign(x, yc, z, size)
            yc -= size * 1.05

    def sign(self, x: float, yc: float, z: float, size: float) -> None:
        r, cam, cv = self.rng, self.cam, self.canvas
        s = cam.scale(z)
        c = cam.project(x, yc, z)[0]
        shape = str(r.choice(['circle', 'triangle', 'rect', 'diamond', 'octagon']))
        half = size * s / 2
        if shape == 'circle':
            ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        elif shape == 'triangle':
            ang = np.array([-np.pi / 2, np.pi / 6, 5 * np.pi / 6]) + (np.pi if r.random() < 0.3 else 0)
        elif shape == 'diamond':
            ang = np.array([0, np.pi / 2, np.pi, 3 * np.pi / 2])
        elif shape == 'octagon':
            ang = np.arange(8) * np.pi / 4 + np.pi / 8
        else:
            ang = None
        if ang is None:
            aspect = r.uniform(0.6, 1.4)
            hw, hh = half * math.sqrt(aspect), half / math.sqrt(aspect)
            outer = np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]])
        else:
            outer = np.stack([np.cos(ang), np.sin(ang)], -1) * half
        inner = outer * 0.78
        style = r.random()
        if style < 0.6:  # yellow face, dark border
            face = _hsv(r, (47, 60), (0.7, 0.95), (0.75, 0.95))
            rim = _hsv(r, (0, 360), (0.0, 0.2), (0.05, 0.2))
        else:  # white face, red rim
            face = _hsv(r, (40, 60), (0.0, 0.08), (0.85, 0.97))
            rim = _hsv(r, (350, 365), (0.75, 0.95), (0.6, 0.85))
        cv.paint([outer + c], TRAFFIC_SIGN, self.haze(rim, z))
        cv.paint([inner + c], TRAFFIC_SIGN, lambda X0, Y0, w, h: self.haze(_flat(r, h, w, face, lf=0.04), z))
        # a dark symbol
        sym = np.array([[-0.12, -0.3], [0.12, -0.3], [0.12, 0.3], [-0.12, 0.3]]) * half
        if r.random() < 0.5:
            sym = sym[:, ::-1].copy()
        cv.paint([sym + c], TRAFFIC_SIGN, self.haze(rim if style >= 0.6 else np.float32([30, 30, 30]), z))

    def clutter(self, x: float, z: float) -> None:
        """``other``: bins, benches, crates, construction barriers, bollards (orange-brown painted)."""
        r = self.rng
        col = _hsv(r, (12, 32), (0.55, 0.85), (0.45, 0.85))
        kind = str(r.choice(['bin', 'bench', 'crate', 'barrier', 'bollards']))
        if kind == 'bin':
            w, h, d = r.uniform(0.6, 0.9), r.uniform(1.0, 1.4), r.uniform(0.6, 0.9)
            self.box(x - w / 2, x + w / 2, 0, h, z, z + d, OTHER, col, noise=0.06)
            self.box(x - w / 2 - 0.04, x + w / 2 + 0.04, h, h + 0.08, z - 0.04, z + d + 0.04, OTHER, col * 0.6)
        elif kind == 'bench':
            w = r.uniform(1.4, 2.2)
            for lx in (x - w / 2 + 0.1, x + w / 2 - 0.2):
                self.box(lx, lx + 0.1, 0, 0.45, z + 0.1, z + 0.5, OTHER, col * 0.5)
            self.box(x - w / 2, x + w / 2, 0.45, 0.52, z, z + 0.55, OTHER, col)
            self.box(x - w / 2, x + w / 2, 0.6, 0.95, z + 0.5, z + 0.58, OTHER, col * 0.9)
        elif kind == 'crate':
            s = r.uniform(0.8, 1.3)
            self.box(x - s / 2, x + s / 2, 0, s, z, z + s, OTHER, col, noise=0.1)
            self.box(x - s / 2, x + s / 2, s * 0.45, s * 0.55, z - 0.01, z, OTHER, col * 0.6, top=False)
        elif kind == 'barrier':
            w, h = r.uniform(1.4, 2.4), r.uniform(0.9, 1.2)
            self.box(x - w / 2, x + w / 2, 0, h, z, z + 0.4, OTHER, col, noise=0.05)
            for k in range(3):
                yb = h * (0.15 + 0.3 * k)
                self.box(x - w / 2, x + w / 2, yb, yb + 0.08 * h, z - 0.01, z, OTHER, col * 0.55, top=False)
        else:
            for k in range(int(r.integers(2, 5))):
                bx = x + (k - 1.5) * r.uniform(0.9, 1.4)
                self.box(bx - 0.15, bx + 0.15, 0, r.uniform(0.8, 1.1), z, z + 0.3, OTHER, col)

    # -- anomalies ---------------------------------------------------------------------------------
    def anomaly_items(self) -> List[Tuple[float, Callable[[], None]]]:
        """1-3 anomalies (none in ~15 % of images) covering ``anomaly_fraction`` of the pixels on average."""
        r, cam = self.rng, self.cam
        counts, probs = np.array([0, 1, 2, 3]), np.array([0.15, 0.4, 0.3, 0.15])
        k = int(r.choice(counts, p=probs))
        if k == 0:
            return []
        # expected covered share = anomaly_fraction: scale by k / E[k]; 1.08 offsets what near
        # objects and the image border hide
        total = self.anomaly_fraction * self.w * self.h * k / float((counts * probs).sum()) * \
            r.uniform(0.75, 1.25) * 1.08
        shares = r.dirichlet(np.full(k, 2.0)) * total
        items = []
        for area in shares:
            area = max(float(area), 12.0)
            mask = _anomaly_shape(r)
            mh, mw = mask.shape
            scale = math.sqrt(area / max(float(mask.sum()), 1.0))
            bw, bh = max(2, int(round(mw * scale))), max(2, int(round(mh * scale)))
            for _ in range(25):
                on_road = r.random() < 0.7
                if on_road:
                    rel = r.uniform(-self.half_road + 0.4, self.half_road - 0.4)
                else:
                    side = int(r.choice([-1, 1]))
                    sw = self.sidewalk[0 if side < 0 else 1]
                    rel = side * (self.half_road + r.uniform(0.3, max(0.35, sw - 0.3)))
                size_px = math.sqrt(area)
                # apparent size sqrt(area) corresponds to 0.35 .. 2.5 m objects
                zlo, zhi = cam.f * 0.35 / size_px, cam.f * 2.5 / size_px
                zlo = max(zlo, 3.0)
                zhi = min(max(zhi, zlo + 1.0), 60.0)
                z = r.uniform(zlo, zhi)
                x = float(self.xc(z)) + rel
                u, v = cam.project(x, 0.0, z)[0]
                if bw / 2 + 1 <= u <= self.w - bw / 2 - 1 and bh + 1 <= v <= self.h - 1:
                    break
            else:
                continue
            half_m = bw / 2 / cam.scale(z)
            self.anomaly_boxes.append((x - half_m, x + half_m, z))
            tex = _anomaly_texture(r)
            items.append((z, lambda mask=mask, bw=bw, bh=bh, u=u, v=v, z=z, tex=tex:
                          self.anomaly(mask, bw, bh, u, v, z, tex)))
        return items

    def anomaly(self, mask: np.ndarray, bw: int, bh: int, u: float, v: float, z: float,
                tex: Callable[[int, int], np.ndarray]) -> None:
        m = cv2.resize(mask.astype(np.float32), (bw, bh), interpolation=cv2.INTER_LINEAR) > 0.5
        x0, y0 = int(round(u - bw / 2)), int(round(v - bh))
        shade = self.shade_front
        self.canvas.paint_mask(x0, y0, m.astype(np.uint8), ANOMALY,
                               lambda X0, Y0, w, h: self.haze(tex(h, w) * shade, z))

    # -- finishing -----------------------------------------------------------------------------------
    def finish(self) -> Tuple[np.ndarray, np.ndarray]:
        r, img, h, w = self.rng, self.canvas.img, self.h, self.w
        gain = r.uniform(0.78, 1.15)
        gx, gy = r.uniform(-0.15, 0.15), r.uniform(-0.12, 0.12)
        ramp = 1.0 + gx * (np.arange(w, dtype=np.float32) / w - 0.5)[None, :] + \
            gy * (np.arange(h, dtype=np.float32) / h - 0.5)[:, None]
        tint = 1.0 + r.uniform(-0.04, 0.04, 3).astype(np.float32)
        img = img * (gain * ramp)[..., None] * tint
        if r.random() < 0.5:
            img = cv2.GaussianBlur(img, (0, 0), r.uniform(0.4, 0.8))
        img = img + r.uniform(1.5, 4.0) * r.standard_normal(img.shape, dtype=np.float32)
        rgb = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        return rgb, self.canvas.lab


# --------------------------------------------------------------------------------------------------
# anomaly shapes and textures
# --------------------------------------------------------------------------------------------------
# Anomaly colours. Hues: purple/magenta and aquamarine/teal, which no known class uses even after a
# training-time hue jitter of +-18 deg (mmseg's PhotoMetricDistortion, hue_delta=9), plus pastel
# tints of any hue. Saturation is kept moderate on purpose: strongly saturated, bright colours drive
# a ReLU network to *confident* predictions far from its training data (Hein et al., CVPR 2019), and
# with a small CNN trained on these scenes they scored as less anomalous than the known classes
# under MaxLogit (pooled AUROC 0.12-0.52 by texture), while these tones gave 0.79-0.89.
_ANOMALY_HUES = ((265.0, 318.0), (150.0, 180.0))


def _anomaly_colour(rng: np.random.Generator) -> Colour:
    u = rng.random()
    if u < 0.7:
        lo, hi = _ANOMALY_HUES[0] if u < 0.4 else _ANOMALY_HUES[1]
        return _hsv(rng, (lo, hi), (0.2, 0.5), (0.45, 0.9))
    return _hsv(rng, (0, 360), (0.1, 0.3), (0.75, 0.95))  # pastel tint


def _anomaly_shape(rng: np.random.Generator) -> np.ndarray:
    """Binary mask (cropped to its bounding box) of a random anomaly silhouette."""
    n = 128
    m = np.zeros((n, n), np.uint8)
    c = n / 2
    kind = str(rng.choice(['blob', 'polygon', 'ellipse', 'composite', 'animal', 'elongated']))
    if kind == 'blob':
        th = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        rad = np.ones_like(th)
        for k in range(2, 6):
            rad += rng.uniform(0, 0.5 / k) * np.cos(k * th + rng.uniform(0, 2 * np.pi))
        asp = rng.uniform(0.6, 1.6)
        pts = np.stack([c + 40 * rad * np.cos(th) * asp, c + 40 * rad * np.sin(th) / asp], -1)
        cv2.fillPoly(m, [np.round(np.clip(pts, 0, n - 1)).astype(np.int32)], 1)
    elif kind == 'polygon':
        k = int(rng.integers(3, 9))
        th = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = rng.uniform(0.5, 1.0, k) * 55
        pts = np.stack([c + rad * np.cos(th), c + rad * np.sin(th)], -1).astype(np.int32)
        if rng.random() < 0.5:
            pts = cv2.convexHull(pts)[:, 0]
        cv2.fillPoly(m, [pts], 1)
    elif kind == 'ellipse':
        cv2.ellipse(m, (int(c), int(c)), (int(rng.uniform(20, 60)), int(rng.uniform(15, 45))),
                    rng.uniform(0, 180), 0, 360, 1, -1)
    elif kind == 'composite':
        for _ in range(int(rng.integers(2, 5))):
            cx, cy = rng.uniform(30, 98, 2)
            if rng.random() < 0.5:
                hw, hh = rng.uniform(10, 30, 2)
                cv2.rectangle(m, (int(cx - hw), int(cy - hh)), (int(cx + hw), int(cy + hh)), 1, -1)
            else:
                cv2.ellipse(m, (int(cx), int(cy)), (int(rng.uniform(10, 30)), int(rng.uniform(8, 25))),
                            rng.uniform(0, 180), 0, 360, 1, -1)
    elif kind == 'animal':
        bw, bh = rng.uniform(28, 45), rng.uniform(14, 22)
        cv2.ellipse(m, (int(c), int(c)), (int(bw), int(bh)), 0, 0, 360, 1, -1)
        hx = int(c + bw * (1 if rng.random() < 0.5 else -1))
        cv2.circle(m, (hx, int(c - bh)), int(rng.uniform(9, 15)), 1, -1)
        leg_h = rng.uniform(18, 30)
        for lx in (c - bw * 0.7, c - bw * 0.4, c + bw * 0.4, c + bw * 0.7):
            cv2.rectangle(m, (int(lx - 3), int(c)), (int(lx + 3), int(c + bh + leg_h)), 1, -1)
    else:
        ang = rng.uniform(-25, 25)
        length, thick = rng.uniform(70, 115), rng.uniform(12, 26)
        box = cv2.boxPoints(((c, c), (length, thick), ang))
        cv2.fillPoly(m, [np.round(box).astype(np.int32)], 1)
    ys, xs = np.nonzero(m)
    if len(ys) == 0:
        return np.ones((8, 8), np.uint8)
    return m[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def _anomaly_texture(rng: np.random.Generator, kind: Optional[str] = None) -> Callable[[int, int], np.ndarray]:
    """A random anomaly texture ``fn(h, w) -> (h, w, 3)`` (``kind`` forces the pattern).

    Patterns: solid, stripes, checker, dots, mosaic (cells of different anomaly colours) and a
    gradient between two anomaly colours; the second colour is another anomaly colour or a light or
    dark grey, in 15 % of the textures a mundane grey/brown.
    """
    a = _anomaly_colour(rng)
    mundane = rng.random() < 0.15  # pair with an ordinary grey/brown to make it harder
    if mundane:
        b = _hsv(rng, (0, 50), (0.0, 0.3), (0.2, 0.6))
    else:
        choice = rng.random()
        b = _anomaly_colour(rng) if choice < 0.5 else _hsv(rng, (0, 360), (0.0, 0.08), (
            (0.75, 0.9) if choice < 0.75 else (0.15, 0.3)))  # or a light / dark grey
    drawn = str(rng.choice(['solid', 'stripes', 'checker', 'dots', 'mosaic', 'gradient']))
    kind = kind or drawn
    if mundane and kind == 'solid':
        kind = 'stripes'
    period = rng.uniform(0.12, 0.35)
    angle = rng.uniform(0, np.pi)
    seed = int(rng.integers(1 << 31))

    def fn(h: int, w: int) -> np.ndarray:
        rr = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        p = max(2.0, period * max(h, w))
        lum = (1.08 - 0.2 * yy / max(h, 1) + 0.05 * _noise(rr, h, w, max(2.0, max(h, w) / 4)))[..., None]
        if kind == 'solid':
            t = np.broadcast_to(a, (h, w, 3))
        elif kind == 'stripes':
            proj = xx * math.cos(angle) + yy * math.sin(angle)
            t = np.where(((proj / p) % 1.0 < 0.5)[..., None], a, b)
        elif kind == 'checker':
            t = np.where((((xx // p) + (yy // p)) % 2 == 0)[..., None], a, b)
        elif kind == 'dots':
            d = np.hypot((xx % p) - p / 2, (yy % p) - p / 2)
            t = np.where((d < p * 0.3)[..., None], b, a)
        elif kind == 'mosaic':
            gh, gw = int(h / p) + 1, int(w / p) + 1
            cols = np.stack([_anomaly_colour(rr) for _ in range(gh * gw)]).reshape(gh, gw, 3)
            t = cv2.resize(cols, (w, h), interpolation=cv2.INTER_NEAREST)
        else:
            tt = (xx * math.cos(angle) + yy * math.sin(angle))
            tt = ((tt - tt.min()) / max(float(np.ptp(tt)), 1.0))[..., None]
            t = a * (1.0 - tt) + _anomaly_colour(rr) * tt  # blend between two anomaly colours
        return np.asarray(t, np.float32) * lum

    return fn


# --------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------
def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator that draws image ``index`` of ``split`` (independent of all other images)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), _SPLIT_IDS[split], int(index)]))


def render_street_scene(width: int, height: int, rng: Union[int, np.random.Generator], anomalies: bool = False,
                        anomaly_fraction: float = 0.01) -> Tuple[np.ndarray, np.ndarray]:
    """Draw one scene.

    Args:
        width, height: image size in pixels.
        rng: a ``numpy`` generator or an integer seed.
        anomalies: whether to place anomalies (label 14); the generator does so for the test split only.
        anomaly_fraction: expected share of anomaly pixels (over many images).

    Returns:
        ``(rgb, label)``: ``(H, W, 3)`` uint8 RGB image and ``(H, W)`` uint8 annotation with values 1..14.
    """
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(int(rng))
    return _Scene(int(width), int(height), rng, anomalies, float(anomaly_fraction)).render()


def _split_files(split: str, num: int) -> List[Tuple[str, str]]:
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
        rgb, lab = render_street_scene(width, height, image_rng(seed, split, index), anomalies=split == 'test',
                                       anomaly_fraction=anomaly_fraction)
    except Exception as err:
        raise RuntimeError(f'drawing {split} image {index} ({img_rel}, seed {seed}, {width}x{height}) failed: '
                           f'{type(err).__name__}: {err}') from err
    for rel, arr in ((img_rel, rgb[..., ::-1]), (ann_rel, lab)):
        path = osp.join(root, rel)
        if not cv2.imwrite(path, np.ascontiguousarray(arr), [cv2.IMWRITE_PNG_COMPRESSION, 3]):
            raise OSError(f'could not write {path} (cv2.imwrite failed; check free space and permissions)')
    return split, index, np.bincount(lab.ravel(), minlength=16)[:16]


def generate_street_hazards(out_dir: str, num_train: int = DEFAULT_NUM_TRAIN, num_val: int = DEFAULT_NUM_VAL,
                            num_test: int = DEFAULT_NUM_TEST, size: Tuple[int, int] = DEFAULT_SIZE, seed: int = 0,
                            anomaly_fraction: float = 0.01, workers: int = 1, overwrite: bool = False,
                            verbose: bool = True, log: Callable[[str], None] = print) -> Dict:
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
        verbose: report progress through ``log``.

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
        files[split] = _split_files(split, num)
        tasks += [(root, split, i, img, ann, width, height, int(seed), float(anomaly_fraction))
                  for i, (img, ann) in enumerate(files[split])]

    start = time.time()
    total = len(tasks)
    step = max(1, total // 10)
    pixels = {s: np.zeros(16, np.int64) for s in counts}
    if verbose:
        log(f'[generate_streethazards] drawing {total} images at {width}x{height} '
            f'(train {counts["train"]}, val {counts["val"]}, test {counts["test"]}) with {workers} worker(s) '
            f'into {root}')
    pool, cv2_threads = None, cv2.getNumThreads()
    if workers > 1 and total > 1:
        # Workers render single-threaded. The limit is set here, before the fork, because calling
        # cv2.setNumThreads inside a forked child (with torch loaded) deadlocks on the parent's
        # thread pool; the parent's setting is restored below.
        cv2.setNumThreads(1)
        pool = multiprocessing.Pool(workers)
    try:
        results = pool.imap(_work, tasks, chunksize=max(1, min(8, total // (4 * workers)))) if pool \
            else map(_work, tasks)
        for done, (split, _, hist) in enumerate(results, 1):
            pixels[split] += hist
            if verbose and (done % step == 0 or done == total):
                el = time.time() - start
                log(f'[generate_streethazards] {done}/{total} images ({el:.1f} s, '
                    f'{el / done * (total - done):.1f} s left)')
    except BaseException:
        if pool is not None:
            pool.terminate()
        raise
    finally:
        if pool is not None:
            pool.close()
            pool.join()
            cv2.setNumThreads(cv2_threads)

    summary = dict(root=root, size=(width, height), seed=int(seed), anomaly_fraction=float(anomaly_fraction))
    for split in counts:
        _, subs, odgt = SPLIT_LAYOUT[split]
        with open(osp.join(root, odgt), 'w') as f:
            for img, ann in files[split]:
                f.write(json.dumps({'fpath_img': img, 'fpath_segm': ann, 'width': width, 'height': height}) + '\n')
        top = SPLIT_LAYOUT[split][0]
        summary[split] = dict(
            num_images=counts[split], odgt=osp.join(root, odgt),
            image_dirs=[osp.join(root, top, 'images', s) for s in subs],
            annotation_dirs=[osp.join(root, top, 'annotations', s) for s in subs],
            class_pixels={CLASS_NAMES[v - 1]: int(pixels[split][v]) for v in range(1, 15)})
    n_test = pixels['test'][1:15].sum()
    summary['anomaly_pixel_fraction'] = float(pixels['test'][ANOMALY] / n_test) if n_test else 0.0
    summary['seconds'] = time.time() - start
    if verbose:
        log(f'[generate_streethazards] done in {summary["seconds"]:.1f} s; anomaly pixels in test: '
            f'{100 * summary["anomaly_pixel_fraction"]:.2f} %')
    return summary
