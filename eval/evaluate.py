"""Evaluate pose predictions with the published protocols and write CSVs and plots.

Three ways in:

    # a model (.keras or an exported SavedModel) on a dataset
    python eval/evaluate.py --model runs/x/best.keras --dataset mpii --data-dir ~/data/mpii --out results/x
    # a prediction file from any implementation against ground truth
    python eval/evaluate.py --preds preds.mat --annotations detections_our_format.mat --out results/y
    # the demo: a model on held-out synthetic figures (no download)
    python eval/evaluate.py --model runs/demo/best.keras

MPII is scored with the official PCKh (0.6 x head-box diagonal, threshold 0.5, Mean over the 14
joints other than pelvis and thorax; also the count-weighted Mean and PCKh@0.1); LSP, FLIC, COCO
and the synthetic data with PCK@0.2 of the torso (left shoulder to right hip). Inference is the
paper's: crop by centre and scale, flip test, quarter-pixel shift, back to image coordinates
(`--no-flip`, `--no-shift` to measure their effect).

Outputs in --out (every mode, the demo's included): summary.csv, per_joint.csv, curve.csv,
predictions.csv, curve.png and sheet.png (worst and best people, when images are at hand).
"""

import argparse
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault(
    "KERAS_HOURGLASS_QUIET", "1"
)  # TensorFlow's start-up noise: keras_hourglass.quiet

# Held-out synthetic figures use a seed that training never uses (training uses seed and
# seed + 1_000_003 for validation).
HELD_OUT_SEED = 2_000_029


def parse_args(argv=None):
    from keras_hourglass.datasets import DATASETS

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="a .keras file or an exported SavedModel version folder")
    parser.add_argument(
        "--dataset",
        default="synthetic",
        choices=list(DATASETS),
        help="evaluation data for --model (default: synthetic); with --preds, the dataset "
        "whose reader reads --annotations (default: told by the file)",
    )
    parser.add_argument(
        "--data-dir", help="the dataset's folder (for --dataset other than synthetic)"
    )
    parser.add_argument(
        "--split", default=None, help="dataset split (mpii: valid (default) or train; flic: test)"
    )
    parser.add_argument(
        "--preds", help="prediction file (.mat/.h5 with `preds` N x K x 2, or .csv)"
    )
    parser.add_argument(
        "--annotations",
        help="ground truth: for --preds detections_our_format.mat, a pose-hg-train .h5, LSP joints.mat, COCO or MPII JSON; for --model an annotation file whose images are in --data-dir",
    )
    parser.add_argument(
        "--image-dir", default=None, help="images for the prediction sheet in --preds mode"
    )
    parser.add_argument(
        "--preds-base",
        default="auto",
        choices=["auto", "0", "1"],
        help="pixel base of --preds: auto = the dataset's own (1 for MPII, LSP, FLIC; 0 for COCO)",
    )
    parser.add_argument(
        "--samples", type=int, default=256, help="held-out synthetic figures (default: 256)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=HELD_OUT_SEED,
        help=f"seed of the held-out figures (default: {HELD_OUT_SEED})",
    )
    parser.add_argument(
        "--batch-size", type=int, default=16, help="inference batch size (default: 16)"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.2,
        help="PCK threshold of the synthetic mode (default: 0.2)",
    )
    parser.add_argument("--no-flip", action="store_true", help="switch the flip test off")
    parser.add_argument(
        "--no-shift", action="store_true", help="switch the quarter-pixel shift off"
    )
    parser.add_argument(
        "--skip-bad", action="store_true", help="skip unusable records (listed) instead of stopping"
    )
    parser.add_argument(
        "--max-image-pixels",
        type=int,
        default=None,
        help="refuse images above this many pixels, read from their headers (default: 50,000,000)",
    )
    parser.add_argument(
        "--held-out",
        type=int,
        default=0,
        help="score only the last N people of the dataset: the people train.py "
        "holds out with --val-count N (lsp/lspet: 1000)",
    )
    parser.add_argument("--out", default=None, help="output folder (default: the model's folder)")
    parser.add_argument(
        "--executor",
        default=None,
        choices=("auto", "tf.data", "numpy"),
        help="input pipeline for --model on a dataset: tf.data, or numpy (no "
        "TensorFlow needed); auto (default) takes tf.data when TensorFlow "
        "imports",
    )
    args = parser.parse_args(argv)
    if not 0.0 < args.threshold < float("inf"):
        parser.error(f"--threshold must be a positive number, got {args.threshold}")
    try:
        from keras_hourglass.inputs import resolve_executor

        if args.model and args.dataset != "synthetic":
            args.executor = resolve_executor(args.executor)
    except ValueError as error:
        parser.error(str(error))
    if args.held_out < 0:
        parser.error("--held-out must not be negative")
    if args.samples < 1 or args.batch_size < 1:
        parser.error("--samples and --batch-size must be positive")
    if args.preds:
        if args.model:
            parser.error("use either --model or --preds, not both")
        if not args.annotations:
            parser.error("--preds needs --annotations (the ground truth to score against)")
        if not args.out:
            parser.error("--preds needs --out")
    elif not args.model:
        parser.error("give --model (with --dataset) or --preds with --annotations")
    elif not os.path.exists(args.model):
        parser.error(f"--model {args.model!r}: no such file or folder")
    elif args.dataset != "synthetic" and not args.data_dir:
        parser.error(f"--dataset {args.dataset} needs --data-dir")
    return args


def load_model(path, skeleton):
    """A .keras model or a SavedModel's `predict_crops` endpoint, as a predictor of crops, after
    checking that the skeleton it carries (models and exports describe themselves) is the
    evaluation data's `skeleton`."""
    import keras

    import keras_hourglass  # noqa: F401  (registers the model class for loading)

    if os.path.isdir(path):
        from keras_hourglass.export import (
            ServingModelError,
            load_serving_model,
            skeleton_of_metadata,
        )

        try:
            model, meta = load_serving_model(path, need=("predict_crops",))
            own = skeleton_of_metadata(meta)
        except ServingModelError as error:
            raise SystemExit(str(error)) from None
        except Exception as error:
            raise SystemExit(f"Could not load the SavedModel {path!r}: {error}") from error
    else:
        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as error:  # report which file failed, whatever the loader raised
            raise SystemExit(f"Could not load the model {path!r}: {error}") from error
        own = getattr(model, "skeleton", None)
    if own is not None and own.joint_names != skeleton.joint_names:
        raise SystemExit(
            f"error: the model {path!r} predicts the {own.name} joints, but the evaluation data "
            f"has the {skeleton.name} joints."
        )
    return model


def model_info(model):
    """(input size, number of joints) of a .keras model or an exported SavedModel."""
    if hasattr(model, "signatures"):
        spec = model.signatures["predict_crops"].structured_input_signature[1]["crops"]
        out = model.signatures["predict_crops"].structured_outputs["scores"]
        return int(spec.shape[1]), int(out.shape[-1])
    return int(model.inputs[0].shape[1]), int(model.outputs[-1].shape[-1])


def make_crop_predictor(model, codec, flip_index):
    """crops (B, S, S, 3) -> (keypoints in crop px, scores), as NumPy."""
    import numpy as np

    if hasattr(model, "signatures"):
        import tensorflow as tf

        if flip_index is None or not codec.shift:
            warnings.warn(
                "A SavedModel's flip test and shift are fixed at export; --no-flip/--no-shift are ignored."
            )
        fn = model.signatures["predict_crops"]

        def run(crops):
            out = fn(crops=tf.constant(crops, tf.float32))
            return out["keypoints"].numpy(), out["scores"].numpy()

        return run
    from keras_hourglass.inference import make_predict_function

    predict = make_predict_function(model, codec, flip_index)

    def run(crops):
        keypoints, scores = predict(crops)
        return np.asarray(keypoints), np.asarray(scores)

    return run


def evaluate_synthetic(args):
    """The demo's evaluation: held-out synthetic figures (a seed training never uses), scored
    by the same `keras_hourglass.evaluation.evaluate` as every dataset (PCK of the torso)."""
    import numpy as np

    import keras_hourglass as kh
    from keras_hourglass.datasets import get_dataset
    from keras_hourglass.evaluation import GroundTruth
    from keras_hourglass.metrics import torso_sizes

    entry = get_dataset("synthetic")
    skeleton = entry.skeleton
    model = load_model(args.model, skeleton)
    size, joints = model_info(model)
    if joints != skeleton.num_joints:
        raise SystemExit(
            f"The model {args.model!r} predicts {joints} joints, but the synthetic dataset has "
            f"{skeleton.num_joints} (MPII order)."
        )
    codec = kh.HeatmapCodec(size, size // 4, shift=not args.no_shift)
    predict = make_crop_predictor(model, codec, None if args.no_flip else skeleton.flip_index)

    images, keypoints, visible = kh.synthetic_arrays(args.samples, seed=args.seed, size=size)
    start = time.time()
    predictions = []
    for i in range(0, args.samples, args.batch_size):
        kp, _ = predict(images[i : i + args.batch_size].astype("float32") / 255.0)
        predictions.append(kp)
    predictions = np.concatenate(predictions)
    elapsed = time.time() - start

    a, b = (skeleton.index(j) for j in entry.normalizer[1])
    gt = GroundTruth(
        keypoints=keypoints.astype(np.float64),
        annotated=visible > 0,
        normalizers=torso_sizes(keypoints, a, b),
        skeleton=skeleton,
        source=f"{args.samples} synthetic figures, seed {args.seed}",
        normalizer=entry.normalizer,
        dataset="synthetic",
    )
    out = args.out or os.path.dirname(os.path.abspath(args.model))
    thresholds = (args.threshold,) if args.threshold == 0.1 else (args.threshold, 0.1)
    result = report(predictions, gt, out, thresholds=thresholds)
    metric = f"PCK@{args.threshold:g}"
    mean = float(result.summary.set_index("group").loc["Mean", metric])
    print(
        f"\n{metric} mean over {args.samples} held-out synthetic figures: {mean:.2f}% "
        f"(flip test {'off' if args.no_flip else 'on'}, shift {'off' if args.no_shift else 'on'}, "
        f"{elapsed:.1f} s)"
    )
    return {"pck_mean": mean, "csv": os.path.join(out, "summary.csv")}


def predict_dataset(model, records, skeleton, batch_size, flip=True, shift=True, executor=None):
    """The paper's inference on a dataset: (N, K, 2) keypoints in original 0-based pixels and
    (N, K) scores, in the records' order. `executor`: the input pipeline (`inputs.EXECUTORS`)."""
    import numpy as np

    import keras_hourglass as kh
    from keras_hourglass.inputs import batches, pose_dataset

    size, joints = model_info(model)
    if joints != skeleton.num_joints:
        raise SystemExit(
            f"The model predicts {joints} joints, but {skeleton.name} has {skeleton.num_joints}."
        )
    codec = kh.HeatmapCodec(size, size // 4, shift=shift)
    predict = make_crop_predictor(model, codec, skeleton.flip_index if flip else None)
    ds = pose_dataset(
        records, skeleton, codec, batch_size, training=False, num_stacks=1, executor=executor
    )
    keypoints = np.zeros((len(records), skeleton.num_joints, 2))
    scores = np.zeros((len(records), skeleton.num_joints))
    done = 0
    start = time.time()
    for images, _, meta in batches(ds):
        kp, sc = predict(images)
        index = meta["index"]
        keypoints[index] = np.asarray(kh.crop_to_original(kp, meta["center"], meta["scale"], size))
        scores[index] = sc
        done += len(index)
        print(
            f"\r  {done}/{len(records)} people, {done / (time.time() - start):.1f}/s",
            end="",
            file=sys.stderr,
            flush=True,
        )
    print(file=sys.stderr)
    return keypoints, scores


def report(preds, gt, out, scores=None, thresholds=None):
    """Scores with the ground truth's protocol and writes every table: the one PCK path of the
    commands (datasets, prediction files and the demo's synthetic figures alike)."""
    from keras_hourglass.evaluation import evaluate as score
    from keras_hourglass.evaluation import format_summary, write_prediction_sheet, write_report

    result = score(preds, gt, scores, thresholds)
    write_report(result, out)
    sheet = write_prediction_sheet(result, gt, preds, os.path.join(out, "sheet.png"))
    print(format_summary(result))
    written = "summary.csv, per_joint.csv, curve.csv, predictions.csv, curve.png"
    print(f"\nWrote {written}{', sheet.png' if sheet else ''} to {out}")
    return result


def read_records(args):
    """The dataset's records: from its usual layout, or from --annotations with images in
    --data-dir (e.g. MPII's annot/valid.h5 with its images/ folder)."""
    from keras_hourglass import datasets

    if not args.annotations:
        return datasets.read_dataset(
            args.dataset, args.data_dir, args.split, skip_bad=args.skip_bad
        )
    path, entry = args.annotations, datasets.get_dataset(args.dataset)
    reader = entry.annotation_readers.get(os.path.splitext(path.lower())[1])
    if reader is None:
        raise datasets.DatasetError(
            f"--annotations {path!r}: not a {args.dataset} annotation file "
            f"({', '.join(entry.annotation_readers)} expected)"
        )
    return reader(path, args.data_dir, skip_bad=args.skip_bad)


def evaluate_model(args):
    from keras_hourglass.datasets import DatasetError, Records, check_image_files, get_dataset
    from keras_hourglass.evaluation import ground_truth_from_records

    try:
        records = read_records(args)
        if args.held_out:
            if args.held_out > len(records):
                raise DatasetError(
                    f"--held-out {args.held_out}: the dataset has only {len(records)} people"
                )
            records = Records(records[-args.held_out :], records.skipped, records.source)
        check_image_files(records, args.max_image_pixels)
    except DatasetError as error:
        raise SystemExit(f"error: {error}") from None
    print(records.summary())
    entry = get_dataset(args.dataset)
    skeleton = entry.skeleton
    model = load_model(args.model, skeleton)
    preds, scores = predict_dataset(
        model,
        records,
        skeleton,
        args.batch_size,
        flip=not args.no_flip,
        shift=not args.no_shift,
        executor=args.executor,
    )
    out = args.out or os.path.dirname(os.path.abspath(args.model))
    result = report(preds, ground_truth_from_records(records, skeleton), out, scores)
    if entry.coco_oks:
        coco_keypoint_metrics(records, preds, scores, out, result)
    return result


def coco_keypoint_metrics(records, preds, scores, out, result):
    """COCO's own metric next to PCK: writes coco_results.json, adds AP/AR rows (column
    `COCO OKS`, percent) to summary.csv and prints them."""
    import pandas as pd

    from keras_hourglass.coco_eval import (
        CocoEvalError,
        coco_results,
        evaluate_keypoints,
        write_results,
    )
    from keras_hourglass.evaluation import _atomic_csv

    annotations = records.source
    try:
        results = coco_results(records, preds, scores, annotations)
        path = os.path.join(out, "coco_results.json")
        write_results(results, path)
        stats = evaluate_keypoints(annotations, results)
    except CocoEvalError as error:
        raise SystemExit(f"error: {error}") from None
    rows = pd.DataFrame(
        {
            "group": [f"COCO {k}" for k in stats],
            "COCO OKS": [round(100 * v, 2) for v in stats.values()],
        }
    )
    result.summary = pd.concat([result.summary, rows], ignore_index=True)
    _atomic_csv(result.summary, os.path.join(out, "summary.csv"))
    print(
        "\nCOCO keypoints (pycocotools, OKS; one prediction per ground-truth box): "
        + ", ".join(f"{k} {100 * v:.2f}" for k, v in stats.items())
        + f"\nWrote {path}; the AP/AR rows are in summary.csv"
    )


def evaluate_preds(args):
    from keras_hourglass.datasets import DATASETS
    from keras_hourglass.evaluation import EvaluationError, load_annotations, load_predictions

    dataset = None if args.dataset == "synthetic" else args.dataset
    try:
        gt = load_annotations(args.annotations, image_dir=args.image_dir, dataset=dataset)
        preds = load_predictions(args.preds)
        base = args.preds_base
        if base == "auto":  # prediction files use their dataset's own convention
            base = str(DATASETS[gt.dataset].preds_base if gt.dataset else 1)
        shift = int(base) - int(gt.one_based)
        if shift:
            print(
                f"Predictions are {base}-based, the ground truth {int(gt.one_based)}-based: "
                f"shifting predictions by {-shift} px."
            )
        return report(preds - shift, gt, args.out)
    except EvaluationError as error:
        raise SystemExit(f"error: {error}") from None


def main(argv=None):
    args = parse_args(argv)
    if args.preds:
        return evaluate_preds(args)
    if args.dataset == "synthetic":
        return evaluate_synthetic(args)
    return evaluate_model(args)


if __name__ == "__main__":
    main()
