"""Memory and speed of a training step with and without `--remat` (rematerialisation by stacks).

    KERAS_BACKEND=jax python benchmarks/remat_memory.py                       # memory table
    python benchmarks/remat_memory.py --time --stacks 2 --filters 64 --input-size 64 --batches 32

Memory: XLA's own account of the compiled JAX training step (`compiled.memory_analysis()`:
arguments + outputs + temporaries - aliased buffers, the program's peak as XLA plans it), for the
paper's model (256 features, 256 px) at two batch sizes; the difference gives the bytes per
image and the rest the fixed part (weights, gradients, optimizer state). Only compiled, never
run, so 8 stacks at 256 px fit on a laptop. This is the CPU compiler's plan: a GPU adds cuDNN
workspaces and picks other layouts, so the table is an estimate until measured on a GPU
(benchmarks/gpu_profile.sh reports `peak_bytes_in_use` there).

`--time`: the median time of `train_on_batch` with and without remat on the current backend
(any backend), timed in one process.

Lines: `remat_memory stacks=<s> remat=<0|1> precision=<p> per_image_mib=<m> fixed_mib=<f>`,
`remat_largest_batch stacks=<s> remat=<0|1> card_gib=<g> batch=<b>` and
`remat_step stacks=<s> backend=<b> batch=<n> remat=<0|1> ms=<t>`.
"""

import argparse
import os
import sys
import time

import numpy as np

CARDS_GIB = (16, 24, 40, 80, 141)


def _model(args, stacks, remat):
    import keras

    import keras_hourglass as kh

    keras.utils.set_random_seed(0)
    model = kh.build_hourglass(
        num_stacks=stacks,
        filters=args.filters,
        depth=args.depth,
        input_shape=(args.input_size, args.input_size, 3),
    )
    model.remat = remat
    model.compile()
    return model


def _data(args, batch, concrete):
    size, heatmap = args.input_size, args.input_size // 4
    if concrete:
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 1, (batch, size, size, 3)).astype("float32")
        y = rng.uniform(0, 0.1, (batch, heatmap, heatmap, 16)).astype("float32")
        return x, y
    import jax

    return (
        jax.ShapeDtypeStruct((batch, size, size, 3), "float32"),
        jax.ShapeDtypeStruct((batch, heatmap, heatmap, 16), "float32"),
    )


def step_bytes(args, stacks, remat, batch):
    """XLA's planned peak bytes of one training step (compiled, not run)."""
    import jax

    model = _model(args, stacks, remat)
    model._symbolic_build(data_batch=(*_data(args, 1, concrete=True), None))
    state = model._get_jax_state(
        trainable_variables=True,
        non_trainable_variables=True,
        optimizer_variables=True,
        metrics_variables=True,
        purge_model_variables=False,
    )
    start = time.perf_counter()
    compiled = jax.jit(model.train_step).lower(state, (*_data(args, batch, False), None)).compile()
    seconds = time.perf_counter() - start
    stats = compiled.memory_analysis()
    peak = (
        stats.argument_size_in_bytes
        + stats.output_size_in_bytes
        + stats.temp_size_in_bytes
        - stats.alias_size_in_bytes
    )
    return peak, seconds


def memory_table(args):
    rows = []
    for stacks in args.stacks:
        for remat in (False, True):
            small, large = args.batches
            peak_small, s1 = step_bytes(args, stacks, remat, small)
            peak_large, s2 = step_bytes(args, stacks, remat, large)
            per_image = (peak_large - peak_small) / (large - small)
            fixed = peak_small - small * per_image
            rows.append((stacks, remat, per_image, fixed))
            print(
                f"stacks {stacks} remat {int(remat)}: batch {small} {peak_small / 2**20:.0f} MiB, "
                f"batch {large} {peak_large / 2**20:.0f} MiB (compiled in {s1:.0f} + {s2:.0f} s)",
                flush=True,
            )
    for stacks, remat, per_image, fixed in rows:
        print(
            f"remat_memory stacks={stacks} remat={int(remat)} precision={args.precision} "
            f"per_image_mib={per_image / 2**20:.1f} fixed_mib={fixed / 2**20:.0f}"
        )
    for stacks, remat, per_image, fixed in rows:
        for card in CARDS_GIB:
            # 10% of the card is left to the runtime, cuDNN workspaces and fragmentation.
            batch = int((0.9 * card * 2**30 - fixed) // per_image)
            print(
                f"remat_largest_batch stacks={stacks} remat={int(remat)} card_gib={card} "
                f"batch={max(batch, 0)}"
            )


def step_times(args):
    import keras
    from _common import block, median, time_windows

    backend = keras.backend.backend()
    for stacks in args.stacks:
        for batch in args.batches:
            for remat in (False, True):
                model = _model(args, stacks, remat)
                x, y = _data(args, batch, concrete=True)
                model.train_on_batch(x, y)
                block(model.train_on_batch(x, y))
                times = time_windows(lambda m=model: m.train_on_batch(x, y), args.windows, 5)
                print(
                    f"remat_step stacks={stacks} backend={backend} batch={batch} "
                    f"remat={int(remat)} ms={1000 * median(times):.1f}",
                    flush=True,
                )


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stacks", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--filters", type=int, default=256)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--input-size", type=int, default=256)
    parser.add_argument(
        "--batches", type=int, nargs="+", default=[2, 6], help="two batch sizes for memory"
    )
    parser.add_argument(
        "--precision", default="float32", choices=["float32", "mixed_bfloat16", "mixed_float16"]
    )
    parser.add_argument("--time", action="store_true", help="time steps instead (any backend)")
    parser.add_argument("--windows", type=int, default=5)
    args = parser.parse_args(argv)

    import keras

    keras.config.set_dtype_policy(args.precision)
    if args.time:
        step_times(args)
        return 0
    if keras.backend.backend() != "jax":
        parser.error("the memory table reads XLA's plan of the JAX step: KERAS_BACKEND=jax")
    if len(args.batches) != 2 or args.batches[0] >= args.batches[1]:
        parser.error("--batches takes two increasing batch sizes for the memory table")
    memory_table(args)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
