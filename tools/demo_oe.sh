#!/usr/bin/env bash
# The outlier-exposure demo (make demo-oe): fine-tune the demo model from its closed-set checkpoint (make demo) with
# pasted outliers and the OE losses, test the fine-tuned model with mIoU + every anomaly scorer from one forward pass,
# and put the closed-set and the fine-tuned model side by side (tools/analysis/compare.py).
# Usage: tools/demo_oe.sh PYTHON BASE_WORK_DIR OE_CONFIG OE_ANOMALY_CONFIG OE_WORK_DIR [BASE_ANOMALY_CONFIG]
#   BASE_WORK_DIR: the closed-set demo run (its last_checkpoint; its test/test_results.json when present)
set -euo pipefail
PY=$1; BASE_WORK_DIR=$2; CONFIG=$3; ANOMALY_CONFIG=$4; WORK_DIR=$5
BASE_ANOMALY_CONFIG=${6:-configs/demo/deeplab_r18_tiny_demo_anomaly.py}
start=$(date +%s)
if [ ! -f "$BASE_WORK_DIR/last_checkpoint" ]; then
    echo "[demo-oe] no closed-set checkpoint: $BASE_WORK_DIR/last_checkpoint is missing; run 'make demo' first" >&2
    exit 1
fi
BASE_CKPT=$(cat "$BASE_WORK_DIR/last_checkpoint")
BASE_RESULTS="$BASE_WORK_DIR/test"
if [ ! -f "$BASE_RESULTS/test_results.json" ]; then
    echo "[demo-oe] testing the closed-set model $BASE_CKPT with every scorer"
    BASE_RESULTS="$WORK_DIR/base_test"
    "$PY" tools/test.py "$BASE_ANOMALY_CONFIG" "$BASE_CKPT" --work-dir "$BASE_RESULTS"
fi
echo "[demo-oe] fine-tuning $BASE_CKPT with outlier exposure ($CONFIG) -> $WORK_DIR"
train_start=$(date +%s)
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" --cfg-options load_from="$BASE_CKPT"
echo "[demo-oe] fine-tuning: $(( $(date +%s) - train_start )) s"
CKPT=$(cat "$WORK_DIR/last_checkpoint")
echo "[demo-oe] testing $CKPT with $ANOMALY_CONFIG"
rm -f "$WORK_DIR/test/anomaly_scorer_stats.pth"  # SML / Mahalanobis statistics belong to one model
"$PY" tools/test.py "$ANOMALY_CONFIG" "$CKPT" --work-dir "$WORK_DIR/test"
echo "[demo-oe] closed-set vs outlier exposure"
"$PY" tools/analysis/compare.py "$BASE_RESULTS" "$WORK_DIR/test" --names closed-set outlier-exposure \
    --out "$WORK_DIR/compare"
echo "[demo-oe] done in $(( $(date +%s) - start )) s; comparison: $WORK_DIR/compare/comparison.md"
