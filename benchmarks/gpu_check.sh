#!/usr/bin/env bash
# One prepared GPU session (see ../shared/GPU.md): the 8-stack model's training throughput and the
# full predict path's latency/throughput on the JAX backend. Run on the device machine with
# `.whl` carried; results land in $OUT as JSON plus a log.
#   TRAIN_BATCHES="128" REMAT_BATCHES="128" INFER_BATCHES="1 256" bash benchmarks/gpu_check.sh
# Tried on the CPU with a tiny model (no wheels needed there):
#   STACKS=1 FILTERS=16 SIZE=64 PRECISION=float32 TRAIN_BATCHES=4 REMAT_BATCHES=4 \
#     INFER_BATCHES="1 4" OUT=/tmp/gc bash benchmarks/gpu_check.sh
set -u
. benchmarks/gpu_env.sh
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
model="--stacks ${STACKS:-8} --filters ${FILTERS:-256} --input-size ${SIZE:-256} --precision ${PRECISION:-mixed_bfloat16}"
command -v nvidia-smi >/dev/null && nvidia-smi \
  --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
[ -n "${TRAIN_BATCHES-128}" ] && timeout "${TRAIN_LIMIT:-300}" python3 benchmarks/train_throughput.py \
  $model --batch ${TRAIN_BATCHES-128} --windows 5 --steps 10 2>&1 | tee "$OUT/train.log"
# The memory knob (issue #25 item 3): the same step with --remat (its time and peak memory).
# REMAT_BATCHES="" (or TRAIN_BATCHES="", INFER_BATCHES="") skips that part.
[ -n "${REMAT_BATCHES-128}" ] && timeout "${REMAT_LIMIT:-150}" python3 benchmarks/train_throughput.py \
  $model --remat --batch ${REMAT_BATCHES-128} --windows 5 --steps 10 2>&1 | tee "$OUT/remat.log"
[ -n "${INFER_BATCHES-1 256}" ] && timeout "${INFER_LIMIT:-200}" python3 benchmarks/inference.py \
  $model --batch ${INFER_BATCHES-1 256} --windows 5 --steps 20 2>&1 | tee "$OUT/inference.log"
# The batch-1 prediction was dispatch-bound on the H200 (2026-12-04: 3.5 ms of device work in a
# 42 ms call, 1,561 kernels launched one by one; docs/BENCHMARKS.md). The same batch-1 row with
# XLA recording every kind of command into CUDA graphs (GRAPH_FLAGS="" skips it). GPU builds
# only (the CPU jaxlib does not know the flags); XLA stops at once on a flag or command type it
# does not know, so a refusal costs seconds and says so in inference_graphs.log.
GRAPH_FLAGS=${GRAPH_FLAGS---xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN --xla_gpu_graph_min_graph_size=1}
if [ -n "$GRAPH_FLAGS" ] && command -v nvidia-smi >/dev/null; then
  XLA_FLAGS="$GRAPH_FLAGS" timeout "${GRAPH_LIMIT:-120}" python3 benchmarks/inference.py \
    $model --batch 1 --windows 5 --steps 20 2>&1 | tee "$OUT/inference_graphs.log"
fi
