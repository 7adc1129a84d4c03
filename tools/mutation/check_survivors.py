"""Re-check listed mutants against given tests, in one process (the quick loop while writing killing tests).

    cd mutants && ../.venv/bin/python ../tools/mutation/check_survivors.py TESTS -- MUTANT [MUTANT ...]

mutmut 3's trampolines read MUTANT_UNDER_TEST at every call, so one pytest import serves every mutant. Run from
``mutants/`` after copying the new test files into ``mutants/tests/``. Prints 'killed' / 'survived' per mutant; the
authoritative numbers stay those of ``mutmut run``.
"""
import os
import sys

import pytest


def main(argv):
    split = argv.index('--')
    tests, mutants = argv[:split], argv[split + 1:]
    sys.path.insert(0, os.getcwd())
    for name in mutants:
        os.environ['MUTANT_UNDER_TEST'] = name
        rc = pytest.main(['-q', '-x', '-p', 'no:cacheprovider', '--no-header', '-W', 'ignore'] + tests)
        print(f'@@ {"killed" if rc != 0 else "survived"} {name}', flush=True)


if __name__ == '__main__':
    main(sys.argv[1:])
