"""Export a trained model as a versioned SavedModel for TF Serving.

    python train/export.py --model runs/demo/best.keras
    python train/export.py --model runs/lsp/best.keras --out saved_models/lsp --version 3

writes saved_models/hourglass/<next version>/ with the signatures `serving_default` (uint8
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
"""

import argparse
import os

from keras_hourglass.cli import add_logging, configure_logging
from keras_hourglass.skeletons import SKELETONS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="a .keras file from train/train.py")
    parser.add_argument(
        "--out",
        default="saved_models/hourglass",
        help="TF Serving model folder; its name is the served model's name "
        "(default: saved_models/hourglass)",
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
        choices=["savedmodel", "onnx", "tflite"],
        default="savedmodel",
        help="savedmodel (TF Serving, default); onnx or tflite: one file of the "
        "crop-level predictor (crops in, keypoints in crop pixels out) at "
        "--out (default saved_models/hourglass.onnx / .tflite)",
    )
    parser.add_argument(
        "--serve-versions",
        default=None,
        help="which versions TF Serving serves, written to models.config: latest:N (the N "
        "newest), all, or specific:V1,V2 (default: as before for this model, else latest:1, TF "
        "Serving's own default)",
    )
    parser.add_argument(
        "--max-image-pixels",
        type=int,
        default=None,
        help="the SavedModel refuses encoded images whose header claims more "
        "pixels (default: 50,000,000)",
    )
    add_logging(parser)
    args = parser.parse_args(argv)
    configure_logging(args.quiet, args.debug)
    if args.max_image_pixels is not None and args.max_image_pixels < 1:
        parser.error("--max-image-pixels must be positive")
    if args.format != "savedmodel":
        if args.version is not None:
            parser.error("--version is for --format savedmodel (TF Serving's layout)")
        if args.out == "saved_models/hourglass":
            args.out = f"saved_models/hourglass.{args.format}"
    if not os.path.isfile(args.model):
        parser.error(f"--model {args.model!r}: no such file")
    if args.serve_versions is not None:
        from keras_hourglass.export import parse_version_policy

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
    import keras

    from keras_hourglass.export import SIGNATURES, export_edge, export_for_serving, model_skeleton

    try:
        model = keras.saving.load_model(args.model, compile=False)
    except Exception as error:  # not a .keras file, a corrupt zip, an unknown class
        raise SystemExit(
            f"error: --model {args.model!r} is not a loadable .keras model "
            f"({str(error).splitlines()[0] if str(error) else type(error).__name__})"
        ) from None
    try:
        skeleton = model_skeleton(model, args.skeleton)
    except ValueError as error:
        raise SystemExit(f"error: --model {args.model}: {error}") from None
    name = skeleton.name
    if args.format != "savedmodel":
        try:
            path = export_edge(
                model,
                args.out,
                skeleton,
                args.format,
                flip_test=not args.no_flip,
            )
        except ValueError as error:
            raise SystemExit(f"error: {error}") from None
        print(
            f"Exported {args.model} to {path} and {path}.json ({args.format}: crops "
            f"[batch, S, S, 3] float32 in [0, 1] -> keypoints in crop pixels, scores, heatmaps; "
            f"flip test {'off' if args.no_flip else 'on'})"
        )
        return path
    try:
        path = export_for_serving(
            model,
            args.out,
            skeleton,
            args.version,
            flip_test=not args.no_flip,
            max_pixels=args.max_image_pixels,
        )
    except (ValueError, FileExistsError) as error:
        raise SystemExit(f"error: {error}") from None
    if args.serve_versions:
        from keras_hourglass.export import set_version_policy

        set_version_policy(args.out, args.serve_versions)
    root = os.path.dirname(os.path.abspath(args.out))
    print(
        f"Exported {args.model} to {path} ({name} skeleton, flip test "
        f"{'off' if args.no_flip else 'on'}); signatures: {', '.join(SIGNATURES)}\n"
        f"Serve: docker run -p 8500:8500 -p 8501:8501 -v {root}:/models tensorflow/serving "
        f"--model_config_file=/models/models.config"
    )
    return path
