#!/usr/bin/env bash
# LOCUS in miniature, from scratch (nbs/09_miniature.ipynb, runs/miniature2/plan.json): pretrain both candidate bases,
# gate them, run LOCUS, SFT and CPT x 3 seeds from the chosen base (skipped when none passes), and write the verdict.
# Two processes, one CPU thread each; every stage skips finished work and resumes where a killed run stopped.
#   bash runs/miniature.sh                          # everything
#   bash runs/miniature.sh --root /tmp/mini         # somewhere else (options go to every `locus miniature` call)
set -euo pipefail
cd "$(dirname "$0")/.."
LOCUS=${LOCUS:-locus}
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
mkdir -p runs/miniature2/logs
$LOCUS miniature --stages pretrain,gate --candidate A "$@" > runs/miniature2/logs/candidate-A.log 2>&1 & a=$!
$LOCUS miniature --stages pretrain,gate --candidate B "$@" > runs/miniature2/logs/candidate-B.log 2>&1 & b=$!
wait $a; wait $b
$LOCUS miniature --stages rl --conditions locus "$@" > runs/miniature2/logs/rl-locus.log 2>&1 & a=$!
$LOCUS miniature --stages rl --conditions base,sft,cpt "$@" > runs/miniature2/logs/rl-controls.log 2>&1 & b=$!
wait $a; wait $b
$LOCUS miniature --stages verdict "$@"
