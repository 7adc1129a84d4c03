"""Packs segmentation inputs like mmseg's ``PackSegInputs`` plus the anomaly mask."""
import numpy as np
from mmcv.transforms import to_tensor
from mmengine.structures import PixelData
from mmseg.datasets.transforms import PackSegInputs
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackAnomalySegInputs(PackSegInputs):
    """``PackSegInputs`` that also packs ``gt_anomaly_map``.

    Added data-sample field: ``gt_anomaly_map`` (``PixelData``, ``data`` uint8 ``(1, H, W)``: 1 = anomaly,
    0 = normal, 255 = ignore), read by ``AnomalyMetric`` and the visualisers. Everything else is
    exactly mmseg's packing, so ``IoUMetric`` and the losses see the usual ``gt_sem_seg``.
    """

    def transform(self, results: dict) -> dict:
        packed = super().transform(results)
        if 'gt_anomaly_map' in results:
            data = to_tensor(np.ascontiguousarray(results['gt_anomaly_map'][None, ...]).astype(np.uint8))
            packed['data_samples'].set_data(dict(gt_anomaly_map=PixelData(data=data)))
        return packed
