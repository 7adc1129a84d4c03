"""Safe checkpoint loading: mmengine checkpoints load under weights_only=True, foreign pickles are refused.

And end to end: a checkpoint written by a real (2-process) training run loads safely; the same file with a
payload is refused.

The Runner's ``load_checkpoint`` / ``resume`` go through ``mmengine.runner.checkpoint._load_checkpoint``,
which the tests call directly.
"""
import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import CheckpointLoader, load_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint

import anomseg_plugins  # noqa: F401  (installs the allowlist and the safe loader)
from anomseg_plugins.utils import safe_torch_load


class Payload:
    """Stands for an arbitrary pickled object that must never be unpickled."""

    def __reduce__(self):
        return (print, ('this would run on load', ))


class Custom:
    pass


def _mmengine_like_checkpoint() -> dict:
    hub = MessageHub.get_instance('safe-ckpt-test')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/loss', 1.2)
    hub.update_info('iter', 3)
    return dict(
        meta=dict(
            epoch=1,
            iter=3,
            seed=0,
            dataset_meta=dict(classes=('a', 'b'), palette=[[0, 0, 0], [1, 1, 1]]),
            hook_msgs=dict(best_score=np.float64(0.5)),
            mean=np.array([1.0, 2.0], np.float32)),
        state_dict=dict(weight=torch.ones(2, 2)),
        message_hub=hub.state_dict(),
        optimizer=dict(state={}, param_groups=[dict(lr=1e-4, betas=(0.9, 0.999))]))


def test_mmengine_checkpoint_loads_safely(tmp_path):
    path = str(tmp_path / 'ok.pth')
    torch.save(_mmengine_like_checkpoint(), path)
    ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert torch.equal(ckpt['state_dict']['weight'], torch.ones(2, 2))
    buffer = ckpt['message_hub']['log_scalars']['train/loss']
    assert buffer.current() == pytest.approx(1.2)
    assert ckpt['meta']['mean'].dtype == np.float32


def test_model_weights_load_through_mmengine(tmp_path):
    model = torch.nn.Linear(2, 2)
    path = str(tmp_path / 'w.pth')
    ckpt = _mmengine_like_checkpoint()
    ckpt['state_dict'] = {k: torch.full_like(v, 3.0) for k, v in model.state_dict().items()}
    torch.save(ckpt, path)
    load_checkpoint(model, path, map_location='cpu', strict=True)
    assert torch.all(model.weight == 3.0)


@pytest.mark.parametrize('obj,name', [(Payload(), '`print`'), (Custom(), 'Custom')])
def test_foreign_object_is_refused_with_reason(tmp_path, obj, name):
    path = str(tmp_path / 'evil.pth')
    ckpt = _mmengine_like_checkpoint()
    ckpt['meta']['extra'] = obj
    torch.save(ckpt, path)
    with pytest.raises(pickle.UnpicklingError) as info:
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
    msg = str(info.value)
    assert 'Refusing to load checkpoint' in msg and 'evil.pth' in msg
    assert name in msg and 'allowlist' in msg and 'allow_checkpoint_globals' in msg


def test_missing_file():
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        safe_torch_load('nope.pth')


class MakeDir:
    """Unpickling this object would call ``os.mkdir(path)``: the stand-in for arbitrary code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path, ))


@pytest.mark.slow  # needs the 2-process training run
def test_runner_checkpoint_loads_with_everything_resume_needs(dist_trained):
    _, ckpt, _ = dist_trained
    checkpoint = _load_checkpoint(ckpt, map_location='cpu')
    assert {'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers'} <= set(checkpoint)
    assert (checkpoint['meta']['epoch'], checkpoint['meta']['iter']) == (2, 2)
    assert isinstance(checkpoint['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    assert checkpoint['optimizer']['state'] and checkpoint['optimizer']['param_groups'][0]['lr'] > 0
    assert all(isinstance(v, torch.Tensor) for v in checkpoint['state_dict'].values())


@pytest.mark.slow  # needs the 2-process training run
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
