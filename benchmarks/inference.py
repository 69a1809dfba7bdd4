"""Inference latency and throughput of the full predict path: model + flip test + decoding.

    KERAS_BACKEND=jax python benchmarks/inference.py --stacks 8 --batch 1 128 --precision mixed_bfloat16

The path is `keras_hourglass.deployment.inference.crop_predictor`: one compiled function from crops to
keypoints and scores (the image and its mirror go through the network as one batch of 2B, the
heatmaps are flipped back, averaged and decoded on the device with the model's codec), the one
every command uses. Compile time is reported apart;
windows of calls are timed (blocking on the result) and the median is reported.
Last line per configuration: `inference batch=<b> ms=<n> ips=<n>`.
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
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 64])
    parser.add_argument(
        "--precision",
        default="mixed_bfloat16",
        choices=["float32", "mixed_bfloat16", "mixed_float16"],
    )
    parser.add_argument("--no-flip", action="store_true")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
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
    keras.utils.set_random_seed(0)
    model = kh.build_hourglass(
        num_stacks=args.stacks,
        filters=args.filters,
        input_shape=(args.input_size, args.input_size, 3),
        skeleton="mpii",
    )
    predict = kh.crop_predictor(model, flip_test=not args.no_flip)
    print(f"device: {device_description()}", flush=True)
    rows = []
    for batch in args.batch:
        rng = np.random.default_rng(batch)
        x = keras.ops.convert_to_tensor(
            rng.uniform(0, 1, (batch, args.input_size, args.input_size, 3)).astype("float32")
        )
        start = time.perf_counter()
        block(predict(x))
        compile_s = time.perf_counter() - start
        times = time_windows(lambda: predict(x), args.windows, args.steps)
        ms = 1000 * median(times)
        rows.append(
            {
                "stacks": args.stacks,
                "precision": args.precision,
                "batch": batch,
                "flip": not args.no_flip,
                "compile_s": round(compile_s, 1),
                "ms": round(ms, 3),
                "ips": round(batch / median(times), 1),
                "ms_windows": [round(1000 * t, 3) for t in times],
                "peak_gib": peak_memory_gib(),
            }
        )
        print(
            f"batch {batch}: compile {compile_s:.1f} s, {ms:.2f} ms/call "
            f"(windows {rows[-1]['ms_windows']}), {batch / median(times):.0f} img/s",
            flush=True,
        )
    write_results("inference", rows)
    print(
        f"\n{'stacks':>6} {'precision':>15} {'flip':>5} {'batch':>6} {'compile s':>10} {'ms':>9} {'img/s':>8}"
    )
    for r in rows:
        print(
            f"{r['stacks']:>6} {r['precision']:>15} {str(r['flip']):>5} {r['batch']:>6} {r['compile_s']:>10} {r['ms']:>9} {r['ips']:>8.0f}"
        )
    for r in rows:
        print(f"inference batch={r['batch']} ms={r['ms']:.2f} ips={r['ips']:.0f}")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
