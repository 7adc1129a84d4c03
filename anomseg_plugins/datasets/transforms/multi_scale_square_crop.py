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
    (SPEC section 2: scale 0.5-2.0, crop side 512*s, output 512x512).

    Required keys: ``img``, ``seg_fields`` and the maps it names.
    Modified keys: ``img``, ``img_shape``, every key in ``seg_fields``.
    Added keys: ``crop_scale`` (the drawn s), ``crop_bbox`` (``(y1, y2, x1, x2)`` in the input image).

    Args:
        output_size: side of the square output (int) or ``(h, w)``.
        scale_range: ``(min, max)`` of the uniform scale distribution.
        base_size: crop side at scale 1; defaults to the output side.
        interpolation: image interpolation for the resize (labels always use nearest).
    """

    def __init__(self, output_size: Union[int, Sequence[int]] = 512,
                 scale_range: Tuple[float, float] = (0.5, 2.0), base_size: Optional[int] = None,
                 interpolation: str = 'bilinear') -> None:
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

    @cache_randomness
    def _draw(self, img_h: int, img_w: int) -> Tuple[float, int, int, int]:
        scale = float(np.random.uniform(*self.scale_range))
        side = int(min(max(round(self.base_size * scale), 1), img_h, img_w))
        y1 = int(np.random.randint(0, img_h - side + 1))
        x1 = int(np.random.randint(0, img_w - side + 1))
        return scale, side, y1, x1

    def transform(self, results: dict) -> dict:
        img = results['img']
        img_h, img_w = img.shape[:2]
        scale, side, y1, x1 = self._draw(img_h, img_w)
        y2, x2 = y1 + side, x1 + side
        out_h, out_w = self.output_size
        results['img'] = mmcv.imresize(img[y1:y2, x1:x2], (out_w, out_h), interpolation=self.interpolation)
        for key in results.get('seg_fields', []):
            results[key] = mmcv.imresize(results[key][y1:y2, x1:x2], (out_w, out_h), interpolation='nearest')
        results['img_shape'] = results['img'].shape[:2]
        results['crop_scale'] = scale
        results['crop_bbox'] = (y1, y2, x1, x2)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(output_size={self.output_size}, scale_range={self.scale_range}, '
                f"base_size={self.base_size}, interpolation='{self.interpolation}')")
