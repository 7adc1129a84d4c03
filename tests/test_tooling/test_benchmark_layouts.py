"""Offline road-anomaly sets (anomseg_plugins.tooling.street_scenes.benchmark_layouts): every file of the official
layouts with its exact name, image/label sizes, the label encodings by value (Cityscapes label ids against train
ids, SegmentMeIfYouCan, Lost and Found, Fishyscapes), obstacles surrounded by road, hidden-test frames without
labels, Fishyscapes ids present in Lost and Found, determinism, and that colour alone does not find the anomalies.

The expected tables (Cityscapes ids, official scene names, file-name patterns) are written out here from the
official sources, not imported from the module under test."""
import filecmp
import os
import os.path as osp
import re
from collections import Counter

import cv2
import numpy as np
import pytest

from anomseg_plugins.tooling.street_scenes import benchmark_layouts as bl
from anomseg_plugins.tooling.street_scenes import classes as sh

SIZE, SIZE_WIDE = (64, 32), (64, 36)
NUM = dict(num_train=3, num_val=2, num_test=6)

#: cityscapesscripts labels.py: label id -> train id (ids not listed are not Cityscapes label ids).
CS_TRAIN_ID = {
    0: 255, 1: 255, 2: 255, 3: 255, 4: 255, 5: 255, 6: 255, 7: 0, 8: 1, 9: 255, 10: 255, 11: 2, 12: 3, 13: 4,
    14: 255, 15: 255, 16: 255, 17: 5, 18: 255, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13,
    27: 14, 28: 15, 29: 255, 30: 255, 31: 16, 32: 17, 33: 18,
}  # yapf: disable
#: road_anomaly_benchmark/datasets/tracks.py, DatasetObstacleTrack.SCENES_ALL.
OBSTACLE_SCENES = {
    'curvy-street', 'one-way-street', 'gravel', 'greyasphalt', 'motorway', 'paving', 'darkasphalt', 'darkasphalt2',
    'snowstorm1', 'snowstorm2', 'driveway', 'validation'
}
#: DatasetLostAndFound.RE_LAF_NAME.
LAF_FID = re.compile(r'([0-9]{2})_(.*)_([0-9]{6})_([0-9]{6})')
CS_TRAIN_CITIES = {
    'aachen', 'bochum', 'bremen', 'cologne', 'darmstadt', 'dusseldorf', 'erfurt', 'hamburg', 'hanover', 'jena',
    'krefeld', 'monchengladbach', 'strasbourg', 'stuttgart', 'tubingen', 'ulm', 'weimar', 'zurich'
}
CS_VAL_CITIES = {'frankfurt', 'lindau', 'munster'}

PATTERNS = {
    'cs_image': r'cityscapes/leftImg8bit/(train|val)/([a-z]+)/(\2_\d{6}_\d{6})_leftImg8bit\.png',
    'cs_train_ids': r'cityscapes/gtFine/(train|val)/([a-z]+)/(\2_\d{6}_\d{6})_gtFine_labelTrainIds\.png',
    'cs_label_ids': r'cityscapes/gtFine/(train|val)/([a-z]+)/(\2_\d{6}_\d{6})_gtFine_labelIds\.png',
    'ra_image': r'dataset_AnomalyTrack/images/([a-z_]+\d{4})\.jpg',
    'ra_label': r'dataset_AnomalyTrack/labels_masks/([a-z_]+\d{4})_labels_semantic\.png',
    'ro_image': r'dataset_ObstacleTrack/images/(([a-z0-9-]+)_([1-9]\d*))\.webp',
    'ro_label': r'dataset_ObstacleTrack/labels_masks/(([a-z0-9-]+)_([1-9]\d*))_labels_semantic\.png',
    'laf_image': r'dataset_LostAndFound/leftImg8bit/(train|test)/(\d{2}_\w+)/(\2_\d{6}_\d{6})_leftImg8bit\.png',
    'laf_label_ids': r'dataset_LostAndFound/gtCoarse/(train|test)/(\d{2}_\w+)/(\2_\d{6}_\d{6})_gtCoarse_labelIds\.png',
    'laf_instance_ids':
    r'dataset_LostAndFound/gtCoarse/(train|test)/(\d{2}_\w+)/(\2_\d{6}_\d{6})_gtCoarse_instanceIds\.png',
    'fishy': r'dataset_FishyLAF/labels/val/(\d{2}_\w+_\d{6}_\d{6})_fishy-labels\.png',
}


def _files(root):
    out = []
    for dirpath, _, names in os.walk(root):
        out += [osp.relpath(osp.join(dirpath, n), root) for n in names]
    return sorted(out)


def _classify(root):
    """Every file under ``root`` matched to exactly one pattern: kind -> {relative path: match}."""
    found = {k: {} for k in PATTERNS}
    for rel in _files(root):
        hits = [(k, re.fullmatch(p, rel)) for k, p in PATTERNS.items() if re.fullmatch(p, rel)]
        assert len(hits) == 1, f'{rel} matches {len(hits)} of the official patterns'
        found[hits[0][0]][rel] = hits[0][1]
    return found


def _read(root, rel):
    arr = cv2.imread(osp.join(root, rel), cv2.IMREAD_UNCHANGED)
    assert arr is not None, rel
    return arr


@pytest.fixture(scope='module')
def generated(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('road_anomaly') / 'data')
    logs = []
    summary = bl.generate_road_anomaly_sets(
        root, size=SIZE, size_wide=SIZE_WIDE, seed=5, verbose=False, log=logs.append, **NUM)
    return root, summary, _classify(root)


def test_layouts_hold_exactly_the_official_files(generated):
    root, summary, found = generated
    n_hidden = NUM['num_test'] // 3
    # Cityscapes: every frame has its image, train ids and label ids, in real cities
    for split, n, cities in (('train', NUM['num_train'], CS_TRAIN_CITIES), ('val', NUM['num_val'], CS_VAL_CITIES)):
        for kind in ('cs_image', 'cs_train_ids', 'cs_label_ids'):
            stems = {m.group(3) for m in found[kind].values() if m.group(1) == split}
            assert len(stems) == n
            assert {m.group(2) for m in found[kind].values() if m.group(1) == split} <= cities
        assert {m.group(3) for m in found['cs_image'].values()} == {m.group(3) for m in found['cs_label_ids'].values()}
    assert {m.group(3) for m in found['cs_image'].values()} == {m.group(3) for m in found['cs_train_ids'].values()}
    # RoadAnomaly21: every frame has an image; exactly the validation* ones have labels
    ra_fids = {m.group(1) for m in found['ra_image'].values()}
    ra_labelled = {m.group(1) for m in found['ra_label'].values()}
    assert len(ra_fids) == NUM['num_test']
    assert ra_labelled == {f for f in ra_fids if f.startswith('validation')}
    assert len(ra_labelled) == NUM['num_test'] - n_hidden
    # RoadObstacle21: official scene names; exactly the validation_* frames have labels
    ro = {m.group(1): m.group(2) for m in found['ro_image'].values()}
    assert len(ro) == NUM['num_test'] and set(ro.values()) <= OBSTACLE_SCENES
    assert len(set(ro.values())) >= 2  # several scenes
    ro_labelled = {m.group(1) for m in found['ro_label'].values()}
    assert ro_labelled == {f for f, scene in ro.items() if scene == 'validation'}
    assert len(ro_labelled) == NUM['num_test'] - n_hidden
    # Lost and Found: both splits, folder = {NN}_{scene} of the fid, labelIds and instanceIds for every frame
    laf = {}
    for m in found['laf_image'].values():
        fid = m.group(3)
        parsed = LAF_FID.fullmatch(fid)
        assert parsed and m.group(2) == f'{parsed.group(1)}_{parsed.group(2)}'
        laf[fid] = m.group(1)
    assert Counter(laf.values()) == {'test': NUM['num_test'], 'train': NUM['num_test'] // 3}
    for kind in ('laf_label_ids', 'laf_instance_ids'):
        assert {m.group(3): m.group(1) for m in found[kind].values()} == laf
    # Fishyscapes: a subset of the Lost and Found frames, from both splits
    fishy = {m.group(1) for m in found['fishy'].values()}
    assert fishy and fishy <= set(laf)
    assert {laf[f] for f in fishy} == {'train', 'test'}
    # the summary counts what is on disk
    assert summary['anomaly']['num_frames'] == NUM['num_test'] and summary['anomaly']['num_labelled'] == len(
        ra_labelled)
    assert summary['obstacle']['num_labelled'] == len(ro_labelled)
    assert summary['num_fishy'] == len(fishy)


def test_images_and_labels_have_the_requested_sizes_and_types(generated):
    root, _, found = generated
    wide = {'ra_image', 'ra_label', 'ro_image', 'ro_label'}
    for kind, files in found.items():
        w, h = SIZE_WIDE if kind in wide else SIZE
        for rel in files:
            arr = _read(root, rel)
            if kind.endswith('image'):
                assert arr.shape == (h, w, 3) and arr.dtype == np.uint8, rel
            elif kind == 'laf_instance_ids':
                assert arr.shape == (h, w) and arr.dtype == np.uint16, rel
            else:
                assert arr.shape == (h, w) and arr.dtype == np.uint8, rel
    # fishy labels have the size of their Lost and Found frame
    laf_img = {m.group(3): rel for rel, m in found['laf_image'].items()}
    for rel, m in found['fishy'].items():
        assert _read(root, rel).shape == _read(root, laf_img[m.group(1)]).shape[:2]


def test_cityscapes_label_ids_agree_with_train_ids_pixel_by_pixel(generated):
    root, _, found = generated
    lut = np.full(256, -1, np.int32)
    for lid, tid in CS_TRAIN_ID.items():
        lut[lid] = tid
    ids_seen = Counter()
    train_ids = {m.group(3): rel for rel, m in found['cs_train_ids'].items()}
    for rel, m in found['cs_label_ids'].items():
        ids = _read(root, rel)
        tids = _read(root, train_ids[m.group(3)])
        assert (lut[ids] >= 0).all(), f'{rel} holds values that are no Cityscapes label id: {np.unique(ids)}'
        np.testing.assert_array_equal(lut[ids], tids)
        assert set(np.unique(tids).tolist()) <= set(range(19)) | {255}
        ids_seen.update(np.unique(ids).tolist())
    # the mapped classes: road 7, sidewalk 8, building 11, sky 23 in every frame; no anomaly or ego vehicle
    n_frames = len(found['cs_label_ids'])
    assert all(ids_seen[i] == n_frames for i in (7, 8, 23))
    assert set(ids_seen) <= {4, 7, 8, 11, 12, 13, 17, 20, 21, 23, 24, 26}


def test_class_mapping_by_value():
    canvas = np.array([[
        sh.UNLABELED, sh.BUILDING, sh.FENCE, sh.OTHER, sh.PEDESTRIAN, sh.POLE, sh.ROAD_LINE, sh.ROAD, sh.SIDEWALK,
        sh.VEGETATION, sh.CAR, sh.WALL, sh.TRAFFIC_SIGN, sh.ANOMALY
    ]], np.uint8)
    ids = bl.cityscapes_label_ids(canvas)
    assert ids.tolist() == [[23, 11, 13, 4, 24, 17, 7, 7, 8, 21, 26, 12, 20, 0]]
    assert bl.cityscapes_train_ids(ids).tolist() == [[10, 2, 4, 255, 11, 5, 0, 0, 1, 8, 13, 3, 7, 255]]


def test_segmentmeifyoucan_label_values(generated):
    root, _, found = generated
    band_seen = False
    for rel in found['ra_label']:
        lab = _read(root, rel)
        values = set(np.unique(lab).tolist())
        assert values <= {0, 1, 255} and {0, 1} <= values, (rel, values)
        band_seen |= 255 in values
        # void is a band under the anomaly: every void pixel has an anomaly pixel right above it
        above = np.zeros(lab.shape, bool)
        above[1:] = lab[:-1] == 1
        assert above[lab == 255].all()
        # ... and never a closed ring: flagging every non-void pixel gives ONE 8-connected component per connected
        # group of (anomaly + normal) pixels, so no anomaly is cut off from its surroundings (a ring would hand a
        # flag-everything detector a perfect component sIoU)
        n, comps = cv2.connectedComponents((lab != 255).astype(np.uint8), connectivity=8)
        for comp in range(1, n):
            inside = lab[comps == comp]
            assert not ((inside == 1).all() and (lab == 0).any()), (rel, 'an anomaly is enclosed by void')
    assert band_seen
    for rel in found['ro_label']:
        values = set(np.unique(_read(root, rel)).tolist())
        assert values == {0, 1, 255}, (rel, values)


def test_lost_and_found_and_fishyscapes_label_values(generated):
    root, _, found = generated
    inst_of = {m.group(3): rel for rel, m in found['laf_instance_ids'].items()}
    laf_of = {m.group(3): rel for rel, m in found['laf_label_ids'].items()}
    for rel, m in found['laf_label_ids'].items():
        ids = _read(root, rel)
        values = set(np.unique(ids).tolist())
        obstacle_ids = values - {0, 1}
        assert {0, 1} <= values and obstacle_ids and all(2 <= v <= 200 for v in obstacle_ids), (rel, values)
        inst = _read(root, inst_of[m.group(3)]).astype(np.int64)
        obstacle = ids >= 2
        np.testing.assert_array_equal(inst[~obstacle], ids[~obstacle])  # void and road: the label id itself
        np.testing.assert_array_equal(inst[obstacle] // 1000, ids[obstacle])  # obstacles: class * 1000 + k
    for rel, m in found['fishy'].items():
        fishy = _read(root, rel)
        ids = _read(root, laf_of[m.group(1)])
        assert set(np.unique(fishy).tolist()) == {0, 1, 255}
        np.testing.assert_array_equal(fishy == 1, ids >= 2)  # anomaly = the Lost and Found obstacles
        assert (ids[fishy == 255] == 0).all()  # void (ego vehicle) is off the road
        assert (fishy[-1] == 255).any()  # the bonnet reaches the bottom row


def _assert_enclosed_by_road(lab, is_obstacle, is_road, rel):
    count, comp = cv2.connectedComponents(is_obstacle.astype(np.uint8), connectivity=8)
    assert count > 1, f'{rel} has no obstacle'
    h, w = lab.shape
    for k in range(1, count):
        m = (comp == k).astype(np.uint8)
        ys, xs = np.nonzero(m)
        assert ys.min() > 0 and xs.min() > 0 and ys.max() < h - 1 and xs.max() < w - 1, f'{rel}: obstacle at the border'
        ring = (cv2.dilate(m, np.ones((3, 3), np.uint8)) > 0) & (m == 0)
        assert (is_road | is_obstacle)[ring].all(), f'{rel}: obstacle {k} touches {np.unique(lab[ring]).tolist()}'
        assert is_road[ring].any()


def test_obstacles_lie_on_the_road(generated):
    root, _, found = generated
    for rel in found['ro_label']:
        lab = _read(root, rel)
        _assert_enclosed_by_road(lab, lab == 1, lab == 0, rel)
    for rel in found['laf_label_ids']:
        lab = _read(root, rel)
        _assert_enclosed_by_road(lab, lab >= 2, lab == 1, rel)


def test_cityscapes_copy_loads_with_mmseg(generated):
    from mmseg.datasets import CityscapesDataset
    root, _, _ = generated
    ds = CityscapesDataset(
        data_root=osp.join(root, 'cityscapes'),
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        pipeline=[],
        serialize_data=False)
    assert len(ds) == NUM['num_train']
    for item in ds.data_list:
        assert osp.isfile(item['img_path']) and item['seg_map_path'].endswith('_gtFine_labelTrainIds.png')
        assert osp.isfile(item['seg_map_path'])


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    kwargs = dict(size=(64, 32), num_train=1, num_val=1, num_test=3, verbose=False)
    a, b, c = (str(tmp_path / n) for n in 'abc')
    bl.generate_road_anomaly_sets(a, seed=1, **kwargs)
    bl.generate_road_anomaly_sets(b, seed=1, workers=2, **kwargs)  # nor does the number of workers matter
    bl.generate_road_anomaly_sets(c, seed=2, **kwargs)
    files = _files(a)
    assert files == _files(b) and len(files) > 20
    match, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert not mismatch and not errors
    images = [f for f in files if f.endswith(('leftImg8bit.png', '.jpg', '.webp'))]
    common = [f for f in images if osp.exists(osp.join(c, f))]
    assert len(common) >= len(images) // 2  # the layouts do not depend on the seed except the RoadAnomaly names
    _, differ, _ = filecmp.cmpfiles(a, c, common, shallow=False)
    assert len(differ) == len(common)


def test_library_refuses_existing_sets_and_bad_arguments(tmp_path):
    root = str(tmp_path / 'd')
    os.makedirs(osp.join(root, 'dataset_ObstacleTrack'))
    with pytest.raises(FileExistsError, match='dataset_ObstacleTrack'):
        bl.generate_road_anomaly_sets(root, size=(64, 32), num_train=0, num_val=0, num_test=1, verbose=False)
    # another set next to it is fine, and nothing else below the root is touched
    bl.generate_road_anomaly_sets(root, size=(64, 32), num_test=1, sets=['anomaly'], verbose=False)
    assert sorted(os.listdir(root)) == ['dataset_AnomalyTrack', 'dataset_ObstacleTrack']
    for kwargs, match in ((dict(size=(40, 20)), 'at least 48x24'), (dict(size_wide=(64, 10)), 'size_wide'),
                          (dict(sets=['kitti']), 'kitti'), (dict(num_test=-1), 'num_test=-1')):
        with pytest.raises(ValueError, match=match):
            bl.generate_road_anomaly_sets(str(tmp_path / 'e'), verbose=False, **kwargs)


def test_colour_alone_does_not_find_the_anomalies(tmp_path):
    """A Lab Gaussian mixture fitted on the Cityscapes-layout training images scores test pixels by colour rarity.

    RoadAnomaly21 is scored over the whole image, RoadObstacle21 over the road (its void is everything off the
    road), as the benchmarks do. Anomalies painted in colours the training images lack would be ranked first.
    """
    from anomseg_plugins.evaluation.functional import exact_anomaly_metrics
    from anomseg_plugins.tooling.colour_baseline import colour_scores, fit_colour_model, read_lab
    root = str(tmp_path / 'c')
    bl.generate_road_anomaly_sets(
        root,
        size=(128, 64),
        num_train=10,
        num_val=0,
        num_test=12,
        sets=['cityscapes', 'anomaly', 'obstacle'],
        seed=3,
        verbose=False)
    found = _classify(root)
    rng = np.random.default_rng(0)
    colours = np.concatenate([
        read_lab(osp.join(root, rel)).reshape(-1, 3)[rng.choice(128 * 64, 1000, replace=False)]
        for rel in found['cs_image']
    ])
    model = fit_colour_model(colours.astype(np.float64), n_components=8)
    for kind, ext in (('ra_label', '.jpg'), ('ro_label', '.webp')):
        scores, labels = [], []
        for rel in found[kind]:
            img = rel.replace('labels_masks', 'images').replace('_labels_semantic.png', ext)
            scores.append(colour_scores(model, read_lab(osp.join(root, img))).ravel())
            labels.append(_read(root, rel).ravel())
        res = exact_anomaly_metrics(np.concatenate(scores), np.concatenate(labels), 255, 0.95, 'first', name=kind)
        share = res['num_pos'] / (res['num_pos'] + res['num_neg'])
        assert res['AUROC'] < 0.8, (kind, res)
        assert res['AUPR'] < 5 * share, (kind, res, share)
