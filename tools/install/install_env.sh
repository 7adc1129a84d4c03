#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment with the compiled OpenMMLab stack.
#
# Why a script: mmsegmentation 1.2.2 imports `mmcv.ops` at import time, so mmcv 2.1.0 must be
# compiled from its PyPI sdist with MMCV_WITH_OPS=1. Its setup.py hard-codes `-std=c++17` while
# torch 2.14 headers need C++20, it imports `pkg_resources` (setuptools<70) and it must see the
# installed torch (`--no-build-isolation`). The built wheel is cached outside the repo, keyed by
# the mmcv / torch / python versions and the ops flavour, so a re-run installs in seconds.
#
# Environment knobs:
#   VENV            where the environment lives (default: .venv in the repo root)
#   PYTHON          interpreter used to create it (default: python3)
#   ANOMSEG_CACHE   wheel cache (default: ${XDG_CACHE_HOME:-~/.cache}/anomseg/wheels)
#   MMCV_CUDA       1 = build CUDA ops, 0 = CPU ops only; default: CUDA when nvcc is on PATH
#                   *and* torch sees a GPU (a CUDA toolkit without a GPU, as on CI, builds CPU ops).
#   MAX_JOBS        parallel compile jobs (default: number of cores)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
CACHE="${ANOMSEG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/anomseg/wheels}"
# Every path below is made absolute here, relative to the caller's directory: the build step `cd`s into
# the unpacked mmcv source, and a relative VENV (the Makefile's `.venv`) would then point nowhere.
abspath() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
VENV="$(abspath "$VENV")"
CACHE="$(abspath "$CACHE")"
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0

log() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment at $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)
# pip, minus the noise of local find-links folders that do not hold a package.
pip_() { "${PIP[@]}" "$@" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }; return "${PIPESTATUS[0]}"; }

log "torch $TORCH_VERSION + torchvision $TORCHVISION_VERSION"
pip_ install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"

if "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
  log "mmcv $MMCV_VERSION with ops already installed"
else
  if [ -z "${MMCV_CUDA:-}" ]; then
    MMCV_CUDA=0
    if command -v nvcc >/dev/null 2>&1 && "$PY" -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
      MMCV_CUDA=1
    fi
  fi
  PYTAG=$("$PY" -c "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')")
  FLAVOUR=cpu
  [ "$MMCV_CUDA" = 1 ] && FLAVOUR="cu$("$PY" -c "import torch; print((torch.version.cuda or 'none').replace('.', ''))")"
  KEY="mmcv-$MMCV_VERSION-torch$TORCH_VERSION-$PYTAG-$FLAVOUR"
  WHEEL_DIR="$CACHE/$KEY"
  WHEEL=$(ls "$WHEEL_DIR"/mmcv-*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$WHEEL" ]; then
    log "building mmcv $MMCV_VERSION with ops ($FLAVOUR); this takes 12-17 min on 2 cores, once"
    # Build tools: mmcv's setup.py needs pkg_resources as setuptools<70 has it; ninja builds in parallel.
    # (requirements.txt moves setuptools back to what torch asks for afterwards.)
    pip_ install -q "setuptools<70" wheel ninja
    BUILD=$(mktemp -d)
    trap 'rm -rf "$BUILD"' EXIT
    pip_ download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$BUILD"
    tar -xzf "$BUILD"/mmcv-"$MMCV_VERSION".tar.gz -C "$BUILD"
    SRC="$BUILD/mmcv-$MMCV_VERSION"
    # torch >= 2.10 headers need C++20; mmcv's setup.py hard-codes C++17.
    CXXSTD=$("$PY" -c "import torch; v=tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2]); print('c++20' if v >= (2, 10) else 'c++17')")
    sed -i "s/-std=c++17/-std=$CXXSTD/g" "$SRC/setup.py"
    grep -q -- "-std=$CXXSTD" "$SRC/setup.py" || { echo "could not raise the C++ standard in $SRC/setup.py" >&2; exit 1; }
    mkdir -p "$WHEEL_DIR"
    ( cd "$SRC" && MMCV_WITH_OPS=1 FORCE_CUDA="$MMCV_CUDA" MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
        pip_ wheel --no-build-isolation --no-deps -w "$WHEEL_DIR.tmp" . )
    mv "$WHEEL_DIR.tmp"/mmcv-*.whl "$WHEEL_DIR"/ && rmdir "$WHEEL_DIR.tmp"
    WHEEL=$(ls "$WHEEL_DIR"/mmcv-*.whl | head -n 1)
    log "cached $WHEEL"
  else
    log "using cached $WHEEL"
  fi
  pip_ install -q --no-deps "$WHEEL"
fi

log "pinned requirements"
pip_ install -q -r "$ROOT/requirements.txt"
log "anomseg_plugins (editable)"
pip_ install -q --no-deps --no-build-isolation -e "$ROOT"
"$PY" -c "import mmcv.ops, mmseg, anomseg_plugins; print('environment ready: mmcv', mmcv.__version__, 'mmseg', mmseg.__version__)"
