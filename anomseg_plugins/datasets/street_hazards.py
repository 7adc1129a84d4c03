"""StreetHazards (Hendrycks et al., "Scaling Out-of-Distribution Detection for Real-World Settings").

CARLA road scenes at 1280x720. Annotation PNGs hold 1..14 on disk; training uses the 13 known
classes 0..12 (``unlabeled`` included, as the official code does) and class 14 on disk is the
anomaly, present only in the test split. The label mapping itself happens in
:class:`~anomseg_plugins.datasets.transforms.LoadStreetHazardsAnnotations`; this class finds the
image / annotation pairs of one split and validates the layout up front, so that a bad root or a
missing annotation fails before training starts, naming the path.

On-disk layout (after unpacking ``streethazards_train.tar`` and ``streethazards_test.tar``)::

    <data_root>/train/images/training/t1-3/*.png     train/annotations/training/t1-3/*.png
    <data_root>/train/images/validation/t4/*.png     train/annotations/validation/t4/*.png
    <data_root>/test/images/test/t5/*.png, t6/*.png  test/annotations/test/t5/..., t6/...
"""
import os.path as osp
from typing import List

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

#: Number of closed-set classes the models are trained on (0..12).
NUM_KNOWN_CLASSES = 13
#: Value of the anomaly class in the annotation files (1-indexed on disk).
ANOMALY_FILE_VALUE = 14
#: Offset between on-disk values and training indices (file value - 1 = index).
LABEL_OFFSET = 1
#: Colour of the anomaly class in visualisations (RGB).
ANOMALY_COLOR = (60, 250, 240)

#: Data prefixes of the three splits, relative to ``data_root``.
SPLIT_PREFIXES = {
    'train': dict(img_path='train/images/training', seg_map_path='train/annotations/training'),
    'val': dict(img_path='train/images/validation', seg_map_path='train/annotations/validation'),
    'test': dict(img_path='test/images/test', seg_map_path='test/annotations/test'),
}


@DATASETS.register_module()
class StreetHazardsDataset(BaseSegDataset):
    """StreetHazards split: 13 known classes (0..12) plus the anomaly kept apart.

    Pair it with ``LoadStreetHazardsAnnotations`` (maps labels, checks their range) and
    ``PackAnomalySegInputs`` (packs the anomaly mask on every data sample). The anomaly class is
    *not* in ``classes``: closed-set training and mIoU ignore anomaly pixels, while
    ``metainfo['anomaly_class']`` / ``metainfo['anomaly_palette']`` describe it for evaluators and
    visualisers.

    Args:
        img_suffix / seg_map_suffix: file suffixes, ``.png`` for both in the real dataset.
        **kwargs: everything :class:`mmseg.datasets.BaseSegDataset` takes (``data_root``,
            ``data_prefix``, ``pipeline``, ...). See ``SPLIT_PREFIXES`` for the prefixes of the splits.
    """

    METAINFO = dict(
        classes=('unlabeled', 'building', 'fence', 'other', 'pedestrian', 'pole', 'road line', 'road', 'sidewalk',
                 'vegetation', 'car', 'wall', 'traffic sign'),
        palette=[[0, 0, 0], [70, 70, 70], [190, 153, 153], [250, 170, 160], [220, 20, 60], [153, 153, 153],
                 [157, 234, 50], [128, 64, 128], [244, 35, 232], [107, 142, 35], [0, 0, 142], [102, 102, 156],
                 [220, 220, 0]],
        anomaly_class='anomaly',
        anomaly_palette=list(ANOMALY_COLOR),
        label_offset=LABEL_OFFSET,
        anomaly_file_value=ANOMALY_FILE_VALUE)

    def __init__(self, img_suffix: str = '.png', seg_map_suffix: str = '.png', **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, reduce_zero_label=False, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Scan the split recursively (town sub-folders) and check every image has its annotation."""
        img_dir = self.data_prefix.get('img_path', None)
        ann_dir = self.data_prefix.get('seg_map_path', None)
        if self.data_root and not osp.isdir(self.data_root):
            raise FileNotFoundError(
                f'StreetHazards data_root {self.data_root!r} does not exist. Unpack streethazards_train.tar '
                f'and streethazards_test.tar there, or generate an offline copy with '
                f'`python tools/dataset/generate_streethazards.py --out {self.data_root}`.')
        for key, path in (('img_path', img_dir), ('seg_map_path', ann_dir)):
            if path is not None and not osp.isdir(path):
                raise FileNotFoundError(
                    f'StreetHazards split folder data_prefix.{key}={path!r} does not exist; expected the '
                    f'layout train/images/training/t1-3, train/images/validation/t4, test/images/test/t5|t6 '
                    f'(and the same under annotations/) below data_root={self.data_root!r}.')
        data_list = super().load_data_list()
        if not data_list:
            raise FileNotFoundError(
                f'StreetHazards split {img_dir!r} holds no *{self.img_suffix} images (searched recursively).')
        if ann_dir is not None:
            missing = [d['seg_map_path'] for d in data_list if not osp.isfile(d['seg_map_path'])]
            if missing:
                shown = '\n  '.join(missing[:10])
                more = f'\n  ... and {len(missing) - 10} more' if len(missing) > 10 else ''
                raise FileNotFoundError(
                    f'{len(missing)} of {len(data_list)} images under {img_dir!r} have no annotation '
                    f'(expected the image path with images -> annotations):\n  {shown}{more}')
        return data_list
