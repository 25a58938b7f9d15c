#!/usr/bin/env bash
# LOCUS on one GPU, from a fresh box to the paper's table (nbs/11_reproduce.ipynb explains every step):
# checks -> proxy set -> GRPO training -> merge -> evaluation of the base model, LOCUS and DualFocus on the base,
# under lmms-eval's scoring and locus's -> comparison -> report card ($OUT/report.md).
#   bash runs/reproduce.sh                  # the paper's recipe, with the training config that fits this GPU
#   bash runs/reproduce.sh --scale 0.1      # a tenth of the training cues and steps
#   bash runs/reproduce.sh --smoke          # every stage on a CPU in minutes: tiny model, test photos, benchmark fixtures
#   bash runs/reproduce.sh --help           # every option (`locus reproduce` takes the same ones and runs this script)
# Nothing is downloaded unless asked (--download): a missing input is named, with the command that fetches it.
# Every stage logs to $OUT/logs/<stage>.log and, once complete, writes $OUT/stages/<stage>.done. The same command after
# a failure or a kill skips the finished stages; training resumes from its last checkpoint, evaluation from its predictions.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$([ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python)}
LOCUS=${LOCUS:-$([ -x "$ROOT/.venv/bin/locus" ] && echo "$ROOT/.venv/bin/locus" || echo locus)}
case " $* " in *" -h "* | *" --help "*) exec "$PY" -m locus.reproduce plan --help ;; esac

# 0. Check before spending GPU hours: the GPU and its memory, the config that fits it (bench/results/gpu.json), COCO,
#    the model, each benchmark's data, the disk. One line per problem, then exit 2; else the estimate, and the plan.
PLAN=$("$PY" -m locus.reproduce plan "$@")
source "$PLAN"                          # OUT, MODEL, PROTOCOLS, and the options of each command: TRAIN, EVAL, MERGE
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false   # nothing downloaded from here on
stage() { "$PY" -m locus.reproduce stage "$OUT" "$@"; }   # skipped when done; else logged, timed, measured, then marked done

# 1. The proxy set: object cues from COCO train2014, 99,500 train / 500 validation (--scale: a fraction of the train cues)
stage data -- "$PY" -m locus.reproduce data "$OUT/data/proxy_val" "${TRAIN[@]}"

# 2. GRPO on the proxy task (r = 0.9 IoU + 0.1 format); after a kill, from the last checkpoint
RESUME=(); if compgen -G "$OUT/train/checkpoint-*" >/dev/null; then RESUME=(--resume_from_checkpoint true); fi
stage train -- "$LOCUS" train "${TRAIN[@]}" "${RESUME[@]}"

# 3. The adapter merged into its base model: the checkpoint that is evaluated
stage merge -- "$LOCUS" merge "$OUT/train" "$OUT/merged" "${MERGE[@]}"

# 4. Evaluation, every (model, mode, protocol) in its own folder: the base model, LOCUS, and DualFocus (two passes and a
#    crop at inference) on the base; then the three side by side, with the items that flipped
for P in $PROTOCOLS; do
  stage "eval-$P-base"      -- "$LOCUS" eval "$MODEL"      "${EVAL[@]}" --protocol "$P" --out "$OUT/eval/$P/base"
  stage "eval-$P-locus"     -- "$LOCUS" eval "$OUT/merged" "${EVAL[@]}" --protocol "$P" --out "$OUT/eval/$P/locus"
  stage "eval-$P-dualfocus" -- "$LOCUS" eval "$MODEL"      "${EVAL[@]}" --protocol "$P" --out "$OUT/eval/$P/dualfocus" --mode dualfocus
  stage "compare-$P" --to "$OUT/compare-$P.md" -- \
        "$LOCUS" compare "$OUT/eval/$P/base" "$OUT/eval/$P/locus" --more "$OUT/eval/$P/dualfocus"
done

# 5. The report card: our numbers beside the paper's, each stage's wall time and peak memory, the flips
stage report -- "$PY" -m locus.reproduce report "$OUT"
cat "$OUT/report.md"
