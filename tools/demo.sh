#!/usr/bin/env bash
# The demo job (make demo): train the tiny demo model on the generated dataset, test it once with
# mIoU + every anomaly scorer from one forward pass (drawing the anomaly panels from that same pass),
# and leave a report folder a person opens: WORK_DIR/report/README.md.
# Usage: tools/demo.sh PYTHON TRAIN_CONFIG ANOMALY_CONFIG WORK_DIR [DATA_ROOT]
#   DATA_ROOT (make's DEMO_DATA) replaces the configs' data_root for training, validation and test.
set -euo pipefail
PY=$1; CONFIG=$2; ANOMALY_CONFIG=$3; WORK_DIR=$4; DATA_ROOT=${5:-}
DATA_OPTS=()
if [ -n "$DATA_ROOT" ]; then
    DATA_OPTS=("train_dataloader.dataset.data_root=$DATA_ROOT" "val_dataloader.dataset.data_root=$DATA_ROOT"
               "test_dataloader.dataset.data_root=$DATA_ROOT")
fi
start=$(date +%s)
echo "[demo] training $CONFIG -> $WORK_DIR"
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" ${DATA_OPTS[@]+--cfg-options "${DATA_OPTS[@]}"}
CKPT=$(cat "$WORK_DIR/last_checkpoint")
echo "[demo] testing $CKPT with $ANOMALY_CONFIG (panels -> $WORK_DIR/test/show/anomaly_panels)"
# --show-dir turns the visualization hook on; AnomalyPanelHook replaces mmseg's SegVisualizationHook there
# (a no-op when the anomaly config already uses it).
"$PY" tools/test.py "$ANOMALY_CONFIG" "$CKPT" --work-dir "$WORK_DIR/test" --show-dir "$WORK_DIR/test/show" \
    --cfg-options default_hooks.visualization.type=AnomalyPanelHook ${DATA_OPTS[@]+"${DATA_OPTS[@]}"}
echo "[demo] writing the report"
report_start=$(date +%s)
"$PY" tools/analysis/make_report.py "$WORK_DIR"
echo "[demo] report step: $(( $(date +%s) - report_start )) s"
echo "[demo] done in $(( $(date +%s) - start )) s; open $WORK_DIR/report/README.md" \
     "(results: $WORK_DIR/test/test_results.json)"
