"""Every config tests at the scale it trains at, or says why not; TTA views are ratios of the test scale.

Scale here is *magnification*: output pixels per frame pixel, per axis ``(x, y)``, through the geometric transforms
of a pipeline, for a frame of the size its ``data_root`` holds (``FRAME_SIZE``). The rule:

- train: the pipeline's *nominal* magnification. ``Resize`` as configured (run on a blank frame, so mmcv's own
  rounding and ``keep_ratio`` logic apply); ``RandomResize`` at ratio 1, which must lie in its ``ratio_range``;
  ``MultiScaleSquareCrop`` at s = 1, which must lie in its ``scale_range``: ``output / side`` with
  ``side = min(base_size, frame short side)`` (the clamp; no clamp with ``keep_scale``). ``RandomCrop``, flips,
  photometric changes and blur keep the magnification. The headline's crops U(0.5, 2) at base 512 thus train at
  1/s, nominally 1, and test on the native frame (1): they agree; a crop range that excludes s = 1 would not.
- val and test: their pipelines as they are; both must equal the nominal train magnification within 1% per axis,
  unless the config sets ``test_scale_note`` (a non-empty string: why the test scale differs on purpose). A note on
  a config whose scales agree is stale, and fails too.
- ``tta_pipeline``: each view (``TestTimeAug``'s product of branches) must show the test magnification times the
  product of its ``Resize`` ``scale_factor`` ratios (views are rescalings of the test input), so the view with
  ratio 1.0, which must exist, is the test scale; ``tta_model`` must be ``LogitSegTTAModel`` (logits averaged).

A transform of unknown geometry fails the test with its name, so a new one is classified here, not ignored.
"""
import glob
import itertools
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
import pytest
from mmengine.config import Config
from mmseg.registry import TRANSFORMS

from anomseg_plugins.tooling.street_scenes import DEFAULT_SIZE

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if f'{osp.sep}_base_{osp.sep}' not in p)
HEADLINE = 'configs/deeplabv3plus/deeplabv3plus_r50-d8_1xb4-40e_streethazards-512x512.py'
# the study's basic recipe: the whole frame resized to 512x512
BASIC = 'configs/deeplabv3plus/deeplabv3plus_r50-d8_1xb4-basic-30e_streethazards-512x512.py'

#: (w, h) of the frames each data root holds.
FRAME_SIZE = {
    'data/streethazards': (1280, 720),  # the real StreetHazards frames
    'data/streethazards_demo': DEFAULT_SIZE,  # tools/dataset/generate_streethazards.py defaults (480x270)
    'data/cityscapes/': (2048, 1024),
    'data/VOCdevkit/VOC2012': (500, 375),  # VOC images are at most 500 px on a side; the commonest size
    'data/road_anomaly_demo/cityscapes': (512, 256),  # tools/dataset/generate_road_anomaly_sets.py defaults
}

#: Transforms that change neither the magnification nor the image size.
NEUTRAL = {
    'LoadImageFromFile', 'LoadImageFromFileWithRetry', 'LoadAnnotations', 'LoadStreetHazardsAnnotations',
    'PackSegInputs', 'PackAnomalySegInputs', 'RandomFlip', 'PhotoMetricDistortion', 'RandomGaussianBlur',
    'PasteOutliers', 'PhotoMetricDistortionNoHue', 'LoadAnomalyAnnotations'
}

RTOL = 0.01

Mag = Tuple[float, float]


def _rel(path: str) -> str:
    return osp.relpath(path, REPO)


def _dataset(loader: dict) -> dict:
    """The dataset dict holding ``pipeline`` (through mmengine's dataset wrappers)."""
    ds = loader['dataset']
    while 'pipeline' not in ds:
        ds = ds['dataset'] if 'dataset' in ds else ds['datasets'][0]
    return ds


def _resize(size: Tuple[int, int], t: dict) -> Tuple[int, int]:
    """``(w, h)`` after the mmcv ``Resize`` ``t``, run on a blank frame of ``size``."""
    w, h = size
    res = TRANSFORMS.build(dict(t))(dict(img=np.zeros((h, w, 1), np.uint8), img_shape=(h, w)))
    out_h, out_w = res['img'].shape[:2]
    return out_w, out_h


def magnification(pipeline: Sequence[dict], frame: Tuple[int, int]) -> Tuple[Mag, float]:
    """Nominal magnification ``(x, y)`` of ``pipeline`` on a ``frame`` ``(w, h)``, and the product of its
    ``scale_factor`` ratios (1.0 for a pipeline without them). Raises ``ValueError`` for a transform of unknown
    geometry or a random resize whose range excludes its nominal scale."""
    w, h = frame
    mx = my = ratio = 1.0
    for t in pipeline:
        kind = t['type']
        if kind in NEUTRAL:
            continue
        if kind == 'Resize':
            if t.get('scale') is None:
                factor = t['scale_factor']
                ratio *= float(factor if np.isscalar(factor) else factor[0])
            new_w, new_h = _resize((w, h), t)
            mx, my, w, h = mx * new_w / w, my * new_h / h, new_w, new_h
        elif kind == 'RandomResize':
            lo, hi = t.get('ratio_range') or (None, None)
            if lo is None or not lo <= 1.0 <= hi:
                raise ValueError(f'RandomResize {dict(t)}: no nominal scale (needs ratio_range containing 1.0)')
            new_w, new_h = _resize((w, h), dict(type='Resize', scale=t['scale'], keep_ratio=t.get('keep_ratio', False)))
            mx, my, w, h = mx * new_w / w, my * new_h / h, new_w, new_h
        elif kind == 'MultiScaleSquareCrop':
            lo, hi = t['scale_range']
            if not lo <= 1.0 <= hi:
                raise ValueError(f'MultiScaleSquareCrop scale_range={tuple(t["scale_range"])} excludes the '
                                 'nominal s = 1')
            out = t.get('output_size', 512)
            out_h, out_w = (out, out) if isinstance(out, int) else out
            base = t.get('base_size') or max(out_h, out_w)
            side = base if t.get('keep_scale') else min(base, w, h)
            mx, my = mx * out_w / side, my * out_h / side
            w, h = round(min(side, w) * out_w / side), round(min(side, h) * out_h / side)
        elif kind == 'RandomCrop':
            crop_h, crop_w = t['crop_size']
            w, h = min(w, crop_w), min(h, crop_h)
        else:
            raise ValueError(f'transform {kind!r} has no known geometry: classify it in {_rel(__file__)}')
    return (mx, my), ratio


def tta_views(tta_pipeline: Sequence[dict]) -> List[List[dict]]:
    """Every view of a ``tta_pipeline``: the transforms around ``TestTimeAug`` with one pick from each branch."""
    [i] = [k for k, t in enumerate(tta_pipeline) if t['type'] == 'TestTimeAug']
    head, tta, tail = list(tta_pipeline[:i]), tta_pipeline[i], list(tta_pipeline[i + 1:])
    return [head + list(pick) + tail for pick in itertools.product(*tta['transforms'])]


def _close(a: Mag, b: Mag) -> bool:
    return all(abs(x - y) <= RTOL * max(abs(x), abs(y)) for x, y in zip(a, b))


def _fmt(m: Mag) -> str:
    return f'(x{m[0]:.4g}, y{m[1]:.4g})'


def scale_problems(cfg: Config) -> List[str]:
    """What breaks the rule of this module in ``cfg`` (empty when nothing does)."""
    train_ds = _dataset(cfg.train_dataloader)
    root = train_ds.get('data_root')
    if root not in FRAME_SIZE:
        return [f'data_root {root!r} has no frame size in FRAME_SIZE ({_rel(__file__)}): add the size its frames have']
    frame = FRAME_SIZE[root]
    problems = []
    try:
        train, _ = magnification(train_ds['pipeline'], frame)
    except ValueError as e:
        return [f'train_pipeline: {e}']
    note: Optional[str] = cfg.get('test_scale_note')
    if note is not None and not (isinstance(note, str) and note.strip()):
        problems.append(f'test_scale_note must be a non-empty string saying why, got {note!r}')
    tests = {}
    for split in ('val_dataloader', 'test_dataloader'):
        if cfg.get(split) is None:
            continue
        try:
            tests[split], _ = magnification(_dataset(cfg[split])['pipeline'], frame)
        except ValueError as e:
            problems.append(f'{split}: {e}')
    differ = {k: m for k, m in tests.items() if not _close(m, train)}
    if differ and not note:
        problems += [
            f'{split} magnification {_fmt(m)} != train {_fmt(train)} on a {frame[0]}x{frame[1]} frame '
            '(test at the scale the model trains at, or set test_scale_note = "why")' for split, m in differ.items()
        ]
    if note and not differ:
        problems.append(f'test_scale_note is set ({note!r}) but train and test agree at {_fmt(train)}: remove it')

    tta_model = cfg.get('tta_model') or {}
    if tta_model.get('type') != 'LogitSegTTAModel':
        problems.append("tta_model must be dict(type='LogitSegTTAModel') (logits averaged), got type "
                        f"{tta_model.get('type')!r}")
    if not cfg.get('tta_pipeline'):
        problems.append('no tta_pipeline (tools/test.py --tta needs one)')
    elif 'test_dataloader' in tests:
        test = tests['test_dataloader']
        at_one = []
        for view in tta_views(cfg.tta_pipeline):
            try:
                m, ratio = magnification(view, frame)
            except ValueError as e:
                problems.append(f'tta_pipeline: {e}')
                break
            expected = (test[0] * ratio, test[1] * ratio)
            if not _close(m, expected):
                problems.append(f'tta_pipeline view at ratio {ratio:g} shows {_fmt(m)}, not {ratio:g} x the test '
                                f'magnification {_fmt(test)} = {_fmt(expected)}: start every view from the test resize')
            if ratio == 1.0:
                at_one.append(m)
        if not at_one:
            problems.append('tta_pipeline has no view at ratio 1.0 (the test scale)')
    return list(dict.fromkeys(problems))  # a flip branch repeats every resize view's problem


def test_configs_found():
    assert len(CONFIGS) >= 30, CONFIGS


@pytest.mark.parametrize('path', CONFIGS, ids=_rel)
def test_config_tests_at_its_training_scale(path):
    cfg = Config.fromfile(path)
    problems = scale_problems(cfg)
    assert not problems, f'{_rel(path)}:\n  ' + '\n  '.join(problems)


# ----- the rule itself, on hand-made pipelines -----

SH = (1280, 720)
LOAD = [dict(type='LoadImageFromFileWithRetry'), dict(type='LoadStreetHazardsAnnotations')]
PACK = [dict(type='PackAnomalySegInputs')]


def test_magnification_values():
    squash = LOAD + [dict(type='Resize', scale=(512, 512), keep_ratio=False)] + PACK
    assert magnification(squash, SH)[0] == pytest.approx((0.4, 512 / 720))
    native = LOAD + [dict(type='Resize', scale=(1280, 720), keep_ratio=True)] + PACK
    assert magnification(native, SH)[0] == pytest.approx((1.0, 1.0))
    half = [dict(type='Resize', scale=(640, 640), keep_ratio=True)]  # fits 640 on the long side
    assert magnification(half, SH)[0] == pytest.approx((0.5, 0.5))
    # the headline's crop: 512 / (512 * s), nominal s = 1 -> 1; a 384 base with 512 output magnifies 4/3
    crop = [dict(type='MultiScaleSquareCrop', output_size=(512, 512), scale_range=(0.5, 2.0))]
    assert magnification(crop, SH)[0] == pytest.approx((1.0, 1.0))
    crop = [dict(type='MultiScaleSquareCrop', output_size=(512, 512), base_size=384, scale_range=(0.5, 2.0))]
    assert magnification(crop, SH)[0] == pytest.approx((4 / 3, 4 / 3))
    # base larger than the frame: clamped to the 720-pixel height at s = 1 unless keep_scale
    crop = [dict(type='MultiScaleSquareCrop', output_size=(512, 512), base_size=1024, scale_range=(0.5, 2.0))]
    assert magnification(crop, SH)[0] == pytest.approx((512 / 720, 512 / 720))
    crop[0]['keep_scale'] = True
    assert magnification(crop, SH)[0] == pytest.approx((0.5, 0.5))
    rr = [
        dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
        dict(type='RandomCrop', crop_size=(512, 1024))
    ]
    assert magnification(rr, (2048, 1024))[0] == pytest.approx((1.0, 1.0))
    assert magnification([dict(type='Resize', scale_factor=1.5, keep_ratio=True)], SH) == (pytest.approx(
        (1.5, 1.5)), 1.5)


def test_no_nominal_scale_or_unknown_geometry_is_an_error():
    with pytest.raises(ValueError, match='excludes the nominal s = 1'):
        magnification([dict(type='MultiScaleSquareCrop', output_size=512, scale_range=(1.5, 2.0))], SH)
    with pytest.raises(ValueError, match='ratio_range containing 1.0'):
        magnification([dict(type='RandomResize', scale=(1280, 720), ratio_range=(1.2, 2.0), keep_ratio=True)], SH)
    with pytest.raises(ValueError, match="'RandomRotate' has no known geometry"):
        magnification([dict(type='RandomRotate', prob=1.0, degree=10)], SH)


def _config(tmp_path, text: str) -> Config:
    path = tmp_path / 'cfg.py'
    path.write_text(text)
    return Config.fromfile(str(path))


# the defect of issue 9, item 2: the basic recipe's pipelines before the fix (frame squashed to 512x512 for
# training, native 1280x720 frame for val/test), on top of the headline's dataset base
OLD_BASIC = f"""
_base_ = ['{REPO}/configs/_base_/datasets/street_hazards.py', '{REPO}/configs/_base_/default_runtime.py']
train_pipeline = [
    dict(type='LoadImageFromFileWithRetry'),
    dict(type='LoadStreetHazardsAnnotations'),
    dict(type='Resize', scale=(512, 512), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackAnomalySegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
"""


def test_train_test_mismatch_fails_without_a_note(tmp_path):
    problems = scale_problems(_config(tmp_path, OLD_BASIC))
    assert len(problems) == 2, problems
    for split, problem in zip(('val_dataloader', 'test_dataloader'), problems):
        assert problem.startswith(f'{split} magnification (x1, y1) != train (x0.4, y0.7111) on a 1280x720 frame')


def test_a_note_accepts_the_mismatch_and_a_stale_note_fails(tmp_path):
    assert scale_problems(_config(tmp_path, OLD_BASIC + "test_scale_note = 'studied on purpose'\n")) == []
    stale = f"_base_ = ['{REPO}/{HEADLINE}']\ntest_scale_note = 'left over'\n"
    assert scale_problems(_config(
        tmp_path, stale)) == ["test_scale_note is set ('left over') but train and test agree at (x1, y1): remove it"]
    empty = OLD_BASIC + "test_scale_note = ''\n"
    assert any('val_dataloader magnification' in p for p in scale_problems(_config(tmp_path, empty)))


def test_tta_views_must_be_ratios_of_the_test_scale(tmp_path):
    # mmseg's own VOC / ADE pattern on a frame the test pipeline resizes: ratio 1.0 rescales the original frame
    text = (f"_base_ = ['{REPO}/{BASIC}']\n"
            'tta_pipeline = [\n'
            "    dict(type='LoadImageFromFileWithRetry'),\n"
            "    dict(type='TestTimeAug', transforms=[\n"
            "        [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in (0.5, 1.0)],\n"
            "        [dict(type='LoadStreetHazardsAnnotations')], [dict(type='PackAnomalySegInputs')]])]\n")
    problems = scale_problems(_config(tmp_path, text))
    assert len(problems) == 2 and all('not ' in p and 'start every view from the test resize' in p for p in problems)
    assert 'ratio 1 shows (x1, y1), not 1 x the test magnification (x0.4, y0.7111)' in problems[1]
    # no ratio-1.0 view, and mmseg's SegTTAModel
    text = (f"_base_ = ['{REPO}/{HEADLINE}']\n"
            "tta_model = dict(type='SegTTAModel')\n"
            'tta_pipeline = [\n'
            "    dict(type='LoadImageFromFileWithRetry'),\n"
            "    dict(type='TestTimeAug', transforms=[\n"
            "        [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in (0.5, 2.0)],\n"
            "        [dict(type='LoadStreetHazardsAnnotations')], [dict(type='PackAnomalySegInputs')]])]\n")
    assert scale_problems(_config(tmp_path, text)) == [
        "tta_model must be dict(type='LogitSegTTAModel') (logits averaged), got type 'SegTTAModel'",
        'tta_pipeline has no view at ratio 1.0 (the test scale)'
    ]


def test_basic_recipe_trains_validates_and_tests_on_the_same_512x512_frame(repo_root):
    """The fix of item 2 by value: every pipeline of the basic recipe resizes the frame to 512x512 (not keeping its
    aspect), annotations are loaded after that resize at test (native-resolution ground truth)."""
    cfg = Config.fromfile(f'{repo_root}/{BASIC}')
    resize = dict(type='Resize', scale=(512, 512), keep_ratio=False)
    train = cfg.train_dataloader.dataset.pipeline
    assert [t['type'] for t in train][:3] == ['LoadImageFromFileWithRetry', 'LoadStreetHazardsAnnotations', 'Resize']
    assert dict(train[2]) == resize
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert [dict(t) for t in loader.dataset.pipeline] == [
            dict(type='LoadImageFromFileWithRetry'), resize,
            dict(type='LoadStreetHazardsAnnotations'),
            dict(type='PackAnomalySegInputs')
        ]
    [tta] = [t for t in cfg.tta_pipeline if t['type'] == 'TestTimeAug']
    assert [dict(t) for t in tta.transforms[0]] == [resize]


def test_basic_recipe_sees_512x512_inputs_and_scores_at_native_resolution(repo_root, tiny_street_hazards):
    """On a generated 160x96 copy: the basic recipe's test data is the frame squashed to 512x512, with ground truth
    and anomaly map at the native 96x160; mmseg's segmentor resizes the logits back to that size (bilinear, in
    ``postprocess_result``), so mIoU and the anomaly scorers compare native-resolution maps."""
    from mmengine.model import revert_sync_batchnorm
    from mmseg.registry import DATASETS, MODELS

    cfg = Config.fromfile(f'{repo_root}/{BASIC}')
    dataset = DATASETS.build(dict(cfg.test_dataloader.dataset, data_root=tiny_street_hazards))
    packed = dataset[0]
    sample = packed['data_samples']
    assert tuple(packed['inputs'].shape) == (3, 512, 512)
    assert sample.ori_shape == (96, 160) and sample.img_shape == (512, 512)
    assert sample.scale_factor == pytest.approx((512 / 160, 512 / 96))
    assert tuple(sample.gt_sem_seg.data.shape) == tuple(sample.gt_anomaly_map.data.shape) == (1, 96, 160)

    model_cfg = Config.fromfile(f'{repo_root}/configs/demo/deeplab_r18_tiny_demo.py').model  # the same family, small
    model = revert_sync_batchnorm(MODELS.build(model_cfg)).eval()
    [pred] = model.test_step(dict(inputs=[packed['inputs']], data_samples=[sample]))
    assert tuple(pred.seg_logits.data.shape) == (13, 96, 160) and tuple(pred.pred_sem_seg.data.shape) == (1, 96, 160)
