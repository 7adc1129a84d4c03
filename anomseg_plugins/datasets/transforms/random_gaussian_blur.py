"""Random Gaussian blur of the image (labels untouched), as in the StreetHazards study's recipe."""
from typing import Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomGaussianBlur(BaseTransform):
    """Blur the image with probability ``prob`` using a Gaussian of random sigma.

    Mirrors torchvision's ``GaussianBlur`` (the study used it with p=0.5): ``sigma ~ U(sigma_range)``,
    fixed odd ``kernel_size``. Only ``img`` changes; segmentation maps are left alone.

    Required keys: ``img``. Modified keys: ``img``. Added keys: ``blur_sigma`` (0.0 when not applied).

    Args:
        prob: probability of blurring.
        kernel_size: odd kernel side in pixels.
        sigma_range: ``(min, max)`` of the uniformly drawn standard deviation, in pixels.
    """

    def __init__(self, prob: float = 0.5, kernel_size: int = 5, sigma_range: Tuple[float, float] = (0.1, 2.0)) -> None:
        super().__init__()
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'RandomGaussianBlur: prob must be in [0, 1], got {prob}')
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f'RandomGaussianBlur: kernel_size must be a positive odd int, got {kernel_size}')
        if not (0 < sigma_range[0] <= sigma_range[1]):
            raise ValueError(f'RandomGaussianBlur: sigma_range must satisfy 0 < min <= max, got {sigma_range}')
        self.prob = prob
        self.kernel_size = kernel_size
        self.sigma_range = (float(sigma_range[0]), float(sigma_range[1]))

    @cache_randomness
    def _draw(self) -> float:
        if np.random.rand() >= self.prob:
            return 0.0
        return float(np.random.uniform(*self.sigma_range))

    def transform(self, results: dict) -> dict:
        sigma = self._draw()
        if sigma > 0:
            k = self.kernel_size
            results['img'] = cv2.GaussianBlur(results['img'], (k, k), sigmaX=sigma, sigmaY=sigma)
        results['blur_sigma'] = sigma
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, kernel_size={self.kernel_size}, '
                f'sigma_range={self.sigma_range})')
