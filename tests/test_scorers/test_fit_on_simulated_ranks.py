"""Fitting on two simulated ranks (one thread each) gives the statistics of one process fitting on all the data.

The real two-process test (``test_distributed_fit.py``, gloo) is slow; here ``base_scorer``'s ``get_world_size``,
``all_gather_object`` and ``all_reduce`` are replaced by thread versions with the semantics of mmengine /
torch.distributed: ``all_gather_object`` returns every rank's object in rank order, ``all_reduce`` sums in place
(mmengine reads the op name case-insensitively) and refuses tensors whose dtype or shape differ between ranks
(gloo aborts the process on a dtype mismatch). A rank that saw no fit data is the case that needs care: its running
statistics are still unsized and must become zeros of the shape *and dtype* of the other ranks'.
"""
import threading

import pytest
import torch

from anomseg_plugins.scorers import SML, Mahalanobis, MaxLogit, ScoreFusion, base_scorer
from anomseg_plugins.scorers.base_scorer import all_reduce_sum_


class TwoRanks:

    def __init__(self):
        self.barrier = threading.Barrier(2, timeout=30)
        self.slots = [None, None]
        self.local = threading.local()
        self.reduced = []

    def get_world_size(self, group=None):
        return 2

    def all_gather_object(self, data, group=None):
        self.slots[self.local.rank] = data
        self.barrier.wait()
        gathered = list(self.slots)
        self.barrier.wait()
        return gathered

    def all_reduce(self, data, op='sum', group=None):
        if op.lower() != 'sum':
            raise ValueError(f'unsupported reduce op {op}')
        gathered = self.all_gather_object(data.clone())
        kinds = [(t.dtype, tuple(t.shape)) for t in gathered]
        if kinds[0] != kinds[1]:
            raise RuntimeError(f'all_reduce of tensors that differ between ranks: {kinds}')
        data.copy_(gathered[0] + gathered[1])
        if self.local.rank == 0:
            self.reduced.append(kinds[0])

    def run(self, monkeypatch, *fns):
        """Run ``fns[r]()`` as rank ``r``; return the two results or raise the first real error."""
        for name in ('get_world_size', 'all_gather_object', 'all_reduce'):
            monkeypatch.setattr(base_scorer, name, getattr(self, name))
        results, errors = [None, None], [None, None]

        def target(rank):
            self.local.rank = rank
            try:
                results[rank] = fns[rank]()
            except BaseException as e:  # re-raised below, in the test's thread
                errors[rank] = e
                self.barrier.abort()  # the other rank must not wait for a collective that never comes

        threads = [threading.Thread(target=target, args=(r, )) for r in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        raised = [e for e in errors if e is not None]
        for e in sorted(raised, key=lambda e: isinstance(e, threading.BrokenBarrierError)):
            raise e
        return results


def test_all_reduce_sum_sums_sized_statistics_and_sizes_those_of_ranks_without_data(monkeypatch):
    g = torch.Generator().manual_seed(0)
    a = [torch.randn(2, 3, generator=g) for _ in range(2)]
    b = [torch.randn(1, 4, generator=g, dtype=torch.float64) for _ in range(2)]  # a dimension of size 1
    c1 = torch.randn(3, generator=g, dtype=torch.float64)
    expected = [a[0] + a[1], b[0] + b[1], c1, torch.empty(0)]
    # rank 0 has not sized `c` (no data); neither rank has sized the last statistic
    rank0 = [a[0].clone(), b[0].clone(), torch.empty(0, dtype=torch.float64), torch.empty(0)]
    rank1 = [a[1].clone(), b[1].clone(), c1.clone(), torch.empty(0)]
    inputs = [rank0, rank1]
    ranks = TwoRanks()
    out = ranks.run(monkeypatch, lambda: all_reduce_sum_(inputs[0]), lambda: all_reduce_sum_(inputs[1]))
    for rank in range(2):
        assert len(out[rank]) == 4
        for got, want in zip(out[rank], expected):
            assert got.dtype == want.dtype
            torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
        assert out[rank][0] is inputs[rank][0]  # sized statistics are reduced in place
    assert ranks.reduced == [(torch.float32, (2, 3)), (torch.float64, (1, 4)), (torch.float64, (3, ))]


def test_all_reduce_sum_rejects_ranks_that_disagree_on_a_shape(monkeypatch):
    with pytest.raises(RuntimeError, match=r'ranks disagree on the shape of a fit statistic: \[\(2,\), \(3,\)\]'):
        TwoRanks().run(monkeypatch, lambda: all_reduce_sum_([torch.ones(2)]), lambda: all_reduce_sum_([torch.ones(3)]))


def make_batches():
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(3):
        logits = torch.randn(2, 3, 6, 6, generator=g) * 2
        feat = torch.randn(2, 4, 3, 3, generator=g) + 10
        gt = torch.randint(0, 3, (2, 6, 6), generator=g)
        batches.append((logits, [None, feat], gt))
    return batches


def fit(scorer, batches):
    for _ in range(2):  # passes until fitted, as AnomalyTestLoop runs them (a z-score fusion of SML needs two)
        scorer.fit_begin()
        for logits, feats, gt in batches:
            scorer.fit_step(logits, feats, gt)
        scorer.fit_end()
        if scorer.is_fitted:
            return scorer.state_dict()
    raise AssertionError(f'{scorer.name} is not fitted after two passes')


SCORERS = {
    'Mahalanobis': lambda: Mahalanobis(feature_stage=1),
    'SML': lambda: SML(min_pixels=10),
    'ScoreFusion': lambda: ScoreFusion([MaxLogit(), SML(min_pixels=10)], mode='zscore'),
}


@pytest.mark.parametrize('scorer', sorted(SCORERS))
@pytest.mark.parametrize('split', [2, 3], ids=['rank1-one-batch', 'rank1-no-data'])
def test_fit_on_two_ranks_matches_one_process(monkeypatch, scorer, split):
    batches = make_batches()
    expected = fit(SCORERS[scorer](), batches)
    got = TwoRanks().run(monkeypatch, lambda: fit(SCORERS[scorer](), batches[:split]),
                         lambda: fit(SCORERS[scorer](), batches[split:]))
    for rank in range(2):
        assert set(got[rank]) == set(expected)
        for key, value in expected.items():
            torch.testing.assert_close(got[rank][key], value, rtol=1e-4, atol=1e-5, msg=f'rank {rank}: {key}')
