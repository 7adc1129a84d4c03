"""tools/analysis/benchmark.py on tiny configs written under tmp_path."""
import importlib.util
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

TINY = """
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=255),
    backbone=dict(type='MobileNetV2', widen_factor={widen}, strides=(1, 2, 2, 1, 1, 1, 1),
                  dilations=(1, 1, 1, 2, 2, 4, 4), out_indices=(2, 6), norm_cfg=norm_cfg),
    decode_head=dict(type='FCNHead', in_channels={c_high}, in_index=1, channels={channels}, num_convs=1,
                     num_classes=5, norm_cfg=norm_cfg),
    auxiliary_head=dict(type='FCNHead', in_channels={c_mid}, in_index=0, channels=8, num_convs=1,
                        num_classes=5, norm_cfg=norm_cfg),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
"""
COLUMNS = ['config', 'params (M)', 'FLOPs (G)', 'latency (ms)', 'min-max (ms)', 'relative']


@pytest.fixture(scope='module')
def benchmark(repo_root):
    path = osp.join(repo_root, 'tools', 'analysis', 'benchmark.py')
    spec = importlib.util.spec_from_file_location('anomseg_benchmark_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def configs(tmp_path):
    small = tmp_path / 'tiny_small.py'
    small.write_text(TINY.format(widen=0.25, c_high=80, c_mid=8, channels=8))
    large = tmp_path / 'tiny_large.py'
    large.write_text(TINY.format(widen=0.5, c_high=160, c_mid=16, channels=32))
    return str(small), str(large)


def inference_params(config_path: str) -> int:
    """Parameters of the config's model without its auxiliary head, counted independently."""
    init_default_scope('mmseg')
    model = MODELS.build(Config.fromfile(config_path).model)
    return sum(p.numel() for n, p in model.named_parameters() if not n.startswith('auxiliary_head.'))


def test_table_and_json(benchmark, configs, tmp_path, capsys):
    out = tmp_path / 'bench.json'
    results = benchmark.main([*configs, '--shape', '64', '64', '--warmup', '1', '--runs', '3', '--out', str(out)])
    stdout = capsys.readouterr().out
    print(stdout)
    assert 'input 1x3x64x64, device cpu' in stdout
    header = next(line for line in stdout.splitlines() if 'params (M)' in line)
    assert [c.strip() for c in header.strip('|').split('|')] == COLUMNS
    assert 'tiny_small' in stdout and 'tiny_large' in stdout and '1.00x (ref)' in stdout

    saved = json.loads(out.read_text())
    assert saved['meta']['shape'] == [64, 64] and saved['meta']['runs'] == 3
    assert [r['config'] for r in saved['results']] == list(configs)
    for path, row in zip(configs, saved['results']):
        assert row['params'] == inference_params(path)
        assert row['flops'] > 0
        assert len(row['latency_ms']['runs']) == 3
        assert row['latency_ms']['min'] <= row['latency_ms']['median'] <= row['latency_ms']['max']
    small, large = saved['results']
    assert small['relative'] == 1.0
    assert large['relative'] == pytest.approx(small['latency_ms']['median'] / large['latency_ms']['median'])
    assert large['params'] > small['params'] and large['flops'] > small['flops']
    assert results[1]['params'] == large['params']


def test_flops_scale_with_input_area(benchmark, configs, capsys):
    """A conv-only network at twice the side length costs four times the multiply-adds."""
    small = configs[0]
    at_32 = benchmark.main([small, '--shape', '32', '--warmup', '0', '--runs', '1'])[0]
    at_64 = benchmark.main([small, '--shape', '64', '--warmup', '0', '--runs', '1', '--mode', 'tensor'])[0]
    assert at_64['flops'] == 4 * at_32['flops']
    assert at_64['params'] == at_32['params']


def test_reference_slowest(benchmark, configs, capsys):
    results = benchmark.main(
        [*configs, '--shape', '32', '48', '--warmup', '0', '--runs', '2', '--reference', 'slowest', '--no-flops'])
    slowest = max(results, key=lambda r: r['latency_ms']['median'])
    assert slowest['relative'] == 1.0
    assert all(r['relative'] >= 1.0 for r in results)
    assert all(r['flops'] is None for r in results)
    assert 'n/a' in capsys.readouterr().out


def test_bad_arguments_are_named(benchmark, configs, capsys):
    with pytest.raises(SystemExit):
        benchmark.main(['does/not/exist.py'])
    assert 'config file does/not/exist.py does not exist' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        benchmark.main([configs[0], '--shape', '1', '2', '3'])
    assert '--shape takes' in capsys.readouterr().err
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match='CUDA is not available'):
            benchmark.main([configs[0], '--device', 'cuda'])


@pytest.mark.slow  # runs the tool in a subprocess
def test_command_line(repo_root, configs, tmp_path):
    out = tmp_path / 'cli.json'
    proc = subprocess.run([
        sys.executable,
        osp.join('tools', 'analysis', 'benchmark.py'), configs[0], '--shape', '32', '--warmup', '0', '--runs', '1',
        '--out',
        str(out)
    ],
                          cwd=repo_root,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert 'tiny_small' in proc.stdout and 'relative' in proc.stdout
    assert '[1/1]' in proc.stderr  # progress goes to stderr
    assert json.loads(out.read_text())['results'][0]['params'] == inference_params(configs[0])
