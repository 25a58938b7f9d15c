#!/usr/bin/env bash
# The RL comparison of runs/miniature2/plan.json from the chosen base: LOCUS, SFT and CPT x 3 seeds, each scored on the held-out
# sets, then the verdict. Resumable: a finished run or evaluation is skipped. Two lanes share 2 CPU cores (one thread each).
#   BASE=runs/miniature2/base bash runs/miniature2/rl.sh > runs/miniature2/logs/rl.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE=${BASE:-runs/miniature2/base}; R=runs/miniature2; PY=.venv/bin/python; export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 TQDM_DISABLE=1
ev() { [ -f "$R/eval/$2/metrics.json" ] || $PY $R/evaluate.py "$1" --name "$2"; }
lane_locus() {
  for s in 0 1 2; do
    [ -f "$R/locus-s$s/model.safetensors" ] || .venv/bin/locus train --config configs/microworld.yaml --model "$BASE" \
        --output_dir "$R/locus-s$s" --seed "$s" --save_steps 0 > "$R/logs/locus-s$s.log" 2>&1
    ev "$R/locus-s$s" "locus-s$s"
  done
}
lane_controls() {
  ev "$BASE" base
  for s in 0 1 2; do for c in sft cpt; do
    [ -f "$R/$c-s$s/model.safetensors" ] || $PY $R/control.py "$c" --seed "$s" --model "$BASE" > "$R/logs/$c-s$s.log" 2>&1
    ev "$R/$c-s$s" "$c-s$s"
  done; done
}
lane_locus & a=$!; lane_controls & b=$!
wait $a; wait $b
$PY $R/verdict.py
