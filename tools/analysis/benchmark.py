"""Compare segmentation models side by side: parameters, FLOPs and inference latency.

Every config is built, measured and timed in the same process on the same input, so the ``relative``
column (``reference latency / latency``; > 1 = faster than the reference) is a fair speed ratio::

    python tools/analysis/benchmark.py CONFIG [CONFIG ...] --shape 512 512 --device cpu \
        --warmup 3 --runs 10 [--reference first|slowest] [--out results.json]

What is measured, per config:

- ``params``: parameters of the *inference* model: auxiliary heads are dropped (as mmseg's
  ``get_flops.py`` does), since they are not run at test time.
- ``FLOPs``: mmengine's ``get_model_complexity_info`` on the ``tensor``-mode forward (backbone + decode
  head, no final resize); it counts one fused multiply-add as one FLOP (fvcore convention) and skips
  operators it has no rule for (e.g. interpolation).
- ``latency``: median wall time of ``--runs`` forward passes after ``--warmup`` untimed ones, under
  ``torch.inference_mode()`` with ``model.eval()``; CUDA work is synchronised before each clock read.
  All models are built first and then timed round-robin (run r of every model before run r + 1 of any),
  so a change of machine load during the benchmark hits every config alike.
  ``--mode predict`` (default) times the full ``model(inputs, data_samples, mode='predict')`` call of the
  config's ``test_cfg`` (resize to the input size, argmax); ``--mode tensor`` only the raw forward.
  Normalisation by the data preprocessor happens once, outside the timed region.

Weights are random (no checkpoint is loaded): the numbers depend on the architecture only.
"""
import argparse
import json
import logging
import os
import os.path as osp
import statistics
import sys
import time
from typing import Dict, List, Optional, Sequence

import torch
from mmengine import Config, DictAction
from mmengine.analysis import get_model_complexity_info
from mmengine.logging import MMLogger
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from prettytable import PrettyTable

try:  # registers anomseg's components, so configs that omit custom_imports still build
    import anomseg_plugins  # noqa: F401
except ImportError:  # pragma: no cover - the tool also works for plain mmseg configs
    pass


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Parameters, FLOPs and latency of segmentation configs, measured side by side')
    parser.add_argument('configs', nargs='+', metavar='CONFIG', help='config files to compare')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=[512, 512],
        metavar='N',
        help='input size "H W" (or one number for a square); default 512 512')
    parser.add_argument('--device', default='cpu', help='torch device, e.g. cpu, cuda, cuda:1 (default cpu)')
    parser.add_argument('--warmup', type=int, default=3, help='untimed runs before timing (default 3)')
    parser.add_argument('--runs', type=int, default=10, help='timed runs; the median is reported (default 10)')
    parser.add_argument(
        '--mode',
        choices=['predict', 'tensor'],
        default='predict',
        help="what is timed: the full 'predict' call (default) or the raw 'tensor' forward")
    parser.add_argument(
        '--reference',
        choices=['first', 'slowest'],
        default='first',
        help="config the 'relative' column compares with (default: the first one)")
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    parser.add_argument('--no-flops', action='store_true', help='skip the FLOP count (it traces the model)')
    parser.add_argument('--out', default=None, help='also write the results to this JSON file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='key=value overrides applied to every config, e.g. model.decode_head.num_classes=21')
    args = parser.parse_args(argv)
    if len(args.shape) == 1:
        args.shape = [args.shape[0], args.shape[0]]
    if len(args.shape) != 2 or min(args.shape) <= 0:
        parser.error(f'--shape takes "H W" or one size, got {args.shape}')
    if args.runs < 1 or args.warmup < 0:
        parser.error(f'--runs must be >= 1 and --warmup >= 0, got --runs {args.runs} --warmup {args.warmup}')
    for path in args.configs:
        if not osp.isfile(path):
            parser.error(f'config file {path} does not exist')
    return args


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def load_average() -> Optional[float]:
    """1-minute load average of the machine (None where the OS does not report it)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def build_model(cfg: Config, device: torch.device) -> torch.nn.Module:
    """Build ``cfg.model`` for inference: random weights, SyncBN -> BN, no auxiliary head, eval mode."""
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model_cfg = cfg.model
    model_cfg.pretrained = None
    model_cfg.train_cfg = None
    model = MODELS.build(model_cfg)
    if getattr(model, 'auxiliary_head', None) is not None:
        model.auxiliary_head = None
    model = revert_sync_batchnorm(model)
    return model.to(device).eval()


def make_batch(model: torch.nn.Module, shape: Sequence[int], device: torch.device) -> dict:
    """A random ``(1, 3, H, W)`` image passed through the model's own data preprocessor."""
    h, w = shape
    img = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    meta = dict(ori_shape=(h, w), img_shape=(h, w), pad_shape=(h, w))
    with torch.no_grad():
        batch = model.data_preprocessor(
            dict(inputs=[img.to(device)], data_samples=[SegDataSample(metainfo=meta)]), False)
    if isinstance(batch['inputs'], (list, tuple)):  # a model without SegDataPreProcessor
        batch['inputs'] = torch.stack(batch['inputs']).float()
    return batch


def count_flops(model: torch.nn.Module, inputs: torch.Tensor) -> int:
    """FLOPs (multiply-adds) of the tensor-mode forward, mmengine's analyzer warnings silenced."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with torch.no_grad():
            info = get_model_complexity_info(model, inputs=(inputs, ), show_table=False, show_arch=False)
    finally:
        logger.setLevel(level)
    return int(info['flops'])


class Candidate:
    """One config ready to be timed: its inference model, input batch and static measurements."""

    def __init__(self, path: str, args: argparse.Namespace, device: torch.device) -> None:
        cfg = Config.fromfile(path)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        if 'model' not in cfg:
            raise KeyError(f'{path} has no `model` dict; benchmark.py needs a model config')
        self.path = path
        self.name = osp.splitext(osp.basename(path))[0]
        self.model = build_model(cfg, device)
        self.params = sum(p.numel() for p in self.model.parameters())
        self.batch = make_batch(self.model, args.shape, device)
        self.flops: Optional[int] = None
        if not args.no_flops:
            try:
                self.flops = count_flops(self.model, self.batch['inputs'])
            except Exception as exc:  # tracing can fail for exotic models; keep the latency numbers
                _log(f'  {self.name}: FLOP count failed ({type(exc).__name__}: {exc}); reported as n/a')
        self.mode = args.mode
        self.times: List[float] = []

    def step(self) -> None:
        if self.mode == 'predict':
            self.model(self.batch['inputs'], self.batch['data_samples'], mode='predict')
        else:
            self.model(self.batch['inputs'], mode='tensor')

    def timed_step(self, device: torch.device) -> float:
        """Wall time of one forward pass in milliseconds (CUDA synchronised before each clock read)."""
        _sync(device)
        start = time.perf_counter()
        self.step()
        _sync(device)
        self.times.append((time.perf_counter() - start) * 1000.0)
        return self.times[-1]

    def result(self) -> Dict:
        t = self.times
        return dict(
            config=self.path,
            name=self.name,
            params=self.params,
            flops=self.flops,
            latency_ms=dict(median=statistics.median(t), min=min(t), max=max(t), runs=list(t)))


def run_benchmark(candidates: List[Candidate], warmup: int, runs: int, device: torch.device) -> None:
    """Warm every model up, then time them round-robin (run r of every model before run r + 1 of any),
    so that a change of machine load during the benchmark affects all configs alike."""
    with torch.inference_mode():
        for c in candidates:
            for i in range(warmup):
                c.step()
            _log(f'  {c.name}: {warmup} warm-up run(s) done')
        for r in range(runs):
            line = ', '.join(f'{c.name} {c.timed_step(device):.1f} ms' for c in candidates)
            _log(f'  run {r + 1}/{runs}: {line}')


def add_relative(results: List[Dict], reference: str) -> int:
    """Set ``relative = reference median latency / median latency``; returns the reference's index."""
    medians = [r['latency_ms']['median'] for r in results]
    ref = 0 if reference == 'first' else max(range(len(results)), key=medians.__getitem__)
    for r in results:
        r['relative'] = medians[ref] / r['latency_ms']['median']
    return ref


def format_table(results: List[Dict], ref: int) -> PrettyTable:
    table = PrettyTable()
    table.field_names = ['config', 'params (M)', 'FLOPs (G)', 'latency (ms)', 'min-max (ms)', 'relative']
    names = [r['name'] for r in results]
    for r in results:
        lat = r['latency_ms']
        table.add_row([
            r['config'] if names.count(r['name']) > 1 else r['name'],
            f"{r['params'] / 1e6:.3f}",
            'n/a' if r['flops'] is None else f"{r['flops'] / 1e9:.3g}",
            f"{lat['median']:.1f}",
            f"{lat['min']:.1f}-{lat['max']:.1f}",
            f"{r['relative']:.2f}x" + (' (ref)' if r is results[ref] else ''),
        ])
    table.align['config'] = 'l'
    return table


def main(argv: Optional[Sequence[str]] = None) -> List[Dict]:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit(f'--device {args.device}: CUDA is not available here; use --device cpu')
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    candidates = []
    for i, path in enumerate(args.configs):
        _log(f'[{i + 1}/{len(args.configs)}] building {path}')
        candidates.append(Candidate(path, args, device))
    _log(f'timing {len(candidates)} model(s): {args.warmup} warm-up + {args.runs} timed runs each, round-robin')
    load_before = load_average()
    run_benchmark(candidates, args.warmup, args.runs, device)
    load_after = load_average()
    results = [c.result() for c in candidates]
    ref = add_relative(results, args.reference)

    h, w = args.shape
    header = (f'input 1x3x{h}x{w}, device {args.device}' +
              (f' ({torch.get_num_threads()} threads)' if device.type == 'cpu' else '') +
              f', mode {args.mode}, median of {args.runs} runs after {args.warmup} warm-up; '
              f'relative = latency of {results[ref]["name"]} / latency (> 1 = faster)')
    busy = [x for x in (load_before, load_after) if x is not None and x > (os.cpu_count() or 1)]
    if busy and device.type == 'cpu':
        header += (f'\nWARNING: machine busy (load average {max(busy):.1f} on {os.cpu_count()} cores): absolute '
                   'times are inflated and noisy; ratios are fairer (round-robin) but an idle machine or '
                   '--threads 1 gives steadier numbers')
    print(header)
    print(format_table(results, ref).get_string())
    if args.out:
        meta = dict(
            shape=[h, w],
            device=args.device,
            threads=torch.get_num_threads(),
            mode=args.mode,
            warmup=args.warmup,
            runs=args.runs,
            reference=results[ref]['config'],
            torch=torch.__version__,
            cpu_count=os.cpu_count(),
            load_average=dict(before=load_before, after=load_after))
        with open(args.out, 'w') as f:
            json.dump(dict(meta=meta, results=results), f, indent=2)
        _log(f'results written to {args.out}')
    return results


if __name__ == '__main__':
    main()
