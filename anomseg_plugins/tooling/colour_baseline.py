"""Colour-only anomaly baseline: how far pixel colour alone goes on a StreetHazards copy.

A detector that knows nothing but colour: a Gaussian mixture fitted on the CIE Lab colours of pixels
sampled from the *training* split's images (no labels used), and the anomaly score of a test pixel is
its negative log density, ``-log p(Lab)``. If such a lookup separates the anomalies, a benchmark
measures colour rarity, not the recognition of out-of-place objects: this is the sanity check of a
(generated) dataset. On real StreetHazards anomalies are ordinary-coloured CARLA assets (Hendrycks et
al., "Scaling Out-of-Distribution Detection for Real-World Settings", ICML 2022); on the generated copy
(:mod:`anomseg_plugins.tooling.street_scenes`) the anomalies draw their colours from the known classes'
own generators for the same reason.

Evaluation follows the project's anomaly metric (:class:`anomseg_plugins.evaluation.AnomalyMetric`),
pooled protocol: every test pixel in one ranking, the anomaly (on-disk value 14) is the positive class,
and pixels are left out only where ``gt_anomaly_map`` is ``ignore_index`` (255), as the metric does;
StreetHazards annotations (1..14) map to 0/1 everywhere
(:func:`anomseg_plugins.datasets.transforms.load_street_hazards_annotations.map_street_hazards_labels`), so
every pixel counts. FPR95 uses the pooled rule (first threshold reaching 95 % recall). Metrics are exact
(:func:`anomseg_plugins.evaluation.functional.exact_anomaly_metrics`, equal to scikit-learn's
``roc_auc_score`` / ``average_precision_score``) up to ``EXACT_PIXEL_LIMIT`` test pixels; beyond that the
scores go into the metric's own order-preserving 22-bit histogram (:class:`ScoreHistogram`), whose memory
does not grow with the pixel count.
"""
import os.path as osp
from typing import List, Tuple

import cv2
import numpy as np

from anomseg_plugins.datasets.street_hazards import SPLIT_PREFIXES, StreetHazardsDataset
from anomseg_plugins.datasets.transforms.load_street_hazards_annotations import map_street_hazards_labels
from anomseg_plugins.evaluation.functional import ScoreHistogram, exact_anomaly_metrics

#: Up to this many test pixels the scores are kept and ranked exactly (~5 bytes per pixel).
EXACT_PIXEL_LIMIT = 200_000_000
IGNORE_INDEX = 255


def split_pairs(data_root: str, split: str) -> List[Tuple[str, str]]:
    """(image, annotation) paths of a StreetHazards split, found the way ``StreetHazardsDataset`` finds them.

    Raises:
        FileNotFoundError: the root, the split folders or an annotation is missing (the dataset's message).
    """
    ds = StreetHazardsDataset(
        data_root=data_root, data_prefix=dict(SPLIT_PREFIXES[split]), pipeline=[], serialize_data=False)
    return [(d['img_path'], d['seg_map_path']) for d in ds.data_list]


def read_lab(path: str) -> np.ndarray:
    """CIE Lab colours (L in 0..100, a and b around 0) of an image file, ``(H, W, 3)`` float32."""
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f'could not read image {path} (missing, unreadable or not an image)')
    return cv2.cvtColor(bgr.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)


def read_anomaly_map(path: str) -> np.ndarray:
    """``gt_anomaly_map`` of an annotation file: 1 = anomaly (value 14), 0 = known class, uint8 ``(H, W)``."""
    raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise OSError(f'could not read annotation {path} (missing, unreadable or not an image)')
    return map_street_hazards_labels(raw, IGNORE_INDEX, source=path)[1]


def _iterate(items: list, progress: bool, what: str):
    if not progress:
        return items
    from mmengine.utils import track_iter_progress
    print(f'[colour_baseline] {what}')
    return track_iter_progress(items)


def sample_train_colours(data_root: str,
                         max_train_pixels: int = 200_000,
                         seed: int = 0,
                         progress: bool = False) -> np.ndarray:
    """Lab colours of up to ``max_train_pixels`` pixels drawn uniformly from the train split's images, ``(M, 3)``.

    Every image gives the same number of pixels (its share of ``max_train_pixels``), drawn without
    replacement from a generator seeded with ``seed``.
    """
    pairs = split_pairs(data_root, 'train')
    rng = np.random.default_rng(seed)
    per_image = max(1, int(max_train_pixels) // len(pairs))
    out = []
    for img_path, _ in _iterate(pairs, progress, f'sampling train colours from {len(pairs)} images'):
        lab = read_lab(img_path).reshape(-1, 3)
        take = rng.choice(len(lab), size=min(per_image, len(lab)), replace=False)
        out.append(lab[take])
    return np.concatenate(out).astype(np.float64)


def fit_colour_model(colours: np.ndarray, n_components: int = 32, seed: int = 0):
    """A full-covariance ``sklearn.mixture.GaussianMixture`` fitted on Lab colours ``(M, 3)``."""
    from sklearn.mixture import GaussianMixture
    if len(colours) < n_components:
        raise ValueError(f'{len(colours)} training colours cannot fit a mixture of n_components={n_components}; '
                         'raise max_train_pixels or lower n_components')
    return GaussianMixture(
        n_components=n_components, covariance_type='full', reg_covar=1e-4, random_state=seed).fit(colours)


def colour_scores(model, lab: np.ndarray) -> np.ndarray:
    """Anomaly score ``-log p(colour)`` of every pixel of a Lab image, ``(H, W)`` float32."""
    return (-model.score_samples(lab.reshape(-1, 3).astype(np.float64))).reshape(lab.shape[:2]).astype(np.float32)


def colour_baseline_metrics(data_root: str,
                            n_components: int = 32,
                            max_train_pixels: int = 200_000,
                            seed: int = 0,
                            progress: bool = True) -> dict:
    """Pooled AUROC / AUPR / FPR95 of the colour-only detector on the test split of ``data_root``.

    Args:
        data_root: StreetHazards root (real or generated) holding ``train/`` and ``test/``.
        n_components: Gaussians of the colour mixture.
        max_train_pixels: training pixels the mixture is fitted on (spread evenly over the train images).
        seed: seeds the pixel sampling and the mixture's initialisation (same seed, same numbers).
        progress: print progress bars.

    Returns:
        dict with ``AUROC``, ``AUPR``, ``FPR95`` and ``F1`` in percent (pooled protocol), ``num_pixels``,
        ``num_anomaly_pixels``, ``num_train_pixels``, ``num_train_images``, ``num_test_images``,
        ``n_components``, ``seed``, ``data_root``, and ``exact`` (False when the pooled histogram was used).
    """
    colours = sample_train_colours(data_root, max_train_pixels, seed, progress)
    if progress:
        print(f'[colour_baseline] fitting a {n_components}-component Gaussian mixture on {len(colours)} Lab colours')
    model = fit_colour_model(colours, n_components, seed)
    test = split_pairs(data_root, 'test')
    scores: List[np.ndarray] = []
    labels: List[np.ndarray] = []
    kept, hist = 0, None
    for img_path, ann_path in _iterate(test, progress, f'scoring {len(test)} test images'):
        lab = read_lab(img_path)
        gt = read_anomaly_map(ann_path)
        if gt.shape != lab.shape[:2]:
            raise ValueError(f'annotation {ann_path} is {gt.shape[1]}x{gt.shape[0]} but image {img_path} is '
                             f'{lab.shape[1]}x{lab.shape[0]}; they must be the same size')
        s = colour_scores(model, lab)
        if hist is None and kept + s.size > EXACT_PIXEL_LIMIT:  # too many pixels to rank exactly: histogram
            hist = ScoreHistogram(22, IGNORE_INDEX, 'colour')
            for a, b in zip(scores, labels):
                hist.update(a, b)
            scores, labels = [], []
        if hist is None:
            scores.append(s.ravel())
            labels.append(gt.ravel())
            kept += s.size
        else:
            hist.update(s, gt)
    if hist is None:
        res = exact_anomaly_metrics(
            np.concatenate(scores), np.concatenate(labels), IGNORE_INDEX, 0.95, 'first', name='colour baseline')
    else:
        res = hist.compute(0.95, 'first')
    out = {k: 100.0 * float(res[k]) for k in ('AUROC', 'AUPR', 'FPR95', 'F1')}
    out.update(
        num_pixels=int(res['num_pos'] + res['num_neg']),
        num_anomaly_pixels=int(res['num_pos']),
        num_train_pixels=int(len(colours)),
        num_train_images=len(split_pairs(data_root, 'train')),
        num_test_images=len(test),
        n_components=int(n_components),
        seed=int(seed),
        data_root=osp.abspath(data_root),
        exact=hist is None)
    return out
