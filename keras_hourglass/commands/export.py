r"""Export a trained model as a versioned SavedModel for TF Serving.

    python train/export.py --model runs/demo/best.keras
    python train/export.py --model runs/lsp/best.keras --out saved_models/lsp --version 3
    python train/export.py            # the shipped model -> saved_models/lspet-hg2-128/<version>/

writes saved_models/hourglass/<next version>/ (a shipped model, named or the default when
--model is left out: saved_models/<its name>/) with the signatures `serving_default` (uint8
images), `serving_boxes` (images + person boxes), `predict_encoded` and `predict_encoded_boxes`
(JPEG/PNG bytes), and `predict_crops` (evaluation): keypoints in the input images' pixels,
scores, heatmaps and the joint names out, cropping, flip test and decoding (the model's own
codec) inside; `assets.extra/tf_serving_warmup_requests` (one request per signature, which TF
Serving runs when it loads the version, so the first user does not wait for the set-up); and
saved_models/models.config for `tensorflow_model_server --model_config_file`, with each model's
version policy (--serve-versions latest:2 keeps the two newest served). The model's
skeleton, codec and crop convention come from the .keras file; --skeleton is only for files saved
before models described themselves.

    python train/export.py --model M.keras --format onnx     # saved_models/hourglass.onnx
    python train/export.py --model M.keras --format tflite   # saved_models/hourglass.tflite

write the crop-level predictor (the SavedModel's `predict_crops`) as one ONNX or TFLite file.

    python train/export.py --model M.keras --format openvino                 # fp32
    python train/export.py --model M.keras --format openvino --precision int8 \
        --calibration-dataset lspet --calibration-data-dir ~/data/lspet

write it as an OpenVINO model (saved_models/hourglass.xml + .bin + .xml.json), the fastest CPU
runtime here (docs/runtimes.md): float32 weights, float16 weights (--precision fp16: half the
file), or int8 (NNCF post-training quantisation of the network, the decoding kept in float,
calibrated on the first --calibration-count people of the calibration data: use the model's
training people). predict.py takes the .xml.
"""

import argparse
import os

from keras_hourglass.cli import (
    MODEL_HELP,
    add_logging,
    configure_logging,
    ready,
    resolve_model_arg,
    say,
)
from keras_hourglass.deployment.core import EXPORT_FORMATS, EXPORT_PRECISIONS
from keras_hourglass.skeletons import SKELETONS


def build_parser():
    """export.py's flags."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="a .keras file from train/train.py, " + MODEL_HELP)
    parser.add_argument(
        "--out",
        default=None,
        help="TF Serving model folder; its name is the served model's name (default: "
        "saved_models/<the shipped model's name> for a shipped model, else saved_models/hourglass)",
    )
    parser.add_argument(
        "--version", type=int, default=None, help="version number (default: the next free one)"
    )
    parser.add_argument(
        "--skeleton",
        choices=sorted(SKELETONS),
        help="joint table of the model (default: the one saved in the model; needed only for "
        "models saved before they carried it)",
    )
    parser.add_argument("--no-flip", action="store_true", help="export without the flip test")
    parser.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default="savedmodel",
        help="savedmodel (TF Serving, default); onnx, tflite or openvino: one file of the "
        "crop-level predictor (crops in, keypoints in crop pixels out) at "
        "--out (default saved_models/hourglass.onnx / .tflite / .xml)",
    )
    parser.add_argument(
        "--precision",
        choices=EXPORT_PRECISIONS,
        default="fp32",
        help="--format openvino: fp32 (default), fp16 (weights stored in float16) or int8 "
        "(quantised; needs --calibration-dataset)",
    )
    parser.add_argument(
        "--calibration-dataset",
        help="int8: the dataset whose people calibrate the quantisation (use the model's "
        "training data), read as evaluate.py reads --dataset",
    )
    parser.add_argument("--calibration-data-dir", help="int8: the calibration dataset's folder")
    parser.add_argument(
        "--calibration-split",
        default=None,
        help="int8: the calibration split (default: the dataset's training split)",
    )
    parser.add_argument(
        "--calibration-annotations",
        help="int8: an annotation file to calibrate on instead of the folder's split",
    )
    parser.add_argument(
        "--calibration-count",
        type=int,
        default=300,
        help="int8: people to calibrate on, the first of the split (default: 300)",
    )
    parser.add_argument(
        "--serve-versions",
        default=None,
        help="which versions TF Serving serves, written to models.config: latest:N (the N "
        "newest), all, or specific:V1,V2 (default: as before for this model, else latest:1, TF "
        "Serving's own default)",
    )
    parser.add_argument(
        "--labels",
        default=None,
        help="TF Serving version labels written to models.config, e.g. stable=1,canary=2 "
        "(clients may ask for a label; each must name a served version; '' removes them)",
    )
    parser.add_argument(
        "--max-image-pixels",
        type=int,
        default=None,
        help="the SavedModel refuses encoded images whose header claims more "
        "pixels (default: 50,000,000)",
    )
    add_logging(parser)
    return parser


def parse_args(argv=None):
    """The flags, parsed and checked before Keras loads (a bad one is a parser error, exit 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.quiet, args.debug)
    if args.max_image_pixels is not None and args.max_image_pixels < 1:
        parser.error("--max-image-pixels must be positive")
    if args.precision != "fp32" and args.format != "openvino":
        parser.error("--precision is for --format openvino")
    if args.precision == "int8" and not args.calibration_dataset:
        parser.error(
            "--precision int8 needs --calibration-dataset (real people to calibrate on: the "
            "model's training data)"
        )
    if args.calibration_dataset and args.precision != "int8":
        parser.error("--calibration-dataset is for --precision int8")
    if args.calibration_count < 1:
        parser.error("--calibration-count must be positive")
    name = resolve_model_arg(parser, args)
    if args.out is None:
        args.out = os.path.join("saved_models", name or "hourglass")
    if args.format != "savedmodel":
        if args.version is not None:
            parser.error("--version is for --format savedmodel (TF Serving's layout)")
        if args.out == os.path.join("saved_models", name or "hourglass"):
            suffix = "xml" if args.format == "openvino" else args.format
            args.out = f"{args.out}.{suffix}"
        if args.format == "openvino" and not args.out.endswith(".xml"):
            parser.error(f"--out {args.out!r}: an OpenVINO model is an .xml file (and its .bin)")
    if not os.path.isfile(args.model):
        parser.error(f"--model {args.model!r}: not a .keras file")
    if args.labels:
        from keras_hourglass.deployment.saved_model import parse_version_labels

        try:
            parse_version_labels(args.labels)
        except ValueError as error:
            parser.error(f"--labels: {error}")
        if args.format != "savedmodel":
            parser.error("--labels is for --format savedmodel (TF Serving's layout)")
    if args.serve_versions is not None:
        from keras_hourglass.deployment.saved_model import parse_version_policy

        try:
            parse_version_policy(args.serve_versions)
        except ValueError as error:
            parser.error(f"--serve-versions: {error}")
        if args.format != "savedmodel":
            parser.error("--serve-versions is for --format savedmodel (TF Serving's layout)")
    if args.version is not None and args.version < 1:
        parser.error(f"--version must be a positive integer, got {args.version}")
    return args


def main(argv=None):
    args = parse_args(argv)
    ready()

    from keras_hourglass.deployment.export import export_model
    from keras_hourglass.deployment.saved_model import SIGNATURES
    from keras_hourglass.network.model import load_model_file
    from keras_hourglass.skeletons import model_skeleton

    try:
        model = load_model_file(args.model)
    except ValueError as error:
        raise SystemExit(f"error: --model {error}") from None
    try:
        skeleton = model_skeleton(model, args.skeleton)
    except ValueError as error:
        raise SystemExit(f"error: --model {args.model}: {error}") from None
    name = skeleton.name
    if args.format == "openvino":
        return export_openvino_command(args, model, skeleton)
    if args.format != "savedmodel":
        try:
            path = export_model(model, args.out, args.format, skeleton, not args.no_flip)
        except ValueError as error:
            raise SystemExit(f"error: {error}") from None
        say(
            f"Exported {args.model} to {path} and {path}.json ({args.format}: crops "
            f"[batch, S, S, 3] float32 in [0, 1] -> keypoints in crop pixels, scores, heatmaps; "
            f"flip test {'off' if args.no_flip else 'on'})"
        )
        return path
    try:
        path = export_model(
            model,
            args.out,
            "savedmodel",
            skeleton,
            not args.no_flip,
            version=args.version,
            max_pixels=args.max_image_pixels,
        )
    except (ValueError, FileExistsError) as error:
        raise SystemExit(f"error: {error}") from None
    if args.serve_versions or args.labels is not None:
        from keras_hourglass.deployment.saved_model import set_version_policy

        try:
            set_version_policy(args.out, args.serve_versions, args.labels)
        except ValueError as error:
            raise SystemExit(f"error: {error}") from None
    root = os.path.dirname(os.path.abspath(args.out))
    say(
        f"Exported {args.model} to {path} ({name} skeleton, flip test "
        f"{'off' if args.no_flip else 'on'}); signatures: {', '.join(SIGNATURES)}\n"
        f"Serve: docker run -p 8500:8500 -p 8501:8501 -v {root}:/models tensorflow/serving "
        f"--model_config_file=/models/models.config"
    )
    return path


def export_openvino_command(args, model, skeleton):
    from keras_hourglass.deployment.export import calibration_crops, export_model
    from keras_hourglass.deployment.runtimes import resolve_runtime

    resolve_runtime("openvino")
    calibration = None
    if args.precision == "int8":
        from keras_hourglass.datasets import DATASETS, DatasetError, load_records

        try:
            split = args.calibration_split or (
                None
                if args.calibration_annotations
                else DATASETS[args.calibration_dataset].train_split
            )
            records = load_records(
                args.calibration_dataset,
                args.calibration_data_dir,
                split,
                args.calibration_annotations,
                skip_bad=True,
            )
        except (DatasetError, KeyError) as error:
            raise SystemExit(f"error: --calibration-dataset: {error}") from None
        if records.skeleton is not None and records.skeleton.num_joints != skeleton.num_joints:
            raise SystemExit(
                f"error: --calibration-dataset {args.calibration_dataset}: its people have "
                f"{records.skeleton.num_joints} joints, the model {skeleton.num_joints}"
            )
        calibration = calibration_crops(model, records, args.calibration_count)
        say(f"Calibrating on {len(calibration)} people of {args.calibration_dataset}")
    try:
        path = export_model(
            model,
            args.out,
            "openvino",
            skeleton,
            not args.no_flip,
            precision=args.precision,
            calibration=calibration,
        )
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    say(
        f"Exported {args.model} to {path} (+ .bin) and {path}.json (openvino, {args.precision}: "
        f"crops [batch, S, S, 3] float32 in [0, 1] -> keypoints in crop pixels, scores, "
        f"heatmaps; flip test {'off' if args.no_flip else 'on'}); predict with "
        f"eval/predict.py --model {path}"
    )
    return path
