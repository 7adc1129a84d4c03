"""Pinhole camera and the canvas that paints the image and its label map in the same stroke.

Painting both together (painter's algorithm, back to front) makes every annotation exact by
construction: a pixel's label is the class of whatever was painted on it last.
"""
import math
from typing import Callable, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .classes import UNLABELED

Colour = np.ndarray  # (3,) float32 RGB in 0..255
Poly = np.ndarray  # (N, 2) float image coordinates (x, y)
#: A texture: one colour, an ``(h, w, 3)`` array covering the region, or ``fn(x0, y0, w, h) -> (h, w, 3)``.
Texture = Union[Colour, Callable[[int, int, int, int], np.ndarray], np.ndarray]


class Camera:
    """Pinhole camera at ``(0, cam_h, 0)`` looking along +Z; image x right, y down.

    Drawn per image: 86-94 deg horizontal field of view, principal point within 2 % of the centre,
    horizon at 36-48 % of the image height, camera height 1.5-2.0 m.
    """

    z_near = 0.8

    def __init__(self, width: int, height: int, rng: np.random.Generator) -> None:
        self.w, self.h = width, height
        self.f = (width / 2.0) / math.tan(math.radians(rng.uniform(86.0, 94.0)) / 2.0)
        self.cx = width / 2.0 + rng.uniform(-0.02, 0.02) * width
        self.horizon = height * rng.uniform(0.36, 0.48)
        self.cam_h = rng.uniform(1.5, 2.0)

    def project(self, x, y, z) -> Poly:
        """World points -> (N, 2) image points (``z`` clipped to the near plane)."""
        x, y, z = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64), np.asarray(z, np.float64))
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


class Canvas:
    """Image (float RGB) and label map (uint8 on-disk values) painted together."""

    def __init__(self, width: int, height: int) -> None:
        self.w, self.h = width, height
        self.img = np.zeros((height, width, 3), np.float32)
        self.lab = np.full((height, width), UNLABELED, np.uint8)

    def roi(self, pts: np.ndarray) -> Optional[Tuple[int, int, int, int]]:
        """Bounding box ``(x0, y0, x1, y1)`` of ``pts`` clipped to the image, or None when outside."""
        x0 = max(int(math.floor(pts[:, 0].min())), 0)
        y0 = max(int(math.floor(pts[:, 1].min())), 0)
        x1 = min(int(math.ceil(pts[:, 0].max())) + 1, self.w)
        y1 = min(int(math.ceil(pts[:, 1].max())) + 1, self.h)
        if x1 <= x0 or y1 <= y0:
            return None
        return x0, y0, x1, y1

    def paint(self,
              polys: Sequence[Poly],
              label: int,
              tex: Texture,
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
            roi = self.roi(pts)
            if roi is None:
                return
        x0, y0, x1, y1 = roi
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        for p in polys:  # one call per polygon: fillPoly on a list would XOR the overlaps
            cv2.fillPoly(mask, [np.round((np.clip(p, -1e5, 1e5) - (x0, y0)) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
        self.paint_mask(x0, y0, mask, label, tex)

    def paint_mask(self, x0: int, y0: int, mask: np.ndarray, label: int, tex: Texture) -> None:
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
