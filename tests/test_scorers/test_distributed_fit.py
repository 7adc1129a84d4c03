"""Fitting on two CPU ranks (gloo) gives the statistics of fitting on all the data in one process."""
import os.path as osp
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from anomseg_plugins.scorers import SML, Mahalanobis


def make_batches():
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(3):
        logits = torch.randn(2, 3, 6, 6, generator=g) * 2
        feat = torch.randn(2, 4, 3, 3, generator=g) + 10
        gt = torch.randint(0, 3, (2, 6, 6), generator=g)
        batches.append((logits, [None, feat], gt))
    return batches


def fit(scorers, batches):
    for s in scorers:
        s.fit_begin()
        for logits, feats, gt in batches:
            s.fit_step(logits, feats, gt)
        s.fit_end()
    return {f'{s.name}.{k}': v for s in scorers for k, v in s.state_dict().items()}


def worker(rank, port, out_dir):
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2)
    batches = make_batches()
    sml_share = batches[:2] if rank == 0 else batches[2:]
    maha_share = batches if rank == 0 else []  # rank 1 sees no data: its statistics are still unsized
    state = fit([SML()], sml_share)
    state.update(fit([Mahalanobis(feature_stage=1)], maha_share))
    torch.save(state, osp.join(out_dir, f'rank{rank}.pth'))
    dist.destroy_process_group()


@pytest.mark.slow  # 2 processes
def test_fit_end_all_reduces_across_ranks(tmp_path):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    mp.spawn(worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    batches = make_batches()
    expected = fit([SML(), Mahalanobis(feature_stage=1)], batches)
    for rank in range(2):
        got = torch.load(tmp_path / f'rank{rank}.pth')
        assert set(got) == set(expected)
        for key, value in expected.items():
            torch.testing.assert_close(got[key], value, rtol=1e-4, atol=1e-5, msg=f'rank {rank}: {key}')
