"""Write a PNG grid of augmented training crops with their keypoints and skeleton drawn.

    python train/show_batch.py --dataset lspet --data-dir ../shared/data/lspet --skip-bad --out batch.png

The keypoints drawn are decoded from the heatmap targets the model is trained on, so a person can
check that the augmentation moved image and targets together (left limbs green, right red).
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault(
    "KERAS_HOURGLASS_QUIET", "1"
)  # TensorFlow's start-up noise: keras_hourglass.quiet


def show_batch(source, skeleton, out, count=16, columns=4, input_size=256, seed=0, training=True):
    """Writes the grid and returns the keypoints drawn ((count, K, 2) crop pixels) and the
    visible mask, decoded from the heatmap targets."""
    import numpy as np

    from keras_hourglass.codec import HeatmapCodec
    from keras_hourglass.drawing import draw_pose, grid
    from keras_hourglass.pipeline import make_dataset

    codec = HeatmapCodec(input_size, input_size // 4)
    ds = make_dataset(
        source,
        skeleton,
        codec,
        count,
        training=training,
        num_stacks=1,
        seed=seed,
        with_meta=True,
        drop_remainder=False,
    )
    images, targets, meta = next(iter(ds))
    keypoints, scores = codec.decode(targets["heatmaps_0"])
    keypoints, visible = np.asarray(keypoints), np.asarray(scores) > 0
    tiles = [
        draw_pose(images[i].numpy(), keypoints[i], skeleton, visible[i])
        for i in range(images.shape[0])
    ]
    directory = os.path.dirname(os.path.abspath(out))
    os.makedirs(directory, exist_ok=True)
    tmp = out + ".tmp.png"
    grid(tiles, columns).save(tmp)
    os.replace(tmp, out)
    return keypoints, visible, targets["heatmaps_0"].numpy()


def main(argv=None):
    from keras_hourglass.datasets import DATASETS

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", required=True, choices=DATASETS, help="dataset name")
    parser.add_argument(
        "--data-dir", required=True, help="dataset folder, or a crop cache folder (with --cache)"
    )
    parser.add_argument(
        "--cache", action="store_true", help="--data-dir is a crop cache from train/prepare.py"
    )
    parser.add_argument("--split", default=None, help="dataset split")
    parser.add_argument("--out", default="batch.png", help="PNG to write (default: batch.png)")
    parser.add_argument("--count", type=int, default=16, help="crops to show (default: 16)")
    parser.add_argument("--seed", type=int, default=0, help="augmentation seed (default: 0)")
    parser.add_argument(
        "--no-augment", action="store_true", help="show evaluation crops (no augmentation)"
    )
    parser.add_argument(
        "--skip-bad", action="store_true", help="skip unusable records (listed) instead of stopping"
    )
    args = parser.parse_args(argv)

    from keras_hourglass.datasets import DatasetError, read_dataset
    from keras_hourglass.skeletons import get_skeleton

    skeleton = get_skeleton("lsp" if args.dataset == "lspet" else args.dataset)
    if args.cache:
        source = args.data_dir
    else:
        try:
            source = read_dataset(args.dataset, args.data_dir, args.split, skip_bad=args.skip_bad)
        except DatasetError as error:
            raise SystemExit(f"error: {error}") from None
        print(source.summary())
    show_batch(source, skeleton, args.out, args.count, seed=args.seed, training=not args.no_augment)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
