"""Evaluate a trained stacked hourglass and write PCK tables.

    python eval/evaluate.py --model runs/demo/best.keras

On the embedded synthetic dataset (held-out figures from a seed never used in training) it
predicts with the paper's inference (flip test, quarter-pixel shift), computes PCK@0.2
normalised by the torso (left shoulder to right hip) and writes pck.csv: one row per joint and a
Mean row (unweighted mean over the 14 joints other than pelvis and thorax), in percent.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Held-out synthetic figures use a seed that training never uses (training uses seed and
# seed + 1_000_003 for validation).
HELD_OUT_SEED = 2_000_029


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="a .keras file from train/train.py")
    parser.add_argument("--dataset", default="synthetic", choices=["synthetic"], help="evaluation data (default: synthetic)")
    parser.add_argument("--samples", type=int, default=256, help="held-out synthetic figures (default: 256)")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED, help=f"seed of the held-out figures (default: {HELD_OUT_SEED})")
    parser.add_argument("--batch-size", type=int, default=16, help="inference batch size (default: 16)")
    parser.add_argument("--threshold", type=float, default=0.2, help="PCK threshold as a fraction of the torso size (default: 0.2)")
    parser.add_argument("--no-flip", action="store_true", help="switch the flip test off")
    parser.add_argument("--no-shift", action="store_true", help="switch the quarter-pixel shift off")
    parser.add_argument("--out", default=None, help="output folder (default: the model's folder)")
    args = parser.parse_args(argv)
    if args.samples < 1 or args.batch_size < 1:
        parser.error("--samples and --batch-size must be positive")
    if not os.path.isfile(args.model):
        parser.error(f"--model {args.model!r}: no such file")
    return args


def load_model(path):
    import keras

    import keras_hourglass  # noqa: F401  (registers the model class for loading)

    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # report which file failed, whatever the loader raised
        raise SystemExit(f"Could not load the model {path!r}: {error}") from error


def evaluate(args):
    import numpy as np

    import keras_hourglass as kh
    from keras_hourglass.metrics import normalized_errors, pck_table, torso_sizes

    model = load_model(args.model)
    skeleton = kh.MPII
    if model.outputs[-1].shape[-1] != skeleton.num_joints:
        raise SystemExit(
            f"The model {args.model!r} predicts {model.outputs[-1].shape[-1]} joints, but the "
            f"synthetic dataset has {skeleton.num_joints} (MPII order)."
        )
    size = model.inputs[0].shape[1]
    codec = kh.HeatmapCodec(size, size // 4, shift=not args.no_shift)
    flip_index = None if args.no_flip else skeleton.flip_index

    images, keypoints, visible = kh.synthetic_arrays(args.samples, seed=args.seed, size=size)
    start = time.time()
    predictions, scores = [], []
    for i in range(0, args.samples, args.batch_size):
        batch = images[i : i + args.batch_size].astype("float32") / 255.0
        kp, sc, _ = kh.predict_keypoints(model, batch, codec, flip_index)
        predictions.append(np.asarray(kp))
        scores.append(np.asarray(sc))
    predictions = np.concatenate(predictions)
    elapsed = time.time() - start

    a, b = skeleton.index("left_shoulder"), skeleton.index("right_hip")
    sizes = torso_sizes(keypoints, a, b)
    annotated = (visible > 0) & (sizes[:, None] > 0)
    errors = normalized_errors(predictions, keypoints, sizes)
    metric = f"PCK@{args.threshold:g}"
    table = pck_table(errors, annotated, args.threshold, skeleton, metric)

    out = args.out or os.path.dirname(os.path.abspath(args.model))
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "pck.csv")
    tmp = path + ".tmp"
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)
    print(table.to_string(index=False))
    mean = float(table.loc[table.joint == "Mean", metric].iloc[0])
    print(
        f"\n{metric} mean over {args.samples} held-out synthetic figures: {mean:.2f}% "
        f"(flip test {'off' if args.no_flip else 'on'}, shift {'off' if args.no_shift else 'on'}, "
        f"{elapsed:.1f} s)\nWrote {path}"
    )
    return {"pck_mean": mean, "csv": path}


def main(argv=None):
    evaluate(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
