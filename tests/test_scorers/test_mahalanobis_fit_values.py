"""Mahalanobis fit statistics by value in the corner cases: few pixels, one class, tiny or huge scales, the ridge,
the label downsampling, batches without labelled pixels, and the errors."""
import numpy as np
import pytest
import torch

from anomseg_plugins.scorers import Mahalanobis


def reference_fit(x, y, num_classes, ridge):
    """The documented estimator in numpy (float64): per-class means of the classes present, pooled within-class
    covariance over the n labelled pixels plus ``ridge * trace / D`` (and the 1e-12 floor) on the diagonal."""
    x, y = np.asarray(x, np.float64), np.asarray(y)
    dim = x.shape[1]
    valid = np.array([(y == c).any() for c in range(num_classes)])
    means = np.zeros((num_classes, dim))
    for c in np.flatnonzero(valid):
        means[c] = x[y == c].mean(0)
    centred = x - means[y]
    cov = centred.T @ centred / len(x)
    cov += (ridge * np.trace(cov) / dim + 1e-12) * np.eye(dim)
    return means, valid, np.linalg.inv(cov)


def pixels(feat, gt):
    """Feature vectors and labels of the labelled pixels (labels already at feature resolution)."""
    x = feat.permute(0, 2, 3, 1).reshape(-1, feat.shape[1]).numpy()
    y = gt.reshape(-1).numpy()
    return x[y != 255], y[y != 255]


def fit(scorer, batches, stage=0):
    scorer.fit_begin()
    for feat, gt, num_classes in batches:
        logits = torch.zeros(gt.shape[0], num_classes, *gt.shape[-2:])
        feats = [None] * stage + [feat]
        scorer.fit_step(logits, feats, gt)
    scorer.fit_end()
    return scorer


def check(scorer, batches, ridge, rtol=1e-5):
    x, y = zip(*(pixels(feat, gt) for feat, gt, _ in batches))
    means, valid, precision = reference_fit(np.concatenate(x), np.concatenate(y), batches[0][2], ridge)
    assert scorer.class_valid.tolist() == valid.tolist()
    np.testing.assert_allclose(scorer.means.numpy(), means, rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(scorer.precision.numpy(), precision, rtol=rtol, atol=1e-6 * np.abs(precision).max())


def random_batch(seed, num_classes=3, dim=4, n=2, h=3, w=4, scale=1.0, offset=20.0):
    g = torch.Generator().manual_seed(seed)
    gt = torch.randint(0, num_classes, (n, h, w), generator=g)
    feat = torch.randn(n, dim, h, w, generator=g) * scale + offset
    return feat, gt, num_classes


def test_single_class_logits():
    """C = 1: one class, so the pooled covariance is that class's covariance."""
    batches = [random_batch(0, num_classes=1), random_batch(1, num_classes=1)]
    check(fit(Mahalanobis(feature_stage=0, ridge=1e-3), batches), batches, 1e-3)


def test_default_ridge_on_features_with_a_small_variance():
    """Feature variance 1e-4 per channel: the ridge is relative to it (1e-3 * 1e-4), not floored at an absolute
    value."""
    batches = [random_batch(2, scale=0.01, offset=0.5)]
    maha = fit(Mahalanobis(feature_stage=0), batches)
    assert maha.ridge == 1e-3
    check(maha, batches, 1e-3, rtol=1e-4)


def test_huge_ridge_is_added_in_float64():
    """ridge * trace / D beyond the float32 range (5e38): the covariance is all ridge, the precision I / 5e38."""
    batches = [random_batch(3, scale=1.0, offset=0.0)]
    x, y = pixels(batches[0][0], batches[0][1])
    _, _, precision = reference_fit(x, y, 3, 0.0)
    ridge = 5e38 / (np.trace(np.linalg.inv(precision)) / 4)
    maha = fit(Mahalanobis(feature_stage=0, ridge=ridge), batches)
    np.testing.assert_allclose(maha.precision.double().numpy() * 5e38, np.eye(4), rtol=1e-5, atol=1e-5)


def test_one_labelled_pixel_with_no_ridge():
    """One labelled pixel (one batch, the others all ignore): its class mean is that pixel, the covariance is 0 and
    only the 1e-12 floor keeps it invertible."""
    feat = torch.tensor([3.0, -2.0, 7.0]).view(1, 3, 1, 1).repeat(1, 1, 2, 2)
    gt = torch.full((1, 2, 2), 255)
    gt[0, 1, 0] = 1
    batches = [(feat, gt, 3), (feat * 2, torch.full((1, 2, 2), 255), 3)]
    maha = fit(Mahalanobis(feature_stage=0, ridge=0.0), batches)
    assert maha.class_valid.tolist() == [False, True, False]
    torch.testing.assert_close(maha.means[1], torch.tensor([3.0, -2.0, 7.0]))
    torch.testing.assert_close(maha.precision, torch.eye(3) * 1e12)
    probe = torch.tensor([[3.0, 3.0], [-2.0, -2.0], [7.0, 7.0 + 2**-20]])[None, :, None]  # the mean, and 2^-20 off
    out = maha.score(torch.zeros(1, 3, 1, 2), [probe])
    torch.testing.assert_close(out, torch.tensor([[[0.0, 2**-20 * 1e6]]]), rtol=1e-5, atol=1e-5)


def test_first_batches_without_labelled_pixels_are_skipped():
    """A first batch with every label ignored, then an empty batch (N = 0), then data: the statistics of the data."""
    data = random_batch(4)
    empty_labels = (data[0] * 3, torch.full_like(data[1], 255), 3)
    no_images = (data[0][:0], data[1][:0], 3)
    for mode in ('nearest', 'mode'):
        maha = fit(Mahalanobis(feature_stage=0, label_downsample=mode), [empty_labels, no_images, data, no_images])
        check(maha, [data], 1e-3)


def test_batch_without_the_highest_class():
    """Classes are counted up to C even when the last ones are absent from a batch (and from the fit)."""
    feat, gt, _ = random_batch(5)
    gt = gt.clamp(max=1)  # classes 0, 1 of C = 4
    maha = fit(Mahalanobis(feature_stage=0), [(feat, gt, 4)])
    assert maha.class_valid.tolist() == [True, True, False, False]
    check(maha, [(feat, gt, 4)], 1e-3)


def test_outer_products_accumulate_in_float64_over_batches():
    """40 batches far (1000) from the first batch's reference point: their outer products (~2e6 each) summed in
    float32 would lose the within-class spread (variance 1) that remains after subtracting the class means."""
    first = (torch.tensor([-1.0, 1.0]).view(1, 1, 1, 2), torch.zeros(1, 1, 2, dtype=torch.long), 2)
    far = (torch.tensor([999.0, 1001.0]).view(1, 1, 1, 2), torch.ones(1, 1, 2, dtype=torch.long), 2)
    batches = [first] + [far] * 40
    maha = fit(Mahalanobis(feature_stage=0, ridge=0.0), batches)
    torch.testing.assert_close(maha.means, torch.tensor([[0.0], [1000.0]]))
    torch.testing.assert_close(maha.precision, torch.ones(1, 1), rtol=1e-6, atol=0)  # pooled variance exactly 1


def test_nearest_and_mode_downsampling_differ_where_the_sampled_pixel_is_a_minority():
    """Each 2 x 2 cell: the top-left pixel (the one 'nearest' samples) is class 1, the other three class 0."""
    cell = torch.tensor([[1, 0], [0, 0]])
    gt = cell.repeat(2, 3)[None]  # (1, 4, 6) -> feature cells (2, 3)
    assert Mahalanobis().label_downsample == 'nearest'
    assert Mahalanobis().downsample_labels(gt, (2, 3), 2).tolist() == [[[1] * 3] * 2]
    assert Mahalanobis(label_downsample='mode').downsample_labels(gt, (2, 3), 2).tolist() == [[[0] * 3] * 2]
    feat = torch.randn(1, 2, 2, 3, generator=torch.Generator().manual_seed(6))
    logits = torch.zeros(1, 2, 4, 6)
    nearest, mode = Mahalanobis(feature_stage=0), Mahalanobis(feature_stage=0, label_downsample='mode')
    for maha in (nearest, mode):
        maha.fit_step(logits, [feat], gt)
        maha.fit_end()
    assert nearest.class_valid.tolist() == [False, True] and mode.class_valid.tolist() == [True, False]
    torch.testing.assert_close(nearest.means[1], feat.mean(dim=(0, 2, 3)))


def test_errors_name_the_scorer_and_the_values_at_fault():
    with pytest.raises(ValueError, match='Mahalanobis: ridge must be >= 0, got -0.5'):
        Mahalanobis(ridge=-0.5)
    feat, gt, _ = random_batch(7)
    maha = Mahalanobis(feature_stage=2, name='maha')
    maha.fit_begin()
    with pytest.raises(ValueError, match=r'maha needs the output of backbone stage 2, .* hold stages \[0\]'):
        maha.fit_step(torch.zeros(2, 3, 3, 4), [feat], gt)
    maha.fit_step(torch.zeros(2, 3, 3, 4), [None, None, feat], gt)
    with pytest.raises(
            ValueError, match=r'maha: fit batches disagree on \(classes, channels\): \(3, 4\) then \(3, 2\)'):
        maha.fit_step(torch.zeros(2, 3, 3, 4), [None, None, feat[:, :2]], gt)
    for batches in ([], [(feat, torch.full_like(gt, 255), 3)]):
        with pytest.raises(RuntimeError, match='maha: no labelled fit pixels at feature resolution .*ignore_index=255'):
            fit(Mahalanobis(feature_stage=0, name='maha'), batches)
