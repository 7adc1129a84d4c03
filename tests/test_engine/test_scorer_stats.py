"""The fitted scorer statistics file: its key, comparing keys, reading, saving and loading entries."""
import os
import time

import pytest
import torch

from anomseg_plugins.engine.scorer_stats import (MODEL_KEY_PARTS, STATS_FILE, STATS_KEY_PARTS, find_stats_file,
                                                 key_changes, load_matching_stats, read_stats, save_stats)
from anomseg_plugins.scorers import SML, MaxLogit

META = dict(
    format=2,
    model='abc',
    test_cfg=dict(mode='whole'),
    data_preprocessor=None,
    model_settings={},
    tta=None,
    fit_data='Toy(len=4)',
    fit_pipeline='Resize')


def fitted_sml(name='SML', seed=0):
    g = torch.Generator().manual_seed(seed)
    sml = SML(name=name)
    sml.fit_begin()
    sml.fit_step(torch.randn(2, 3, 8, 8, generator=g), None, torch.randint(0, 3, (2, 8, 8), generator=g))
    sml.fit_end()
    return sml


def test_key_changes_name_the_parts_and_skip_missing_fit_data():
    assert set(MODEL_KEY_PARTS) < set(STATS_KEY_PARTS)
    assert key_changes(META, dict(META)) == []
    changed = key_changes(META, dict(META, test_cfg=dict(mode='slide'), fit_data=None))
    assert changed == [('test_cfg', "mode: 'whole' -> 'slide'")]  # no fit data in this run: not compared
    assert key_changes(dict(META, tta='LogitSegTTAModel'), META) == [('tta', "'LogitSegTTAModel' -> None")]
    assert key_changes(dict(format=1), META, ['format']) == [('format', '1 -> 2')]


def test_save_read_and_load_matching_entries(tmp_path):
    path = str(tmp_path / STATS_FILE)
    sml = fitted_sml()
    save_stats(path, META, [MaxLogit(), sml])
    meta, entries = read_stats(path)
    assert meta == META and set(entries) == {'SML'}  # only scorers that need fitting are stored
    assert entries['SML']['signature'] == sml.fit_signature()

    fresh = SML()
    assert load_matching_stats(path, [fresh], META) == ['SML']
    torch.testing.assert_close(fresh.mu, sml.mu)
    assert load_matching_stats(path, [SML()], dict(META, model='other')) == []
    assert load_matching_stats(path, [SML(min_pixels=5)], META) == []  # another fit signature
    assert load_matching_stats(None, [SML()], META) == []

    # another scorer fitted for the same key is added; a file of another key is replaced
    save_stats(path, META, [fitted_sml('SML5', seed=1)])
    assert set(read_stats(path)[1]) == {'SML', 'SML5'}
    save_stats(path, dict(META, model='other'), [fitted_sml('SML5', seed=1)])
    assert set(read_stats(path)[1]) == {'SML5'}


def test_foreign_files_are_named(tmp_path):
    path = str(tmp_path / 'foreign.pth')
    torch.save(dict(state_dict={}), path)
    with pytest.raises(ValueError, match=r'foreign.pth is not a scorer statistics file .*delete it'):
        read_stats(path)
    assert load_matching_stats(path, [SML()], META) == []  # refit, and overwrite it
    save_stats(path, META, [fitted_sml()])
    assert set(read_stats(path)[1]) == {'SML'}


def test_find_stats_file_next_to_the_checkpoint_or_in_a_run_folder(tmp_path):
    ckpt = tmp_path / 'epoch_1.pth'
    assert find_stats_file(str(ckpt)) is None
    (tmp_path / 'run_a').mkdir()
    older = tmp_path / 'run_a' / STATS_FILE
    older.write_bytes(b'x')
    assert find_stats_file(str(ckpt)) == str(older)
    newer = tmp_path / STATS_FILE
    newer.write_bytes(b'x')
    later = time.time() + 10
    os.utime(newer, (later, later))
    assert find_stats_file(str(ckpt)) == str(newer)
