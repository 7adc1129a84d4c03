"""Figure functions of anomseg_plugins.visualization.panels: colours where the masks say, sizes, statistics."""
import numpy as np
import pytest
from sklearn.metrics import precision_score, recall_score

from anomseg_plugins.datasets.street_hazards import ANOMALY_COLOR, StreetHazardsDataset
from anomseg_plugins.visualization import (PanelData, colorize, detection_map, detection_outcomes, draw_anomaly_panel,
                                           draw_panel_grid, draw_scorer_grid, error_map, image_statistics)
from anomseg_plugins.visualization.panels import (CORRECT_COLOR, FN_COLOR, FP_COLOR, IGNORE_COLOR, TP_COLOR,
                                                  WRONG_COLOR, resize)

META = StreetHazardsDataset.METAINFO
H, W = 60, 96


def scene(seed: int = 0) -> PanelData:
    """A 60x96 image with road (7) below, building (1) above, an anomaly block, a wrong-prediction strip and
    large TP / FP / FN blocks at threshold 0.5."""
    rng = np.random.default_rng(seed)
    gt = np.full((H, W), 1, np.uint8)
    gt[30:] = 7
    anomaly = np.zeros((H, W), np.uint8)
    anomaly[36:54, 12:36] = 1  # TP block (left part) + FN block (right part)
    anomaly[36:54, 36:48] = 1
    gt[anomaly == 1] = 255
    pred = gt.copy()
    pred[pred == 255] = 7
    pred[:, 84:] = 10  # wrong strip on the right
    score = rng.uniform(0.0, 0.3, (H, W)).astype(np.float32)
    score[36:54, 12:36] = 0.9  # TP
    score[6:24, 54:78] = 0.8  # FP (normal building pixels flagged)
    image = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    conf = rng.uniform(0.3, 1.0, (H, W)).astype(np.float32)
    return PanelData('t5/0001.png', image, pred, conf, score, gt, anomaly, extra_scores={'A': score, 'B': -score})


def test_colorize_maps_palette_ignore_and_anomaly():
    labels = np.array([[0, 7, 255], [12, 13, 1]])
    mask = np.array([[0, 0, 1], [0, 0, 0]])
    out = colorize(labels, META['palette'], anomaly_mask=mask)
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    assert tuple(out[0, 1]) == tuple(META['palette'][7])
    assert tuple(out[1, 0]) == tuple(META['palette'][12])
    assert tuple(out[0, 2]) == ANOMALY_COLOR  # ignore pixel marked as anomaly
    assert tuple(out[1, 1]) == IGNORE_COLOR  # 13 has no palette entry among the 13 classes


def test_error_map_and_detection_colours_follow_the_masks():
    d = scene()
    err = error_map(d.pred_sem_seg, d.gt_sem_seg, 255, d.gt_anomaly)
    assert tuple(err[10, 10]) == CORRECT_COLOR
    assert tuple(err[10, 90]) == WRONG_COLOR
    assert tuple(err[40, 20]) == ANOMALY_COLOR

    detected = d.anomaly_score >= 0.5
    codes = detection_outcomes(detected, d.gt_anomaly)
    gt = d.gt_anomaly == 1
    assert np.array_equal(codes == 3, detected & gt)
    assert np.array_equal(codes == 1, detected & ~gt)
    assert np.array_equal(codes == 2, ~detected & gt)
    assert np.array_equal(codes == 0, ~detected & ~gt)
    dmap = detection_map(detected, d.gt_anomaly, d.image)
    assert (dmap[codes == 3] == TP_COLOR).all() and (dmap[codes == 1] == FP_COLOR).all()
    assert (dmap[codes == 2] == FN_COLOR).all()
    assert np.abs(dmap[codes == 0].astype(int) - d.image[codes == 0] * 0.35).max() <= 1  # TN: dimmed input
    ignored = d.gt_anomaly.copy()
    ignored[0, 0] = 255
    assert tuple(detection_map(detected, ignored)[0, 0]) == IGNORE_COLOR


def test_image_statistics_match_mmseg_and_sklearn():
    import torch
    from mmseg.evaluation.metrics import IoUMetric
    d = scene()
    stats = image_statistics(d, 0.5, 13)
    inter, union, _, _ = IoUMetric.intersect_and_union(
        torch.from_numpy(d.pred_sem_seg.astype(np.int64)), torch.from_numpy(d.gt_sem_seg.astype(np.int64)), 13, 255)
    present = union > 0
    assert stats['mIoU'] == pytest.approx(100 * float((inter[present] / union[present]).mean()))
    y = d.gt_anomaly.reshape(-1)
    flagged = (d.anomaly_score >= 0.5).reshape(-1)
    assert stats['precision'] == pytest.approx(100 * precision_score(y, flagged))
    assert stats['recall'] == pytest.approx(100 * recall_score(y, flagged))
    assert stats['tp'] + stats['fn'] == int(y.sum())


def _cell_pixel(box, row, col):
    x0, y0, x1, y1 = box
    return int(y0 + (row + 0.5) / H * (y1 - y0)), int(x0 + (col + 0.5) / W * (x1 - x0))


def test_anomaly_panel_size_and_content():
    d = scene()
    img, layout = draw_anomaly_panel(
        d, 0.5, META['classes'], META['palette'], 'MaxLogit', '95% recall', cell_width=3.0, dpi=60, return_layout=True)
    fig_h = 0.55 + 3 * 3.0 * H / W + 3 * 0.55 + 0.95
    assert img.shape == (round(fig_h * 60), round((3 * 3.0 + 0.3) * 60), 3)
    assert set(layout) == {
        'input', 'ground truth', 'prediction', 'overlay', 'confidence', 'error map', 'anomaly heat map', 'detection',
        'outcomes'
    }

    def cell(name):
        x0, y0, x1, y1 = layout[name]
        return img[y0 + 2:y1 - 2, x0 + 2:x1 - 2].astype(int)

    # the cells are drawn (not blank) and differ from each other
    assert cell('prediction').std() > 10 and cell('error map').std() > 10
    assert np.abs(cell('prediction') - cell('error map')).mean() > 20
    # colours where the masks say: TP block, FP block, FN block, wrong-prediction strip
    out = layout['outcomes']
    for (r, c), color in (((45, 24), TP_COLOR), ((15, 66), FP_COLOR), ((45, 42), FN_COLOR)):
        y, x = _cell_pixel(out, r, c)
        assert np.abs(img[y, x].astype(int) - color).max() <= 3, (r, c, img[y, x], color)
    y, x = _cell_pixel(layout['error map'], 30, 90)
    assert np.abs(img[y, x].astype(int) - WRONG_COLOR).max() <= 3
    y, x = _cell_pixel(layout['ground truth'], 45, 24)
    assert np.abs(img[y, x].astype(int) - ANOMALY_COLOR).max() <= 3
    y, x = _cell_pixel(layout['detection'], 15, 66)
    assert (img[y, x] > 250).all()  # flagged = white
    y, x = _cell_pixel(layout['detection'], 45, 42)
    assert (img[y, x] < 5).all()  # missed anomaly = not flagged


def test_grids_have_one_row_per_image_and_check_inputs():
    items = [scene(0), scene(1), scene(2)]
    grid2 = draw_panel_grid(items[:2], 0.5, META['classes'], META['palette'], dpi=40)
    grid3 = draw_panel_grid(items, 0.5, META['classes'], META['palette'], dpi=40)
    assert grid3.shape[1] == grid2.shape[1] and grid3.shape[0] > grid2.shape[0]
    assert grid3.std() > 10
    sgrid = draw_scorer_grid(items[:2], ['A', 'B'], {'A': 'A\nAUPR 1.0'}, dpi=40)
    assert sgrid.ndim == 3 and sgrid.shape[1] > sgrid.shape[0]
    with pytest.raises(KeyError, match="'C'"):
        draw_scorer_grid(items[:1], ['A', 'C'])
    with pytest.raises(ValueError, match='no images'):
        draw_panel_grid([], 0.5, META['classes'], META['palette'])


def test_panel_data_checks_shapes_and_downsizes():
    d = scene()
    with pytest.raises(ValueError, match='anomaly_score has shape'):
        PanelData('x', d.image, d.pred_sem_seg, d.confidence, d.anomaly_score[:10], d.gt_sem_seg, d.gt_anomaly)
    small = d.downsized(48)
    assert small.pred_sem_seg.shape == (30, 48) and small.image.shape == (30, 48, 3)
    assert set(np.unique(small.gt_anomaly)) <= {0, 1}  # labels stay labels (nearest)
    assert resize(d.gt_sem_seg, (120, 192)).dtype == np.uint8
