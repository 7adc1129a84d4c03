"""Scene layout: sky, ground (road, lines, kerbs, sidewalks, grass), skyline, and the roadside frontage.

- sky (``unlabeled``): zenith-to-horizon gradient with clouds, or overcast grey;
- ground: every pixel below the horizon is mapped back to ground coordinates ``(X, Z)``, which gives
  the road (lane and edge markings in world units, so dashes shrink with distance), kerbs and tiled
  sidewalks on both sides, and grass beyond them;
- a distant skyline of buildings and a tree line near the horizon;
- along each sidewalk a sequence of frontage segments -- buildings, walls, fences, hedges, gaps -- with
  set-back buildings and trees behind the low ones; textures (:mod:`.textures`) are drawn flat and
  warped onto the facade plane.
"""
import math
from typing import Callable, List

import cv2
import numpy as np

from .classes import BUILDING, FENCE, ROAD, ROAD_LINE, SIDEWALK, UNLABELED, VEGETATION, WALL
from .textures import (FlatTexture, asphalt_colour, bark_colour, building_texture, fence_texture, foliage_colour,
                       grass_colour, hedge_texture, hsv, kerb_colour, leafy, noise, paving_colour, wall_texture)


def draw_sky(scene) -> None:
    """Sky gradient with optional clouds above the horizon; resets the label map to ``unlabeled``."""
    r, w, h = scene.rng, scene.w, scene.h
    rows = int(min(h, math.ceil(scene.cam.horizon) + 2))
    t = np.clip(np.arange(rows, dtype=np.float32) / max(scene.cam.horizon, 1.0), 0, 1)**0.8
    grad = scene.zenith[None, :] * (1 - t[:, None]) + scene.horizon_col[None, :] * t[:, None]
    sky = np.repeat(grad[:, None, :], w, axis=1)
    if r.random() < 0.75:
        cover = r.uniform(0.0, 0.9)
        n = 0.65 * noise(r, rows, w, w / r.uniform(4, 10)) + 0.35 * noise(r, rows, w, w / 30.0)
        alpha = np.clip((n - (1.0 - cover)) * 1.5, 0, 0.9)[..., None]
        cloud = hsv(r, (0, 360), (0.0, 0.04), (0.85, 1.0)) * (1.0 - 0.12 * np.clip(n, 0, 2)[..., None])
        sky = sky * (1 - alpha) + cloud * alpha
    scene.canvas.img[:rows] = sky
    scene.canvas.lab[:] = UNLABELED


def draw_ground(scene) -> None:
    """Road, road lines, kerbs, sidewalks and grass from the inverse ground projection."""
    r, cam, w, h = scene.rng, scene.cam, scene.w, scene.h
    top = int(min(max(math.floor(cam.horizon) + 1, 0), h))
    if top >= h:
        return
    rows = h - top
    dv = np.maximum(np.arange(top, h, dtype=np.float32) + 0.5 - cam.horizon, 0.3)
    z_row = np.minimum(cam.f * cam.cam_h / dv, 2000.0).astype(np.float32)  # depth of each row
    uu = (np.arange(w, dtype=np.float32) + 0.5 - cam.cx) / cam.f
    rel = uu[None, :] * z_row[:, None] - scene.xc(z_row).astype(np.float32)[:, None]  # road-relative X
    zz = np.broadcast_to(z_row[:, None], rel.shape)
    hr = scene.half_road
    arel = np.abs(rel)
    # colour index per pixel: 0 road, 1 white line, 2 yellow line, 3 sidewalk, 4 kerb, 5 grass
    road = arel <= hr
    side = (rel >= scene.side_edge(-1)) & (rel <= scene.side_edge(1)) & ~road
    idx = np.full(rel.shape, 5, np.uint8)
    idx[side] = 3
    idx[side & (arel <= hr + scene.kerb)] = 4
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
    palette[0] = asphalt_colour(r)
    patches = world_noise(r.uniform(2.0, 6.0))
    to_centre = np.abs((rel + hr) % scene.lane_w - scene.lane_w / 2)  # distance to the lane centre
    tracks = np.exp(-((to_centre - 0.8) / 0.3)**2)
    lum = (1.0 + 0.07 * patches + 0.035 * grain) * (1.0 - r.uniform(0.0, 0.08) * tracks)

    # road lines (world units: dashes shrink with distance)
    lines = np.zeros(rel.shape, bool)
    lw = r.uniform(0.18, 0.35)
    dash, gap = r.uniform(2.5, 4.0), r.uniform(3.0, 8.0)
    phase = r.uniform(0, dash + gap)
    dashed = ((zz + phase) % (dash + gap)) < dash
    yellow = np.zeros(rel.shape, bool)
    centre_i = scene.n_lanes // 2 if scene.two_way else -1
    for i in range(1, scene.n_lanes):
        pos = -hr + i * scene.lane_w
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
    palette[1] = hsv(r, (40, 60), (0.0, 0.1), (0.8, 0.95))
    palette[2] = hsv(r, (42, 54), (0.6, 0.85), (0.75, 0.92))
    wear = 1.0 + 0.08 * world_noise(0.5) + 0.03 * grain
    idx[lines] = 1
    idx[lines & yellow] = 2
    lum = np.where(lines, wear, lum)

    # sidewalk: paving tiles with joints and per-tile brightness; kerb stones
    palette[3] = paving_colour(r)
    palette[4] = kerb_colour(r)
    ts = r.uniform(0.3, 0.8)
    table = r.uniform(-1, 1, size=(32, 32)).astype(np.float32)
    tile_j = table[np.floor(rel / ts).astype(np.int32) % 32, np.floor(zz / ts).astype(np.int32) % 32]
    joint_w = r.uniform(0.03, 0.06) / ts
    joint = ((rel / ts) % 1.0 < joint_w) | ((zz / ts) % 1.0 < joint_w)
    paving = 1.0 + 0.07 * tile_j + 0.03 * grain - joint * np.float32(r.uniform(0.25, 0.4))
    lum = np.where(idx == 3, paving, lum)
    lum = np.where(idx == 4, 1.0 + 0.04 * grain, lum)

    # grass verge beyond the sidewalks
    palette[5] = grass_colour(r)
    lum = np.where(idx == 5, 1.0 + 0.15 * world_noise(r.uniform(1.0, 3.0)) + 0.12 * grain, lum)

    a = (0.65 * (1.0 - np.exp(-z_row / scene.fog)))[:, None, None]
    scene.canvas.img[top:] = (palette[idx] * lum[..., None]) * (1.0 - a) + scene.horizon_col * a
    scene.canvas.lab[top:] = np.array([ROAD, ROAD_LINE, ROAD_LINE, SIDEWALK, SIDEWALK, VEGETATION], np.uint8)[idx]


def facade(scene,
           xa: float,
           za: float,
           xb: float,
           zb: float,
           height: float,
           label: int,
           tex_fn: FlatTexture,
           shade: float,
           base: float = 0.0) -> None:
    """Warp a flat texture onto the vertical rectangle from ``(xa, za)`` to ``(xb, zb)``."""
    cam = scene.cam
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
    roi = scene.canvas.roi(np.clip(pts, -1e5, 1e5))
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
    tex = scene.haze(tex, 0.5 * (za + zb))
    src = np.array([[0, 0], [tw, 0], [tw, th], [0, th]], np.float32)
    dst = (pts - (x0, y0)).astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(tex, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    scene.canvas.paint([pts], label, warped, roi=roi)


def tree(scene, x: float, z: float, height: float, crown: float) -> None:
    """Trunk and an irregular crown of overlapping ellipses (vegetation)."""
    r, cam = scene.rng, scene.cam
    s = cam.scale(z)
    trunk_w = r.uniform(0.2, 0.45)
    trunk_top = height - crown * 1.2
    trunk = cam.project([x - trunk_w / 2, x + trunk_w / 2, x + trunk_w / 2, x - trunk_w / 2],
                        [trunk_top + 0.5, trunk_top + 0.5, 0, 0], z)
    scene.canvas.paint([trunk], VEGETATION, scene.haze(bark_colour(r), z))
    polys = []
    cy = height - crown
    for _ in range(int(r.integers(3, 7))):
        ox, oy = r.uniform(-0.6, 0.6) * crown, r.uniform(-0.4, 0.5) * crown
        ax, ay = r.uniform(0.5, 0.9) * crown, r.uniform(0.45, 0.8) * crown
        c = cam.project(x + ox, cy + oy, z)[0]
        poly = cv2.ellipse2Poly((int(c[0] * 4), int(c[1] * 4)), (max(1, int(ax * s * 4)), max(1, int(ay * s * 4))),
                                int(r.uniform(0, 180)), 0, 360, 15)
        polys.append(poly.astype(np.float64) / 4)
    col = foliage_colour(r)
    leaf = max(1.0, 0.12 * s)
    scene.canvas.paint(polys, VEGETATION, lambda x0, y0, w, h: scene.haze(leafy(r, h, w, col, leaf), z))


def draw_background(scene) -> None:
    """Skyline of distant buildings and a tree line around the horizon."""
    r, cam = scene.rng, scene.cam
    if r.random() < 0.85:
        zb = r.uniform(140, 260)
        half = zb * (scene.w / 2) / cam.f * 1.2
        x = -half - r.uniform(0, 20)
        while x < half:
            bw = r.uniform(10, 40)
            if r.random() < 0.8:
                facade(scene, x, zb, x + bw, zb, r.uniform(6, 45), BUILDING, building_texture(r), scene.shade_front)
            x += bw
    if r.random() < 0.7:
        zt = r.uniform(70, 130)
        half = zt * (scene.w / 2) / cam.f * 1.2
        x = -half
        while x < half:
            if r.random() < 0.75:
                tree(scene, x, zt, r.uniform(6, 14), r.uniform(2.5, 5))
            x += r.uniform(3, 9)


def roadside_items(scene) -> List[tuple]:
    """Frontage segments, set-back buildings and trees along both sides, as ``(nearest depth, draw)``."""
    r = scene.rng
    items: List[tuple] = []
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
        items.extend(_segment_items(scene, s))
    return items


def _segment_items(scene, s: dict) -> List[tuple]:
    """Drawing steps of one frontage segment and whatever stands behind it."""
    r = scene.rng
    side, kind, za, zb = s['side'], s['kind'], s['za'], s['zb']
    setback = r.uniform(0.0, 1.0) if kind != 'gap' else 0.0
    rel = scene.side_edge(side) + side * setback
    xa, xb = float(scene.xc(za)) + rel, float(scene.xc(zb)) + rel
    normal = -side  # facade faces the road
    shade = scene.face_shade(normal)
    out: List[tuple] = []
    if kind == 'building':
        height = r.uniform(6, 30)
        tex = building_texture(r)
        depth = r.uniform(8, 20)
        out.append((za, lambda:
                    (facade(scene, xa, za, xb, zb, height, BUILDING, tex, shade),
                     facade(scene, xa + side * depth, za, xa, za, height, BUILDING, tex, scene.shade_front * 0.9))))
        return out
    height = dict(wall=r.uniform(1.0, 3.0), fence=r.uniform(1.0, 2.2), hedge=r.uniform(0.8, 2.0), gap=0.0)[kind]
    if kind != 'gap':
        label = dict(wall=WALL, fence=FENCE, hedge=VEGETATION)[kind]
        make: Callable[[np.random.Generator], FlatTexture] = dict(
            wall=wall_texture, fence=fence_texture, hedge=hedge_texture)[kind]
        tex = make(r)
        out.append((za, lambda: facade(scene, xa, za, xb, zb, height, label, tex, shade)))
    # behind low frontage: set-back buildings and trees
    if r.random() < 0.5:
        off = side * r.uniform(4.0, 12.0)
        bh = r.uniform(8, 28)
        btex = building_texture(r)
        zs, ze = za + r.uniform(0, 3), zb + r.uniform(-2, 6)
        if ze > zs + 3:
            bxa, bxb = float(scene.xc(zs)) + rel + off, float(scene.xc(ze)) + rel + off
            out.append((zs + 0.01, lambda: facade(scene, bxa, zs, bxb, ze, bh, BUILDING, btex, shade)))
    for _ in range(int(r.integers(0, 3))):
        zt = r.uniform(za, zb)
        xt = float(scene.xc(zt)) + rel + side * r.uniform(0.8, 4.0)
        th, cr = r.uniform(4, 11), r.uniform(1.2, 3.5)
        out.append((zt + 0.02, lambda xt=xt, zt=zt, th=th, cr=cr: tree(scene, xt, zt, th, cr)))
    return out
