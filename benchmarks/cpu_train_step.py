"""Time of one training step on this machine's CPU, float32 against the bfloat16 options.

    python benchmarks/cpu_train_step.py                 # the small-machine recipe's model
    python benchmarks/cpu_train_step.py --stacks 1 --filters 16 --quick  # a check

The model and step are `train.py`'s: the stacked hourglass compiled with the paper's recipe
(TorchRMSprop, MSE on every stack) as `keras_hourglass.training.loop.build_model` does, stepped with
`train_on_batch` on fixed arrays (the input pipeline is measured apart:
benchmarks/input_pipeline.py). TensorFlow runs the graph without XLA, as `train.py` does on a
CPU; JAX compiles the step with XLA, as it always does. Each configuration runs in a process of
its own (the dtype policy and TensorFlow's graph options are process-wide):

- `float32`: the baseline of its backend, timed in the same run;
- `mixed_bfloat16`: Keras' mixed policy (`--mixed-precision mixed_bfloat16`): layers compute in
  bfloat16, variables and batch-norm statistics stay float32;
- `onednn_bf16`: TensorFlow only, the float32 model under oneDNN's graph rewrite
  (`--onednn-bf16`: convolutions, matrix products and their gradients in bfloat16);
- `mixed_bfloat16+onednn_bf16`: both.

Each: 3 untimed steps, then `--windows` windows of `--steps` steps, the median. Lines:
`cpu_train_step backend=<b> precision=<p> batch=<n> ms_per_step=<m> speedup_vs_fp32=<x>`.
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGURATIONS = {
    "tensorflow": ["float32", "mixed_bfloat16", "onednn_bf16", "mixed_bfloat16+onednn_bf16"],
    "jax": ["float32", "mixed_bfloat16"],
}


def child(args):
    """One configuration, in this process; prints a JSON line with the step times."""
    import keras
    import numpy as np
    from _common import time_windows

    from keras_hourglass.skeletons import get_skeleton
    from keras_hourglass.training import loop as training

    parts = args.child.split("+")
    policy = "mixed_bfloat16" if "mixed_bfloat16" in parts else "float32"
    config = training.make_config(
        {
            "stacks": args.stacks,
            "filters": args.filters,
            "input_size": args.input_size,
            "batch_size": args.batch,
            "mixed_precision": policy,
            "onednn_bf16": "onednn_bf16" in parts,
        }
    )
    keras.mixed_precision.set_dtype_policy(config.mixed_precision)
    keras.utils.set_random_seed(0)
    model = training.build_model(config, get_skeleton("lsp"))
    rng = np.random.default_rng(0)
    size, heat = args.input_size, args.input_size // 4
    x = rng.uniform(0, 1, (args.batch, size, size, 3)).astype("float32")
    y = rng.uniform(0, 0.1, (args.batch, heat, heat, model.outputs[0].shape[-1])).astype("float32")
    with training.onednn_bfloat16(config.onednn_bf16):
        start = time.perf_counter()
        for _ in range(3):
            model.train_on_batch(x, y)
        first_s = time.perf_counter() - start
        times = time_windows(lambda: model.train_on_batch(x, y), args.windows, args.steps)
        loss = model.train_on_batch(x, y)
    loss = float(np.ravel(loss)[0])
    print(json.dumps({"times": times, "first_s": first_s, "loss": loss}), flush=True)


def run(backend, precision, args):
    command = [sys.executable, os.path.abspath(__file__), "--child", precision]
    for name in ("stacks", "filters", "input_size", "batch", "windows", "steps"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    env = dict(os.environ, KERAS_BACKEND=backend)
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise SystemExit(
            f"{backend} {precision} failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
        )
    return json.loads(lines[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stacks", type=int, default=2)
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--windows", type=int, default=5, help="timed windows (median reported)")
    parser.add_argument("--steps", type=int, default=5, help="steps per window")
    parser.add_argument(
        "--backends", nargs="+", default=list(CONFIGURATIONS), choices=list(CONFIGURATIONS)
    )
    parser.add_argument("--quick", action="store_true", help="2 windows of 2 steps")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.windows, args.steps = 2, 2
    if args.child:
        return child(args)

    import statistics

    print(
        f"stacks {args.stacks}, filters {args.filters}, input {args.input_size} px, "
        f"batch {args.batch}; {args.windows} windows of {args.steps} steps, median",
        flush=True,
    )
    lines = []
    for backend in args.backends:
        baseline = None
        for precision in CONFIGURATIONS[backend]:
            result = run(backend, precision, args)
            ms = 1000 * statistics.median(result["times"])
            baseline = baseline or ms
            windows = [round(1000 * t) for t in result["times"]]
            print(
                f"{backend:>10} {precision:>27}: {ms:7.1f} ms a step (windows {windows}), "
                f"first 3 steps {result['first_s']:.1f} s, loss {result['loss']:.6f}",
                flush=True,
            )
            lines.append(
                f"cpu_train_step backend={backend} precision={precision} batch={args.batch} "
                f"ms_per_step={ms:.1f} speedup_vs_fp32={baseline / ms:.2f}"
            )
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(HERE))
    sys.exit(main())
