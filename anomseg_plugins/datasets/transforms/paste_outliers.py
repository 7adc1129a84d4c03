"""``PasteOutliers``: outlier exposure's data side, pasting outlier objects into training crops.

Outlier exposure (Hendrycks et al., ICLR 2019) and its segmentation forms (Meta-OoD, Chan et al., ICCV 2021;
DenseHybrid, Grcic et al., ECCV 2022; PEBAL, Tian et al., ECCV 2022) paste objects of unknown classes into inlier
training images and train a loss on the pasted pixels. How the pasted pixels reach the losses (the reserved label
254 in ``gt_seg_map``) is documented in :mod:`anomseg_plugins.models.losses.outlier_labels`.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ...models.losses.outlier_labels import OUTLIER_INDEX, check_outlier_index
from .outlier_sources import CutPasteSource, FolderSource, ProceduralSource, pick_weighted

#: Index of ``road`` among StreetHazards' 13 training classes (see ``StreetHazardsDataset.METAINFO``).
STREET_HAZARDS_ROAD = 7
SOURCES = ('procedural', 'cutpaste', 'folder')


@TRANSFORMS.register_module()
class PasteOutliers(BaseTransform):
    """Paste ``0..K`` outlier instances into a training crop and label their pixels ``outlier_index``.

    Put it in ``train_pipeline`` right after the crop (sizes are then in output pixels) and before the photometric
    transforms (which then treat pasted and scene pixels alike); never in a val / test pipeline. Per image, with
    probability ``prob``, ``K ~ U{num_outliers[0]..num_outliers[1]}`` instances are pasted one after the other:

    - **source**: drawn by ``sources`` weight: ``'procedural'`` (shapes x textures drawn by
      :mod:`.outlier_sources`), ``'cutpaste'`` (regions of this or recently seen training crops under a random
      shape mask: known textures out of context), ``'folder'`` (RGBA / image + mask cut-outs from ``folder``,
      e.g. COCO objects outside the known classes, read once at construction);
    - **placement**: with probability ``road_prob`` the instance is centred on a pixel of class ``road_index``
      (drivable ground; StreetHazards' ``road`` = 7) when the crop shows at least ``min_road_pixels`` of it (a
      random road row, then a random road pixel in that row, so far and near placements are equally likely),
      otherwise on a random pixel below the horizon;
    - **size** grows towards the bottom of the crop, as perspective would: height =
      ``s * H * depth`` with ``s ~ U(size_range)`` and ``depth = (cy - horizon) / (H - horizon)`` clipped to
      ``[min_depth, 1]``, where ``horizon`` is the top row of the crop's road pixels (or ``horizon * H`` without
      road); width = height x aspect (``aspect_range``, or the cut-out's own aspect for ``folder``);
      at least ``min_size`` pixels, at most the crop;
    - **mask**: with probability ``soft_prob`` a soft mask (the shape's mask Gaussian-blurred with sigma
      ``~ U(edge_sigma)``: the edge blends into the scene), otherwise hard. The image becomes
      ``alpha * patch + (1 - alpha) * image``; only pixels with ``alpha > 0`` change, and pixels with
      ``alpha >= 0.5`` get ``gt_seg_map = outlier_index`` (and ``gt_anomaly_map = 1`` when present), so they are
      trained as outliers and never as a known class.

    Required keys: ``img``, ``gt_seg_map``. Modified keys: ``img``, ``gt_seg_map``, ``gt_anomaly_map`` (if present).
    Added keys: ``pasted_outliers``, a list of dicts (``source``, ``bbox`` ``(x0, y0, x1, y1)`` clipped to the crop,
    ``center`` ``(cx, cy)``, ``on_road``, ``depth``, ``scale`` = s, ``height``, ``width`` before clipping).

    Args:
        sources: ``'procedural'``, a list of source names (equal weights) or ``{name: weight}``.
        folder: folder of cut-outs, required by the ``'folder'`` source.
        num_outliers: inclusive range ``(min, max)`` of instances per image.
        prob: probability of pasting anything into an image.
        size_range: range of ``s``, the instance height as a fraction of the crop height at the bottom row.
        aspect_range: width / height range of procedural and cutpaste instances (log-uniform).
        horizon: horizon row as a fraction of the crop height, used when the crop shows no road.
        min_depth: smallest depth factor (instances near the horizon still get ``min_depth`` of their size).
        min_size: smallest instance side in pixels.
        road_index: label of the drivable ground (StreetHazards ``road`` = 7); ``None`` places anywhere below
            the horizon.
        road_prob: probability of centring an instance on a road pixel when the crop has road.
        min_road_pixels: fewer road pixels than this count as "no road".
        soft_prob: probability of a soft (blurred) mask rather than a hard one.
        edge_sigma: range of the soft edge's Gaussian sigma, pixels.
        pool_size: number of recent clean crops the ``cutpaste`` source cuts from (per dataloader worker).
        min_contrast: an instance whose pixels differ from the scene under them by less than this (mean absolute
            difference, 0..255) is redrawn, up to ``max_tries`` draws (then the most different is kept): road cut
            out and pasted on road is no outlier. 0 disables the check.
        max_tries: draws per instance for ``min_contrast``.
        outlier_index: label of pasted pixels (254; must match the losses').
    """

    def __init__(self,
                 sources: Union[str, Sequence[str], Dict[str, float]] = 'procedural',
                 folder: Optional[str] = None,
                 num_outliers: Tuple[int, int] = (0, 3),
                 prob: float = 1.0,
                 size_range: Tuple[float, float] = (0.08, 0.35),
                 aspect_range: Tuple[float, float] = (0.5, 2.0),
                 horizon: float = 0.35,
                 min_depth: float = 0.2,
                 min_size: int = 6,
                 road_index: Optional[int] = STREET_HAZARDS_ROAD,
                 road_prob: float = 0.8,
                 min_road_pixels: int = 50,
                 soft_prob: float = 0.5,
                 edge_sigma: Tuple[float, float] = (0.5, 2.0),
                 pool_size: int = 8,
                 min_contrast: float = 30.0,
                 max_tries: int = 6,
                 outlier_index: int = OUTLIER_INDEX) -> None:
        super().__init__()
        self.weights = self._parse_sources(sources)
        lo, hi = num_outliers
        if not 0 <= lo <= hi:
            raise ValueError(f'PasteOutliers: num_outliers must be (min, max) with 0 <= min <= max, got {num_outliers}')
        for name, (a, b), bounds in (('size_range', size_range, (0, 1)), ('aspect_range', aspect_range, (0, None)),
                                     ('edge_sigma', edge_sigma, (0, None))):
            if not (a > bounds[0] and a <= b and (bounds[1] is None or b <= bounds[1])):
                raise ValueError(f'PasteOutliers: {name} must be (min, max) with {bounds[0]} < min <= max'
                                 f'{" <= 1" if bounds[1] else ""}, got {(a, b)}')
        for name, value in (('prob', prob), ('road_prob', road_prob), ('soft_prob', soft_prob), ('horizon', horizon),
                            ('min_depth', min_depth)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'PasteOutliers: {name} must be in [0, 1], got {value}')
        self.num_outliers = (int(lo), int(hi))
        self.prob = prob
        self.size_range = tuple(map(float, size_range))
        self.aspect_range = tuple(map(float, aspect_range))
        self.horizon = horizon
        self.min_depth = min_depth
        self.min_size = max(1, int(min_size))
        self.road_index = road_index
        self.road_prob = road_prob
        self.min_road_pixels = min_road_pixels
        self.soft_prob = soft_prob
        self.edge_sigma = tuple(map(float, edge_sigma))
        self.outlier_index = check_outlier_index(outlier_index, 'PasteOutliers')
        self.min_contrast = float(min_contrast)
        self.max_tries = max(1, int(max_tries))
        self.folder = folder
        self.sources = {}
        for name in self.weights:
            if name == 'procedural':
                self.sources[name] = ProceduralSource()
            elif name == 'cutpaste':
                self.sources[name] = CutPasteSource(pool_size)
            else:
                if not folder:
                    raise ValueError("PasteOutliers: the 'folder' source needs folder='path/to/cutouts' (RGBA PNGs "
                                     'or image + NAME_mask.png pairs)')
                self.sources[name] = FolderSource(folder)  # loaded once, errors name the folder / file

    @staticmethod
    def _parse_sources(sources) -> Dict[str, float]:
        if isinstance(sources, str):
            weights = {sources: 1.0}
        elif isinstance(sources, dict):
            weights = {str(k): float(v) for k, v in sources.items()}
        else:
            weights = {str(k): 1.0 for k in sources}
        unknown = [k for k in weights if k not in SOURCES]
        if not weights or unknown:
            raise ValueError(f'PasteOutliers: sources {sources!r} names unknown source(s) {unknown}; choose from '
                             f'{SOURCES} (a name, a list, or a dict name -> weight)')
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f'PasteOutliers: source weights must be >= 0 with a positive sum, got {weights}')
        return weights

    # ------------------------------------------------------------------------------------------------- geometry
    def _place(self, label: np.ndarray) -> Tuple[int, int, bool, float]:
        """Centre ``(cx, cy)``, whether it is on road, and the horizon row used for the depth."""
        h, w = label.shape
        road = label == self.road_index if self.road_index is not None else None
        n_road = int(road.sum()) if road is not None else 0
        has_road = n_road >= self.min_road_pixels
        horizon = float(np.nonzero(road.any(1))[0][0]) if has_road else self.horizon * h
        if has_road and np.random.rand() < self.road_prob:
            # a road row first (uniform over the rows showing road), then a road pixel in it: far (small) and near
            # (large) instances are equally likely, where uniform road pixels would favour the near, wide rows
            rows = np.nonzero(road.any(1))[0]
            cy = int(rows[np.random.randint(len(rows))])
            xs = np.nonzero(road[cy])[0]
            return int(xs[np.random.randint(len(xs))]), cy, True, horizon
        top = int(min(h - 1, max(0, round(self.horizon * h))))
        cy, cx = np.random.randint(top, h), np.random.randint(w)
        return int(cx), int(cy), bool(road is not None and road[cy, cx]), horizon

    def _depth(self, cy: int, horizon: float, h: int) -> float:
        span = max(1.0, h - horizon)
        return float(np.clip((cy - horizon) / span, self.min_depth, 1.0))

    # ---------------------------------------------------------------------------------------------------- paste
    def _paste_one(self, img: np.ndarray, label: np.ndarray, anomaly: Optional[np.ndarray]) -> dict:
        h, w = label.shape
        name = pick_weighted(list(self.weights), list(self.weights.values()), np.random)
        source = self.sources[name]
        cx, cy, on_road, horizon = self._place(label)
        depth = self._depth(cy, horizon, h)
        scale = float(np.random.uniform(*self.size_range))
        if isinstance(source, FolderSource):
            aspect = source.aspect(np.random)
        else:
            aspect = float(np.exp(np.random.uniform(np.log(self.aspect_range[0]), np.log(self.aspect_range[1]))))
        ph = max(self.min_size, int(round(scale * h * depth)))
        pw = max(self.min_size, int(round(ph * aspect)))
        ph, pw = min(ph, h), min(pw, w)
        y0, x0 = cy - ph // 2, cx - pw // 2
        # clip the box to the crop, and the patch with it
        ty0, tx0, ty1, tx1 = max(0, y0), max(0, x0), min(h, y0 + ph), min(w, x0 + pw)
        region = img[ty0:ty1, tx0:tx1]
        patch, alpha = self._draw_distinct(source, ph, pw, img, region, (ty0 - y0, tx0 - x0))
        if np.random.rand() < self.soft_prob:
            sigma = float(np.random.uniform(*self.edge_sigma))
            alpha = cv2.GaussianBlur(alpha, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)
        else:
            alpha = (alpha >= 0.5).astype(np.float32)
        a = alpha[ty0 - y0:ty1 - y0, tx0 - x0:tx1 - x0]
        p = patch[ty0 - y0:ty1 - y0, tx0 - x0:tx1 - x0].astype(np.float32)
        changed = a > 0
        blended = a[..., None] * p + (1.0 - a[..., None]) * region.astype(np.float32)
        if np.issubdtype(img.dtype, np.integer):
            blended = np.clip(np.round(blended), 0, 255)
        region[changed] = blended[changed].astype(img.dtype)
        hit = a >= 0.5
        label[ty0:ty1, tx0:tx1][hit] = self.outlier_index
        if anomaly is not None:
            anomaly[ty0:ty1, tx0:tx1][hit] = 1
        return dict(
            source=name,
            bbox=(tx0, ty0, tx1, ty1),
            center=(cx, cy),
            on_road=on_road,
            depth=depth,
            scale=scale,
            height=ph,
            width=pw)

    def _draw_distinct(self, source, ph: int, pw: int, img: np.ndarray, region: np.ndarray,
                       offset: Tuple[int, int]) -> tuple:
        """Draw up to ``max_tries`` patches and keep the first whose masked pixels differ from the scene under
        them by at least ``min_contrast`` (mean absolute difference, 0..255), else the most different one: a
        cut-out of road pasted on road would be labelled outlier while it looks exactly like an inlier."""
        best, best_diff = None, -1.0
        oy, ox = offset
        for _ in range(self.max_tries if self.min_contrast > 0 else 1):
            patch, alpha = source.draw(ph, pw, img, np.random)
            inside = alpha[oy:oy + region.shape[0], ox:ox + region.shape[1]] >= 0.5
            if not inside.any():
                return patch, alpha
            p = patch[oy:oy + region.shape[0], ox:ox + region.shape[1]][inside].astype(np.float32)
            diff = float(np.abs(p - region[inside][..., :3].astype(np.float32)).mean())
            if diff >= self.min_contrast:
                return patch, alpha
            if diff > best_diff:
                best, best_diff = (patch, alpha), diff
        return best

    def transform(self, results: dict) -> dict:
        if 'gt_seg_map' not in results:
            raise KeyError('PasteOutliers needs gt_seg_map: put it after the annotation loading and the crop in '
                           'train_pipeline')
        img = results['img']
        label = results['gt_seg_map']
        if img.shape[:2] != label.shape[:2]:
            raise ValueError(f'PasteOutliers: img {img.shape[:2]} and gt_seg_map {label.shape[:2]} differ in size; '
                             'put PasteOutliers after the transforms that resize them together')
        clean = img
        img, label = img.copy(), label.copy()
        anomaly = results.get('gt_anomaly_map')
        anomaly = anomaly.copy() if anomaly is not None else None
        records: List[dict] = []
        if np.random.rand() < self.prob:
            k = np.random.randint(self.num_outliers[0], self.num_outliers[1] + 1)
            for _ in range(k):
                records.append(self._paste_one(img, label, anomaly))
        if 'cutpaste' in self.sources:
            self.sources['cutpaste'].remember(clean)
        results['img'] = img
        results['gt_seg_map'] = label
        if anomaly is not None:
            results['gt_anomaly_map'] = anomaly
        results['pasted_outliers'] = records
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(sources={self.weights}, num_outliers={self.num_outliers}, '
                f'prob={self.prob}, size_range={self.size_range}, road_index={self.road_index}, '
                f'road_prob={self.road_prob}, soft_prob={self.soft_prob}, outlier_index={self.outlier_index})')
