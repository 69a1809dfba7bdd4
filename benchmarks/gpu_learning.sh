#!/usr/bin/env bash
# One prepared GPU call (issues #12, #42): train a hourglass on LSPET's people for a fixed
# wall-clock budget with the device executor (each person decoded once, crops, augmentation and
# targets made by JAX on the GPU; EXECUTOR=numpy for the host threads), then score the held-out
# last 1,000 with the flip test. Defaults: build_hourglass()'s (8 stacks, 256 features, 256x256,
# mixed_bfloat16), the plateau schedule.
#
# Prepare on the CPU machine (once):
#   bash ../shared/gpu/fetch_wheels.sh && python benchmarks/pack_gpu_data.py
# Run on the device machine (run tool: carry [".whl", "gpu_data/lspet.zip"], timeout_s 560):
#   bash benchmarks/gpu_learning.sh
# The shipped 256 px model (issue #42 item 1; brings the .keras file back as $OUT/model.keras):
#   STACKS=4 FILTERS=128 MINUTES=5 STEPS=400 LR_SCHEDULE=cosine KEEP_MODEL=1 \
#     bash benchmarks/gpu_learning.sh
# Try it on the CPU first with a tiny model (no wheels needed there):
#   STACKS=1 FILTERS=16 SIZE=64 BATCH=8 MINUTES=0.5 STEPS=5 PRECISION=float32 KEEP_MODEL=1 \
#     OUT=/tmp/gpu_learning bash benchmarks/gpu_learning.sh
#
# $OUT receives at most three files (a device call brings back 8): results.tar.gz (log.csv: the
# per-epoch curve - losses, held-out val_pck without flip test, learning rate, minutes;
# summary.json, config.json, train.log, eval.log, heldout/: evaluate.py's CSVs with the flip
# test, input.log: the input pipeline alone (the device executor, or the numpy one with one
# thread per core) before training, gpu.txt),
# model.keras with KEEP_MODEL=1 (the best checkpoint without the optimizer's state; keep it under
# 16 MiB), and summary.txt.
# Last line:
#   gpu_learning stacks=<s> minutes=<m> images_seen=<n> heldout_pck=<p> fit_ips=<n> input_ips=<n> cores=<c>
# (fit_ips: images/s of fit after its first epoch, validation included; input_ips: the input
# pipeline alone)
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
WORK="$OUT/work"; rm -rf "$WORK"; mkdir -p "$WORK"
RUNS=${RUNS:-/tmp/gpu_learning_runs}
. benchmarks/gpu_env.sh
DATA=${DATA:-gpu_data/lspet.zip}
if [ "${DATA%.zip}" != "$DATA" ]; then  # the carried archive (pack_gpu_data.py) -> /tmp
  python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" \
    "$DATA" /tmp/gpu_data || exit 1
  DATA=/tmp/gpu_data/$(basename "$DATA" .zip)
fi
STACKS=${STACKS:-8} FILTERS=${FILTERS:-256} SIZE=${SIZE:-256} BATCH=${BATCH:-64} LR=${LR:-1e-3}
MINUTES=${MINUTES:-6} STEPS=${STEPS:-200} PRECISION=${PRECISION:-mixed_bfloat16}
WORKERS=${WORKERS:-0} LR_SCHEDULE=${LR_SCHEDULE:-plateau} KEEP_MODEL=${KEEP_MODEL:-0}
INPUT_SECONDS=${INPUT_SECONDS:-60} EXECUTOR=${EXECUTOR:-device}
bundle() {  # everything small into one archive (the device call brings back 8 files at most)
  tar czf "$OUT/results.tar.gz" -C "$WORK" . && rm -rf "$WORK"
}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$WORK/gpu.txt"
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
# The input pipeline alone (256 px crops, as fit runs it): can it feed the GPU?
if [ "$EXECUTOR" = device ]; then input_flags="--device --batch-size $BATCH"; else input_flags=--no-tf; fi
timeout "$INPUT_SECONDS" python3 benchmarks/input_pipeline.py --data-dir "$DATA" --images 2000 $input_flags 2>&1 \
  | tail -7 | tee "$WORK/input.log"
rm -rf "$RUNS/gpu-learning"
start=$(date +%s)
python3 train/train.py --dataset lspet --data-dir "$DATA" --skip-bad --val-count 1000 \
  --stacks "$STACKS" --filters "$FILTERS" --input-size "$SIZE" --batch-size "$BATCH" \
  --learning-rate "$LR" --lr-schedule "$LR_SCHEDULE" --steps-per-epoch "$STEPS" --epochs 10000 \
  --plateau-patience 3 --max-minutes "$MINUTES" --mixed-precision "$PRECISION" --executor "$EXECUTOR" \
  $( [ "$WORKERS" -gt 0 ] && echo --workers "$WORKERS" ) \
  --name gpu-learning --runs-dir "$RUNS" --verbose 2 2>&1 | tee "$WORK/train.log"
status=${PIPESTATUS[0]}
run="$RUNS/gpu-learning"
cp "$run/log.csv" "$run/summary.json" "$run/config.json" "$WORK/" 2>/dev/null
# The best checkpoint without the optimizer's state (RMSprop keeps one mean square per weight,
# which would double the file past the 16 MiB a device call brings back).
[ "$KEEP_MODEL" = 1 ] && python3 -c "import sys, keras, keras_hourglass
keras.saving.load_model(sys.argv[1], compile=False).save(sys.argv[2])" "$run/best.keras" "$OUT/model.keras"
[ "$status" -eq 0 ] || { echo "training failed ($status)"; bundle; exit "$status"; }
train_minutes=$(python3 -c "print(round(($(date +%s) - $start) / 60, 1))")
python3 eval/evaluate.py --model "$run/best.keras" --dataset lspet --data-dir "$DATA" --skip-bad \
  --held-out 1000 --batch-size 64 --executor numpy --out "$WORK/heldout" 2>&1 | tail -15 | tee "$WORK/eval.log"
python3 - "$WORK" "$STACKS" "$train_minutes" <<'PY' | tee "$OUT/summary.txt"
import csv, json, re, sys
out, stacks, minutes = sys.argv[1:]
log = open(f"{out}/input.log").read()
ips = re.search(r"(?:device|numpy)_ips=(\S+)", log)
cores = re.search(r"cores=(\d+)", log)
summary = json.load(open(f"{out}/summary.json"))
config = json.load(open(f"{out}/config.json"))
rows = {r["group"]: r for r in csv.DictReader(open(f"{out}/heldout/summary.csv"))}
metric = [k for k in rows["Mean"] if k.startswith("PCK@0.2")][0]
# fit's own rate after the first epoch (which holds the compile), validation included: what
# docs/gpu.md compares with train_throughput.py's synthetic-input step.
epochs = [float(r["minutes"]) for r in csv.DictReader(open(f"{out}/log.csv"))]
span = (epochs[-1] - epochs[0]) * 60 if len(epochs) > 1 else 0
fit_ips = f"{(len(epochs) - 1) * config['steps_per_epoch'] * config['batch_size'] / span:.0f}" if span > 0 else "-"
print(f"gpu_learning stacks={stacks} minutes={minutes} "
      f"images_seen={summary['global_step'] * config['batch_size']} "
      f"heldout_pck={float(rows['Mean'][metric]):.2f} fit_ips={fit_ips} "
      f"input_ips={ips.group(1) if ips else '-'} cores={cores.group(1) if cores else '-'}")
PY
bundle
