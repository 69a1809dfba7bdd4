#!/usr/bin/env bash
# The small-machine recipe search (issue #12): LSPET on the CPU, each setting trained for the same
# wall-clock budget (--max-minutes, validation included) and scored on the held-out last 1,000
# people (PCK@0.2, no flip test, the per-epoch validation). Run it alone on the machine: the
# budget is wall-clock, so anything else running lowers the figures.
#   bash benchmarks/cpu_recipe_sweep.sh                       # every setting below, 15 min each
#   MINUTES=30 bash benchmarks/cpu_recipe_sweep.sh "lr2e-3 --learning-rate 2e-3"
# Each argument is "<name> <train.py flags>" added to the common flags. Results: runs/sweep-<name>/
# and one line per setting: sweep <name> minutes=<m> steps=<n> best_val_pck=<p> last_val_pck=<q>
set -u
MINUTES=${MINUTES:-15}
DATA=${DATA:-../shared/data/lspet}
RUNS=${RUNS:-runs}
COMMON="--dataset lspet --data-dir $DATA --skip-bad --stacks 2 --filters 64 --input-size 64
  --batch-size 32 --steps-per-epoch 100 --epochs 1000 --learning-rate 1e-3 --plateau-patience 3"
if [ $# -eq 0 ]; then
  set -- "lr1e-3" "lr2e-3 --learning-rate 2e-3" "lr5e-4 --learning-rate 5e-4" \
    "px128 --input-size 128 --batch-size 16" "stacks1 --stacks 1" "batch16 --batch-size 16"
fi
for setting in "$@"; do
  name=${setting%% *}; flags=${setting#"$name"}
  rm -rf "$RUNS/sweep-$name"
  # shellcheck disable=SC2086
  python train/train.py $COMMON $flags --max-minutes "$MINUTES" --name "sweep-$name" \
    --runs-dir "$RUNS" --verbose 2 > "$RUNS/sweep-$name.log" 2>&1
  python - "$RUNS/sweep-$name" "$name" <<'PY'
import json, sys
import pandas as pd
run, name = sys.argv[1:]
log = pd.read_csv(f"{run}/log.csv")
steps = json.load(open(f"{run}/summary.json"))["global_step"]
print(f"sweep {name} minutes={log.minutes.iloc[-1]} steps={steps} "
      f"best_val_pck={log.val_pck.max():.2f} last_val_pck={log.val_pck.iloc[-1]:.2f}", flush=True)
PY
done
