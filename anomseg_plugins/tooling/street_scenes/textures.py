"""Colours and textures of the known classes, drawn with per-image jitter.

Every class has a characteristic appearance: a hue / saturation / value box around a class-typical
colour (``*_colour`` functions) and its own texture (``*_texture`` factories: facade window grids,
block/brick bond, wooden planks, foliage). The scene draws the known classes from these functions,
and the test anomalies draw their colours and textures from the *same* functions
(:mod:`.anomalies`), so that anomaly pixels share the known classes' colour distribution and only shape,
size, placement and context set them apart.

Each function consumes the generator it is given in a fixed order, so a scene is deterministic per seed.
"""
import colorsys
from typing import Callable, Tuple

import cv2
import numpy as np

from .camera import Colour

#: ``fn(th, tw, ppm) -> (th, tw, 3)``: a flat texture of ``th x tw`` texels at ``ppm`` texels per metre.
FlatTexture = Callable[[int, int, float], np.ndarray]


def hsv(rng: np.random.Generator, h: Tuple[float, float], s: Tuple[float, float], v: Tuple[float, float]) -> Colour:
    """Draw an RGB colour (0..255) uniformly from a hue (degrees, may wrap) / saturation / value box."""
    hue = (rng.uniform(*h) % 360.0) / 360.0
    rgb = colorsys.hsv_to_rgb(hue, float(np.clip(rng.uniform(*s), 0, 1)), float(np.clip(rng.uniform(*v), 0, 1)))
    return np.array(rgb, np.float32) * 255.0


def noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth value noise of roughly unit amplitude with features of ``cell`` pixels, (h, w) float32."""
    if cell <= 1.5:
        return rng.standard_normal((h, w), dtype=np.float32)
    grid = rng.standard_normal((int(h / cell) + 2, int(w / cell) + 2), dtype=np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def flat(rng: np.random.Generator,
         h: int,
         w: int,
         colour: Colour,
         lf: float = 0.06,
         lf_cell: float = 20.,
         hf: float = 0.03,
         hf_cell: float = 1.) -> np.ndarray:
    """``colour`` modulated by low- and high-frequency luminance noise, (h, w, 3) float32."""
    lum = 1.0 + lf * noise(rng, h, w, lf_cell) + hf * noise(rng, h, w, hf_cell)
    return lum[..., None] * colour[None, None, :]


def leafy(rng: np.random.Generator, h: int, w: int, colour: Colour, leaf_px: float) -> np.ndarray:
    """Foliage: clumps and leaf-sized speckles with dark gaps, (h, w, 3) float32."""
    clumps = noise(rng, h, w, max(3.0, leaf_px * 6))
    leaves = noise(rng, h, w, max(1.0, leaf_px))
    lum = 1.0 + 0.18 * clumps + 0.22 * leaves
    lum = np.where(leaves < -1.0, lum * 0.55, lum)
    tint = np.stack([np.ones_like(clumps), 1.0 + 0.06 * clumps, np.ones_like(clumps)], -1)
    return lum[..., None] * tint * colour[None, None, :]


# --------------------------------------------------------------------------------------------------
# class palettes (one draw = one object's base colour)
# --------------------------------------------------------------------------------------------------
def asphalt_colour(rng: np.random.Generator) -> Colour:
    """Road: dark grey asphalt."""
    return hsv(rng, (0, 360), (0.0, 0.06), (0.22, 0.4))


def paving_colour(rng: np.random.Generator) -> Colour:
    """Sidewalk paving: light warm grey."""
    return hsv(rng, (5, 40), (0.04, 0.25), (0.5, 0.75))


def kerb_colour(rng: np.random.Generator) -> Colour:
    """Sidewalk kerb stones: neutral grey."""
    return hsv(rng, (0, 360), (0.0, 0.05), (0.55, 0.85))


def grass_colour(rng: np.random.Generator) -> Colour:
    """Grass verge (vegetation)."""
    return hsv(rng, (75, 115), (0.45, 0.8), (0.25, 0.5))


def foliage_colour(rng: np.random.Generator) -> Colour:
    """Tree crowns (vegetation)."""
    return hsv(rng, (70, 130), (0.4, 0.85), (0.18, 0.5))


def bark_colour(rng: np.random.Generator) -> Colour:
    """Tree trunks (vegetation)."""
    return hsv(rng, (15, 35), (0.3, 0.55), (0.15, 0.35))


def car_paint_colour(rng: np.random.Generator) -> Colour:
    """Car bodies: blue 45 %, silver/grey 30 %, black 15 %, white 10 %."""
    kind = rng.random()
    if kind < 0.45:
        return hsv(rng, (205, 240), (0.45, 0.9), (0.25, 0.65))
    if kind < 0.75:
        return hsv(rng, (0, 360), (0.0, 0.08), (0.5, 0.82))
    if kind < 0.9:
        return hsv(rng, (0, 360), (0.0, 0.1), (0.07, 0.2))
    return hsv(rng, (0, 360), (0.0, 0.05), (0.86, 0.95))


def metal_colour(rng: np.random.Generator) -> Colour:
    """Poles and lamp posts: grey metal."""
    return hsv(rng, (0, 360), (0.0, 0.1), (0.35, 0.65))


def clutter_colour(rng: np.random.Generator) -> Colour:
    """``other`` (bins, benches, crates, barriers, bollards): orange-brown paint."""
    return hsv(rng, (12, 32), (0.55, 0.85), (0.45, 0.85))


def shirt_colour(rng: np.random.Generator) -> Colour:
    """Pedestrian tops: reds 70 %, muted browns otherwise."""
    return hsv(rng, (-20, 15), (0.5, 0.88), (0.4, 0.82)) if rng.random() < 0.7 else \
        hsv(rng, (-40, 30), (0.2, 0.5), (0.25, 0.5))


def trousers_colour(rng: np.random.Generator) -> Colour:
    """Pedestrian trousers: dark blue 70 %, dark grey otherwise."""
    return hsv(rng, (200, 240), (0.1, 0.5), (0.1, 0.35)) if rng.random() < 0.7 else \
        hsv(rng, (0, 360), (0.0, 0.1), (0.08, 0.3))


# --------------------------------------------------------------------------------------------------
# facade textures (flat, warped onto a facade plane by the layout)
# --------------------------------------------------------------------------------------------------
def building_texture(r: np.random.Generator) -> FlatTexture:
    """Plaster or brick facade with a window grid, floor ledges, a cornice and optional shop windows."""
    base = hsv(r, (15, 50), (0.03, 0.35), (0.45, 0.85)) if r.random() < 0.8 else \
        hsv(r, (5, 20), (0.35, 0.55), (0.35, 0.55))  # plaster / brick
    glass = hsv(r, (195, 225), (0.12, 0.4), (0.12, 0.32))
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
        tex = flat(r, th, tw, base, lf=0.07, lf_cell=max(4.0, 3 * ppm), hf=0.04, hf_cell=max(1.0, 0.2 * ppm))
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


def wall_texture(r: np.random.Generator) -> FlatTexture:
    """Concrete or stone wall in a running bond of blocks, with a coping on top."""
    base = hsv(r, (200, 260), (0.04, 0.2), (0.45, 0.75)) if r.random() < 0.65 else \
        hsv(r, (30, 50), (0.05, 0.2), (0.5, 0.7))  # concrete / stone
    bh, bl = r.uniform(0.25, 0.6), r.uniform(0.5, 1.3)
    jw = r.uniform(0.02, 0.05)
    joint_dark = r.uniform(0.2, 0.35)
    table = r.uniform(-1, 1, (64, 64)).astype(np.float32)

    def fn(th: int, tw: int, ppm: float) -> np.ndarray:
        tex = flat(r, th, tw, base, lf=0.05, lf_cell=max(4.0, 2 * ppm), hf=0.05, hf_cell=max(1.0, 0.1 * ppm))
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


def fence_texture(r: np.random.Generator) -> FlatTexture:
    """Wooden fence: vertical planks with grain, dark gaps and two rails."""
    base = hsv(r, (18, 38), (0.3, 0.6), (0.35, 0.65))
    pw, gap = r.uniform(0.09, 0.2), r.uniform(0.01, 0.04)
    rails = (r.uniform(0.15, 0.3), r.uniform(0.7, 0.85))
    table = r.uniform(-1, 1, 256).astype(np.float32)

    def fn(th: int, tw: int, ppm: float) -> np.ndarray:
        grain = noise(r, th, max(tw // 3, 2), max(2.0, 0.5 * ppm))
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


def hedge_texture(r: np.random.Generator) -> FlatTexture:
    """Hedge (vegetation): foliage with leaves of about 8 cm."""
    base = hsv(r, (75, 125), (0.4, 0.8), (0.2, 0.5))
    return lambda th, tw, ppm: leafy(r, th, tw, base, max(1.0, 0.08 * ppm))
