"""Mutation score per folder from mutmut's result files (mutants/**/*.meta) and tools/mutation/EQUIVALENT.md.

Score = killed / (total - equivalent); 'no tests' and surviving mutants count as not killed, timeouts as killed
(mutmut's convention: a mutant that hangs the tests is detected). Prints the survivors that are not listed as
equivalent, i.e. the work left. Exit status 1 when a folder that was run scores below --target (default 90%).
"""
import argparse
import glob
import json
import os.path as osp
import re
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FOLDERS = {
    'evaluation': 'anomseg_plugins/evaluation/',
    'scorers': 'anomseg_plugins/scorers/',
    'transforms': 'anomseg_plugins/datasets/transforms/'
}
KILLED = {1, 3, 24, -24, 152, 255, 36, 37}  # killed, pytest internal error, timeouts, type check


def equivalent_ids(path):
    ids = set()
    if osp.isfile(path):
        for line in open(path, encoding='utf-8'):
            m = re.match(r'^\s*[-|]?\s*`?(anomseg_plugins\.[^`\s|]+__mutmut_\d+)`?', line)
            if m:
                ids.add(m.group(1))
    return ids


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--target', type=float, default=90.0)
    parser.add_argument('--list', action='store_true', help='print every survivor not listed as equivalent')
    args = parser.parse_args(argv)
    equivalent = equivalent_ids(osp.join(ROOT, 'tools', 'mutation', 'EQUIVALENT.md'))
    status = 0
    for folder, prefix in FOLDERS.items():
        codes = {}
        for meta in glob.glob(osp.join(ROOT, 'mutants', prefix, '**', '*.py.meta'), recursive=True):
            codes.update(json.load(open(meta))['exit_code_by_key'])
        if not codes:
            print(f'{folder:11s} not generated')
            continue
        checked = {k: v for k, v in codes.items() if v is not None}
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
        if args.list:
            for k in alive:
                print(f'    {k}: exit {checked[k]}')
        if len(checked) == len(codes) and score < args.target:
            status = 1
    return status


if __name__ == '__main__':
    sys.exit(main())
