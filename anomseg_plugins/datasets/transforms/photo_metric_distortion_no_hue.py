"""mmseg's ``PhotoMetricDistortion`` without its hue step: brightness, contrast and saturation jitter only.

The StreetHazards study's baseline recipe jitters brightness, contrast and saturation (torchvision
``ColorJitter(0.3, 0.3, 0.3)``) and leaves hue alone. mmseg 1.2.2 cannot say "no hue": with ``hue_delta=0`` its
``hue()`` draws ``numpy.random.randint(-0, 0)``, which raises ``ValueError: high <= 0`` on every image whose hue
branch is drawn (half of them), so a config with ``hue_delta=0`` crashes in training. This subclass keeps every
other step of mmseg's transform, in mmseg's order and with mmseg's draws, and skips the hue step.
"""
from typing import Sequence

import numpy as np
from mmseg.datasets.transforms import PhotoMetricDistortion
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PhotoMetricDistortionNoHue(PhotoMetricDistortion):
    """Random brightness, contrast and saturation as mmseg's ``PhotoMetricDistortion``; hue is never changed.

    Required keys: ``img``. Modified keys: ``img`` (labels untouched).

    Args:
        brightness_delta: maximum brightness shift (pixel values).
        contrast_range: ``(low, high)`` of the contrast factor.
        saturation_range: ``(low, high)`` of the saturation factor.
    """

    def __init__(
        self,
        brightness_delta: int = 32,
        contrast_range: Sequence[float] = (0.5, 1.5),
        saturation_range: Sequence[float] = (0.5, 1.5)
    ) -> None:
        super().__init__(
            brightness_delta=brightness_delta,
            contrast_range=contrast_range,
            saturation_range=saturation_range,
            hue_delta=0)

    def hue(self, img: np.ndarray) -> np.ndarray:
        """No hue change (mmseg's step would crash on ``hue_delta=0``)."""
        return img

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(brightness_delta={self.brightness_delta}, '
                f'contrast_range=({self.contrast_lower}, {self.contrast_upper}), '
                f'saturation_range=({self.saturation_lower}, {self.saturation_upper}))')
