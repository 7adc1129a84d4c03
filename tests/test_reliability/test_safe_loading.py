"""A checkpoint written by a real (2-process) training run loads safely; the same file with a payload is refused.

The Runner's ``load_checkpoint`` / ``resume`` go through ``mmengine.runner.checkpoint._load_checkpoint``,
which the tests call directly.
"""
import os
import os.path as osp
import pickle

import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

from anomseg_plugins.utils import safe_torch_load


class MakeDir:
    """Unpickling this object would call ``os.mkdir(path)``: the stand-in for arbitrary code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path, ))


def test_runner_checkpoint_loads_with_everything_resume_needs(dist_trained):
    _, ckpt, _ = dist_trained
    checkpoint = _load_checkpoint(ckpt, map_location='cpu')
    assert {'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers'} <= set(checkpoint)
    assert (checkpoint['meta']['epoch'], checkpoint['meta']['iter']) == (2, 2)
    assert isinstance(checkpoint['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    assert checkpoint['optimizer']['state'] and checkpoint['optimizer']['param_groups'][0]['lr'] > 0
    assert all(isinstance(v, torch.Tensor) for v in checkpoint['state_dict'].values())


@pytest.mark.parametrize('where', ['meta', 'message_hub', 'state_dict'])
def test_payload_anywhere_in_the_checkpoint_is_refused(dist_trained, tmp_path, where):
    _, ckpt, _ = dist_trained
    marker = str(tmp_path / 'payload_ran')
    checkpoint = safe_torch_load(ckpt, map_location='cpu')
    checkpoint[where]['note'] = MakeDir(marker)
    evil = str(tmp_path / f'tampered_{where}.pth')
    torch.save(checkpoint, evil)
    with pytest.raises(pickle.UnpicklingError) as info:
        _load_checkpoint(evil, map_location='cpu')
    msg = str(info.value)
    assert msg.startswith(f'Refusing to load checkpoint {evil}')
    assert 'mkdir' in msg and 'allowlist' in msg and 'allow_checkpoint_globals' in msg
    assert not osp.exists(marker)  # the payload never ran
