"""Export a trained model as a versioned SavedModel for TF Serving.

    python train/export.py --model runs/demo/best.keras

writes saved_models/hourglass/<next version>/ with a `serving_default` signature: uint8 images
in, keypoints (in the images' pixels), scores and heatmaps out, flip test and decoding inside.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="a .keras file from train/train.py")
    parser.add_argument("--out", default="saved_models/hourglass", help="TF Serving model folder (default: saved_models/hourglass)")
    parser.add_argument("--version", type=int, default=None, help="version number (default: the next free one)")
    parser.add_argument("--skeleton", default="mpii", help="joint table of the model (default: mpii)")
    parser.add_argument("--no-flip", action="store_true", help="export without the flip test")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.model):
        parser.error(f"--model {args.model!r}: no such file")
    if args.version is not None and args.version < 1:
        parser.error(f"--version must be a positive integer, got {args.version}")
    return args


def main(argv=None):
    args = parse_args(argv)
    import keras

    import keras_hourglass as kh
    from keras_hourglass.export import export_for_serving

    model = keras.saving.load_model(args.model, compile=False)
    skeleton = kh.get_skeleton(args.skeleton)
    path = export_for_serving(model, args.out, skeleton, args.version, flip_test=not args.no_flip)
    print(f"Exported {args.model} to {path} (signature serving_default: images uint8 -> keypoints, scores, heatmaps)")
    return path


if __name__ == "__main__":
    sys.exit(main() and 0)
