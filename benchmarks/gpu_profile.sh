#!/usr/bin/env bash
# One prepared GPU call (issue #15, step 1): the profile of the 8-stack training step and of the
# batch-1 predict path, before any speed change. Run on the device machine with `.whl` carried
# (run tool: carry [".whl"], timeout_s 420):
#   bash benchmarks/gpu_profile.sh
# Tried on the CPU with a tiny model:
#   STACKS=1 FILTERS=16 SIZE=64 BATCH=4 PRECISION=float32 OUT=/tmp/gp bash benchmarks/gpu_profile.sh
# Results under $OUT: profile.json (ms per step by kind, the 15 longest ops), profile.log, gpu.txt.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
. benchmarks/gpu_env.sh
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
timeout "${LIMIT:-380}" python3 benchmarks/gpu_profile.py --stacks "${STACKS:-8}" \
  --filters "${FILTERS:-256}" --input-size "${SIZE:-256}" --batch "${BATCH:-128}" \
  --precision "${PRECISION:-mixed_bfloat16}" --steps "${STEPS:-5}" --out "$OUT/trace" 2>&1 \
  | tee "$OUT/profile.log" | tail -14
cp "$OUT/trace/profile.json" "$OUT/" 2>/dev/null
rm -rf "$OUT"/trace/profile-*   # the raw traces are large; profile.json keeps the figures
