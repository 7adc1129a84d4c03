"""Draw a uniform random sample of one folder's mutants (``make mutation MUTATION_SAMPLE=N``).

    python tools/mutation/sample.py FOLDER N [--seed S]

Writes the sample to ``mutants/sample_<FOLDER>.txt`` (one mutant id per line, sorted) and prints the ids that have no
result yet, for ``mutmut run``. The mutants must have been generated (any ``mutmut run`` does that first). A sample's
score (``tools/mutation/score.py``) is an unbiased estimate of the folder's score, reported with its 95 % Wilson
interval: the way to measure a folder whose full run takes hours on a small machine (evaluation/: ~4400 mutants at
~40 per minute on 2 cores). The same seed draws the same sample, so a later run completes it instead of redrawing.
"""
import argparse
import json
import os.path as osp
import random

from score import FOLDERS, ROOT, mutant_codes


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('folder', choices=sorted(FOLDERS))
    parser.add_argument('size', type=int)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    codes = mutant_codes(args.folder)
    if not codes:
        raise SystemExit(f'no mutants of {args.folder} under {osp.join(ROOT, "mutants")}: run mutmut on it once first')
    names = sorted(codes)
    sample = sorted(random.Random(args.seed).sample(names, min(args.size, len(names))))
    with open(osp.join(ROOT, 'mutants', f'sample_{args.folder}.txt'), 'w', encoding='utf-8') as f:
        f.write(json.dumps(dict(seed=args.seed, population=len(names))) + '\n')
        f.writelines(name + '\n' for name in sample)
    print('\n'.join(name for name in sample if codes[name] is None))


if __name__ == '__main__':
    main()
