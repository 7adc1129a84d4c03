#!/usr/bin/env bash
# Mutation testing of the core (mutmut 3, configured in setup.cfg [mutmut]): `make mutation`. Not part of `make test`.
#
#   bash tools/mutation/run_mutation.sh [FOLDER ...]     FOLDER: evaluation | scorers | transforms (default: all three)
#   bash tools/mutation/run_mutation.sh --score          only print the scores of what has been run
#   MUTATION_SAMPLE=N bash tools/mutation/run_mutation.sh FOLDER   run a uniform random sample of N of the folder's
#                                                        mutants (tools/mutation/sample.py; seed MUTATION_SEED, 0)
#
# Each folder is run on its own (`mutmut run "anomseg_plugins.<folder>*"`, which re-runs every mutant of that folder)
# and timed; then the score per folder is printed: killed / (total - equivalent), the equivalent mutants being the
# ids listed in tools/mutation/EQUIVALENT.md. mutmut copies the tree into ./mutants (git-ignored) and maps every
# test of the selection in setup.cfg to the functions it calls, so a mutant runs only the tests that reach it.
# Environment: PY (default .venv/bin/python), MAX_CHILDREN (mutmut workers, default: the CPU count).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
MUTMUT_VERSION=3.8.1  # pinned: mutant ids and verdict codes (tools/mutation/EQUIVALENT.md, score.py) are mutmut 3's
"$PY" -c "import mutmut, sys; sys.exit(mutmut.__version__ != '$MUTMUT_VERSION')" 2>/dev/null || {
  echo "installing mutmut==$MUTMUT_VERSION into $(dirname "$PY")/.. (mutation testing only; not a runtime dependency)"
  "$PY" -m pip install -q "mutmut==$MUTMUT_VERSION"; }
# One torch / BLAS thread per mutmut worker: the workers already fill the cores (MAX_CHILDREN, default the CPU count).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
declare -A PATTERN=([evaluation]='anomseg_plugins.evaluation*' [scorers]='anomseg_plugins.scorers*'
                    [transforms]='anomseg_plugins.datasets.transforms*')
folders=("$@")
if [ ${#folders[@]} -eq 0 ]; then folders=(transforms scorers evaluation); fi
if [ "${folders[0]}" != "--score" ]; then
  for f in "${folders[@]}"; do
    [ -n "${PATTERN[$f]:-}" ] || { echo "unknown folder $f (evaluation | scorers | transforms)" >&2; exit 2; }
    mkdir -p mutants
    echo "== mutmut run '${PATTERN[$f]}'"
    start=$(date +%s)
    targets=("${PATTERN[$f]}")
    if [ -n "${MUTATION_SAMPLE:-}" ]; then
      # the mutants must exist to be sampled; a run of one mutant generates them all
      if ! "$PY" -c "import sys; sys.path.insert(0, 'tools/mutation'); import score; sys.exit(not score.mutant_codes('$f'))"; then
        "$PY" -m mutmut run ${MAX_CHILDREN:+--max-children "$MAX_CHILDREN"} "${PATTERN[$f]%\*}*__mutmut_1" \
          > "mutants/run_$f.log" 2>&1 || true
      fi
      mapfile -t targets < <("$PY" tools/mutation/sample.py "$f" "$MUTATION_SAMPLE" --seed "${MUTATION_SEED:-0}")
      echo "   sample of $MUTATION_SAMPLE mutants (seed ${MUTATION_SEED:-0}): ${#targets[@]} not run yet"
      [ ${#targets[@]} -gt 0 ] || continue
    fi
    "$PY" -m mutmut run ${MAX_CHILDREN:+--max-children "$MAX_CHILDREN"} "${targets[@]}" > "mutants/run_$f.log" 2>&1 \
      || { echo "mutmut failed, see mutants/run_$f.log" >&2; tail -20 "mutants/run_$f.log" >&2; exit 1; }
    echo "   $f: $(( $(date +%s) - start )) s wall"
  done
fi
"$PY" tools/mutation/score.py
