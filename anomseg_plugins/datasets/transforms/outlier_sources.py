"""Where pasted outliers come from: ``folder`` cut-outs, ``procedural`` shapes x textures, ``cutpaste`` regions.

Used by :class:`~anomseg_plugins.datasets.transforms.PasteOutliers`. Every source answers ``draw(h, w, img)`` with a
``(h, w, 3)`` uint8 patch (BGR, as mmcv loads images) and a ``(h, w)`` float32 alpha in [0, 1] (1 = object).

None of them touches the dataset generator's anomaly code (the generated test anomalies must stay unseen in
training), nor the sample photographs shipped in installed packages (scikit-learn's, matplotlib's: reserved for
held-out evaluation). The shapes and textures here are drawn by this module's own code.
"""
import glob
import os.path as osp
from collections import deque
from typing import Deque, List, Optional, Sequence, Tuple

import cv2
import numpy as np

Patch = Tuple[np.ndarray, np.ndarray]

#: File suffixes the folder source reads.
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.webp')
#: Suffix naming the mask of an image + mask pair: ``car.jpg`` + ``car_mask.png``.
MASK_SUFFIX = '_mask.png'

SHAPES = ('ellipse', 'rectangle', 'polygon', 'blob', 'composite')
TEXTURES = ('solid', 'stripes', 'checker', 'noise', 'gradient', 'scene_colours')


# ----------------------------------------------------------------------------------------------------------- masks
def random_shape_mask(h: int, w: int, rng: np.random.RandomState, shape: Optional[str] = None) -> np.ndarray:
    """A binary ``(h, w)`` float32 mask of one random shape filling most of the box (a small margin left free
    so a soft edge is not cut by the box)."""
    shape = shape or SHAPES[rng.randint(len(SHAPES))]
    mask = np.zeros((h, w), np.uint8)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    ry, rx = max(1.0, 0.45 * h), max(1.0, 0.45 * w)
    if shape == 'ellipse':
        angle = rng.uniform(-20, 20)
        cv2.ellipse(mask, (int(round(cx)), int(round(cy))), (int(rx), int(ry)), angle, 0, 360, 1, -1)
    elif shape == 'rectangle':
        fy, fx = rng.uniform(0.7, 1.0, size=2)
        box = cv2.boxPoints(((cx, cy), (2 * rx * fx, 2 * ry * fy), rng.uniform(-15, 15)))
        cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 1)
    elif shape == 'polygon':
        n = rng.randint(3, 9)
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = rng.uniform(0.5, 1.0, n)
        pts = np.stack([cx + rx * rad * np.cos(ang), cy + ry * rad * np.sin(ang)], 1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    elif shape == 'blob':
        g = rng.rand(rng.randint(3, 6), rng.randint(3, 6)).astype(np.float32)
        field = cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
        yy, xx = np.mgrid[0:h, 0:w]
        radial = 1.0 - np.sqrt(((yy - cy) / ry)**2 + ((xx - cx) / rx)**2)
        mask = ((0.6 * radial + 0.4 * field) > 0.35).astype(np.uint8)
    elif shape == 'composite':
        parts = [random_shape_mask(h, w, rng, SHAPES[rng.randint(4)]) for _ in range(2)]
        sy, sx = int(rng.randint(-h // 4, h // 4 + 1)), int(rng.randint(-w // 4, w // 4 + 1))
        shifted = np.roll(np.roll(parts[1], sy, 0), sx, 1)
        mask = np.maximum(parts[0], shifted * _box_keep(h, w)).astype(np.uint8)
    else:
        raise ValueError(f'unknown shape {shape!r}; choose one of {SHAPES}')
    if mask.sum() == 0:  # tiny boxes: fall back to a filled centre
        mask[h // 4:max(h // 4 + 1, 3 * h // 4), w // 4:max(w // 4 + 1, 3 * w // 4)] = 1
    return mask.astype(np.float32)


def _box_keep(h: int, w: int) -> np.ndarray:
    """1 inside the box minus a 5% margin (keeps rolled masks from wrapping to the opposite side)."""
    keep = np.zeros((h, w), np.float32)
    my, mx = max(1, h // 20), max(1, w // 20)
    keep[my:h - my, mx:w - mx] = 1
    return keep


# -------------------------------------------------------------------------------------------------------- textures
def _colour(rng: np.random.RandomState) -> np.ndarray:
    return rng.randint(0, 256, 3).astype(np.float32)


def random_texture(h: int,
                   w: int,
                   rng: np.random.RandomState,
                   img: Optional[np.ndarray] = None,
                   texture: Optional[str] = None) -> np.ndarray:
    """A ``(h, w, 3)`` uint8 texture: solid, stripes, checker, smooth colour noise, gradient, or ``scene_colours``
    (colours picked from random pixels of ``img``: known colours on an unknown object), then shaded top to bottom
    and grained so that it does not read as a flat sticker."""
    texture = texture or TEXTURES[rng.randint(len(TEXTURES))]
    if texture == 'scene_colours' and img is not None:
        flat = img.reshape(-1, img.shape[-1])[:, :3]
        c1, c2 = (flat[rng.randint(len(flat))].astype(np.float32) for _ in range(2))
        texture_body = ('solid', 'stripes', 'checker')[rng.randint(3)]
    else:
        c1, c2 = _colour(rng), _colour(rng)
        texture_body = 'solid' if texture == 'scene_colours' else texture
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if texture_body == 'solid':
        t = np.zeros((h, w, 1), np.float32)
    elif texture_body == 'stripes':
        theta, period = rng.uniform(0, np.pi), rng.uniform(3, max(4.0, min(h, w) / 2))
        t = ((np.cos(theta) * xx + np.sin(theta) * yy) // period % 2)[..., None]
    elif texture_body == 'checker':
        period = rng.uniform(3, max(4.0, min(h, w) / 2))
        t = ((xx // period + yy // period) % 2)[..., None]
    elif texture_body == 'gradient':
        theta = rng.uniform(0, 2 * np.pi)
        proj = np.cos(theta) * xx + np.sin(theta) * yy
        t = ((proj - proj.min()) / max(1e-6, np.ptp(proj)))[..., None]
    elif texture_body == 'noise':
        g = rng.randint(0, 256, (rng.randint(2, 8), rng.randint(2, 8), 3)).astype(np.float32)
        return _shade(cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC), rng)
    else:
        raise ValueError(f'unknown texture {texture!r}; choose one of {TEXTURES}')
    tex = c1[None, None] * (1 - t) + c2[None, None] * t
    return _shade(tex, rng)


def _shade(tex: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    h = tex.shape[0]
    top, bottom = rng.uniform(0.8, 1.15), rng.uniform(0.55, 1.0)
    light = np.linspace(top, bottom, h, dtype=np.float32)[:, None, None]
    grain = rng.normal(0, rng.uniform(0, 8), tex.shape).astype(np.float32)
    return np.clip(tex * light + grain, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------------- sources
class ProceduralSource:
    """Shapes (:data:`SHAPES`) x textures (:data:`TEXTURES`) drawn here: unlimited, cheap, any size."""

    name = 'procedural'

    def draw(self, h: int, w: int, img: np.ndarray, rng: np.random.RandomState) -> Patch:
        return random_texture(h, w, rng, img), random_shape_mask(h, w, rng)


class CutPasteSource:
    """Regions cut from training images with a random shape mask: known textures out of context.

    Keeps the ``pool_size`` most recent clean training crops this transform instance has seen (per dataloader
    worker) and cuts from one of them or from the current image; the region is randomly flipped / rotated by
    90 degrees so that, e.g., facade or vegetation texture lies on the road.
    """

    name = 'cutpaste'

    def __init__(self, pool_size: int = 8) -> None:
        if pool_size < 0:
            raise ValueError(f'PasteOutliers: pool_size must be >= 0, got {pool_size}')
        self.pool: Deque[np.ndarray] = deque(maxlen=pool_size)

    def remember(self, img: np.ndarray) -> None:
        """Add a clean copy of a training image to the pool (called once per transformed sample)."""
        if self.pool.maxlen:
            self.pool.append(img.copy())

    def draw(self, h: int, w: int, img: np.ndarray, rng: np.random.RandomState) -> Patch:
        candidates = list(self.pool) + [img]
        src = candidates[rng.randint(len(candidates))]
        if rng.rand() < 0.5:  # rotate a quarter turn: cut (w, h) and turn it into (h, w)
            region = np.rot90(_cut(src, w, h, rng), k=1 if rng.rand() < 0.5 else 3)
        else:
            region = _cut(src, h, w, rng)
        if rng.rand() < 0.5:
            region = region[::-1]
        return np.ascontiguousarray(region[..., :3]).astype(np.uint8), random_shape_mask(h, w, rng)


def _cut(src: np.ndarray, h: int, w: int, rng: np.random.RandomState) -> np.ndarray:
    """A random ``(h, w)`` region of ``src`` (the whole of ``src`` resized when it is smaller)."""
    sh, sw = src.shape[:2]
    if sh < h or sw < w:
        return cv2.resize(src, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
    y, x = rng.randint(sh - h + 1), rng.randint(sw - w + 1)
    return src[y:y + h, x:x + w]


class FolderSource:
    """Cut-outs read once from a folder: RGBA PNGs (alpha = object) or image + mask pairs (``car.jpg`` and
    ``car_mask.png``, mask > 127 = object). What the literature pastes: COCO / ADE20K objects of classes outside
    the known ones (Meta-OoD, PEBAL, DenseHybrid). Each cut-out is cropped to its mask's bounding box.

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: the folder holds no image, a file cannot be read, or an image has neither an alpha channel nor
            a ``*_mask.png``, or an empty mask; the message names the folder or file and what is expected.
    """

    name = 'folder'

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.items: List[Patch] = load_cutouts(folder)

    def draw(self, h: int, w: int, img: np.ndarray, rng: np.random.RandomState) -> Patch:
        patch, alpha = self.items[rng.randint(len(self.items))]
        if rng.rand() < 0.5:
            patch, alpha = patch[:, ::-1], alpha[:, ::-1]
        patch = cv2.resize(np.ascontiguousarray(patch), (w, h), interpolation=cv2.INTER_LINEAR)
        alpha = cv2.resize(np.ascontiguousarray(alpha), (w, h), interpolation=cv2.INTER_LINEAR)
        return patch.reshape(h, w, 3), np.clip(alpha, 0, 1).astype(np.float32)

    def aspect(self, rng: np.random.RandomState) -> float:
        """Width / height of a random cut-out (PasteOutliers keeps the cut-outs' proportions)."""
        patch = self.items[rng.randint(len(self.items))][0]
        return patch.shape[1] / patch.shape[0]


_EXPECTED = (f'RGBA PNGs (alpha = object) or image + mask pairs (NAME.jpg/.png + NAME{MASK_SUFFIX}, mask > 127 = '
             'object)')


def load_cutouts(folder: str) -> List[Patch]:
    """Read every cut-out of ``folder`` (see :class:`FolderSource`) as ``(bgr uint8 (h, w, 3), alpha float32)``."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'PasteOutliers folder source: {folder!r} is not a folder; expected a folder of '
                                f'{_EXPECTED}')
    files = sorted(p for p in glob.glob(osp.join(folder, '*')) if p.lower().endswith(IMAGE_SUFFIXES))
    images = [p for p in files if not p.endswith(MASK_SUFFIX)]
    if not images:
        raise ValueError(f'PasteOutliers folder source: {folder!r} holds no image file ({", ".join(IMAGE_SUFFIXES)}); '
                         f'expected {_EXPECTED}')
    items = []
    for path in images:
        img = _read(path, cv2.IMREAD_UNCHANGED)
        mask_path = osp.splitext(path)[0] + MASK_SUFFIX
        if osp.exists(mask_path):
            mask = _read(mask_path, cv2.IMREAD_GRAYSCALE)
            if mask.shape[:2] != img.shape[:2]:
                raise ValueError(f'PasteOutliers folder source: mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} '
                                 f'but its image {path} is {img.shape[1]}x{img.shape[0]}; they must match')
            alpha = (mask > 127).astype(np.float32)
            bgr = img if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
            bgr = bgr[..., :3]
        elif img.ndim == 3 and img.shape[2] == 4:
            alpha = img[..., 3].astype(np.float32) / (65535.0 if img.dtype == np.uint16 else 255.0)
            bgr = img[..., :3]
        else:
            raise ValueError(f'PasteOutliers folder source: {path} has no alpha channel and no mask '
                             f'{osp.basename(mask_path)} beside it; expected {_EXPECTED}')
        if bgr.dtype != np.uint8:
            bgr = (bgr / 257).astype(np.uint8) if bgr.dtype == np.uint16 else np.clip(bgr, 0, 255).astype(np.uint8)
        ys, xs = np.nonzero(alpha > 0.5)
        if len(ys) == 0:
            raise ValueError(f'PasteOutliers folder source: {path} has an empty object mask (alpha / mask all '
                             f'background); expected {_EXPECTED}')
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        items.append((np.ascontiguousarray(bgr[y0:y1, x0:x1]), np.ascontiguousarray(alpha[y0:y1, x0:x1])))
    return items


def _read(path: str, flag: int) -> np.ndarray:
    img = cv2.imread(path, flag)
    if img is None:
        raise ValueError(f'PasteOutliers folder source: cannot read {path} (not an image or corrupt); expected '
                         f'{_EXPECTED}')
    return img


def pick_weighted(names: Sequence[str], weights: Sequence[float], rng: np.random.RandomState) -> str:
    """One of ``names`` with probability proportional to ``weights``."""
    p = np.asarray(weights, np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]
