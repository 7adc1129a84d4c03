"""Test-time augmentation that merges *logits*, so that logit-based anomaly scorers stay logit scorers."""
from typing import List

import torch
from mmengine.model import BaseTTAModel
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import SampleList

#: Metainfo key of a merged sample: the metainfo of each view it was merged from, in the order the views ran.
TTA_VIEW_METAS = 'tta_view_metas'

#: Metainfo keys that describe one view's geometry (its resize, padding and flip), not the merged prediction.
VIEW_GEOMETRY_KEYS = ('img_shape', 'pad_shape', 'scale_factor', 'keep_ratio', 'flip', 'flip_direction',
                      'img_padding_size', 'padding_size')


@MODELS.register_module()
class LogitSegTTAModel(BaseTTAModel):
    """mmseg's ``SegTTAModel`` with the views' *logits* averaged instead of their softmax probabilities.

    For each image, the views of the ``tta_pipeline`` (``TestTimeAug`` over resize ratios x flips) run through
    ``module`` (an mmseg segmentor) one after another; mmseg's ``postprocess_result`` has already removed each
    view's padding, undone its flip and resized its logits ``z_v`` ``(C, H, W)`` to the original image size.
    The merged sample has

    - ``seg_logits`` = ``mean_v z_v`` (the mean of the per-view logits, *not* of ``softmax(z_v)``);
    - ``pred_sem_seg`` = ``argmax_c`` of it (one channel: ``sigmoid(mean_v z_v) > decode_head.threshold``);
    - the ground-truth fields (``gt_sem_seg``, ``gt_anomaly_map``, ...) of the first view: the
      ``tta_pipeline`` loads annotations after the augmentations, so every view carries them at the original
      size (checked against the logits);
    - the first view's metainfo with the view geometry replaced by that of the merged maps (``img_shape`` =
      ``ori_shape``, no flip) and ``tta_view_metas``: each view's own metainfo (padding, flip), in the order
      the views ran, which ``AnomalyTestLoop`` uses to merge the backbone features the same way.

    Why not mmseg's ``SegTTAModel``: it stores the mean of ``softmax(z_v)`` as ``seg_logits``, which silently
    turns the logit scorers (MaxLogit, Energy, SML, HEAT) into probability scorers. Averaging logits keeps
    every scorer's formula and fitted statistics on the scale it was defined on; the argmax of the mean logits
    may differ from mmseg's (mean of probabilities) on a few pixels.

    Args:
        module (dict | nn.Module): the segmentor (``tools/test.py --tta`` sets it to the config's ``model``).
        data_preprocessor (dict | nn.Module, optional): overrides the segmentor's, as in mmengine's
            ``BaseTTAModel``.
    """

    def merge_preds(self, data_samples_list: List[SampleList]) -> SampleList:
        """Merge the views of each image into one prediction.

        Args:
            data_samples_list: per image, the predicted data samples of its views (each with ``seg_logits``
                ``(C, H, W)`` at the original image size).

        Returns:
            One merged ``SegDataSample`` per image.
        """
        return [self.merge_views(views) for views in data_samples_list]

    def merge_views(self, views: SampleList) -> SegDataSample:
        """The merged prediction of one image's views (see the class docstring)."""
        shapes = {tuple(v.seg_logits.data.shape) for v in views}
        if len(shapes) != 1:
            raise ValueError(f'LogitSegTTAModel: the views of {views[0].get("img_path", "an image")} have logits of '
                             f'shapes {sorted(shapes)}; each view must be resized back to the original image '
                             '(mmseg segmentors do it in postprocess_result)')
        first = views[0]
        logits = first.seg_logits.data
        mean = torch.stack([v.seg_logits.data.float() for v in views]).mean(dim=0).to(logits.dtype)
        if mean.shape[0] == 1:
            pred = (mean.sigmoid() > self.module.decode_head.threshold).to(torch.int64)
        else:
            pred = mean.argmax(dim=0, keepdim=True)

        meta = {k: v for k, v in first.metainfo.items() if k not in VIEW_GEOMETRY_KEYS}
        if 'ori_shape' in meta:
            meta['img_shape'] = meta['ori_shape']
        meta.update(flip=False, flip_direction=None)
        meta[TTA_VIEW_METAS] = [dict(v.metainfo) for v in views]
        merged = SegDataSample(metainfo=meta)
        for key in first.keys():
            if key not in ('seg_logits', 'pred_sem_seg'):
                merged.set_field(first.get(key), key)
        for key in ('gt_sem_seg', 'gt_anomaly_map'):
            if key in merged and tuple(merged.get(key).shape) != tuple(mean.shape[-2:]):
                raise ValueError(f'LogitSegTTAModel: {key} of {first.get("img_path", "an image")} is '
                                 f'{tuple(merged.get(key).shape)} but the merged logits are {tuple(mean.shape[-2:])}; '
                                 'load the annotations after the augmentations in tta_pipeline (inside TestTimeAug, '
                                 'after Resize and RandomFlip), so that every view keeps them at the original size')
        merged.seg_logits = PixelData(data=mean)
        merged.pred_sem_seg = PixelData(data=pred)
        return merged
