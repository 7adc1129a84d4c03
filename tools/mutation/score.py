"""Mutation score per folder from mutmut's result files (mutants/**/*.meta) and tools/mutation/EQUIVALENT.md.

Score = killed / (total - equivalent); 'no tests' and surviving mutants count as not killed, timeouts as killed
(mutmut's convention: a mutant that hangs the tests is detected), and so do segfaults (a crash is a detection too).
Prints the survivors that are not listed as equivalent, i.e. the work left. Exit status 1 when a folder that was run
scores below --target (default 90%).
"""
import argparse
import glob
import json
import math
import os.path as osp
import re
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FOLDERS = {
    'evaluation': 'anomseg_plugins/evaluation/',
    'scorers': 'anomseg_plugins/scorers/',
    'transforms': 'anomseg_plugins/datasets/transforms/'
}
# killed, pytest internal error, timeouts, type check, and a segfault (-11: the mutant crashed the test process, which
# is a detection like a timeout; -9, SIGKILL, is left out: an out-of-memory kill from outside says nothing)
KILLED = {1, 3, 24, -24, 152, 255, 36, 37, -11}


def equivalent_ids(path):
    ids = set()
    if osp.isfile(path):
        for line in open(path, encoding='utf-8'):
            m = re.match(r'^\s*[-|]?\s*`?(anomseg_plugins\.[^`\s|]+__mutmut_\d+)`?', line)
            if m:
                ids.add(m.group(1))
    return ids


def mutant_codes(folder: str) -> dict:
    """Exit code (None = not run yet) of every generated mutant of ``folder``, from mutmut's ``*.py.meta`` files."""
    codes = {}
    for meta in glob.glob(osp.join(ROOT, 'mutants', FOLDERS[folder], '**', '*.py.meta'), recursive=True):
        codes.update(json.load(open(meta))['exit_code_by_key'])
    return codes


def read_sample(folder: str):
    """The ids of ``mutants/sample_<folder>.txt`` (``tools/mutation/sample.py``), or None when there is none."""
    path = osp.join(ROOT, 'mutants', f'sample_{folder}.txt')
    if not osp.isfile(path):
        return None
    lines = open(path, encoding='utf-8').read().split('\n')
    return {line for line in lines[1:] if line}


def wilson(k: int, n: int, z: float = 1.96) -> tuple:
    """95 % Wilson score interval (percent) of a proportion k / n."""
    if n == 0:
        return 0.0, 100.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--target', type=float, default=90.0)
    parser.add_argument('--list', action='store_true', help='print every survivor not listed as equivalent')
    args = parser.parse_args(argv)
    equivalent = equivalent_ids(osp.join(ROOT, 'tools', 'mutation', 'EQUIVALENT.md'))
    status = 0
    for folder in FOLDERS:
        codes = mutant_codes(folder)
        if not codes:
            print(f'{folder:11s} not generated')
            continue
        checked = {k: v for k, v in codes.items() if v is not None}
        sample = read_sample(folder)
        full = len(checked) == len(codes)
        if sample is not None and not full:  # score the sample only: the rest ran in mutmut's fast-first order
            checked = {k: v for k, v in checked.items() if k in sample}
        if not checked:
            print(f'{folder:11s} {len(codes)} mutants, not run')
            continue
        eq = {k for k in checked if k in equivalent}
        killed = {k for k, v in checked.items() if v in KILLED}
        alive = sorted(k for k in checked if k not in killed and k not in eq)
        scored = len(checked) - len(eq)
        score = 100.0 * len(killed - eq) / max(scored, 1)
        print(f'{folder:11s} killed {len(killed - eq)} / {scored} non-equivalent ({score:.1f}%); '
              f'{len(eq)} equivalent; {len(alive)} alive; {len(checked)} of {len(codes)} mutants run')
        if sample is not None and not full:
            low, high = wilson(len(killed - eq), scored)
            print(f'{"":11s} random sample ({len(checked)} of its {len(sample)} run): 95% interval of the folder\'s '
                  f'score {low:.1f}..{high:.1f}% (only while no test was written against this sample\'s survivors; '
                  f'afterwards draw another sample, MUTATION_SEED)')
        if args.list:
            for k in alive:
                print(f'    {k}: exit {checked[k]}')
        if full and score < args.target:
            status = 1
    return status


if __name__ == '__main__':
    sys.exit(main())
