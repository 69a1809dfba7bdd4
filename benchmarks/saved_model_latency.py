"""Batch-1 latency of the exported SavedModel on this machine's CPU (TensorFlow), as a TF Serving
user's request would run it: the full path (decode or take the image, crop, network, flip test,
decoding, map back) for 2 and 8 stacks, with and without the flip test.

    python benchmarks/saved_model_latency.py --stacks 2 8 --image ../shared/data/mpii_samples/004645041.jpg

For each configuration: builds the paper's model at that depth (random weights; speed does not
depend on them), exports it with `export_for_serving` into a scratch folder, loads it with
`tf.saved_model.load` and times `serving_default` (uint8 image), `predict_encoded` (the JPEG
bytes) and `predict_crops` (one 256x256 crop: the network + flip + decoding alone). The first
call is reported apart; then windows of calls, the median per call. Last lines:
`saved_model_latency stacks=<s> flip=<on|off> signature=<name> ms=<n>`.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stacks", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--filters", type=int, default=256)
    parser.add_argument("--input-size", type=int, default=256)
    parser.add_argument(
        "--image", default=None, help="a JPEG to send (default: a 720x1280 random image)"
    )
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    import keras_hourglass as kh
    from keras_hourglass.deployment.saved_model import export_for_serving

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _common import median, write_results

    if args.image:
        with open(args.image, "rb") as f:
            data = f.read()
    else:
        pixels = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), np.uint8)
        data = tf.io.encode_jpeg(pixels).numpy()
    image = tf.io.decode_jpeg(data)[None]
    crop = tf.random.stateless_uniform([1, args.input_size, args.input_size, 3], (0, 1))
    inputs = {
        "serving_default": {"images": image},
        "predict_encoded": {"images": tf.constant([data])},
        "predict_crops": {"crops": crop},
    }
    print(
        f"CPU: {os.cpu_count()} cores, TensorFlow {tf.__version__}, Keras {keras.__version__}; "
        f"image {image.shape[2]}x{image.shape[1]}"
    )
    rows = []
    scratch = tempfile.mkdtemp(prefix="hourglass-latency-")
    try:
        for stacks in args.stacks:
            keras.utils.set_random_seed(0)
            model = kh.build_hourglass(
                num_stacks=stacks,
                filters=args.filters,
                input_shape=(args.input_size, args.input_size, 3),
            )
            for flip in (True, False):
                start = time.perf_counter()
                path = export_for_serving(
                    model, os.path.join(scratch, f"s{stacks}"), kh.MPII, flip_test=flip
                )
                export_s = time.perf_counter() - start
                loaded = tf.saved_model.load(path)
                for name, feed in inputs.items():
                    fn = loaded.signatures[name]
                    start = time.perf_counter()
                    fn(**feed)["keypoints"].numpy()
                    first = time.perf_counter() - start
                    times = []
                    for _ in range(args.windows):
                        start = time.perf_counter()
                        for _ in range(args.steps):
                            fn(**feed)["keypoints"].numpy()
                        times.append((time.perf_counter() - start) / args.steps)
                    ms = median(times) * 1000
                    rows.append(
                        {
                            "stacks": stacks,
                            "flip": "on" if flip else "off",
                            "signature": name,
                            "ms": round(ms, 1),
                            "first_call_s": round(first, 2),
                            "export_s": round(export_s, 1),
                        }
                    )
                    print(
                        f"  stacks {stacks} flip {'on ' if flip else 'off'} {name:16s} "
                        f"{ms:8.1f} ms (first call {first:.2f} s, export {export_s:.0f} s)",
                        flush=True,
                    )
                del loaded
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_results("saved_model_latency", rows)
    print("\nstacks flip signature          ms")
    for r in rows:
        print(f"{r['stacks']:6d} {r['flip']:4s} {r['signature']:16s} {r['ms']:8.1f}")
    for r in rows:
        print(
            f"saved_model_latency stacks={r['stacks']} flip={r['flip']} "
            f"signature={r['signature']} ms={r['ms']}"
        )


if __name__ == "__main__":
    main()
