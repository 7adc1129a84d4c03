"""One procedurally drawn road scene: road geometry, lighting, and the order things are painted in.

A pinhole camera (:class:`~.camera.Camera`) looks down a road that may curve (centre line
``X_c(Z) = x0 + k Z^2``). The scene draws, back to front (painter's algorithm): the sky and the ground
(:mod:`.layout`), the distant skyline and tree line, the frontage along both sidewalks, then the
street objects (:mod:`.objects`) and, in the test split, the anomalies (:mod:`.anomalies`) sorted by
depth; finally a camera response (gain, light gradient, tint, blur, sensor grain) is applied to the
whole image. Lighting is per image: a shade factor per face orientation and a haze distance.
"""
import math
from typing import Callable, List, Tuple, Union

import cv2
import numpy as np

from . import anomalies, layout, objects
from .camera import Camera, Canvas
from .textures import hsv

#: A deferred drawing step keyed by its nearest depth (painted far to near).
Item = Tuple[float, Callable[[], None]]


class Scene:
    """Road geometry, lighting and the canvas of one image; ``render()`` returns ``(rgb, label)``.

    Args:
        width, height: image size in pixels.
        rng: the image's generator; every random choice of the scene is drawn from it, in a fixed order.
        anomalies: place anomalies (test split).
        anomaly_fraction: expected share of anomaly pixels over many images.
    """

    def __init__(self, width: int, height: int, rng: np.random.Generator, anomalies: bool,
                 anomaly_fraction: float) -> None:
        self.rng = rng
        self.w, self.h = width, height
        self.cam = Camera(width, height, rng)
        self.canvas = Canvas(width, height)
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
            self.zenith = hsv(r, (190, 230), (0.0, 0.08), (grey - 0.08, grey))
            self.horizon_col = hsv(r, (190, 230), (0.0, 0.06), (grey, grey + 0.1))
        else:
            self.zenith = hsv(r, (198, 225), (0.35, 0.7), (0.6, 0.9))
            self.horizon_col = hsv(r, (190, 215), (0.08, 0.3), (0.82, 0.97))
        self.anomaly_boxes: List[Tuple[float, float, float]] = []  # (x_lo, x_hi, z) of placed anomalies

    # -- geometry and lighting -------------------------------------------------------------------
    def lane_center(self, i: int) -> float:
        """Road-relative lateral position of the centre of lane ``i`` (0 = leftmost)."""
        return -self.half_road + (i + 0.5) * self.lane_w

    def xc(self, z) -> np.ndarray:
        """World X of the road centre line at depth ``z``."""
        return self.x0 + self.curv * np.asarray(z, np.float64)**2

    def side_edge(self, side: int) -> float:
        """Road-relative lateral position of the outer sidewalk edge (side -1 left, +1 right)."""
        return side * (self.half_road + self.sidewalk[0 if side < 0 else 1])

    def sidewalk_rel(self, side: int, lo: float = 0.3, hi: float = 0.3) -> float:
        """A random road-relative position on sidewalk ``side``, ``lo`` from the kerb and ``hi`` from the edge."""
        sw = self.sidewalk[0 if side < 0 else 1]
        return side * (self.half_road + self.rng.uniform(lo, max(lo, sw - hi)))

    def haze(self, tex: np.ndarray, z: float) -> np.ndarray:
        """Blend ``tex`` towards the horizon colour with distance ``z`` (aerial perspective)."""
        a = 0.65 * (1.0 - math.exp(-max(z, 0.0) / self.fog))
        return tex * (1.0 - a) + self.horizon_col * a

    def face_shade(self, normal_x: float) -> float:
        """Shade factor of a vertical face whose normal points along ``normal_x`` (0: towards the camera)."""
        if normal_x > 0:
            return self.shade_left
        if normal_x < 0:
            return self.shade_right
        return self.shade_front

    def occludes_anomaly(self, x_lo: float, x_hi: float, z_front: float, z_back: float) -> bool:
        """Whether an object spanning ``[x_lo, x_hi] x [z_front, z_back]`` would hide or overlap an anomaly."""
        for a_lo, a_hi, az in self.anomaly_boxes:
            if x_hi + 0.4 > a_lo and x_lo - 0.4 < a_hi and z_front < az + 1.5:
                return True
        return False

    # -- drawing -----------------------------------------------------------------------------------
    def render(self) -> Tuple[np.ndarray, np.ndarray]:
        """Paint the scene; returns ``(rgb uint8 (H, W, 3), label uint8 (H, W) with values 1..14)``."""
        layout.draw_sky(self)
        layout.draw_ground(self)
        layout.draw_background(self)
        for _, fn in sorted(layout.roadside_items(self), key=lambda t: -t[0]):
            fn()
        # anomalies are placed first, so that the street objects placed after them keep clear of them
        street: List[Item] = anomalies.anomaly_items(self) if self.with_anomalies else []
        street += objects.street_items(self)
        for _, fn in sorted(street, key=lambda t: -t[0]):
            fn()
        return self.finish()

    def finish(self) -> Tuple[np.ndarray, np.ndarray]:
        """Camera response: gain and a light gradient, colour tint, optional blur, sensor grain; to uint8."""
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


def render_street_scene(width: int,
                        height: int,
                        rng: Union[int, np.random.Generator],
                        anomalies: bool = False,
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
    return Scene(int(width), int(height), rng, anomalies, float(anomaly_fraction)).render()
