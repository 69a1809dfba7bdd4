"""Evaluate pose predictions with the published protocols and write CSVs and plots.

Three ways in:

    # the demo: a model on the held-out synthetic figures (rendered on first use, no download)
    python eval/evaluate.py --model runs/demo/best.keras
    # a model (.keras, an exported OpenVINO .xml or SavedModel) on a dataset
    python eval/evaluate.py --model runs/x/best.keras --dataset mpii --data-dir ~/data/mpii --out results/x
    # the same on the deployment runtime (OpenVINO, bf16 where the CPU has it)
    python eval/evaluate.py --model runs/x/best.keras --runtime openvino --dataset mpii --data-dir ~/data/mpii
    # a prediction file from any implementation against a dataset's ground truth
    python eval/evaluate.py --preds preds.mat --dataset mpii --annotations detections_our_format.mat --out results/y

MPII is scored with the official PCKh (0.6 x head-box diagonal, threshold 0.5, Mean over the 14
joints other than pelvis and thorax; also the count-weighted Mean and PCKh@0.1); LSP, FLIC, COCO,
custom data and the synthetic figures with PCK@0.2 of the torso (left shoulder to right hip; a
custom skeleton names its own). Inference is the paper's, through the model's own codec:
crop by centre and scale, flip test, quarter-pixel shift, back to image coordinates (`--no-flip`,
`--no-shift` to measure their effect).

Outputs in --out (every mode): summary.csv, per_joint.csv, curve.csv, predictions.csv (0-based
pixels), curve.png and sheet.png (worst and best people, when images are at hand); with --model
also preds.mat (`preds` N x K x 2 in the dataset's pixel base: 1-based for MPII, LSP and FLIC,
as the MPII evaluation tools and the published prediction files; --preds reads it back); COCO
adds coco_results.json and AP/AR rows.
"""

import argparse
import os
import time
import warnings

from keras_hourglass.cli import (
    MODEL_HELP,
    add_image_limit,
    add_logging,
    add_runtime_arguments,
    check_image_limit,
    configure_logging,
    ready,
    resolve_model_arg,
    say,
)
from keras_hourglass.config import EXECUTORS
from keras_hourglass.datasets import DATASETS


def build_parser():
    """evaluate.py's flags (the library's tables give their choices)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model",
        help="a .keras file, an exported .xml, .onnx, .tflite or SavedModel version folder, "
        + MODEL_HELP,
    )
    parser.add_argument(
        "--dataset",
        default=None,
        choices=list(DATASETS),
        help="the people to score: with --model, the dataset to predict (default: synthetic, "
        "the demo's held-out figures); with --preds, the dataset whose ground truth "
        "--annotations is (needed)",
    )
    parser.add_argument(
        "--data-dir",
        help="the dataset's folder (synthetic: a folder in ~/.keras by default), or the images of "
        "--annotations",
    )
    parser.add_argument(
        "--split",
        default=None,
        help="dataset split (default: the dataset's evaluation split: mpii valid, coco val2017, "
        "flic test, synthetic and custom test)",
    )
    parser.add_argument(
        "--preds", help="prediction file (.mat/.h5 with `preds` N x K x 2, or .csv)"
    )
    parser.add_argument(
        "--annotations",
        help="an annotation file of --dataset: the ground truth for --preds (MPII: "
        "detections_our_format.mat, a pose-hg-train .h5 or the JSON; LSP: joints.mat; FLIC: "
        "examples.mat; COCO: its JSON; custom: its JSON or CSV), or for --model an annotation file "
        "whose images are in --data-dir (custom: by default the file's folder)",
    )
    parser.add_argument(
        "--skeleton",
        help="custom data: the skeleton file (YAML or JSON) of --annotations or --data-dir "
        "(default: skeleton.yaml beside the annotations)",
    )
    _add_prediction_file_flags(parser)
    parser.add_argument(
        "--samples",
        type=int,
        default=0,
        help="score only the first N people (default: 0, all; the synthetic test split holds 256)",
    )
    parser.add_argument(
        "--held-out",
        type=int,
        default=0,
        help="score only the last N people of the dataset: the people train.py "
        "holds out with --val-count N (lsp/lspet: 1000)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=16, help="inference batch size (default: 16)"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="the main PCK threshold (default: the protocol's, 0.5 for PCKh, 0.2 for PCK)",
    )
    _add_detection_flags(parser)
    parser.add_argument("--no-flip", action="store_true", help="switch the flip test off")
    parser.add_argument(
        "--no-shift", action="store_true", help="switch the quarter-pixel shift off"
    )
    parser.add_argument(
        "--skip-bad", action="store_true", help="skip unusable records (listed) instead of stopping"
    )
    add_image_limit(parser)
    add_runtime_arguments(
        parser,
        default=None,
        note=" for a .keras file (the published-protocol figures in float32 on any machine; "
        "openvino scores what a deployment computes: docs/runtimes.md); an exported .xml runs "
        "on openvino",
    )
    parser.add_argument("--out", default=None, help="output folder (default: the model's folder)")
    parser.add_argument(
        "--executor",
        default=None,
        choices=EXECUTORS,
        help="input pipeline for --model: tf.data, or numpy (no TensorFlow needed); auto "
        "(default) takes tf.data when TensorFlow imports",
    )
    add_logging(parser)
    return parser


def _add_prediction_file_flags(parser):
    """--preds mode: the sheet's images and the file's pixel base."""
    parser.add_argument(
        "--image-dir", default=None, help="images for the prediction sheet in --preds mode"
    )
    parser.add_argument(
        "--preds-base",
        default="auto",
        choices=["auto", "0", "1"],
        help="pixel base of --preds: auto = 0 for a .csv (this project's predictions.csv), else "
        "the dataset's own (1 for MPII, LSP, FLIC .mat/.h5 files; 0 for COCO and custom)",
    )


def _add_detection_flags(parser):
    """COCO's keypoint AP with a detector's boxes (`evaluate_detections`)."""
    parser.add_argument(
        "--detections",
        help="COCO with --model: score with a detector's boxes (COCO detection results JSON: "
        "image_id, bbox, score) as the published top-down protocol does (box-score threshold, "
        "rescoring, OKS NMS; docs/evaluation.md) instead of the ground-truth boxes",
    )
    parser.add_argument(
        "--min-box-score",
        type=float,
        default=0.0,
        help="--detections: boxes below this score are left out (default: 0.0, SimpleBaseline "
        "and HRNet's)",
    )
    parser.add_argument(
        "--oks-nms",
        type=float,
        default=0.9,
        help="--detections: drop a pose whose OKS with a better-scoring one of its image is above "
        "this (default: 0.9; 1 keeps every pose)",
    )


def parse_args(argv=None):
    """The flags, parsed and checked before Keras loads (a bad one is a parser error, exit 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.quiet, args.debug)
    if args.threshold is not None and not 0.0 < args.threshold < float("inf"):
        parser.error(f"--threshold must be a positive number, got {args.threshold}")
    if args.held_out < 0 or args.samples < 0:
        parser.error("--held-out and --samples must not be negative")
    if args.batch_size < 1:
        parser.error("--batch-size must be positive")
    check_image_limit(parser, args)
    on_keras = args.runtime == "keras" or (
        args.runtime is None and not str(args.model or "").endswith(".xml")
    )
    if on_keras and args.precision == "bf16":
        parser.error(
            "--precision bf16 is for --runtime openvino or an OpenVINO .xml (keras predicts in "
            "float32)"
        )
    if args.out and os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out {args.out!r} is a file; name a folder for the tables and plots")
    if args.preds:
        if args.model:
            parser.error("use either --model or --preds, not both")
        if not args.annotations:
            parser.error("--preds needs --annotations (the ground truth to score against)")
        if not args.dataset:
            parser.error(
                "--preds needs --dataset, the dataset whose ground truth --annotations is "
                f"(one of {', '.join(n for n in DATASETS if n != 'synthetic')})"
            )
        if not args.out:
            parser.error("--preds needs --out")
        return args
    if not args.model and not args.dataset:
        parser.error(
            "give --dataset (and --data-dir) to score the shipped model on, --model with "
            "--dataset, or --preds with --dataset and --annotations"
        )
    name = resolve_model_arg(parser, args)
    if name and not args.out:
        args.out = os.path.join("results", name)  # not into the installed package
    args.dataset = args.dataset or "synthetic"
    entry = DATASETS[args.dataset]
    if entry.coco_oks:  # say it before predicting, not after
        try:
            import pycocotools.cocoeval  # noqa: F401
        except ImportError:
            parser.error(
                f"--dataset {args.dataset} scores COCO's AP with pycocotools, which is not "
                "installed: pip install 'keras-hourglass[coco]' (or pycocotools)"
            )
    if args.detections:
        if not entry.coco_oks:
            parser.error("--detections is for --dataset coco (COCO's keypoint AP)")
        if args.held_out:
            parser.error("--detections scores whole images: use --samples N (the first N images)")
    if not 0.0 <= args.min_box_score <= 1.0 or not 0.0 < args.oks_nms <= 1.0:
        parser.error("--min-box-score must be in [0, 1] and --oks-nms in (0, 1]")
    if not args.data_dir and not args.annotations and entry.default_data_dir is None:
        parser.error(f"--dataset {args.dataset} needs --data-dir or --annotations")
    if args.skeleton and entry.skeleton is not None:
        parser.error(f"--skeleton is for custom data: {args.dataset} has its own joints")
    ready()  # the flags are checked: Keras (and TensorFlow, quietly) from here on
    try:
        from keras_hourglass.inputs import resolve_executor

        args.executor = resolve_executor(args.executor)
    except ValueError as error:
        parser.error(str(error))
    return args


def load_evaluated(args):
    """--model through the one loader (`loader.load_model`: a .keras file, an OpenVINO `.xml`,
    a SavedModel folder, a shipped model's name) with --runtime (default: the file's own, Keras
    float32 for a .keras file), --precision, --no-flip and --no-shift."""
    from keras_hourglass.deployment.loader import ModelLoadError
    from keras_hourglass.deployment.loader import load_model as load

    try:
        return load(args.model, args.runtime, args.precision, not args.no_flip, not args.no_shift)
    except ModelLoadError as error:
        raise SystemExit(f"error: {error}") from None


def predictor_for(loaded, skeleton):
    """The crop predictor of a loaded model for people of `skeleton`, after checking the model
    predicts those joints (a file saved before models carried their skeleton takes the data's,
    when the joint counts agree); an exported model's flip test and shift are fixed at export."""
    from keras_hourglass.deployment.loader import ModelLoadError

    own, path = loaded.skeleton, loaded.path
    if own is None:
        joints = loaded.model.outputs[-1].shape[-1]
        if joints != skeleton.num_joints:
            raise SystemExit(
                f"error: the model {path!r} predicts {joints} joints, but {skeleton.name} has "
                f"{skeleton.num_joints}."
            )
        loaded.use_skeleton(skeleton)  # an older file: the data says which joints it predicts
    elif own.joint_names != skeleton.joint_names:
        raise SystemExit(
            f"error: the model {path!r} predicts the {own.name} joints, but the evaluation "
            f"data has the {skeleton.name} joints."
        )
    if loaded.exported and (loaded.flip_test != loaded.asked_flip or not loaded.asked_shift):
        warnings.warn(
            "An exported model's flip test and shift are fixed at export; --no-flip/"
            "--no-shift are ignored."
        )
    try:
        return loaded.predictor
    except ModelLoadError as error:
        raise SystemExit(f"error: {error}") from None


def runtime_of(loaded):
    """What the model runs on, for the summary line: "keras/fp32", "openvino/bf16",
    "tensorflow (SavedModel)"."""
    if loaded.format == "savedmodel":
        return "tensorflow (SavedModel)"
    return f"{loaded.runtime}/{loaded.precision}"


def read_records(args):
    """The people to score: the dataset's split from its folder, or --annotations (with its
    images in --data-dir), then --held-out / --samples."""
    from keras_hourglass.datasets import DatasetError, check_image_files, load_records

    records = load_records(
        args.dataset,
        args.data_dir,
        args.split,
        args.annotations,
        args.skeleton,
        args.skip_bad,
        args.model_input_size,
    )
    # Before --held-out, as training does: the held-out people are the last present and usable.
    records = check_image_files(records, args.max_image_pixels, args.skip_bad)
    if args.held_out:
        if args.held_out > len(records):
            raise DatasetError(
                f"--held-out {args.held_out}: the dataset has only {len(records)} people"
            )
        records = records.subset(-args.held_out, None)
    if args.samples:
        records = records.subset(None, args.samples)
    return records


def evaluate_model(args):
    """A model's predictions on a dataset's people, scored with the dataset's protocol."""
    from keras_hourglass.datasets import DatasetError, ground_truth_from_records
    from keras_hourglass.deployment.inference import predict_people

    loaded = load_evaluated(args)
    args.model_input_size = loaded.input_size
    try:
        records = read_records(args)
    except DatasetError as error:
        raise SystemExit(f"error: {error}") from None
    say(records.summary())
    entry = DATASETS[args.dataset]
    predictor = predictor_for(loaded, records.skeleton)
    # The ground truth checked before predicting (e.g. PCKh needs head boxes), after the model
    # was checked against the data's joints: one line, not a traceback after the prediction.
    import numpy as np

    from keras_hourglass.evaluation.protocols import EvaluationError, check_predictions

    gt = ground_truth_from_records(records, normalizer=entry.normalizer, dataset=entry.name)
    try:
        check_predictions(np.zeros(gt.keypoints.shape[:2] + (2,)), gt)
    except EvaluationError as error:
        raise SystemExit(f"error: {error}") from None
    start = time.time()
    try:
        preds, scores = predict_people(
            predictor, records, args.batch_size, args.executor, progress=True
        )
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    elapsed = time.time() - start
    out = args.out or os.path.dirname(os.path.abspath(args.model))
    try:
        result = report(preds, gt, out, scores, args.threshold)
    except EvaluationError as error:
        raise SystemExit(f"error: {error}") from None
    from keras_hourglass.evaluation.protocols import write_prediction_file

    write_prediction_file(preds, os.path.join(out, "preds.mat"), entry.preds_base)
    say(
        f"Wrote preds.mat ({len(records)} people x {preds.shape[1]} joints, "
        f"{entry.preds_base}-based: what --preds --dataset {args.dataset} reads back)"
    )
    name, main = gt.metric
    column = f"{name}@{args.threshold or main:g}"
    mean = float(result.summary.set_index("group").loc["Mean", column])
    say(
        f"\n{column} mean over {len(records)} people of {args.dataset}: {mean:.2f}% (flip test "
        f"{'on' if predictor.flip_test else 'off'}, shift {'off' if args.no_shift else 'on'}, "
        f"{runtime_of(loaded)}, {elapsed:.1f} s)"
    )
    if entry.coco_oks:
        coco_keypoint_metrics(records, preds, scores, out, result)
    return result


def report(preds, gt, out, scores=None, threshold=None):
    """Scores with the ground truth's protocol and writes every table: the one PCK path of the
    commands (datasets, prediction files and the demo's synthetic figures alike)."""
    from keras_hourglass.evaluation.protocols import evaluate as score
    from keras_hourglass.evaluation.protocols import (
        format_summary,
        write_prediction_sheet,
        write_report,
    )

    thresholds = None if threshold is None else tuple(dict.fromkeys((threshold, 0.1)))
    result = score(preds, gt, scores, thresholds)
    write_report(result, out)
    sheet = write_prediction_sheet(result, gt, preds, os.path.join(out, "sheet.png"))
    say(format_summary(result))
    written = "summary.csv, per_joint.csv, curve.csv, predictions.csv, curve.png"
    say(f"\nWrote {written}{', sheet.png' if sheet else ''} to {out}")
    return result


def coco_keypoint_metrics(records, preds, scores, out, result):
    """COCO's own metric next to PCK: writes coco_results.json, adds AP/AR rows (column
    `COCO OKS`, percent) to summary.csv and prints them."""
    import pandas as pd

    from keras_hourglass import files
    from keras_hourglass.evaluation.coco_eval import (
        CocoEvalError,
        coco_results,
        evaluate_keypoints,
        scope,
        write_results,
    )

    annotations = records.source
    scored = [r.record_id for r in records]
    try:
        results = coco_results(records, preds, scores, annotations)
        path = os.path.join(out, "coco_results.json")
        write_results(results, path)
        stats = evaluate_keypoints(annotations, results, scored)
        people, images, ignored = scope(annotations, scored)
    except CocoEvalError as error:
        raise SystemExit(f"error: {error}") from None
    rows = pd.DataFrame(
        {
            "group": [f"COCO {k}" for k in stats],
            "COCO OKS": [round(100 * v, 2) for v in stats.values()],
        }
    )
    result.summary = pd.concat([result.summary, rows], ignore_index=True)
    files.write_csv(result.summary, os.path.join(out, "summary.csv"))
    say(
        "\nCOCO keypoints (pycocotools, OKS; one prediction per ground-truth box; "
        f"{people} people in {images} images scored, {ignored} other people of those images "
        "not predicted (skipped or left out) and ignored): "
        + ", ".join(f"{k} {100 * v:.2f}" for k, v in stats.items())
        + f"\nWrote {path}; the AP/AR rows are in summary.csv"
    )


def evaluate_preds(args):
    """A prediction file scored against an annotation file of `--dataset`."""
    from keras_hourglass.evaluation.protocols import (
        EvaluationError,
        load_annotations,
        load_predictions,
    )

    try:
        gt = load_annotations(
            args.annotations, args.dataset, image_dir=args.image_dir, skeleton=args.skeleton
        )
        preds = load_predictions(args.preds)
        base = args.preds_base
        if base == "auto":  # .mat/.h5: their dataset's own convention; .csv: ours, 0-based
            csv = args.preds.lower().endswith(".csv")
            base = "0" if csv else str(DATASETS[args.dataset].preds_base)
        shift = int(base) - int(gt.one_based)
        if shift:
            say(
                f"Predictions are {base}-based, the ground truth {int(gt.one_based)}-based: "
                f"shifting predictions by {-shift} px."
            )
        return report(preds - shift, gt, args.out, threshold=args.threshold)
    except EvaluationError as error:
        raise SystemExit(f"error: {error}") from None


def _detected_people(table, images, scored, image_dir, skeleton):
    """Every box of the scored images as a `PersonRecord` to predict (no ground truth), with
    its image id, box score and area: (people, ids, box_scores, areas)."""
    import numpy as np

    from keras_hourglass.datasets import PersonRecord
    from keras_hourglass.geometry import PERSON_BOX_PX
    from keras_hourglass.poses.boxes import person_box

    k = skeleton.num_joints
    people, ids, box_scores, areas = [], [], [], []
    for image_id in scored:
        for n, (bbox, score) in enumerate(table.of("", image_id)):
            # A PersonRecord's scale is in PERSON_BOX_PX (200 px) units whatever the model's own
            # box unit: the crop covers the same pixels for every model.
            cx, cy, scale = person_box(bbox)
            people.append(
                PersonRecord(
                    os.path.join(image_dir, images[image_id]),
                    np.zeros((k, 2)),
                    np.zeros(k, bool),
                    np.zeros(k, bool),
                    np.array([cx, cy]),
                    scale,
                    float("nan"),
                    f"{image_id}:{n}",
                )
            )
            ids.append(image_id)
            box_scores.append(score)
            areas.append((scale * PERSON_BOX_PX) ** 2)
    return people, ids, box_scores, areas


def evaluate_detections(args):
    """COCO keypoint AP with a detector's boxes: every box above --min-box-score predicted,
    rescored and OKS-suppressed per image (`coco_eval.detection_results`), every image of the
    annotation file scored (--samples N: the first N)."""
    import pandas as pd

    from keras_hourglass import files
    from keras_hourglass.datasets import (
        DatasetError,
        Records,
        check_image_files,
        coco_files,
    )
    from keras_hourglass.deployment.inference import predict_people
    from keras_hourglass.evaluation.coco_eval import (
        CocoEvalError,
        annotation_images,
        detection_results,
        evaluate_keypoints,
        write_results,
    )
    from keras_hourglass.poses.boxes import BoxError, read_detections

    loaded = load_evaluated(args)
    entry = DATASETS[args.dataset]
    try:
        if args.annotations:
            annotations = os.path.expanduser(args.annotations)
            image_dir = args.data_dir or os.path.dirname(os.path.abspath(annotations))
        else:
            annotations, image_dir = coco_files(
                os.path.expanduser(args.data_dir), args.split or entry.eval_split
            )
        images = annotation_images(annotations)
        table = read_detections(args.detections, args.min_box_score)
        if not table.coco:
            raise BoxError(
                f"{args.detections}: expected COCO detection results (a list of image_id, bbox, "
                "score), the format detectors write for COCO"
            )
    except (DatasetError, BoxError, CocoEvalError, OSError, ValueError) as error:
        raise SystemExit(f"error: {error}") from None
    unknown = sorted(map(str, table.keys() - set(images)))
    if unknown:
        raise SystemExit(
            f"error: {args.detections}: image_id {', '.join(unknown[:5])} not in {annotations}"
        )
    scored = list(images)[: args.samples] if args.samples else list(images)
    people, ids, box_scores, areas = _detected_people(
        table, images, scored, image_dir, entry.skeleton
    )
    say(
        f"{len(people)} detections with a score of at least {args.min_box_score} in "
        f"{len(set(ids))} of the {len(scored)} images scored ({annotations})"
    )
    if not people:
        raise SystemExit("error: no detection to predict: lower --min-box-score?")
    records = Records(people, source=args.detections, skeleton=entry.skeleton)
    try:
        check_image_files(records, args.max_image_pixels)
    except DatasetError as error:
        raise SystemExit(f"error: {error}") from None
    predictor = predictor_for(loaded, entry.skeleton)
    start = time.time()
    preds, scores = predict_people(
        predictor, records, args.batch_size, args.executor, progress=True
    )
    elapsed = time.time() - start
    out = args.out or os.path.dirname(os.path.abspath(args.model))
    os.makedirs(out, exist_ok=True)
    try:
        results = detection_results(ids, preds, scores, box_scores, areas, args.oks_nms)
        path = os.path.join(out, "coco_results.json")
        write_results(results, path)
        stats = evaluate_keypoints(annotations, results, image_ids=scored)
    except CocoEvalError as error:
        raise SystemExit(f"error: {error}") from None
    summary = pd.DataFrame(
        {
            "group": [f"COCO {k}" for k in stats],
            "COCO OKS": [round(100 * v, 2) for v in stats.values()],
        }
    )
    files.write_csv(summary, os.path.join(out, "summary.csv"))
    say(
        f"\nCOCO keypoints with detector boxes (pycocotools, OKS; {len(people)} boxes, "
        f"{len(results)} poses after OKS NMS at {args.oks_nms:g}, {len(scored)} images scored, "
        f"{elapsed:.1f} s): "
        + ", ".join(f"{k} {100 * v:.2f}" for k, v in stats.items())
        + f"\nWrote {path} and summary.csv to {out}"
    )
    return stats


def main(argv=None):
    args = parse_args(argv)
    ready()
    if args.preds:
        return evaluate_preds(args)
    if args.detections:
        return evaluate_detections(args)
    return evaluate_model(args)
