#!/usr/bin/env bash
# LOCUS in miniature, from scratch (nbs/09_miniature.ipynb): pretrain a micro Qwen2.5-VL on synthetic scenes,
# train LOCUS and its controls for every seed, evaluate them all, measure Attention-in-Box, write the report.
# Every stage resumes where a killed run stopped and skips finished work.
#   bash runs/miniature.sh                       # the committed experiment (2 CPU cores: see the notebook for the time)
#   JOBS=1 bash runs/miniature.sh --seeds 0      # one process, one seed
#   bash runs/miniature.sh --root /tmp/mini      # somewhere else
# Options after the script name go to every `locus miniature` call (`locus miniature --help` lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
LOCUS=${LOCUS:-locus}
JOBS=${JOBS:-2}                        # parallel processes for training, evaluation and AIB
CORES=${CORES:-$(nproc)}
THREADS=$(( CORES / JOBS > 0 ? CORES / JOBS : 1 ))
export HF_HUB_OFFLINE=1
$LOCUS miniature --stages pretrain "$@"
pids=()
for (( i = 0; i < JOBS; i++ )); do
  OMP_NUM_THREADS=$THREADS $LOCUS miniature --stages train,eval,aib --shard "$i/$JOBS" "$@" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
$LOCUS miniature --stages report "$@"
