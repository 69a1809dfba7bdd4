"""Per-image time of the crop predictor (network + flip test + decoding) on this machine's CPU,
for every runtime a user can pick here, against the float32 SavedModel timed in the same run.

    python benchmarks/cpu_inference.py                       # 2 and 8 stacks, batch 1 and 8
    python benchmarks/cpu_inference.py --stacks 1 --filters 16 --input-size 64 --quick  # a check

For each depth the paper's model is built with random weights (time does not depend on them) and
exported once per flip setting: the SavedModel (`predict_crops`, TensorFlow, float32: the
baseline), TensorFlow with oneDNN's automatic bfloat16 (the same SavedModel; a subprocess, the
grappler option is process-wide), the `.keras` model on the JAX backend (a subprocess), ONNX
Runtime (tf2onnx file; float32, and int8 QDQ from onnxruntime.quantization), TFLite (XNNPACK,
float32), OpenVINO (the library's runtime: float32, bfloat16, and the int8 NNCF export). int8
models are calibrated on random crops here: speed only (accuracy: benchmarks/cpu_accuracy.py).

Also counts the network's arithmetic (multiply-adds of the convolutions, x2 FLOPs, x2 with the
flip test) and gives each figure as a fraction of the peak of the cores used, for the processor
/proc/cpuinfo describes (`peak_flop_per_cycle`): float32 64 FLOP/cycle/core with AVX-512 on two
512-bit FMA units (Intel Xeon, AMD Zen 5), 32 on AMD Zen 4 (its AVX-512 runs on two 256-bit
units) or AVX2; bfloat16 1,024 with AMX, twice float32 with AVX512-BF16 alone (a dot product
of pairs per lane), else float32's; int8 2,048 ops with AMX, four times float32 with VNNI, else
float32's; at the clock /proc/cpuinfo reports (cores that boost above it have a higher peak,
so a fraction above 1 says they ran faster than that clock: the Zen 4 machine's float32 rows
did, docs/BENCHMARKS.md).

Each configuration: 2 untimed calls, then `--windows` windows of `--steps` calls, the median.
Lines: `cpu_inference stacks=<s> flip=<0|1> batch=<b> runtime=<name> precision=<p>
ms_per_image=<m> speedup_vs_fp32_savedmodel=<x>`.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def cpu_description(path="/proc/cpuinfo"):
    """(vendor, family, flags) of the first processor in /proc/cpuinfo; ("", 0, set()) if none."""
    vendor, family, flags = "", 0, set()
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "vendor_id" and not vendor:
                    vendor = value
                elif key == "cpu family" and not family:
                    family = int(value)
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return vendor, family, flags


def peak_flop_per_cycle(vendor, family, flags):
    """Peak multiply-add arithmetic per cycle and core, as FLOP (2 per multiply-add), by precision.

    float32: 16 lanes x 2 FMA units x 2 with AVX-512 on 512-bit units, half that on AMD Zen 4
    (family 25: AVX-512 instructions run on two 256-bit units) and with AVX2. bfloat16: AMX's
    tile unit does 512 multiply-adds a cycle; AVX512-BF16's `vdpbf16ps` does two products per
    float32 lane, so twice float32. int8: AMX 1,024 multiply-adds; VNNI's `vpdpbusd` four
    products per lane, so four times float32. A precision without native instructions gets
    float32's peak (the runtime converts).
    """
    if "avx512f" in flags:
        fp32 = 32 if vendor == "AuthenticAMD" and family == 25 else 64
    elif "avx2" in flags:
        fp32 = 32
    else:
        fp32 = 16
    if "amx_bf16" in flags:
        bf16 = 1024
    elif "avx512_bf16" in flags:
        bf16 = 2 * fp32
    else:
        bf16 = fp32
    if "amx_int8" in flags:
        int8 = 2048
    elif "avx512_vnni" in flags or "avx_vnni" in flags:
        int8 = 4 * fp32
    else:
        int8 = fp32
    return {"fp32": fp32, "bf16": bf16, "int8": int8}


def timed(call, windows, steps):
    call()
    call()
    times = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(steps):
            call()
        times.append((time.perf_counter() - start) / steps)
    return float(np.median(times))


def clock_hz():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return float(line.split(":")[1]) * 1e6
    except OSError:
        pass
    return None


def conv_macs(model):
    """Multiply-adds of the model's convolutions for one image (the rest is < 1%)."""
    import keras

    total = 0
    for layer in _layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            out = layer.output.shape
            kh, kw, cin, cout = layer.kernel.shape
            total += int(out[1]) * int(out[2]) * kh * kw * cin * cout
    return total


def _layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from _layers(layer)
        else:
            yield layer


def subprocess_times(kind, path, size, batch, args, env_extra):
    """Times `kind` (tf-bf16: the SavedModel with oneDNN's auto bfloat16; jax: the .keras
    model) in a fresh process; returns seconds per call."""
    env = dict(os.environ, **env_extra)
    out = subprocess.run(
        [
            sys.executable,
            os.path.abspath(__file__),
            "--child",
            kind,
            path,
            str(size),
            str(batch),
            str(args.windows),
            str(args.steps),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in out.stdout.splitlines():
        if line.startswith("child_seconds="):
            return float(line.split("=", 1)[1])
    raise RuntimeError(f"{kind} subprocess failed:\n{out.stderr[-2000:]}")


def child(kind, path, size, batch, windows, steps):
    crops = np.random.default_rng(1).random((batch, size, size, 3), np.float32)
    if kind == "tf-bf16":
        import tensorflow as tf

        tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": True})
        loaded = tf.saved_model.load(path)
        fn = loaded.signatures["predict_crops"]
        x = tf.constant(crops)
        seconds = timed(lambda: fn(crops=x)["keypoints"].numpy(), windows, steps)
    elif kind == "jax":
        import keras

        from keras_hourglass.deployment.inference import KerasCropPredictor

        model = keras.saving.load_model(path, compile=False)
        flip = os.environ.get("HOURGLASS_BENCH_FLIP", "1") == "1"
        predictor = KerasCropPredictor(model, flip_test=flip)
        seconds = timed(lambda: predictor(crops), windows, steps)
    else:
        raise SystemExit(f"unknown child {kind}")
    print(f"child_seconds={seconds}")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stacks", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--filters", type=int, default=256)
    parser.add_argument("--input-size", type=int, default=256)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--flip", type=int, nargs="+", default=[1, 0], choices=[0, 1])
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument(
        "--runtimes",
        nargs="+",
        default=["tf-bf16", "jax", "onnxruntime", "onnxruntime-int8", "tflite", "openvino"],
        help="besides the float32 SavedModel (always timed)",
    )
    parser.add_argument("--quick", action="store_true", help="1 window of 1 call (a check)")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, path, size, batch, windows, steps = args.child
        return child(kind, path, int(size), int(batch), int(windows), int(steps))
    if args.quick:
        args.windows, args.steps = 1, 1

    import keras
    import tensorflow as tf

    import keras_hourglass as kh
    from keras_hourglass.deployment import export, runtimes
    from keras_hourglass.deployment.saved_model import export_for_serving

    sys.path.insert(0, HERE)
    from _common import write_results

    hz = clock_hz()
    cores = os.cpu_count()
    peaks = peak_flop_per_cycle(*cpu_description())
    print(
        f"CPU: {cores} cores at {hz / 1e9 if hz else float('nan'):.2f} GHz nominal, bf16 "
        f"native: {runtimes.cpu_has_bf16()}, peak FLOP/cycle/core {peaks}; TensorFlow "
        f"{tf.__version__}, Keras {keras.__version__}",
        flush=True,
    )
    rows = []
    scratch = tempfile.mkdtemp(prefix="hourglass-cpu-")
    size = args.input_size
    try:
        for stacks in args.stacks:
            keras.utils.set_random_seed(0)
            model = kh.build_hourglass(
                num_stacks=stacks,
                filters=args.filters,
                input_shape=(size, size, 3),
                skeleton=kh.MPII,
            )
            keras_path = os.path.join(scratch, f"s{stacks}.keras")
            model.save(keras_path)
            gflop = 2 * conv_macs(model) / 1e9
            print(f"{stacks} stacks: {gflop:.1f} GFLOP per image and pass", flush=True)
            calibration = np.random.default_rng(2).random((8, size, size, 3), np.float32)
            for flip in args.flip:
                base = os.path.join(scratch, f"s{stacks}f{flip}")
                saved = export_for_serving(model, base, kh.MPII, 1, flip_test=bool(flip))
                loaded = tf.saved_model.load(saved)
                signature = loaded.signatures["predict_crops"]
                files = {}
                if {"onnxruntime", "onnxruntime-int8"} & set(args.runtimes):
                    files["onnx"] = export.export_onnx(model, base + ".onnx", flip_test=bool(flip))
                if "tflite" in args.runtimes:
                    files["tflite"] = export.export_tflite(
                        model, base + ".tflite", flip_test=bool(flip)
                    )
                if "onnxruntime-int8" in args.runtimes:
                    files["onnx-int8"] = quantize_onnx(files["onnx"], calibration)
                predictors = {}
                if "openvino" in args.runtimes:
                    for precision in ("fp32", "bf16") if runtimes.cpu_has_bf16() else ("fp32",):
                        predictors[("openvino", precision)] = runtimes.predictor(
                            model, bool(flip), "openvino", precision
                        )
                    xml = export.export_openvino(
                        model,
                        base + "-int8.xml",
                        flip_test=bool(flip),
                        precision="int8",
                        calibration=calibration,
                    )
                    predictors[("openvino", "int8")] = runtimes.OpenVINOPredictor.from_file(
                        xml, "bf16" if runtimes.cpu_has_bf16() else "fp32"
                    )
                for batch in args.batch:
                    crops = np.random.default_rng(1).random((batch, size, size, 3), np.float32)
                    x = tf.constant(crops)
                    measured = {}
                    measured[("savedmodel", "fp32")] = timed(
                        lambda: signature(crops=x)["keypoints"].numpy(), args.windows, args.steps
                    )
                    if "tf-bf16" in args.runtimes and runtimes.cpu_has_bf16():
                        measured[("savedmodel", "bf16")] = subprocess_times(
                            "tf-bf16", saved, size, batch, args, {}
                        )
                    if "jax" in args.runtimes:
                        measured[("keras-jax", "fp32")] = subprocess_times(
                            "jax",
                            keras_path,
                            size,
                            batch,
                            args,
                            {"KERAS_BACKEND": "jax", "HOURGLASS_BENCH_FLIP": str(flip)},
                        )
                    if "onnx" in files:
                        measured[("onnxruntime", "fp32")] = time_onnx(files["onnx"], crops, args)
                    if "onnx-int8" in files:
                        measured[("onnxruntime", "int8")] = time_onnx(
                            files["onnx-int8"], crops, args
                        )
                    if "tflite" in files:
                        measured[("tflite", "fp32")] = time_tflite(files["tflite"], crops, args)
                    for key, made in predictors.items():
                        measured[key] = timed(lambda: made(crops), args.windows, args.steps)
                    reference = measured[("savedmodel", "fp32")]
                    for (runtime, precision), seconds in measured.items():
                        ms = 1000 * seconds / batch
                        flops = gflop * 1e9 * (2 if flip else 1) / (seconds / batch)
                        peak = peaks[precision] * cores * hz if hz else None
                        row = {
                            "stacks": stacks,
                            "flip": flip,
                            "batch": batch,
                            "runtime": runtime,
                            "precision": precision,
                            "ms_per_image": round(ms, 1),
                            "speedup_vs_fp32_savedmodel": round(reference / seconds, 2),
                            "gflops": round(flops / 1e9, 1),
                            "fraction_of_peak": round(flops / peak, 3) if peak else None,
                        }
                        rows.append(row)
                        print(
                            f"cpu_inference stacks={stacks} flip={flip} batch={batch} "
                            f"runtime={runtime} precision={precision} ms_per_image={ms:.1f} "
                            f"speedup_vs_fp32_savedmodel={reference / seconds:.2f}  "
                            f"({row['gflops']} GFLOP/s, {row['fraction_of_peak']} of peak)",
                            flush=True,
                        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_results("cpu_inference", rows)
    print(json.dumps({"rows": len(rows)}))


def quantize_onnx(path, calibration):
    """int8 QDQ (static, per-channel weights) of the ONNX file's convolutions."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.left = [{"crops": crop[None]} for crop in calibration]

        def get_next(self):
            return self.left.pop() if self.left else None

    out = path[: -len(".onnx")] + "-int8.onnx"
    quantize_static(
        path,
        out,
        Reader(),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["Conv"],
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return out


def time_onnx(path, crops, args):
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return timed(lambda: session.run(None, {"crops": crops}), args.windows, args.steps)


def time_tflite(path, crops, args):
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=path, num_threads=os.cpu_count())
    runner = interpreter.get_signature_runner("predict_crops")
    return timed(lambda: runner(crops=crops), args.windows, args.steps)


if __name__ == "__main__":
    main()
