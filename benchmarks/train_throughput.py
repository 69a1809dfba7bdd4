"""Training throughput of the stacked hourglass (forward + backward + RMSprop update).

    KERAS_BACKEND=jax python benchmarks/train_throughput.py --stacks 8 --batch 128 --precision mixed_bfloat16

Feeds device-resident synthetic arrays (the tf.data pipeline is measured apart), compiles with
XLA (`jit_compile=True`), warms up (compile time reported separately), then times windows of
`train_on_batch` steps and reports the median. Several `--batch` values run in one process (each
compiles once). On a CPU, `--stacks 1 --filters 16 --input-size 64` checks the script cheaply.
Last line per configuration: `train_throughput stacks=<s> precision=<p> remat=<0|1> batch=<b>
ips=<n> peak_gib=<g>` (`--remat`: recompute each stack in the backward pass).
"""

import argparse
import os
import sys
import time

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stacks", type=int, default=8)
    parser.add_argument("--filters", type=int, default=256)
    parser.add_argument("--input-size", type=int, default=256)
    parser.add_argument("--batch", type=int, nargs="+", default=[64])
    parser.add_argument(
        "--precision",
        default="mixed_bfloat16",
        choices=["float32", "mixed_bfloat16", "mixed_float16"],
    )
    parser.add_argument(
        "--remat", action="store_true", help="recompute each stack in the backward pass"
    )
    parser.add_argument("--windows", type=int, default=5, help="timed windows (median reported)")
    parser.add_argument("--steps", type=int, default=10, help="steps per window")
    args = parser.parse_args(argv)

    import keras
    from _common import (
        block,
        device_description,
        median,
        peak_memory_gib,
        time_windows,
        write_results,
    )

    import keras_hourglass as kh

    keras.config.set_dtype_policy(args.precision)
    rows = []
    print(f"device: {device_description()}", flush=True)
    for batch in args.batch:
        keras.utils.set_random_seed(0)
        model = kh.build_hourglass(
            num_stacks=args.stacks,
            filters=args.filters,
            input_shape=(args.input_size, args.input_size, 3),
        )
        model.remat = args.remat
        model.compile(jit_compile=True)
        rng = np.random.default_rng(0)
        hm = args.input_size // 4
        x = keras.ops.convert_to_tensor(
            rng.uniform(0, 1, (batch, args.input_size, args.input_size, 3)).astype("float32")
        )
        target = keras.ops.convert_to_tensor(
            rng.uniform(0, 0.1, (batch, hm, hm, 16)).astype("float32")
        )
        y = target  # one target: the model supervises every stack with it
        start = time.perf_counter()
        first = model.train_on_batch(x, y, return_dict=True)
        compile_s = time.perf_counter() - start
        block(model.train_on_batch(x, y))
        times = time_windows(lambda m=model: m.train_on_batch(x, y), args.windows, args.steps)
        ips = batch / median(times)
        row = {
            "stacks": args.stacks,
            "filters": args.filters,
            "precision": args.precision,
            "remat": args.remat,
            "batch": batch,
            "compile_s": round(compile_s, 1),
            "ips": round(ips, 1),
            "step_ms": round(1000 * median(times), 2),
            "step_ms_windows": [round(1000 * t, 2) for t in times],
            "peak_gib": peak_memory_gib(),
            "first_loss": float(first["loss"]),
            "params": model.count_params(),
        }
        rows.append(row)
        print(
            f"batch {batch}: compile {compile_s:.1f} s, step {1000 * median(times):.1f} ms "
            f"(windows {row['step_ms_windows']}), {ips:.0f} img/s, peak "
            f"{row['peak_gib'] if row['peak_gib'] is None else round(row['peak_gib'], 1)} GiB",
            flush=True,
        )
        del model
    write_results("train_throughput", rows)
    print(
        f"\n{'stacks':>6} {'precision':>15} {'batch':>6} {'compile s':>10} {'step ms':>9} {'img/s':>8} {'peak GiB':>9}"
    )
    for r in rows:
        peak = "-" if r["peak_gib"] is None else f"{r['peak_gib']:.1f}"
        print(
            f"{r['stacks']:>6} {r['precision']:>15} {r['batch']:>6} {r['compile_s']:>10} {r['step_ms']:>9} {r['ips']:>8.0f} {peak:>9}"
        )
    for r in rows:
        print(
            f"train_throughput stacks={r['stacks']} precision={r['precision']} "
            f"remat={int(r['remat'])} batch={r['batch']} ips={r['ips']:.0f} "
            f"peak_gib={'-' if r['peak_gib'] is None else round(r['peak_gib'], 1)}"
        )


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
