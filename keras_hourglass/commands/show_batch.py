"""Write a PNG grid of augmented training crops with their keypoints and skeleton drawn.

    python train/show_batch.py --dataset lspet --data-dir ~/data/lspet --skip-bad --out batch.png

The keypoints drawn are decoded from the heatmap targets the model is trained on, so a person can
check that the augmentation moved image and targets together (left limbs green, right red).
"""

import argparse

from keras_hourglass.cli import add_logging, configure_logging, ready, say


def main(argv=None):
    from keras_hourglass.cli import add_image_limit, add_people_arguments, check_image_limit
    from keras_hourglass.datasets import DATASETS

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", required=True, choices=list(DATASETS), help="dataset name")
    parser.add_argument("--data-dir", help="dataset folder, or a crop cache folder (with --cache)")
    parser.add_argument(
        "--cache", action="store_true", help="--data-dir is a crop cache from train/prepare.py"
    )
    parser.add_argument("--split", default=None, help="dataset split")
    add_people_arguments(parser)
    add_image_limit(parser)
    parser.add_argument("--out", default="batch.png", help="PNG to write (default: batch.png)")
    parser.add_argument("--count", type=int, default=16, help="crops to show (default: 16)")
    parser.add_argument("--seed", type=int, default=0, help="augmentation seed (default: 0)")
    parser.add_argument(
        "--no-augment", action="store_true", help="show evaluation crops (no augmentation)"
    )
    parser.add_argument(
        "--skip-bad", action="store_true", help="skip unusable records (listed) instead of stopping"
    )
    add_logging(parser)
    args = parser.parse_args(argv)
    configure_logging(args.quiet, args.debug)
    ready()
    check_image_limit(parser, args)

    from keras_hourglass.datasets import (
        DatasetError,
        check_image_files,
        get_dataset,
        load_records,
    )
    from keras_hourglass.drawing import show_batch

    entry = get_dataset(args.dataset)
    skeleton = entry.skeleton
    if args.cache:
        if not args.data_dir:
            parser.error("--cache needs --data-dir (the crop cache folder)")
        source = args.data_dir
    else:
        try:
            source = load_records(
                args.dataset,
                args.data_dir,
                args.split,
                args.annotations,
                args.skeleton,
                args.skip_bad,
            )
            source = check_image_files(source, args.max_image_pixels, args.skip_bad)
        except DatasetError as error:
            raise SystemExit(f"error: {error}") from None
        skeleton = source.skeleton
        say(source.summary())
    show_batch(
        source,
        skeleton,
        args.out,
        args.count,
        seed=args.seed,
        training=not args.no_augment,
        augmentation=None if entry.augment else False,
    )
    say(f"Wrote {args.out}")
