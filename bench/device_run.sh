#!/usr/bin/env bash
# The GPU run, for a machine reached by short commands (at most 10 minutes each; the machine may be a fresh one each call).
# Starts the benchmark in the background (or finds the one already running), waits up to WAIT seconds, and copies
# the finished rows and the log to $OUT. Calling it again resumes: finished variants are skipped.
#   VARIANTS=7b:locus:plain:3,7b:locus:fast:3 bash bench/device_run.sh      (carry bench/.pylib: bench/README.md)
set -uo pipefail
W=/tmp/locus-bench; mkdir -p "$W/rows"
OUT=${OUT:-$W/out}; mkdir -p "$OUT"
if ! pgrep -f "grpo_bench.py --variants" > /dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$W/gpu.txt" 2>&1
  PYTHONPATH="$PWD/bench/.pylib:$PWD" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
    setsid nohup python bench/grpo_bench.py --variants "$VARIANTS" --model-dir "$W/models" --rows-dir "$W/rows" \
      --out "$W/gpu.json" --timeout "${TIMEOUT:-480}" >> "$W/log.txt" 2>&1 < /dev/null &
fi
end=$((SECONDS + ${WAIT:-560}))
sleep 5
while pgrep -f "grpo_bench.py --variants" > /dev/null && [ $SECONDS -lt $end ]; do sleep 5; done
cp -r "$W/rows" "$W/log.txt" "$W/gpu.txt" "$OUT/" 2>/dev/null; cp "$W"/gpu.json "$W"/gpu.md "$OUT/" 2>/dev/null
grep -v "Warning\|warn(" "$W/log.txt" | grep "^==\|^{\"model\|Error\|error\|^|" | cut -c1-600 | tail -40
pgrep -f "grpo_bench.py --variants" > /dev/null && echo "STILL RUNNING" || echo "FINISHED"
