"""Order-preserving score histogram: pooled anomaly metrics in memory flat in the pixel count.

The pooled protocol ranks every evaluated pixel of a whole test set together (393M pixels for
StreetHazards). Keeping the scores to sort them needs ~30 GB (the study had to subsample 1M pixels).
Instead, each score is mapped to a bin by an *order-preserving* quantisation of its float32 bit pattern:

1. ``b`` = the IEEE-754 bits of the score as int32 (sign, 8 exponent bits, 23 mantissa bits);
2. ``key = sign(x) * (b & 0x7FFFFFFF)``: sign-magnitude to two's complement, so that ``key`` is a
   monotone (non-decreasing) function of the score with ``-0.0`` and ``+0.0`` both on 0;
3. ``bin = key >> (32 - num_bits)`` (arithmetic shift = floor): the top ``num_bits`` bits.

A bin therefore spans a fixed *relative* width of ``2^-(num_bits - 9)`` of the score (sign and exponent
take 9 bits): the quantisation is scale-free and treats probabilities, logits and energies in the
hundreds alike.

Storage is block-sparse: a *block* holds the ``2^(num_bits - 9)`` bins of one sign+exponent value (one
binade, ``block = key >> 23``), as a ``(2, block_size)`` int64 array of normal / anomalous counts; only
blocks that received a score exist. Per batch, one ``np.bincount`` of the bin indices counts all pixels
and a second one the (few) anomalous pixels, over a contiguous index space: the batch's bin range when
it is narrow; when it crosses zero (and so spans ~250 mostly empty binades), the two ranges on either
side of zero; otherwise the occupied blocks only (a 512-entry lookup table). No sort, no per-pixel
Python. Memory depends on how many binades the scores occupy, never on the pixel count: 128 KiB per
occupied binade at 22 bits (a map spanning 1e-3..1e3 uses ~20 of them: 2.5 MiB), 64 MiB if all 512
were occupied.

Metrics come from the non-empty bins in descending order (:func:`.level_metrics.metrics_from_level_counts`);
pixels sharing a bin are treated like tied scores (as sklearn treats exact ties). Exactness bounds
against the unquantised scores, with ``pos_b`` / ``neg_b`` the counts of bin ``b``:

- AUROC: ``|error| <= sum_b pos_b * neg_b / (2 * P * N)`` (:meth:`ScoreHistogram.auroc_tie_bound`);
- FPR95 (``'first'`` rule): the bin holding the exact threshold is found exactly; the reported FPR
  counts all negatives of that bin, so ``0 <= FPR_hist - FPR_exact <= neg_b* / N``; for the ``'nearest'``
  rule see :func:`.level_metrics.fpr_bin_bound` (:meth:`ScoreHistogram.fpr_tie_bound` computes both);
- AUPR: all positives of a bin get the precision at the bin's end, as sklearn does for tied scores.
  Unlike AUROC this matters even for bins holding only positives (precision moves along a run of
  positives), so AUPR is exact only if scores sharing a bin are true ties or one class; the error is
  bounded by :meth:`ScoreHistogram.aupr_tie_bound`. It only becomes visible when many anomalous pixels
  have scores within one bin width (1.2e-4 relative at 22 bits) of each other while normal pixels
  rank above them.

With 22 bits (relative bin width 1.2e-4), on 10M pixels with 1% anomalies
(``benchmarks/bench_anomaly_metric.py``: normal, energy-scale around -300 and MSP-like scores near -1)
the differences to sklearn were <= 3e-7 (AUROC), <= 5e-5 (AUPR) and <= 4e-4 (FPR95, MSP-like: the
negatives of one bin near 1.0); the tests check 1e-4 for AUROC/AUPR on random, tied, constant,
heavy-tailed, energy-scale, negative and mixed-sign maps and the FPR95 bound above. Where many pixels of
both classes share bins (scores differing only in the 5th digit, e.g. energies of 500 +- 0.01 all fall in
one or two bins), the bounds grow to tens of points; ``AnomalyMetric`` reports them and warns. This is
why its per-image protocol sorts each image's scores exactly by default (:mod:`.exact_metrics`) and uses
the histogram only for the pooled protocol, whose data cannot be held in memory.

Non-finite scores are detected for free: NaN/inf have ``|key| >= 0x7F800000``, beyond every finite score.
"""
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .level_metrics import check_ignore_index, curves_from_level_counts, fpr_bin_bound, metrics_from_level_counts

ArrayLike = Union[np.ndarray, torch.Tensor]

_INF_KEY = 0x7F800000  # |key| of +-inf; NaN keys are beyond it
MIN_BITS, MAX_BITS = 9, 24
_NUM_BLOCKS = 512  # sign + 8 exponent bits: block ids -256..255


def _check_bits(num_bits: int) -> int:
    if not isinstance(num_bits, (int, np.integer)) or not MIN_BITS <= num_bits <= MAX_BITS:
        raise ValueError(f'num_bits must be an int in [{MIN_BITS}, {MAX_BITS}], got {num_bits!r}')
    return int(num_bits)


def bin_lower_edges(bins: np.ndarray, num_bits: int) -> np.ndarray:
    """The lowest float32 score of each bin (as float64): ``score >= edge`` <=> bin index >= ``bins``.

    The lowest bin of the negative scores starts at ``-inf``."""
    shift = 32 - num_bits
    key = np.maximum(np.asarray(bins, dtype=np.int64) << shift, -_INF_KEY)
    bits = np.where(key >= 0, key, (-key) | 0x80000000).astype(np.uint32)
    return bits.view(np.float32).astype(np.float64)


def score_bins(scores: np.ndarray, num_bits: int) -> np.ndarray:
    """Bin indices of float32 ``scores`` (int64; mainly for tests, the accumulator fuses these steps)."""
    bits = np.ascontiguousarray(scores, dtype=np.float32).view(np.int32)
    sign = bits >> 31
    key = ((bits & 0x7FFFFFFF) ^ sign) - sign
    return (key >> (32 - num_bits)).astype(np.int64)


class ScoreHistogram:
    """Per-bin counts of normal and anomalous pixels over an order-preserving quantisation of scores.

    Used both as the pooled accumulator (``update`` every image, ``compute`` once) and for the counts of a
    single image (:meth:`from_scores`).

    Args:
        num_bits: bits of the float32 pattern kept (9..24); bin relative width ``2^-(num_bits - 9)``.
        ignore_index: label of pixels to drop (not 0 or 1, the label values; None: drop none).
        name: named in error and warning messages (e.g. the scorer).

    Attributes:
        blocks: ``{block_id: (2, block_size) int64 counts}`` (row 0 normal, row 1 anomalous pixels); bin
            ``i`` of block ``b`` is bin index ``b * block_size + i``.
    """

    def __init__(self, num_bits: int = 22, ignore_index: Optional[int] = 255, name: str = 'scores') -> None:
        self.num_bits = _check_bits(num_bits)
        self.block_bits = self.num_bits - 9
        self.block_size = 1 << self.block_bits
        self.ignore_index = check_ignore_index(ignore_index, name)
        self.name = name
        self.blocks: Dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------ building
    @classmethod
    def from_scores(cls,
                    scores: ArrayLike,
                    labels: ArrayLike,
                    num_bits: int = 22,
                    ignore_index: Optional[int] = 255,
                    name: str = 'scores') -> 'ScoreHistogram':
        """Histogram of one batch. Scores: float array/tensor (any shape; CUDA tensors are binned on their
        device); labels: same shape, 0 normal, 1 anomaly, ``ignore_index`` dropped."""
        hist = cls(num_bits, ignore_index, name)
        if tuple(scores.shape) != tuple(labels.shape):
            raise ValueError(f'{name}: scores of shape {tuple(scores.shape)} and labels of shape '
                             f'{tuple(labels.shape)} differ')
        if isinstance(scores, torch.Tensor) and scores.device.type != 'cpu':
            hist._bin_torch(scores, labels)
        else:
            hist._bin_numpy(scores, labels)
        return hist

    def update(self, scores: ArrayLike, labels: ArrayLike) -> 'ScoreHistogram':
        """Add a batch; returns the batch's own histogram (e.g. for per-image metrics)."""
        batch = self.from_scores(scores, labels, self.num_bits, self.ignore_index, self.name)
        self.add(batch)
        return batch

    def _bad_labels(self, values) -> ValueError:
        return ValueError(f'{self.name}: anomaly labels must be 0 (normal), 1 (anomaly) or '
                          f'ignore_index={self.ignore_index}; found {sorted(set(values))[:10]}')

    def _non_finite(self, scores) -> ValueError:
        scores = torch.as_tensor(scores)
        bad = int((~torch.isfinite(scores)).sum())
        return ValueError(f'{self.name}: {bad} of {scores.numel()} evaluated anomaly scores are NaN or inf; '
                          'the scorer must return finite scores')

    def _set_blocks(self, block_ids: np.ndarray, counts: np.ndarray) -> None:
        """Keep the non-empty blocks of ``counts`` ``(2, n, block_size)`` (views, no copy)."""
        occupied = (counts[0] | counts[1]).any(axis=1)
        self.blocks = {int(b): counts[:, i] for i, b in enumerate(block_ids) if occupied[i]}

    def _bin_numpy(self, scores: ArrayLike, labels: ArrayLike) -> None:
        if isinstance(scores, torch.Tensor):
            scores = scores.detach().cpu()
            scores = (scores if scores.dtype == torch.float32 else scores.float()).numpy()
        if isinstance(labels, torch.Tensor):
            labels = labels.detach().cpu().numpy()
        scores = np.ascontiguousarray(scores, dtype=np.float32).reshape(-1)
        labels = np.asarray(labels).reshape(-1)
        if labels.dtype == np.bool_:
            labels = labels.view(np.uint8)
        if labels.size and (labels.max() > 1 or labels.min() < 0):
            keep = labels != self.ignore_index if self.ignore_index is not None else np.ones(labels.shape, bool)
            scores, labels = scores[keep], labels[keep]
            if labels.size and (labels.max() > 1 or labels.min() < 0):
                raise self._bad_labels(np.unique(labels[(labels != 0) & (labels != 1)]).tolist())
        if labels.size == 0:
            return
        if labels.dtype != np.uint8:
            labels = labels.astype(np.uint8)
        bb, bsize = self.block_bits, self.block_size
        bits = scores.view(np.int32)
        sign = bits >> 31
        key = bits & 0x7FFFFFFF
        key ^= sign
        key -= sign  # key = sign(x) * |bits|, monotone in x
        kmin, kmax = int(key.min()), int(key.max())
        if kmin <= -_INF_KEY or kmax >= _INF_KEY:
            raise self._non_finite(scores)
        key >>= 32 - self.num_bits  # bin index (int32 throughout: half the memory traffic of int64)
        blo, bhi = kmin >> 23, kmax >> 23  # first / last block of the range
        limit = 2 * key.size + (1 << 16)  # bins worth a dense bincount
        idx = None
        if (bhi - blo + 1) * bsize <= limit:
            key -= blo * bsize  # dense over the range of blocks
            idx, block_ids = key, np.arange(blo, bhi + 1)
        elif kmin < 0 <= kmax:
            # crossing zero: dense over [lowest, largest negative] and [smallest non-negative, highest] bins,
            # skipping the empty binades around zero. As uint32, negative bins sort above non-negative ones.
            as_u32 = key.view(np.uint32)
            neg_hi, pos_lo = (int(as_u32.max()) - (1 << 32)) >> bb, int(as_u32.min()) >> bb
            if (neg_hi - blo + 1 + bhi - pos_lo + 1) * bsize <= limit:
                gap = sign  # reuse the buffer: gap = (pos_lo - neg_hi - 1) blocks for bins >= 0, else 0
                np.right_shift(key, 31, out=gap)
                gap += 1
                gap *= (pos_lo - neg_hi - 1) * bsize
                key -= blo * bsize
                key -= gap
                idx, block_ids = key, np.r_[np.arange(blo, neg_hi + 1), np.arange(pos_lo, bhi + 1)]
        if idx is None:
            # many empty binades in the range: index bins over the occupied blocks only
            block = sign  # reuse the buffer
            np.right_shift(key, bb, out=block)
            block -= blo
            occupied = np.flatnonzero(np.bincount(block))
            lut = np.zeros(bhi - blo + 1, np.int32)
            lut[occupied] = np.arange(occupied.size, dtype=np.int32)
            idx = np.take(lut, block, mode='clip')  # (mode='clip' is the fast path; indices are in range)
            idx <<= bb
            key &= bsize - 1
            idx += key
            block_ids = occupied + blo
        num = block_ids.size * bsize
        counts = np.empty((2, num), np.int64)
        counts[0] = np.bincount(idx, minlength=num)
        counts[1] = np.bincount(idx[labels.view(np.bool_)], minlength=num)
        counts[0] -= counts[1]
        self._set_blocks(block_ids, counts.reshape(2, block_ids.size, bsize))

    def _bin_torch(self, scores: torch.Tensor, labels: ArrayLike) -> None:
        """Binning with torch ops on the scores' device (used for CUDA tensors)."""
        labels = torch.as_tensor(labels, device=scores.device).reshape(-1)
        scores = scores.detach().reshape(-1).float()
        if labels.dtype == torch.bool:
            labels = labels.to(torch.uint8)
        if labels.numel() and (labels.max() > 1 or labels.min() < 0):
            if self.ignore_index is not None:
                keep = labels != self.ignore_index
                scores, labels = scores[keep], labels[keep]
            if labels.numel() and (labels.max() > 1 or labels.min() < 0):
                raise self._bad_labels(labels[(labels != 0) & (labels != 1)].unique().tolist())
        if labels.numel() == 0:
            return
        bits = scores.contiguous().view(torch.int32)
        sign = bits >> 31
        key = ((bits & 0x7FFFFFFF) ^ sign) - sign
        kmin, kmax = (int(v) for v in torch.aminmax(key))
        if kmin <= -_INF_KEY or kmax >= _INF_KEY:
            raise self._non_finite(scores)
        bins = key >> (32 - self.num_bits)
        block = bins >> self.block_bits
        block_ids = torch.unique(block)  # sorted
        idx = torch.searchsorted(block_ids, block).long() << self.block_bits
        idx += (bins & (self.block_size - 1)).long()
        num = block_ids.numel() * self.block_size
        counts = torch.stack([torch.bincount(idx, minlength=num), torch.bincount(idx[labels == 1], minlength=num)])
        counts = counts.cpu().numpy().astype(np.int64, copy=False)
        counts[0] -= counts[1]
        self._set_blocks(block_ids.cpu().numpy(), counts.reshape(2, -1, self.block_size))

    # ------------------------------------------------------------------ combining
    def _check_compatible(self, other: 'ScoreHistogram') -> None:
        if other.num_bits != self.num_bits:
            raise ValueError(f'{self.name}: cannot merge histograms of {other.num_bits} and {self.num_bits} bits')

    def add(self, other: 'ScoreHistogram', sign: int = 1) -> 'ScoreHistogram':
        """Add (``sign=1``) or subtract (``sign=-1``) another histogram of the same ``num_bits`` in place."""
        self._check_compatible(other)
        for block_id, counts in other.blocks.items():
            mine = self.blocks.get(block_id)
            if sign > 0:
                if mine is None:
                    self.blocks[block_id] = counts.copy()
                else:
                    mine += counts
            else:
                if mine is None or (mine < counts).any():
                    raise ValueError(f'{self.name}: subtracting a histogram that was never added')
                mine -= counts
        return self

    def merge(self, other: 'ScoreHistogram') -> 'ScoreHistogram':
        """Alias of :meth:`add`: fold the histogram of another worker / data shard into this one."""
        return self.add(other)

    @property
    def block_ids(self) -> List[int]:
        """Sorted ids of the stored blocks."""
        return sorted(self.blocks)

    def block_mask(self) -> np.ndarray:
        """``(512,)`` bool occupancy of the block ids -256..255 (for agreeing on blocks across ranks)."""
        mask = np.zeros(_NUM_BLOCKS, bool)
        mask[np.asarray(self.block_ids, np.int64) + _NUM_BLOCKS // 2] = True
        return mask

    def dense_blocks(self, block_ids: Sequence[int]) -> np.ndarray:
        """``(2, len(block_ids), block_size)`` counts of the given blocks (zeros for absent ones)."""
        out = np.zeros((2, len(block_ids), self.block_size), np.int64)
        for i, b in enumerate(block_ids):
            if int(b) in self.blocks:
                out[:, i] = self.blocks[int(b)]
        return out

    def set_blocks(self, block_ids: Sequence[int], counts: np.ndarray) -> 'ScoreHistogram':
        """Replace the state by ``counts`` ``(2, len(block_ids), block_size)`` (empty blocks dropped).

        Raises:
            ValueError: a block id outside -256..255 (the ids of finite float32 scores).
        """
        block_ids = np.asarray(block_ids, np.int64)
        bad = block_ids[(block_ids < -_NUM_BLOCKS // 2) | (block_ids >= _NUM_BLOCKS // 2)]
        if bad.size:
            raise ValueError(f'{self.name}: block ids must lie in {-_NUM_BLOCKS // 2}..{_NUM_BLOCKS // 2 - 1} '
                             f'(sign and exponent of a float32 score); got {bad[:10].tolist()}')
        self._set_blocks(block_ids, np.asarray(counts, np.int64))
        return self

    def reset(self) -> None:
        self.blocks = {}

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.blocks.values())

    @property
    def num_pos(self) -> int:
        return int(sum(int(c[1].sum()) for c in self.blocks.values()))

    @property
    def num_neg(self) -> int:
        return int(sum(int(c[0].sum()) for c in self.blocks.values()))

    # ------------------------------------------------------------------ metrics
    def _levels(self) -> Tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        """``(pos, neg, bins_of)`` of the non-empty bins in descending score order; ``bins_of(level_indices)``
        gives their bin indices (computed on demand)."""
        if not self.blocks:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), lambda i: np.zeros(0, np.int64)
        ids = np.asarray(self.block_ids, np.int64)
        counts = np.concatenate([self.blocks[b] for b in ids], axis=1) if len(ids) > 1 else self.blocks[ids[0]]
        nz = np.flatnonzero(counts[0] | counts[1])[::-1]  # positions in ascending order, reversed
        bb, mask = self.block_bits, self.block_size - 1

        def bins_of(levels: np.ndarray) -> np.ndarray:
            p = nz[levels]
            return (ids[p >> bb] << bb) + (p & mask)

        return counts[1, nz], counts[0, nz], bins_of

    def level_counts(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(pos, neg, thresholds)`` of the non-empty bins in descending score order; a threshold is the
        lowest score of its bin."""
        pos, neg, bins_of = self._levels()
        return pos, neg, bin_lower_edges(bins_of(np.arange(pos.size)), self.num_bits)

    def compute(self, recall_level: float = 0.95, fpr_rule: str = 'first', warn: bool = True) -> Dict[str, float]:
        """AUROC, AUPR, FPR95, F1, F1_threshold (fractions / score) plus ``num_pos``, ``num_neg``; NaN where
        undefined, with a logged warning if ``warn`` (see :func:`.level_metrics.metrics_from_level_counts`)."""
        pos, neg, bins_of = self._levels()
        return metrics_from_level_counts(
            pos,
            neg,
            lambda i: float(bin_lower_edges(bins_of([i]), self.num_bits)[0]),
            recall_level=recall_level,
            fpr_rule=fpr_rule,
            warn_name=self.name if warn else None)

    def curves(self) -> Dict[str, np.ndarray]:
        """ROC (``fpr``, ``tpr``) and PR (``recall``, ``precision``) curves through the bin edges."""
        pos, neg, _ = self._levels()
        return curves_from_level_counts(pos, neg)

    # ------------------------------------------------------------------ operating points
    def threshold_at_recall(self, recall_level: float = 0.95) -> float:
        """The highest bin threshold whose recall reaches ``recall_level``: the operating point of FPR95
        (``'first'`` rule). Flagging ``score >= threshold`` then has recall ``>= recall_level``. NaN without
        anomalous pixels."""
        pos, _, thresholds = self.level_counts()
        total = int(pos.sum())
        if total == 0:
            return float('nan')
        idx = int(np.argmax(np.cumsum(pos) >= recall_level * total))
        return float(thresholds[idx])

    def rates_at_threshold(self, threshold: float) -> Dict[str, Optional[float]]:
        """Pooled ``recall`` and ``fpr`` (fractions; ``None`` without anomalous / normal pixels) of flagging
        ``score >= threshold``, and the pixel counts (bin resolution: a bin counts as flagged when its lower edge
        is ``>= threshold``)."""
        pos, neg, thresholds = self.level_counts()
        flagged = thresholds >= threshold
        num_pos, num_neg = int(pos.sum()), int(neg.sum())
        return dict(
            recall=float(pos[flagged].sum() / num_pos) if num_pos else None,
            fpr=float(neg[flagged].sum() / num_neg) if num_neg else None,
            num_anomaly_pixels=num_pos,
            num_normal_pixels=num_neg)

    def quantile(self, q: float) -> float:
        """Score below which a fraction ``q`` of the pixels lie (a bin's lower edge; NaN if empty)."""
        pos, neg, thresholds = self.level_counts()
        counts = pos + neg
        total = int(counts.sum())
        if total == 0:
            return float('nan')
        idx = int(np.argmax(np.cumsum(counts) >= (1.0 - q) * total))  # levels descend: top fraction 1 - q
        return float(thresholds[idx])

    # ------------------------------------------------------------------ exactness bounds
    def auroc_tie_bound(self) -> float:
        """Upper bound of ``|AUROC_hist - AUROC_exact|`` from pixels sharing a bin: sum pos_b neg_b / 2PN."""
        pos, neg = self.num_pos, self.num_neg
        if pos == 0 or neg == 0:
            return float('nan')
        ties = sum(float(np.dot(c[0].astype(np.float64), c[1])) for c in self.blocks.values())
        return ties / (2.0 * pos * neg)

    def aupr_tie_bound(self) -> float:
        """Upper bound of ``|AUPR_hist - AUPR_exact|`` from pixels sharing a bin.

        Whatever the order of the pixels inside bin ``b`` (after ``tp`` / ``fp`` pixels of higher bins), each of
        its ``p`` positives gets a precision between ``(tp + 1) / (tp + 1 + fp + n)`` and
        ``(tp + p) / (tp + p + fp)``; the histogram uses a value in between, so the error of the bin is at most
        ``p / P`` times that spread.
        """
        pos, neg, _ = self._levels()
        num_pos = int(pos.sum())
        if num_pos == 0:
            return float('nan')
        tp_prev = np.cumsum(pos) - pos
        fp_prev = np.cumsum(neg) - neg
        has = pos > 0
        p, n, tp, fp = pos[has], neg[has], tp_prev[has], fp_prev[has]
        spread = (tp + p) / (tp + p + fp) - (tp + 1) / (tp + 1 + fp + n)
        return float(np.sum(p * spread) / num_pos)

    def fpr_tie_bound(self, recall_level: float = 0.95, fpr_rule: str = 'first') -> float:
        """Upper bound of ``|FPR95_hist - FPR95_exact|`` from pixels sharing a bin, under ``fpr_rule``
        (``neg_b* / N`` for ``'first'``; see :func:`.level_metrics.fpr_bin_bound`)."""
        pos, neg, _ = self._levels()
        return fpr_bin_bound(pos, neg, recall_level, fpr_rule)

    def error_bounds(self, recall_level: float = 0.95, fpr_rule: str = 'first') -> Dict[str, float]:
        """``{'AUROC', 'AUPR', 'FPR95'}``: the three bounds above (fractions; NaN where the metric is undefined)."""
        return dict(
            AUROC=self.auroc_tie_bound(), AUPR=self.aupr_tie_bound(), FPR95=self.fpr_tie_bound(recall_level, fpr_rule))

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(name={self.name!r}, num_bits={self.num_bits}, blocks={len(self.blocks)}, '
                f'num_pos={self.num_pos}, num_neg={self.num_neg})')
