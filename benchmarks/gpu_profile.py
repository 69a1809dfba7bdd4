"""Where the time of a training step and of a batch-1 prediction goes (issue #15), from a JAX
profiler trace, before anything is changed for speed.

    KERAS_BACKEND=jax python benchmarks/gpu_profile.py --stacks 8 --batch 128 --out /tmp/out
    KERAS_BACKEND=jax python benchmarks/gpu_profile.py --stacks 1 --filters 16 --input-size 64 --batch 4   # CPU check

Compiles the training step (`train_on_batch`, XLA) and the jitted predict path with the flip test
(`inference.crop_predictor`, batch 1), warms both up, then records `--steps` of each under
`jax.profiler.trace` and reads the trace back with `jax.profiler.ProfileData` (no TensorBoard
plugin needed). The device's XLA op events (the host's on a CPU) are grouped by kind:

- convolutions and matmuls (cuDNN / cuBLAS / Triton GEMM kernels, `convolution` ops)
- reductions: batch-norm statistics, the loss, RMSprop's norms (`reduce`, input fusions)
- elementwise fusions: batch-norm application, ReLU, residual adds, the optimizer update
- copies and transposes (layout changes)
- other kernels
- idle: the step's wall time on the host minus the time the device was busy (launch gaps,
  host overhead, synchronisation)

Writes `profile.json` (per kind: ms per step, share; the 15 longest ops) under --out and prints a
table, then one line per phase: `gpu_profile phase=<train|predict> step_ms=<t> busy_ms=<b>
conv_ms=<c> idle_ms=<i>`.
"""

import argparse
import glob
import os
import sys
import tempfile
import time

import numpy as np

KINDS = ("convolution/matmul", "reduction", "elementwise fusion", "copy/transpose", "other")


def kind_of(name, category=""):
    text = f"{name} {category}".lower()
    if any(
        k in text
        for k in (
            "conv",
            "cudnn",
            "gemm",
            "xmma",
            "cutlass",
            "dot",
            "matmul",
            "triton_gemm",
            "ynn_",
        )
    ):
        return "convolution/matmul"
    if any(k in text for k in ("reduce", "reduction", "input_fusion", "input fusion")):
        return "reduction"
    if any(k in text for k in ("transpose", "copy", "bitcast", "data formatting")):
        return "copy/transpose"
    if any(k in text for k in ("fusion", "loop", "elementwise", "add", "multiply", "relu")):
        return "elementwise fusion"
    return "other"


def _union_ns(intervals):
    total, end = 0.0, -1.0
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def op_events(path):
    """(name, category, start_ns, duration_ns) of XLA op events: the GPU plane's when there is
    one, else the host's XLA threads (a CPU run)."""
    from jax.profiler import ProfileData

    data = ProfileData.from_file(path)
    planes = list(data.planes)
    devices = [p for p in planes if p.name.startswith("/device:GPU")]
    events = []
    for plane in devices[:1] or [p for p in planes if p.name == "/host:CPU"]:
        lines = list(plane.lines)
        ops = [line for line in lines if line.name == "XLA Ops"]
        if not devices:
            ops = [line for line in lines if "XLA" in line.name or "Cpu" in line.name]
        elif not ops:
            ops = [line for line in lines if line.name.startswith("Stream")]
        for line in ops:
            for e in line.events:
                stats = dict(e.stats)
                if not devices and "hlo_op" not in stats:
                    continue  # host bookkeeping, not an XLA op
                events.append(
                    (
                        e.name,
                        str(stats.get("hlo_category", "")),
                        float(e.start_ns),
                        float(e.duration_ns),
                    )
                )
    return events, bool(devices)


def profile(fn, steps, label, out):
    import jax

    folder = tempfile.mkdtemp(prefix=f"profile-{label}-", dir=out)
    walls = []
    with jax.profiler.trace(folder):
        for i in range(steps):
            start = time.perf_counter()
            with jax.profiler.StepTraceAnnotation(label, step_num=i):
                fn()
            walls.append(time.perf_counter() - start)
    path = sorted(glob.glob(os.path.join(folder, "**", "*.xplane.pb"), recursive=True))[-1]
    events, on_gpu = op_events(path)
    per_kind = {k: 0.0 for k in KINDS}
    per_op = {}
    for name, category, _, duration in events:
        per_kind[kind_of(name, category)] += duration
        per_op[name] = per_op.get(name, 0.0) + duration
    busy = _union_ns([(s, s + d) for _, _, s, d in events])
    step_ms = 1000 * float(np.median(walls))
    row = {
        "phase": label,
        "steps": steps,
        "device": "gpu" if on_gpu else "cpu (host XLA threads)",
        "step_ms": round(step_ms, 3),
        "busy_ms": round(busy / steps / 1e6, 3),
        "idle_ms": round(max(step_ms - busy / steps / 1e6, 0.0), 3),
        "kinds_ms": {k: round(v / steps / 1e6, 3) for k, v in per_kind.items()},
        "ops": len(events) // max(steps, 1),
        "top_ops_ms": {
            n: round(v / steps / 1e6, 3)
            for n, v in sorted(per_op.items(), key=lambda kv: -kv[1])[:15]
        },
    }
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stacks", type=int, default=8)
    parser.add_argument("--filters", type=int, default=256)
    parser.add_argument("--input-size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=128, help="training batch")
    parser.add_argument(
        "--precision",
        default="mixed_bfloat16",
        choices=["float32", "mixed_bfloat16", "mixed_float16"],
    )
    parser.add_argument("--steps", type=int, default=5, help="profiled steps per phase")
    parser.add_argument("--out", default=os.environ.get("OUT", "/tmp/gpu_profile"))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    import keras

    import keras_hourglass as kh

    keras.config.set_dtype_policy(args.precision)
    keras.utils.set_random_seed(0)
    model = kh.build_hourglass(
        num_stacks=args.stacks,
        filters=args.filters,
        input_shape=(args.input_size, args.input_size, 3),
        skeleton="mpii",
    )
    model.compile(jit_compile=True)
    rng = np.random.default_rng(0)
    hm = args.input_size // 4
    x = keras.ops.convert_to_tensor(
        rng.uniform(0, 1, (args.batch, args.input_size, args.input_size, 3)).astype("float32")
    )
    target = keras.ops.convert_to_tensor(
        rng.uniform(0, 0.1, (args.batch, hm, hm, 16)).astype("float32")
    )
    y = target  # one target: the model supervises every stack with it
    start = time.perf_counter()
    model.train_on_batch(x, y)
    compile_train = time.perf_counter() - start

    def train_step():
        loss = model.train_on_batch(x, y)
        np.asarray(loss)  # waits for the device

    train_step()
    train_row = profile(train_step, args.steps, "train", args.out)
    # The crop predictor reads the weights at every call (training donates their buffers).
    predict = kh.crop_predictor(model)
    one = rng.uniform(0, 1, (1, args.input_size, args.input_size, 3)).astype("float32")
    start = time.perf_counter()
    np.asarray(predict(one)[0])
    compile_predict = time.perf_counter() - start

    def predict_step():
        np.asarray(predict(one)[0])

    for _ in range(3):
        predict_step()
    rows = [train_row, profile(predict_step, max(args.steps, 10), "predict", args.out)]
    rows[0].update(batch=args.batch, compile_s=round(compile_train, 1))
    rows[1].update(batch=1, compile_s=round(compile_predict, 1), flip_test=True)
    meta = {
        "stacks": args.stacks,
        "filters": args.filters,
        "input_size": args.input_size,
        "precision": args.precision,
        "jax": __import__("jax").__version__,
        "devices": [str(d) for d in __import__("jax").devices()],
    }
    from keras_hourglass import files

    files.write_json(os.path.join(args.out, "profile.json"), {"config": meta, "phases": rows})

    print(f"\n{meta}")
    header = f"{'ms per step':<22}" + "".join(
        f"{r['phase'] + ' (batch ' + str(r['batch']) + ')':>22}" for r in rows
    )
    print(header)
    print(f"{'wall (host)':<22}" + "".join(f"{r['step_ms']:>22.2f}" for r in rows))
    print(f"{'device busy':<22}" + "".join(f"{r['busy_ms']:>22.2f}" for r in rows))
    for k in KINDS:
        print(f"{'  ' + k:<22}" + "".join(f"{r['kinds_ms'][k]:>22.2f}" for r in rows))
    print(f"{'idle (gaps, host)':<22}" + "".join(f"{r['idle_ms']:>22.2f}" for r in rows))
    print(f"{'ops per step':<22}" + "".join(f"{r['ops']:>22}" for r in rows))
    for r in rows:
        print(
            f"gpu_profile phase={r['phase']} step_ms={r['step_ms']} busy_ms={r['busy_ms']} "
            f"conv_ms={r['kinds_ms']['convolution/matmul']} idle_ms={r['idle_ms']}"
        )


if __name__ == "__main__":
    sys.exit(main())
