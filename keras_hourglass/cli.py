"""What several commands share in their flags: the people a command reads."""

__all__ = ["add_people_arguments"]


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
