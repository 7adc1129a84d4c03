"""The crop ablations are named after what they vary (issue 9, item 5).

``MultiScaleSquareCrop`` clamps its square to the shorter frame side, so on a 1280x720 StreetHazards frame a
requested scale s gives the crop side ``min(round(base_size * s), 720)``: the *effective* scale range is
``[min(lo, cap), min(hi, cap)]`` with ``cap = 720 / base_size``.

- ``scale_{lo}_{hi}.py`` (``0p25`` = 0.25): the name is the effective range on 1280x720, rounded to 2 decimals.
- ``crop_size_{n}.py``: crop output and ``base_size`` are both n, so the magnification at a given s is the
  headline's (1/s) and the sweep varies the context window (n * s frame pixels).
Parametrised over the files, so a new ablation of either kind is covered without touching this file.
"""
import glob
import os.path as osp
import re

import numpy as np
import pytest
from mmengine.config import Config

from anomseg_plugins.datasets.transforms import MultiScaleSquareCrop

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FRAME_H, FRAME_W = 720, 1280
SCALE_ABLATIONS = sorted(glob.glob(osp.join(REPO, 'configs', 'ablations', 'scale_*.py')))
CROP_ABLATIONS = sorted(glob.glob(osp.join(REPO, 'configs', 'ablations', 'crop_size_*.py')))


def _crop(path):
    [crop] = [t for t in Config.fromfile(path).train_dataloader.dataset.pipeline if t['type'] == 'MultiScaleSquareCrop']
    return crop


def _number(text):
    return float(text.replace('p', '.'))


def test_ablations_found_and_none_named_after_what_it_does_not_vary():
    assert len(SCALE_ABLATIONS) >= 4 and len(CROP_ABLATIONS) >= 3
    assert not glob.glob(osp.join(REPO, 'configs', 'ablations', 'resolution_*.py'))


@pytest.mark.parametrize('path', SCALE_ABLATIONS, ids=osp.basename)
def test_scale_ablation_is_named_after_its_effective_range(path):
    lo_name, hi_name = (_number(v) for v in re.fullmatch(r'scale_(\w+)_(\w+)\.py', osp.basename(path)).groups())
    crop = _crop(path)
    base = crop.get('base_size') or max(crop.output_size)
    assert base == 512, 'the scale sweep keeps the headline base size'
    lo, hi = crop.scale_range
    cap = FRAME_H / base
    if crop.get('keep_scale'):
        cap = float('inf')
    assert (round(min(lo, cap), 2), round(min(hi, cap), 2)) == (lo_name, hi_name)


@pytest.mark.parametrize('path', SCALE_ABLATIONS + CROP_ABLATIONS, ids=osp.basename)
def test_recorded_effective_scales_span_the_effective_range(path):
    """The transform built from the config, on a 1280x720 frame: the recorded effective scales stay within
    ``[lo, min(hi, cap)]``, reach the cap exactly when the requested range passes it, and equal the drawn scale
    below it (up to the rounding of the side to whole pixels)."""
    crop = _crop(path)
    t = MultiScaleSquareCrop(**{k: v for k, v in crop.items() if k != 'type'})
    lo, hi = t.scale_range
    cap = FRAME_H / t.base_size
    img = np.zeros((FRAME_H, FRAME_W, 1), np.uint8)
    np.random.seed(0)
    draws = [t(dict(img=img, seg_fields=[])) for _ in range(300)]
    eff = np.array([d['effective_crop_scale'] for d in draws])
    req = np.array([d['crop_scale'] for d in draws])
    assert eff.min() >= lo - 1 / t.base_size and eff.max() <= min(hi, cap) + 1e-12
    assert (eff == cap).any() == (hi * t.base_size >= FRAME_H + 1)
    below = req * t.base_size < FRAME_H
    np.testing.assert_allclose(eff[below], req[below], atol=0.5 / t.base_size + 1e-12)


@pytest.mark.parametrize('path', CROP_ABLATIONS, ids=osp.basename)
def test_crop_size_ablation_varies_the_window_not_the_magnification(path):
    n = int(re.fullmatch(r'crop_size_(\d+)\.py', osp.basename(path)).group(1))
    cfg = Config.fromfile(path)
    crop = _crop(path)
    assert tuple(crop.output_size) == (n, n) and (crop.get('base_size') or n) == n
    assert tuple(crop.scale_range) == (0.5, 2.0)  # the headline's range: same 1/s magnification at a given s
    assert tuple(cfg.model.data_preprocessor.size) == (n, n)
