"""Histogram state exchange (block occupancy, set_blocks), the torch binning's rejection of +inf, the recall
operating point at an exact recall tie, the constant-map warning, and best_f1's ignore_index."""
import logging

import numpy as np
import pytest
import torch

from anomseg_plugins.evaluation.functional import ScoreHistogram, best_f1, metrics_from_level_counts, score_bins


def small_hist():
    scores = np.array([-3.0, -1.0, 0.25, 1.0, 1.5, 1000.0], np.float32)
    labels = np.array([0, 0, 1, 0, 1, 1], np.uint8)
    return ScoreHistogram.from_scores(scores, labels, 22), scores


def test_block_mask_marks_the_occupied_blocks():
    hist, scores = small_hist()
    mask = hist.block_mask()
    assert mask.dtype == bool and mask.shape == (512, )
    blocks = np.unique(score_bins(scores, 22) >> 13)  # 22 bits: 13 bits of bin inside a block
    np.testing.assert_array_equal(np.flatnonzero(mask) - 256, blocks)
    assert hist.block_ids == blocks.tolist()
    empty = ScoreHistogram(22).block_mask()
    assert empty.dtype == bool and empty.shape == (512, ) and not empty.any()


def test_set_blocks_restores_a_state_and_drops_empty_blocks():
    hist, _ = small_hist()
    ids = hist.block_ids + [5]  # block 5 (tiny positive scores) holds nothing
    dense = hist.dense_blocks(ids)
    assert not dense[:, -1].any()
    copy = ScoreHistogram(22).set_blocks(ids, dense.astype(np.int32))
    assert copy.block_ids == hist.block_ids
    assert copy.num_pos == 3 and copy.num_neg == 3
    assert copy.compute(warn=False) == hist.compute(warn=False)


def test_torch_binning_rejects_plus_infinity():
    """(The torch path serves CUDA tensors; run here on CPU tensors.)"""
    labels = torch.tensor([0, 1, 0, 1], dtype=torch.uint8)
    for bad in (float('inf'), float('-inf')):
        with pytest.raises(ValueError, match=r'^scores: 1 of 4 evaluated anomaly scores are NaN or inf'):
            ScoreHistogram(22)._bin_torch(torch.tensor([1.0, bad, 2.0, 3.0]), labels)
    largest = float(np.finfo(np.float32).max)
    hist = ScoreHistogram(22)
    hist._bin_torch(torch.tensor([1.0, largest, -largest, 3.0]), labels)
    assert hist.num_pos == 2 and hist.num_neg == 2


def test_threshold_at_recall_reaching_the_level_exactly():
    """Four anomalies at scores 4, 3, 2, 1: recall 0.5 is reached exactly at score 3."""
    scores = np.array([4.0, 3.0, 2.0, 1.0, 0.5, 0.25], np.float32)
    labels = np.array([1, 1, 1, 1, 0, 0], np.uint8)
    hist = ScoreHistogram.from_scores(scores, labels, 22)
    assert hist.threshold_at_recall(0.5) == 3.0
    assert hist.threshold_at_recall(0.75) == 2.0 and hist.threshold_at_recall(1.0) == 1.0


def test_constant_map_warning(caplog):
    with caplog.at_level(logging.WARNING):
        out = metrics_from_level_counts([2], [3], [0.5], warn_name='flat')
    assert out['AUROC'] == 0.5 and out['FPR95'] == 1.0
    assert [r.getMessage() for r in caplog.records
            ] == ['flat: all 5 evaluated scores are equal (constant map): AUROC is 0.5 and FPR95 is 100%']


def test_best_f1_drops_the_given_ignore_index():
    scores = np.array([0.9, 0.8, 0.7, 0.1], np.float32)
    labels = np.array([1, 254, 0, 1], np.uint8)
    # without the 254 pixel: flagging all three gives tp 2, fp 1 -> F1 = 4 / 5 (flagging 0.9 only: 2 / 3)
    f1, thr = best_f1(scores, labels, ignore_index=254)
    assert f1 == pytest.approx(0.8, abs=1e-15) and thr == np.float32(0.1)
    with pytest.raises(ValueError, match=r'ignore_index=255; found \[254\]'):
        best_f1(scores, labels)
