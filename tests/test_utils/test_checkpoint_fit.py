"""A checkpoint must fit the model exactly to be tested: every mismatch is named with its keys and shapes."""
import logging

import pytest
import torch
from mmengine.model import BaseTTAModel
from torch import nn

import anomseg_plugins  # noqa: F401  (safe checkpoint loading)
from anomseg_plugins.utils.checkpoint_fit import (CheckpointMismatchError, check_checkpoint_fits, compare_checkpoint,
                                                  load_checkpoint_exact)


class Preprocessor(nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer('mean', torch.tensor([1.0, 2.0, 3.0]), persistent=False)


class Head(nn.Module):

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv_seg = nn.Conv2d(8, num_classes, 1)


class Segmentor(nn.Module):
    """The key layout of an mmseg segmentor: preprocessor buffers, a backbone with BN, decode and aux heads."""

    def __init__(self, num_classes: int = 13) -> None:
        super().__init__()
        self.data_preprocessor = Preprocessor()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
        self.decode_head = Head(num_classes)
        self.auxiliary_head = Head(num_classes)

    def test_step(self, data):  # what a TTA wrapper requires of its module
        return data


class TTA(BaseTTAModel):

    def merge_preds(self, data_samples_list):
        return data_samples_list


def _weights(model: nn.Module, value: float) -> dict:
    return {k: torch.full_like(v, value) for k, v in model.state_dict().items()}


def test_head_of_another_number_of_classes_names_keys_and_shapes():
    fit = compare_checkpoint(Segmentor(13), dict(state_dict=Segmentor(5).state_dict()), 'five.pth')
    assert not fit.ok and not fit.missing and not fit.unexpected
    assert fit.mismatched == [('decode_head.conv_seg.weight', (5, 8, 1, 1), (13, 8, 1, 1)),
                              ('decode_head.conv_seg.bias', (5, ), (13, )),
                              ('auxiliary_head.conv_seg.weight', (5, 8, 1, 1), (13, 8, 1, 1)),
                              ('auxiliary_head.conv_seg.bias', (5, ), (13, ))]
    assert (fit.matched, fit.total) == (6, 10)  # backbone conv (2) + BN (4: weight, bias, running stats)
    with pytest.raises(CheckpointMismatchError) as info:
        check_checkpoint_fits(Segmentor(13), dict(state_dict=Segmentor(5).state_dict()), 'five.pth')
    lines = str(info.value).split('\n')
    assert lines[0] == 'checkpoint five.pth does not fit the model: 6 of 10 model weights match it'
    assert lines[1] == ('- 4 weight(s) of another shape (checkpoint vs model): decode_head.conv_seg.weight '
                        '(5, 8, 1, 1) vs (13, 8, 1, 1), decode_head.conv_seg.bias (5,) vs (13,), '
                        'auxiliary_head.conv_seg.weight (5, 8, 1, 1) vs (13, 8, 1, 1), '
                        'auxiliary_head.conv_seg.bias (5,) vs (13,)')
    assert 'config it was trained with' in lines[2] and len(lines) == 3


def test_missing_and_unexpected_keys_are_named():
    weights = Segmentor().state_dict()
    del weights['auxiliary_head.conv_seg.weight'], weights['auxiliary_head.conv_seg.bias']
    weights['neck.conv.weight'] = torch.zeros(4, 8, 1, 1)
    with pytest.raises(CheckpointMismatchError) as info:
        check_checkpoint_fits(Segmentor(), weights, 'partial.pth')
    msg = str(info.value)
    assert ('- 2 weight(s) of the model missing from the checkpoint: auxiliary_head.conv_seg.weight (13, 8, 1, 1), '
            'auxiliary_head.conv_seg.bias (13,)') in msg
    assert '- 1 weight(s) in the checkpoint that the model does not have: neck.conv.weight (4, 8, 1, 1)' in msg
    assert info.value.fit.missing == [('auxiliary_head.conv_seg.weight', (13, 8, 1, 1)),
                                      ('auxiliary_head.conv_seg.bias', (13, ))]


def test_long_lists_are_cut_with_a_count():
    weights = {f'extra.{i}': torch.zeros(1) for i in range(25)}
    weights.update(Segmentor().state_dict())
    msg = str(pytest.raises(CheckpointMismatchError, check_checkpoint_fits, Segmentor(), weights, 'x.pth').value)
    assert '- 25 weight(s) in the checkpoint that the model does not have: extra.0 (1,), ' in msg
    assert 'extra.9 (1,), ... and 15 more' in msg and 'extra.10 ' not in msg


def test_matching_checkpoint_loads_through_wrappers_and_prefixes(tmp_path):
    """'module.' prefixes, 'state_dict' nesting, a TTA wrapper, no BN counter, a stored non-persistent buffer: fits."""
    source = Segmentor()
    weights = {f'module.{k}': v for k, v in _weights(source, 0.5).items() if not k.endswith('num_batches_tracked')}
    weights['module.data_preprocessor.mean'] = torch.zeros(3)  # older files stored it; the config's value is kept
    path = str(tmp_path / 'ok.pth')
    torch.save(dict(state_dict=weights, meta=dict(epoch=3)), path)
    model = TTA(module=Segmentor())
    fit = check_checkpoint_fits(model, path)
    assert fit.ok and (fit.matched, fit.total) == (10, 10)
    ckpt = load_checkpoint_exact(model, path)
    assert ckpt['meta'] == dict(epoch=3)
    assert all(torch.all(v == 0.5) for k, v in model.module.state_dict().items() if 'num_batches' not in k)
    assert torch.equal(model.module.data_preprocessor.mean, torch.tensor([1.0, 2.0, 3.0]))


def test_load_checkpoint_exact_refuses_before_touching_the_model(tmp_path):
    path = str(tmp_path / 'five.pth')
    torch.save(dict(state_dict=_weights(Segmentor(5), 0.5)), path)
    model = Segmentor(13)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match=f'checkpoint {path} does not fit the model'):
        load_checkpoint_exact(model, path)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_lenient_check_logs_one_summary_line(caplog):
    """Fine-tuning from another head (load_from): one warning line says what is skipped."""
    logger = logging.getLogger('anomseg.test_checkpoint_fit')
    weights = Segmentor(5).state_dict()
    del weights['auxiliary_head.conv_seg.bias']
    with caplog.at_level(logging.WARNING, logger=logger.name):
        fit = check_checkpoint_fits(Segmentor(13), weights, 'ade.pth', strict=False, logger=logger)
    assert len(caplog.records) == 1
    assert caplog.records[0].getMessage() == (
        'checkpoint ade.pth: loaded 6 of 10 model weights; 3 of another shape skipped (decode_head.conv_seg.weight '
        '(5, 8, 1, 1) vs (13, 8, 1, 1), decode_head.conv_seg.bias (5,) vs (13,), auxiliary_head.conv_seg.weight '
        '(5, 8, 1, 1) vs (13, 8, 1, 1)); 1 not in the checkpoint keep their initialisation '
        '(auxiliary_head.conv_seg.bias (13,))')
    assert len(fit.mismatched) == 3
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=logger.name):
        assert check_checkpoint_fits(
            Segmentor(13), Segmentor(13).state_dict(), 'same.pth', strict=False, logger=logger).ok
    assert not caplog.records
