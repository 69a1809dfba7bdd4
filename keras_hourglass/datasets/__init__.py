"""Datasets: readers of annotation files, the `DATASETS` table, image checks, ground truth.

    records = read_dataset("lspet", "~/data/lspet", skip_bad=True)   # Records of PersonRecord
    entry = DATASETS["mpii"]                                           # what the commands ask

- `records`: `PersonRecord`, `Records`, `DatasetError` and the checks every reader applies.
- `readers`: one reader per annotation format (MPII .h5/.json, LSP, COCO, FLIC, custom).
- `synthetic`: the embedded stick figures as a data folder rendered on first use.
- `table`: the `Dataset` entries and how each folder layout is read.
- `images`: image headers, the checks made before training or evaluation, the NumPy decoder.
- `ground_truth`: what the metrics need of a dataset.

May import: the foundation only (`files`, `geometry`, `skeletons`, `synthetic`, `quiet`); no
Keras, no model.
"""

from keras_hourglass.datasets.ground_truth import (
    GroundTruth,
    ground_truth_from_records,
    load_mpii_official,
)
from keras_hourglass.datasets.images import (
    MAX_IMAGE_PIXELS,
    MAX_OUTSIDE_IMAGE,
    check_image_bytes,
    check_image_files,
    check_image_size,
    image_size,
    read_image_floats,
)
from keras_hourglass.datasets.readers import (
    FLIC_POINTS,
    read_coco,
    read_custom,
    read_flic,
    read_lsp,
    read_mpii_h5,
    read_mpii_json,
)
from keras_hourglass.datasets.records import (
    JOINT_BOX_MARGIN,
    MAX_BOX_DISTANCE,
    MAX_COORDINATE,
    DatasetError,
    MissingSplit,
    PersonRecord,
    Records,
    box_from_joints,
    box_from_xywh,
)
from keras_hourglass.datasets.synthetic import make_synthetic_folder, synthetic_folder
from keras_hourglass.datasets.table import (
    DATASETS,
    Dataset,
    coco_files,
    get_dataset,
    load_records,
    read_custom_file,
    read_dataset,
)
from keras_hourglass.skeletons import metric_of

__all__ = [
    "DATASETS",
    "FLIC_POINTS",
    "JOINT_BOX_MARGIN",
    "MAX_BOX_DISTANCE",
    "MAX_COORDINATE",
    "MAX_IMAGE_PIXELS",
    "MAX_OUTSIDE_IMAGE",
    "Dataset",
    "DatasetError",
    "GroundTruth",
    "MissingSplit",
    "PersonRecord",
    "Records",
    "box_from_joints",
    "box_from_xywh",
    "check_image_bytes",
    "check_image_files",
    "check_image_size",
    "coco_files",
    "get_dataset",
    "ground_truth_from_records",
    "image_size",
    "load_records",
    "load_mpii_official",
    "make_synthetic_folder",
    "metric_of",
    "read_coco",
    "read_custom",
    "read_custom_file",
    "read_dataset",
    "read_flic",
    "read_image_floats",
    "read_lsp",
    "read_mpii_h5",
    "read_mpii_json",
    "synthetic_folder",
]
