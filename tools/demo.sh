#!/usr/bin/env bash
# The demo job (make demo): train the tiny demo model on the generated dataset, then test it once with
# mIoU + every anomaly scorer from one forward pass, and leave a report in the work dir.
# Usage: tools/demo.sh PYTHON TRAIN_CONFIG ANOMALY_CONFIG WORK_DIR
set -euo pipefail
PY=$1; CONFIG=$2; ANOMALY_CONFIG=$3; WORK_DIR=$4
start=$(date +%s)
echo "[demo] training $CONFIG -> $WORK_DIR"
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR"
CKPT=$(cat "$WORK_DIR/last_checkpoint")
echo "[demo] testing $CKPT with $ANOMALY_CONFIG"
"$PY" tools/test.py "$ANOMALY_CONFIG" "$CKPT" --work-dir "$WORK_DIR/test"
echo "[demo] done in $(( $(date +%s) - start )) s; results in $WORK_DIR/test/test_results.json"
