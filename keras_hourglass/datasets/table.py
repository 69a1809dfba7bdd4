"""The dataset table: one `Dataset` entry per `--dataset` name, and how each folder is read.

Adding a dataset means adding one entry here (and its reader in `readers`). Training,
evaluation, the prediction files and validation all ask the entry: its reader, skeleton, splits,
protocol and prediction-file convention. No dataset is recognised by sniffing a file.
"""

import dataclasses
import functools
import os

from keras_hourglass.datasets.ground_truth import load_mpii_official
from keras_hourglass.datasets.readers import (
    read_coco,
    read_custom,
    read_flic,
    read_lsp,
    read_mpii_h5,
    read_mpii_json,
)
from keras_hourglass.datasets.records import DatasetError, MissingSplit
from keras_hourglass.datasets.synthetic import read_synthetic, synthetic_folder
from keras_hourglass.skeletons import COCO, FLIC, LSP, MPII, Skeleton, metric_of, read_skeleton

# --- each dataset's folder layout ----------------------------------------------------------------


def read_mpii_folder(data_dir, split, skip_bad):
    for candidate in (
        os.path.join(data_dir, "annot", f"{split}.h5"),
        os.path.join(data_dir, f"{split}.h5"),
    ):
        if os.path.isfile(candidate):
            return read_mpii_h5(candidate, os.path.join(data_dir, "images"), skip_bad)
    raise MissingSplit(f"{data_dir}: no annot/{split}.h5 (pose-hg-train MPII layout)")


def read_lsp_folder(data_dir, split, skip_bad):
    return read_lsp(
        os.path.join(data_dir, "joints.mat"), os.path.join(data_dir, "images"), skip_bad
    )


def coco_files(data_dir, split):
    """(annotation file, image folder) of a COCO split in its folder: the official layout
    (annotations/person_keypoints_<split>.json, images in <split>/) or one .json beside its
    images."""
    annotations = os.path.join(data_dir, "annotations", f"person_keypoints_{split}.json")
    if os.path.isfile(annotations):
        return annotations, os.path.join(data_dir, split)
    jsons = sorted(f for f in os.listdir(data_dir) if f.endswith(".json"))
    if len(jsons) == 1:
        return os.path.join(data_dir, jsons[0]), data_dir
    raise MissingSplit(f"{data_dir}: no annotations/person_keypoints_{split}.json")


def read_coco_folder(data_dir, split, skip_bad):
    return read_coco(*coco_files(data_dir, split), skip_bad)


def read_flic_folder(data_dir, split, skip_bad):
    path = os.path.join(data_dir, "examples.mat")
    return read_flic(path, os.path.join(data_dir, "images"), split, skip_bad)


def read_custom_folder(data_dir, split, skip_bad, skeleton=None):
    """A custom data set's folder: `skeleton.yaml` (or `.yml`, `.json`; or `skeleton`, a file or
    `Skeleton`, given apart), the split's annotations `<split>.json` or `<split>.csv`
    (`read_custom`'s formats), image paths relative to the folder."""
    for suffix in (".json", ".csv"):
        path = os.path.join(data_dir, split + suffix)
        if os.path.isfile(path):
            return read_custom_file(path, data_dir, skip_bad, skeleton=skeleton)
    raise MissingSplit(f"{data_dir}: no {split}.json or {split}.csv (custom data layout)")


def read_custom_file(path, image_dir, skip_bad=False, check_images=True, skeleton=None):
    """A custom annotation file with its skeleton: `skeleton` (a `Skeleton` or a file), else the
    `skeleton.yaml` / `.yml` / `.json` beside the annotation file."""
    if skeleton is None:
        folder = os.path.dirname(os.path.abspath(path))
        candidates = [os.path.join(folder, f"skeleton{s}") for s in (".yaml", ".yml", ".json")]
        found = [c for c in candidates if os.path.isfile(c)]
        if not found:
            raise DatasetError(
                f"{path}: custom data needs its skeleton: a skeleton.yaml (or .json) beside it "
                "naming the joints, flip pairs, limbs and PCK normaliser (docs/datasets.md)",
                "no skeleton",
            )
        skeleton = found[0]
    if not isinstance(skeleton, Skeleton):
        try:
            skeleton = read_skeleton(os.path.expanduser(os.fspath(skeleton)))
        except ValueError as error:
            raise DatasetError(str(error), "bad skeleton") from None
    return read_custom(path, skeleton, image_dir, skip_bad, check_images)


def _mpii_official(path, image_dir=None, skip_bad=False, check_images=False):
    return load_mpii_official(path)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One dataset: everything the commands need to know of it, in one entry of `DATASETS`.

    Attributes:
        name: the `--dataset` name.
        skeleton: its `Skeleton` (joint order, flip pairs, report groups); None when each data
            folder brings its own (custom data: the records carry it).
        layout: the folder layout `read` expects (shown in the docs and errors).
        read: `(data_dir, split, skip_bad) -> Records` from that layout; a missing split raises
            `MissingSplit` (training then holds people out of the training split instead).
        annotation_readers: {file suffix: reader(path, image_dir, skip_bad=..., check_images=...)}
            for an annotation file given on its own (`evaluate.py --annotations`): `Records`,
            or a `GroundTruth` for ground-truth-only files (MPII's official `.mat`).
        train_split: the split `train.py` trains on.
        val_split: the split it validates on; None (or missing in the folder): the last
            `held_out` people of the training split are held out instead.
        eval_split: the split `evaluate.py` scores by default.
        held_out: people held out for validation when there is no validation split (None: a
            tenth of the people).
        normalizer: what normalises PCK (the skeleton's `normalizer` form) when it is not the
            skeleton's own (the synthetic figures: MPII joints, torso PCK@0.2).
        preds_base: pixel base of the dataset's published prediction files (1: MATLAB-made).
        coco_oks: also score COCO's OKS AP/AR.
        augment: augment training crops (the synthetic figures are drawn at random already).
        default_data_dir: `input_size -> folder` for data made here rather than downloaded
            (the synthetic figures, rendered into the folder on first use); None: `--data-dir`
            is needed.
    """

    name: str
    skeleton: Skeleton
    layout: str
    read: object
    annotation_readers: dict = dataclasses.field(default_factory=dict)
    train_split: str = "train"
    val_split: str = None
    eval_split: str = None
    held_out: int = None
    normalizer: tuple = None
    preds_base: int = 1
    coco_oks: bool = False
    augment: bool = True
    default_data_dir: object = None

    @property
    def protocol(self):
        """(metric name, threshold): ("PCKh", 0.5) for head-box datasets, ("PCK", 0.2) else;
        None where the data folder's own skeleton decides (custom data)."""
        normalizer = self.normalizer or (self.skeleton.normalizer if self.skeleton else None)
        return metric_of(normalizer) if normalizer else None

    def _skeleton_arg(self, skeleton):
        """{"skeleton": skeleton} for the readers of custom data; a skeleton given for a dataset
        whose joints are fixed is an error."""
        if skeleton is None:
            return {}
        if self.skeleton is not None:
            raise DatasetError(
                f"--skeleton is for custom data: {self.name} has its own joints "
                f"({self.skeleton.name}, {self.skeleton.num_joints})",
                "skeleton for a built-in dataset",
            )
        return {"skeleton": skeleton}

    def records(self, data_dir, split=None, skip_bad=False, skeleton=None):
        """Reads `split` (default: `eval_split`) of the dataset from its folder; `skeleton` (a
        file or `Skeleton`, custom data only) instead of the folder's skeleton file."""
        data_dir = os.path.expanduser(os.fspath(data_dir))
        if not os.path.isdir(data_dir):
            raise DatasetError(f"Data folder {data_dir!r} does not exist.")
        return self.read(
            data_dir, split or self.eval_split, skip_bad, **self._skeleton_arg(skeleton)
        )

    def annotations(self, path, image_dir, skip_bad=False, check_images=True, skeleton=None):
        """Reads an annotation file of this dataset given on its own, by its suffix; `skeleton`
        (custom data only) instead of the skeleton file beside it."""
        path = os.path.expanduser(os.fspath(path))
        image_dir = os.path.expanduser(os.fspath(image_dir))
        extra = self._skeleton_arg(skeleton)
        suffix = os.path.splitext(path.lower())[1]
        reader = self.annotation_readers.get(suffix)
        if reader is None:
            raise DatasetError(
                f"{path}: not a {self.name} annotation file "
                f"({', '.join(sorted(self.annotation_readers)) or 'none'} expected)",
                "wrong file type",
            )
        return reader(path, image_dir, skip_bad=skip_bad, check_images=check_images, **extra)


_TORSO = ("joints", ("left_shoulder", "right_hip"))

# One entry per dataset; adding a dataset means adding one entry here (and its reader).
DATASETS = {
    "synthetic": Dataset(
        "synthetic",
        MPII,
        "synthetic.json, <split>.json and <split>/*.png: stick figures rendered into the folder on "
        "first use (keras_hourglass.synthetic), no download",
        read_synthetic,
        {".json": functools.partial(read_custom, skeleton=MPII)},
        val_split="valid",
        eval_split="test",
        normalizer=_TORSO,
        preds_base=0,
        augment=False,
        default_data_dir=synthetic_folder,
    ),
    "mpii": Dataset(
        "mpii",
        MPII,
        "annot/{train,valid}.h5 (pose-hg-train) and images/",
        read_mpii_folder,
        {".h5": read_mpii_h5, ".json": read_mpii_json, ".mat": _mpii_official},
        val_split="valid",
        eval_split="valid",
    ),
    "lsp": Dataset(
        "lsp",
        LSP,
        "joints.mat and images/ (im0001.jpg ...)",
        read_lsp_folder,
        {".mat": read_lsp},
        held_out=1000,
    ),
    "lspet": Dataset(
        "lspet",
        LSP,
        "joints.mat and images/ (im00001.jpg ...)",
        read_lsp_folder,
        {".mat": read_lsp},
        held_out=1000,
    ),
    "coco": Dataset(
        "coco",
        COCO,
        "annotations/person_keypoints_<split>.json and <split>/, or one .json beside its images",
        read_coco_folder,
        {".json": read_coco},
        train_split="train2017",
        val_split="val2017",
        eval_split="val2017",
        preds_base=0,
        coco_oks=True,
    ),
    "flic": Dataset(
        "flic",
        FLIC,
        "examples.mat and images/",
        read_flic_folder,
        {".mat": functools.partial(read_flic, split="test")},  # its published figures' split
        eval_split="test",
    ),
    "custom": Dataset(
        "custom",
        None,
        "skeleton.yaml (or .json), <split>.json or <split>.csv of named joints (train, valid, "
        "test), image paths relative to the folder",
        read_custom_folder,
        {".json": read_custom_file, ".csv": read_custom_file},
        val_split="valid",
        eval_split="test",
        preds_base=0,
    ),
}


def get_dataset(name):
    """The `Dataset` entry of `name`."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"Unknown dataset {name!r}; known datasets: {list(DATASETS)}") from None


def read_dataset(name, data_dir, split=None, skip_bad=False, skeleton=None):
    """Reads a dataset in its usual folder layout (see each entry's `layout` in `DATASETS`); the
    split defaults to the dataset's evaluation split (mpii: valid; coco: val2017; flic: test).
    `skeleton` (a YAML/JSON file or `Skeleton`): custom data's joints, instead of the folder's
    skeleton file."""
    return get_dataset(name).records(data_dir, split, skip_bad, skeleton)


def load_records(
    name,
    data_dir=None,
    split=None,
    annotations=None,
    skeleton=None,
    skip_bad=False,
    input_size=None,
):
    """The people a command works on, as its flags name them (`--dataset`, `--data-dir`,
    `--split`, `--annotations`, `--skeleton`): the annotation file `annotations` when given
    (images relative to `data_dir`; custom data: by default the annotation file's folder), else
    `split` of the dataset's folder `data_dir` (the dataset's default folder for `input_size`
    when it has one: the synthetic figures).
    A file holding ground truth only (MPII's official .mat) is refused: it has no images."""
    entry = get_dataset(name)
    if annotations:
        image_dir = data_dir or (
            os.path.dirname(os.path.abspath(os.path.expanduser(annotations)))
            if entry.skeleton is None
            else ""
        )
        records = entry.annotations(annotations, image_dir, skip_bad, skeleton=skeleton)
        if not hasattr(records, "subset"):
            raise DatasetError(
                f"--annotations {annotations!r} holds ground truth only (no images): score a "
                "prediction file against it with evaluate.py --preds",
                "ground truth only",
            )
        return records
    if not data_dir:
        if entry.default_data_dir is None or input_size is None:
            raise DatasetError(
                f"--dataset {name} needs --data-dir (its folder: {entry.layout})"
                + (" or --annotations FILE (with --skeleton)" if entry.skeleton is None else ""),
                "no data folder",
            )
        data_dir = entry.default_data_dir(input_size)
    return entry.records(data_dir, split, skip_bad, skeleton)
