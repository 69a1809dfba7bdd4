"""What several commands share in their flags: the people a command reads."""

__all__ = ["add_image_limit", "add_people_arguments", "check_image_limit"]


def add_people_arguments(parser):
    """`--annotations` and `--skeleton`: an annotation file read instead of the dataset folder's
    split, and custom data's skeleton file (`datasets.load_records` takes both)."""
    parser.add_argument(
        "--annotations",
        help="an annotation file of --dataset to read instead of the folder's split, its images "
        "relative to --data-dir (custom data: a .json or .csv of named joints, images by default "
        "relative to the file's folder)",
    )
    parser.add_argument(
        "--skeleton",
        help="custom data: the skeleton file (YAML or JSON: joint names, flip pairs, limbs, PCK "
        "normaliser; default: skeleton.yaml beside the annotations)",
    )


def add_image_limit(parser):
    """`--max-image-pixels`: images whose header claims more pixels are refused before decoding
    (default `datasets.MAX_IMAGE_PIXELS`, 50,000,000)."""
    parser.add_argument(
        "--max-image-pixels",
        type=int,
        default=None,
        help="refuse images above this many pixels, read from their headers before decoding "
        "(default: 50,000,000)",
    )


def check_image_limit(parser, args):
    if args.max_image_pixels is not None and args.max_image_pixels < 1:
        parser.error("--max-image-pixels must be positive")
