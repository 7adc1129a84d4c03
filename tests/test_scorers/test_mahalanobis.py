import numpy as np
import pytest
import torch
import torch.nn.functional as F

from anomseg_plugins.scorers import Mahalanobis

D, C = 6, 3


def make_data(seed=0, n=4, h=5, w=7, offset=50.0):
    """Features of three classes (means apart, shared correlated noise) far from the origin."""
    g = torch.Generator().manual_seed(seed)
    gt = torch.randint(0, C, (n, h, w), generator=g)
    gt[:, 0, :2] = 255
    centres = torch.randn(C, D, generator=g) * 3 + offset
    mix = torch.randn(D, D, generator=g) * 0.5 + torch.eye(D)
    noise = torch.randn(n, h, w, D, generator=g) @ mix
    feat = (centres[gt.clamp(max=C - 1)] + noise).permute(0, 3, 1, 2).contiguous()
    logits = torch.randn(n, C, h, w, generator=g)
    return logits, feat, gt


def numpy_fit(feat, gt, ridge):
    x = feat.permute(0, 2, 3, 1).reshape(-1, D).numpy().astype(np.float64)
    y = gt.reshape(-1).numpy()
    x, y = x[y != 255], y[y != 255]
    means = np.stack([x[y == c].mean(0) for c in range(C)])
    centred = x - means[y]
    cov = centred.T @ centred / len(x)
    cov += (ridge * np.trace(cov) / D + 1e-12) * np.eye(D)
    return means, np.linalg.inv(cov)


def numpy_distance(feat, means, precision):
    x = feat.permute(0, 2, 3, 1).numpy().astype(np.float64)
    d = np.stack([np.einsum('...i,ij,...j->...', x - m, precision, x - m) for m in means], -1)
    return np.sqrt(d.min(-1))


def fit(scorer, batches):
    scorer.fit_begin()
    for logits, feat, gt in batches:
        scorer.fit_step(logits, [None, None, feat], gt)
    scorer.fit_end()
    return scorer


def test_mahalanobis_fit_matches_numpy_and_streams():
    logits, feat, gt = make_data()
    maha = fit(
        Mahalanobis(feature_stage=2, ridge=1e-3), [(logits[:1], feat[:1], gt[:1]), (logits[1:], feat[1:], gt[1:])])
    means, precision = numpy_fit(feat, gt, 1e-3)
    np.testing.assert_allclose(maha.means.numpy(), means, rtol=1e-5)
    np.testing.assert_allclose(maha.precision.numpy(), precision, rtol=1e-3, atol=1e-4)
    assert maha.class_valid.tolist() == [True] * C
    assert set(maha.state_dict()) == {'means', 'precision', 'class_valid'}


def test_mahalanobis_score_matches_numpy_and_is_upsampled():
    logits, feat, gt = make_data(seed=1)
    maha = fit(Mahalanobis(feature_stage=2), [(logits, feat, gt)])
    _, test_feat, _ = make_data(seed=2)
    out = maha.score(torch.zeros(4, C, 5, 7), [None, None, test_feat])
    assert out.shape == (4, 5, 7) and out.dtype == torch.float32
    expected = numpy_distance(test_feat, maha.means.double().numpy(), maha.precision.double().numpy())
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-3, atol=1e-3)
    big = maha.score(torch.zeros(4, C, 10, 14), [None, None, test_feat])
    assert big.shape == (4, 10, 14)
    torch.testing.assert_close(big,
                               F.interpolate(out[:, None], size=(10, 14), mode='bilinear', align_corners=False)[:, 0])


def test_mahalanobis_far_feature_scores_higher():
    logits, feat, gt = make_data(seed=3)
    maha = fit(Mahalanobis(feature_stage=2), [(logits, feat, gt)])
    probe = maha.means[:2].clone().T.reshape(1, D, 1, 2)  # class-0 mean and ...
    probe[0, :, 0, 1] += 40.0  # ... a point far from every class
    out = maha.score(torch.zeros(1, C, 1, 2), [None, None, probe])[0, 0]
    assert out[0].item() == pytest.approx(0.0, abs=1e-2)
    assert out[1] > out[0] + 1


def test_mahalanobis_label_downsampling():
    gt = torch.tensor([[0, 0, 1, 1], [0, 2, 1, 1], [2, 2, 255, 255], [2, 2, 255, 1]])[None]
    nearest = Mahalanobis(label_downsample='nearest').downsample_labels(gt, (2, 2), C)
    mode = Mahalanobis(label_downsample='mode').downsample_labels(gt, (2, 2), C)
    expected_nearest = F.interpolate(gt[:, None].float(), size=(2, 2), mode='nearest')[:, 0].long()
    assert nearest.tolist() == expected_nearest.tolist()
    assert mode.tolist() == [[[0, 1], [2, 255]]]
    # labels >= C are treated as ignore too
    assert Mahalanobis().downsample_labels(torch.full((1, 2, 2), 7), (1, 1), C).tolist() == [[[255]]]


def test_mahalanobis_fit_with_labels_above_feature_resolution():
    logits, feat, gt = make_data(seed=4, h=4, w=6)
    gt_up = gt.repeat_interleave(2, 1).repeat_interleave(2, 2)  # labels at twice the feature resolution
    logits_up = torch.zeros(gt.shape[0], C, 8, 12)
    a = fit(Mahalanobis(label_downsample='mode'), [(logits_up, feat, gt_up)])
    b = fit(Mahalanobis(), [(logits[:, :, :4, :6], feat, gt)])
    torch.testing.assert_close(a.means, b.means)
    torch.testing.assert_close(a.precision, b.precision)


def test_mahalanobis_unseen_class_is_left_out():
    logits, feat, gt = make_data(seed=5)
    gt[gt == 1] = 255
    maha = fit(Mahalanobis(), [(logits, feat, gt)])
    assert maha.class_valid.tolist() == [True, False, True]
    test = maha.means[[0, 2]].T.reshape(1, D, 1, 2)
    out = maha.score(torch.zeros(1, C, 1, 2), [None, None, test])
    assert torch.isfinite(out).all() and out.abs().max() < 1e-2


def test_mahalanobis_state_dict_round_trip_and_errors():
    logits, feat, gt = make_data(seed=6)
    maha = fit(Mahalanobis(), [(logits, feat, gt)])
    fresh = Mahalanobis()
    with pytest.raises(RuntimeError, match='Mahalanobis is not fitted'):
        fresh.score(logits, [None, None, feat])
    fresh.load_state_dict(maha.state_dict())
    torch.testing.assert_close(fresh.score(logits, [None, None, feat]), maha.score(logits, [None, None, feat]))
    with pytest.raises(ValueError, match='needs the output of backbone stage 2'):
        maha.score(logits, [feat])
    with pytest.raises(ValueError, match='fitted on 6-channel features of stage 2, got 4 channels'):
        maha.score(logits, [None, None, feat[:, :4]])
    with pytest.raises(ValueError, match="label_downsample must be 'nearest' or 'mode'"):
        Mahalanobis(label_downsample='bilinear')
