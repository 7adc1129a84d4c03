"""Multi-scale square crop: the single largest gain of the StreetHazards study (+12.7 mIoU)."""
from typing import Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class MultiScaleSquareCrop(BaseTransform):
    """Crop a random square whose side follows a random scale, then resize it to a fixed size.

    Draws ``s ~ U(scale_range)``, takes a square of side ``round(base_size * s)`` clamped to the
    shorter image side (so the crop never leaves the image and is *never padded*), places it uniformly
    at random, and resizes it to ``output_size x output_size`` (bilinear for the image, nearest for
    every map in ``seg_fields``). ``s < 1`` zooms in on detail, ``s > 1`` shows more context
    (the headline recipe, README "Configs": scale 0.5-2.0, crop side 512*s, output 512x512).

    The clamp caps the scale an image can give: on a 1280x720 frame with ``base_size=512`` no crop is
    wider than 720 pixels, so every draw above 720/512 = 1.41 gives the same crop scale (about 40% of the
    draws of the headline's U(0.5, 2.0)). The scale actually used is recorded as ``effective_crop_scale``
    next to the drawn ``crop_scale``. A training crop shows ``output / (base_size * effective_crop_scale)``
    output pixels per input pixel, i.e. ``1 / effective_crop_scale`` when ``base_size`` equals the output
    side.

    With ``keep_scale=True`` the drawn scale is kept instead: a side longer than the image is cut to the
    image along that axis only (the crop becomes a rectangle of the full image height or width), and the
    window is resized by the same factor ``output / side``, so the output is *smaller* than
    ``output_size`` along that axis (e.g. 360x512 for s = 2 on a 1280x720 frame). mmseg's
    ``SegDataPreProcessor`` with ``size=output_size`` pads such a batch (labels with ``seg_pad_val``,
    ignored by the loss), so the transform itself still never pads.

    Required keys: ``img``, ``seg_fields`` and the maps it names.
    Modified keys: ``img``, ``img_shape``, every key in ``seg_fields``.
    Added keys: ``crop_scale`` (the drawn s), ``effective_crop_scale`` (``side / base_size`` of the square
    whose resize to ``output_size`` sets the magnification: the clamped side by default, the drawn side with
    ``keep_scale``), ``crop_bbox`` (``(y1, y2, x1, x2)`` of the window in the input image).

    Args:
        output_size: side of the square output (int) or ``(h, w)``.
        scale_range: ``(min, max)`` of the uniform scale distribution.
        base_size: crop side at scale 1; defaults to the output side.
        interpolation: image interpolation for the resize (labels always use nearest).
        keep_scale: keep the drawn scale when the square does not fit (smaller output, see above)
            instead of clamping the square to the shorter image side (the study's behaviour, default).
    """

    def __init__(self,
                 output_size: Union[int, Sequence[int]] = 512,
                 scale_range: Tuple[float, float] = (0.5, 2.0),
                 base_size: Optional[int] = None,
                 interpolation: str = 'bilinear',
                 keep_scale: bool = False) -> None:
        super().__init__()
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        if len(output_size) != 2 or min(output_size) <= 0:
            raise ValueError(f'MultiScaleSquareCrop: output_size must be a positive int or (h, w), got {output_size}')
        if not (0 < scale_range[0] <= scale_range[1]):
            raise ValueError(f'MultiScaleSquareCrop: scale_range must satisfy 0 < min <= max, got {scale_range}')
        self.output_size = tuple(int(v) for v in output_size)
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.base_size = int(base_size) if base_size is not None else max(self.output_size)
        self.interpolation = interpolation
        self.keep_scale = bool(keep_scale)

    @cache_randomness
    def _draw(self, img_h: int, img_w: int) -> Tuple[float, int, int, int]:
        """Draw the scale and the window: ``(s, side, y1, x1)``; the window is ``side`` cut to the image."""
        scale = float(np.random.uniform(*self.scale_range))
        side = max(round(self.base_size * scale), 1)
        if not self.keep_scale:
            side = min(side, img_h, img_w)
        y1 = int(np.random.randint(0, img_h - min(side, img_h) + 1))
        x1 = int(np.random.randint(0, img_w - min(side, img_w) + 1))
        return scale, int(side), y1, x1

    def transform(self, results: dict) -> dict:
        img = results['img']
        img_h, img_w = img.shape[:2]
        scale, side, y1, x1 = self._draw(img_h, img_w)
        y2, x2 = y1 + min(side, img_h), x1 + min(side, img_w)
        out_h, out_w = self.output_size
        # the window is resized by output / side on each axis: a window cut by the image border
        # (keep_scale) keeps that factor and gives a proportionally smaller output
        dst_w = max(round((x2 - x1) * out_w / side), 1)
        dst_h = max(round((y2 - y1) * out_h / side), 1)
        results['img'] = mmcv.imresize(img[y1:y2, x1:x2], (dst_w, dst_h), interpolation=self.interpolation)
        for key in results.get('seg_fields', []):
            results[key] = mmcv.imresize(results[key][y1:y2, x1:x2], (dst_w, dst_h), interpolation='nearest')
        results['img_shape'] = results['img'].shape[:2]
        results['crop_scale'] = scale
        results['effective_crop_scale'] = side / self.base_size
        results['crop_bbox'] = (y1, y2, x1, x2)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(output_size={self.output_size}, scale_range={self.scale_range}, '
                f"base_size={self.base_size}, interpolation='{self.interpolation}', keep_scale={self.keep_scale})")
