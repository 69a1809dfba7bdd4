"""Decode every image once and write a crop cache of sharded TFRecords.

    python train/prepare.py --dataset lspet --data-dir ~/data/lspet --out cache/lspet

The library's tf.data pipeline reads it, `make_dataset("cache/lspet", ...)`, with the same
augmentations as from raw images, without decoding the photos again: worth it for large photos
(MPII's are 1280x720 and larger); on LSPET's small images the raw pipeline is faster
(docs/BENCHMARKS.md). For training, `train.py --cache DIR` writes the cache of exactly its
training people itself (the people it holds out for validation left out) and reuses it on later
runs; meta.json lists the people a cache holds. Without --split, prepare.py caches the dataset's
training split (mpii: train, coco: train2017). Interrupted runs resume.
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
    parser.add_argument("--data-dir", help="the dataset's folder")
    parser.add_argument("--out", required=True, help="cache folder to write")
    parser.add_argument(
        "--split",
        default=None,
        help="dataset split (default: the training split; mpii: train/valid; flic: train/test; "
        "coco: train2017/val2017)",
    )
    add_people_arguments(parser)
    add_image_limit(parser)
    parser.add_argument(
        "--crop-size",
        type=int,
        default=256,
        help="network input size the cache is made for (default: 256)",
    )
    parser.add_argument(
        "--shard-size", type=int, default=1000, help="records per TFRecord shard (default: 1000)"
    )
    parser.add_argument(
        "--skip-bad", action="store_true", help="skip unusable records (listed) instead of stopping"
    )
    add_logging(parser)
    args = parser.parse_args(argv)
    configure_logging(args.quiet, args.debug)
    ready()
    check_image_limit(parser, args)

    from keras_hourglass.datasets import DatasetError, check_image_files, load_records
    from keras_hourglass.inputs.cache import write_crop_cache

    try:
        split = args.split or (None if args.annotations else DATASETS[args.dataset].train_split)
        records = load_records(
            args.dataset, args.data_dir, split, args.annotations, args.skeleton, args.skip_bad
        )
        records = check_image_files(records, args.max_image_pixels, args.skip_bad)
    except DatasetError as error:
        raise SystemExit(f"error: {error}") from None
    say(records.summary())
    meta = write_crop_cache(
        records, args.out, records.skeleton, args.crop_size, shard_size=args.shard_size
    )
    say(
        f"Wrote {meta['num_records']} crops ({meta['cache_side']} px) in {meta['num_shards']} shards to {args.out}"
    )
