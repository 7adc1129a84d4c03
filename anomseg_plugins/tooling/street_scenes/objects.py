"""Street objects of the known classes, placed in the lanes and on the sidewalks and drawn as 3D geometry.

- cars: boxes with a cabin, glass, wheels, lights and a plate, in the lanes (a quarter parked at the kerb);
- pedestrians: legs, torso, arms, head and hair on the sidewalks;
- poles: sign posts (carrying one or two traffic signs) and street lamps at the kerb;
- ``other`` clutter: bins, benches, crates, barriers and bollards on the sidewalks.

Every object is placed with :func:`~.placement.place` and keeps clear of the anomalies placed before it
(:meth:`~.scene.Scene.occludes_anomaly`), so that anomalies stay visible.
"""
import math
from typing import List, Optional, Tuple

import cv2
import numpy as np

from .camera import Colour
from .classes import CAR, OTHER, PEDESTRIAN, POLE, TRAFFIC_SIGN
from .placement import place, visible_depth
from .textures import car_paint_colour, clutter_colour, flat, hsv, metal_colour, shirt_colour, trousers_colour


def street_items(scene) -> List[tuple]:
    """Cars, pedestrians, poles and clutter of the scene as ``(nearest depth, draw)`` steps."""
    r = scene.rng
    items: List[tuple] = []

    # cars: up to n in the lanes (or parked at the kerb), 7 m apart in the same lane
    taken: List[Tuple[float, float]] = []

    def propose_car() -> Optional[tuple]:
        parked = r.random() < 0.25
        if parked:
            side = int(r.choice([-1, 1]))
            rel = side * (scene.half_road - r.uniform(0.9, 1.2))
            oncoming = False
        else:
            lane = int(r.integers(scene.n_lanes))
            rel = scene.lane_center(lane) + r.uniform(-0.3, 0.3)
            oncoming = scene.two_way and lane < scene.n_lanes // 2
        zlo = 9.0 if abs(float(scene.xc(5)) + rel) < 1.5 else 3.0
        z = visible_depth(r, scene, rel, zlo, 55.0, 1.0)
        if z is None or any(abs(rel - tr) < 2.2 and abs(z - tz) < 7.0 for tr, tz in taken):
            return None
        length, width = r.uniform(3.8, 4.8), r.uniform(1.7, 1.95)
        x = float(scene.xc(z)) + rel
        if scene.occludes_anomaly(x - width / 2, x + width / 2, z, z + length):
            return None
        taken.append((rel, z))
        return z, lambda: car(scene, x, z, length, width, oncoming)

    items += place(propose_car, count=int(r.integers(2, 9)), tries=40)

    def on_sidewalk(rel_fn, zlo: float, zhi: float, margin_m: float, half_w: float, make_draw):
        """Proposal of one sidewalk object: a visible depth, kept clear of the anomalies.

        ``make_draw(x, z, side, attempt)`` is called for accepted candidates only and returns the drawing step.
        """
        attempt = [0]

        def propose() -> Optional[tuple]:
            k = attempt[0]
            attempt[0] += 1
            side = int(r.choice([-1, 1]))
            rel = rel_fn(side)
            z = visible_depth(r, scene, rel, zlo, zhi, margin_m)
            if z is None:
                return None
            x = float(scene.xc(z)) + rel
            if scene.occludes_anomaly(x - half_w, x + half_w, z, z + half_w):
                return None
            return z, make_draw(x, z, side, k)

        return propose

    n = int(r.integers(3, 10))  # pedestrians: one attempt each
    items += place(
        on_sidewalk(scene.sidewalk_rel, 3.0, 28.0, 0.5, 0.3, lambda x, z, side, k: lambda: pedestrian(scene, x, z)),
        count=n,
        tries=n)

    def pole_draw(x: float, z: float, side: int, k: int):
        kind = 'sign' if k == 0 or r.random() < 0.6 else 'lamp'  # the first attempt always carries a sign
        return lambda: pole(scene, x, z, side, kind)

    n = int(r.integers(2, 7))  # poles at the kerb: sign posts and street lamps
    items += place(
        on_sidewalk(lambda side: side * (scene.half_road + r.uniform(0.3, 0.8)), 4.0, 35.0, 0.5, 0.3, pole_draw),
        count=n,
        tries=n)
    n = int(r.integers(2, 7))  # other: bins, benches, crates, barriers, bollards
    items += place(
        on_sidewalk(lambda side: scene.sidewalk_rel(side, 0.6, 0.5), 3.0, 28.0, 1.0, 1.0,
                    lambda x, z, side, k: lambda: clutter(scene, x, z)),
        count=n,
        tries=n)
    return items


def box(scene,
        x0: float,
        x1: float,
        y0: float,
        y1: float,
        z0: float,
        z1: float,
        label: int,
        colour: Colour,
        noise: float = 0.04,
        top: bool = True) -> None:
    """Visible faces (top, side, front) of an axis-aligned box in front of the camera, shaded by orientation."""
    cam, r = scene.cam, scene.rng
    zc = 0.5 * (z0 + z1)

    def tex_of(shade: float):
        return lambda X0, Y0, w, h: scene.haze(flat(r, h, w, colour * shade, lf=noise, lf_cell=max(3.0, w / 3)), zc)

    if top and y1 < cam.cam_h:
        poly = cam.project([x0, x1, x1, x0], y1, [z0, z0, z1, z1])
        scene.canvas.paint([poly], label, tex_of(scene.shade_top))
    if x1 < 0:  # right-hand face visible
        poly = cam.project([x1, x1, x1, x1], [y0, y1, y1, y0], [z0, z0, z1, z1])
        scene.canvas.paint([poly], label, tex_of(scene.shade_left * 0.9))
    elif x0 > 0:
        poly = cam.project([x0, x0, x0, x0], [y0, y1, y1, y0], [z0, z0, z1, z1])
        scene.canvas.paint([poly], label, tex_of(scene.shade_right * 0.9))
    poly = cam.project([x0, x1, x1, x0], [y0, y0, y1, y1], z0)
    scene.canvas.paint([poly], label, tex_of(scene.shade_front))


def car(scene, xm: float, z: float, length: float, width: float, oncoming: bool) -> None:
    """A car seen from behind (or the front when ``oncoming``): body, cabin with glass, wheels, lights, plate."""
    r, cam, cv = scene.rng, scene.cam, scene.canvas
    body = car_paint_colour(r)
    glass = hsv(r, (190, 220), (0.1, 0.35), (0.08, 0.25))
    tyre = hsv(r, (0, 360), (0.0, 0.1), (0.04, 0.1))
    h_car = r.uniform(1.35, 1.7)
    clear = 0.2
    belt = clear + (h_car - clear) * r.uniform(0.5, 0.6)
    x0, x1 = xm - width / 2, xm + width / 2
    z1 = z + length
    # rear/front wheels peeking below the body
    for wx in (x0 + 0.08, x1 - 0.33):
        cv.paint([cam.project([wx, wx + 0.25, wx + 0.25, wx], [0, 0, 0.45, 0.45], z + 0.7)], CAR, scene.haze(tyre, z))
    box(scene, x0, x1, clear, belt, z, z1, CAR, body, noise=0.03)
    # wheels on the visible flank
    side_x = x1 if x1 < 0 else (x0 if x0 > 0 else None)
    if side_x is not None:
        for wz in (z + 0.75, z1 - 0.8):
            ang = np.linspace(0, 2 * np.pi, 16, endpoint=False)
            poly = cam.project(side_x, 0.33 + 0.33 * np.sin(ang), wz + 0.33 * np.cos(ang))
            cv.paint([poly], CAR, scene.haze(tyre, z))
    # cabin with glass
    cz0, cz1 = z + length * r.uniform(0.18, 0.3), z + length * r.uniform(0.7, 0.8)
    cx0, cx1 = x0 + 0.1, x1 - 0.1
    box(scene, cx0, cx1, belt, h_car, cz0, cz1, CAR, body, noise=0.03)
    m = 0.07
    cv.paint([cam.project([cx0 + m, cx1 - m, cx1 - m, cx0 + m], [belt + m, belt + m, h_car - m, h_car - m], cz0)], CAR,
             lambda X0, Y0, w, h: scene.haze(flat(r, h, w, glass, lf=0.15, lf_cell=max(2.0, w / 2)), z))
    side_c = cx1 if cx1 < 0 else (cx0 if cx0 > 0 else None)
    if side_c is not None:
        poly = cam.project(side_c, [belt + m, belt + m, h_car - m, h_car - m], [cz0 + m, cz1 - m, cz1 - m, cz0 + m])
        cv.paint([poly], CAR, scene.haze(glass * 1.1, z))
    # lights and plate on the visible end
    light = np.array([250, 245, 225], np.float32) if oncoming else hsv(r, (350, 365), (0.75, 0.95), (0.6, 0.9))
    ly0, ly1 = belt - 0.22, belt - 0.06
    for lx in (x0 + 0.08, x1 - 0.33):
        cv.paint([cam.project([lx, lx + 0.25, lx + 0.25, lx], [ly0, ly0, ly1, ly1], z)], CAR, scene.haze(light, z))
    cv.paint([cam.project([xm - 0.26, xm + 0.26, xm + 0.26, xm - 0.26], [0.35, 0.35, 0.47, 0.47], z)], CAR,
             scene.haze(np.array([225, 225, 215], np.float32), z))


def pedestrian(scene, x: float, z: float) -> None:
    """A standing or walking person: legs, torso, arms, neck, head and hair."""
    r, cam, cv = scene.rng, scene.cam, scene.canvas
    s = cam.scale(z)
    u0, v0 = cam.project(x, 0.0, z)[0]
    hgt = r.uniform(1.6, 1.95)
    shirt = shirt_colour(r)
    pants = trousers_colour(r)
    skin = hsv(r, (15, 32), (0.25, 0.6), (0.35, 0.9))
    hair = hsv(r, (15, 40), (0.2, 0.6), (0.05, 0.3))
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
        cv.paint([P([[hip - lw / 2, leg_top], [hip + lw / 2, leg_top], [foot + lw / 2, 0.0], [foot - lw / 2, 0.0]])],
                 PEDESTRIAN, scene.haze(pants * (1.0 + 0.1 * sgn), z))
    torso_top = 0.82 * hgt
    cv.paint([
        P([[-sw / 2, torso_top], [sw / 2, torso_top], [sw / 2 - 0.05, leg_top - 0.03], [-sw / 2 + 0.05, leg_top - 0.03]
           ])
    ], PEDESTRIAN, lambda X0, Y0, w, h: scene.haze(flat(r, h, w, shirt, lf=0.1, lf_cell=max(2.0, h / 3)), z))
    for sgn in (-1, 1):
        swing = r.uniform(-0.12, 0.12)
        cv.paint([
            P([[sgn * sw / 2, torso_top - 0.02], [sgn * (sw / 2 + 0.09), torso_top - 0.05],
               [sgn * (sw / 2 + 0.08) + swing, 0.45 * hgt], [sgn * (sw / 2 - 0.01) + swing, 0.45 * hgt]])
        ], PEDESTRIAN, scene.haze(shirt * 0.88, z))
    head_r = 0.105 * hgt / 1.75
    hc = P([[0.0, hgt - head_r]])[0]
    head = cv2.ellipse2Poly(
        (int(hc[0] * 8), int(hc[1] * 8)),
        (max(1, int(head_r * s * 8 * 0.85)), max(1, int(head_r * s * 8))), 0, 0, 360, 20).astype(np.float64) / 8
    neck = P([[-0.05, torso_top + 0.04], [0.05, torso_top + 0.04], [0.05, torso_top - 0.02], [-0.05, torso_top - 0.02]])
    cv.paint([head, neck], PEDESTRIAN, scene.haze(skin, z))
    hair_poly = cv2.ellipse2Poly(
        (int(hc[0] * 8), int((hc[1] - head_r * s * 0.35) * 8)),
        (max(1, int(head_r * s * 8 * 0.9)), max(1, int(head_r * s * 8 * 0.7))), 0, 180, 360, 20).astype(np.float64) / 8
    cv.paint([hair_poly], PEDESTRIAN, scene.haze(hair, z))


def pole(scene, x: float, z: float, side: int, kind: str) -> None:
    """A sign post (``kind='sign'``, one or two signs) or a street lamp with an arm over the road."""
    r, cam, cv = scene.rng, scene.cam, scene.canvas
    metal = metal_colour(r)
    pw = r.uniform(0.22, 0.38)
    height = r.uniform(2.8, 4.2) if kind == 'sign' else r.uniform(5.0, 8.0)

    def cyl(X0, Y0, w, h):  # cylinder shading across the pole
        t = np.linspace(-1, 1, w, dtype=np.float32)
        lum = (0.75 + 0.35 * np.sqrt(np.clip(1 - t**2, 0, 1)))[None, :] * np.ones((h, 1), np.float32)
        return scene.haze(lum[..., None] * metal, z)

    cv.paint([cam.project([x - pw / 2, x + pw / 2, x + pw / 2, x - pw / 2], [height, height, 0, 0], z)], POLE, cyl)
    if kind == 'lamp':
        arm = r.uniform(1.2, 2.5) * -side
        ax0, ax1 = sorted((x, x + arm))
        cv.paint([cam.project([ax0, ax1, ax1, ax0], [height, height, height - 0.12, height - 0.12], z)], POLE,
                 scene.haze(metal, z))
        lx = x + arm
        cv.paint([
            cam.project([lx - 0.35, lx + 0.35, lx + 0.25, lx - 0.25], [height, height, height - 0.22, height - 0.22], z)
        ], POLE, scene.haze(metal * 0.8, z))
        return
    n_signs = 1 if r.random() < 0.75 else 2
    yc = height - r.uniform(0.3, 0.5)
    for _ in range(n_signs):
        size = r.uniform(0.8, 1.2)
        sign(scene, x, yc, z, size)
        yc -= size * 1.05


def sign(scene, x: float, yc: float, z: float, size: float) -> None:
    """A traffic sign (circle, triangle, rectangle, diamond or octagon) with a rim and a dark symbol."""
    r, cam, cv = scene.rng, scene.cam, scene.canvas
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
        face = hsv(r, (47, 60), (0.7, 0.95), (0.75, 0.95))
        rim = hsv(r, (0, 360), (0.0, 0.2), (0.05, 0.2))
    else:  # white face, red rim
        face = hsv(r, (40, 60), (0.0, 0.08), (0.85, 0.97))
        rim = hsv(r, (350, 365), (0.75, 0.95), (0.6, 0.85))
    cv.paint([outer + c], TRAFFIC_SIGN, scene.haze(rim, z))
    cv.paint([inner + c], TRAFFIC_SIGN, lambda X0, Y0, w, h: scene.haze(flat(r, h, w, face, lf=0.04), z))
    # a dark symbol
    sym = np.array([[-0.12, -0.3], [0.12, -0.3], [0.12, 0.3], [-0.12, 0.3]]) * half
    if r.random() < 0.5:
        sym = sym[:, ::-1].copy()
    cv.paint([sym + c], TRAFFIC_SIGN, scene.haze(rim if style >= 0.6 else np.float32([30, 30, 30]), z))


def clutter(scene, x: float, z: float) -> None:
    """``other``: bins, benches, crates, construction barriers, bollards (orange-brown painted)."""
    r = scene.rng
    col = clutter_colour(r)
    kind = str(r.choice(['bin', 'bench', 'crate', 'barrier', 'bollards']))
    if kind == 'bin':
        w, h, d = r.uniform(0.6, 0.9), r.uniform(1.0, 1.4), r.uniform(0.6, 0.9)
        box(scene, x - w / 2, x + w / 2, 0, h, z, z + d, OTHER, col, noise=0.06)
        box(scene, x - w / 2 - 0.04, x + w / 2 + 0.04, h, h + 0.08, z - 0.04, z + d + 0.04, OTHER, col * 0.6)
    elif kind == 'bench':
        w = r.uniform(1.4, 2.2)
        for lx in (x - w / 2 + 0.1, x + w / 2 - 0.2):
            box(scene, lx, lx + 0.1, 0, 0.45, z + 0.1, z + 0.5, OTHER, col * 0.5)
        box(scene, x - w / 2, x + w / 2, 0.45, 0.52, z, z + 0.55, OTHER, col)
        box(scene, x - w / 2, x + w / 2, 0.6, 0.95, z + 0.5, z + 0.58, OTHER, col * 0.9)
    elif kind == 'crate':
        s = r.uniform(0.8, 1.3)
        box(scene, x - s / 2, x + s / 2, 0, s, z, z + s, OTHER, col, noise=0.1)
        box(scene, x - s / 2, x + s / 2, s * 0.45, s * 0.55, z - 0.01, z, OTHER, col * 0.6, top=False)
    elif kind == 'barrier':
        w, h = r.uniform(1.4, 2.4), r.uniform(0.9, 1.2)
        box(scene, x - w / 2, x + w / 2, 0, h, z, z + 0.4, OTHER, col, noise=0.05)
        for k in range(3):
            yb = h * (0.15 + 0.3 * k)
            box(scene, x - w / 2, x + w / 2, yb, yb + 0.08 * h, z - 0.01, z, OTHER, col * 0.55, top=False)
    else:
        for k in range(int(r.integers(2, 5))):
            bx = x + (k - 1.5) * r.uniform(0.9, 1.4)
            box(scene, bx - 0.15, bx + 0.15, 0, r.uniform(0.8, 1.1), z, z + 0.3, OTHER, col)
