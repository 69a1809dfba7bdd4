"""Ground truth: what a metric needs of a dataset (keypoints, annotated joints, normalisers), from
a reader's records or from a ground-truth-only file (MPII's official `.mat`). Pure NumPy."""

import dataclasses
import os

import numpy as np
from scipy.io import loadmat

from keras_hourglass.datasets.records import DatasetError
from keras_hourglass.skeletons import MPII, metric_of


@dataclasses.dataclass
class GroundTruth:
    """What a metric needs of a dataset.

    Attributes:
        keypoints: (N, K, 2) true (x, y).
        annotated: (N, K) bool.
        normalizers: (N,) head size (PCKh) or torso size (PCK) in pixels; NaN where unknown.
        skeleton: the dataset's `Skeleton`.
        one_based: whether the coordinates are 1-based (MATLAB-made files as stored).
        record_ids: (N,) identifiers for the predictions table.
        image_paths: (N,) image files, or None.
        centers, scales: (N, 2), (N,) person boxes, or None (used to draw prediction sheets).
        source: where it came from.
        normalizer: what `normalizers` are, in the skeleton's `normalizer` form, when the
            protocol is not the skeleton's own (the synthetic data: MPII joints, torso PCK).
        dataset: the `DATASETS` entry it was read by, when known.
    """

    keypoints: np.ndarray
    annotated: np.ndarray
    normalizers: np.ndarray
    skeleton: object
    one_based: bool = False
    record_ids: np.ndarray = None
    image_paths: np.ndarray = None
    centers: np.ndarray = None
    scales: np.ndarray = None
    source: str = ""
    normalizer: tuple = None
    dataset: str = ""

    def __post_init__(self):
        n = len(self.keypoints)
        if self.record_ids is None:
            self.record_ids = np.array([str(i) for i in range(n)])

    @property
    def metric(self):
        """('PCKh', 0.5) for head-box datasets, ('PCK', 0.2) for torso-normalised ones."""
        return metric_of(self.normalizer or self.skeleton.normalizer)


def ground_truth_from_records(records, skeleton=None, normalizer=None, dataset=""):
    """Ground truth from a reader's records (0-based coordinates); `skeleton` defaults to the
    records' own, `normalizer` (the PCK normaliser's form) to the skeleton's."""
    skeleton = skeleton or records.skeleton
    return GroundTruth(
        keypoints=np.stack([r.keypoints for r in records]),
        annotated=np.stack([r.annotated for r in records]),
        normalizers=np.array([r.normalizer for r in records], np.float64),
        skeleton=skeleton,
        one_based=False,
        record_ids=np.array([r.record_id for r in records]),
        image_paths=np.array([r.image_path for r in records]),
        centers=np.stack([r.center for r in records]),
        scales=np.array([r.scale for r in records]),
        source=getattr(records, "source", ""),
        normalizer=normalizer,
        dataset=dataset,
    )


def load_mpii_official(path):
    """`detections_our_format.mat` / `gt_valid.mat`: the ground truth of the published MPII tables.

    Coordinates stay 1-based as stored (published prediction files are compared with it without
    any shift); head size = 0.6 x head-box diagonal; annotated = not `jnt_missing`.
    """
    if not os.path.isfile(path):
        raise DatasetError(f"Annotation file {path!r} does not exist.")
    try:
        data = loadmat(path)
    except Exception as error:  # SciPy raises ValueError, TypeError, OSError, ...
        raise DatasetError(f"{path}: not a readable MATLAB .mat file ({error})") from None
    missing = {"pos_gt_src", "jnt_missing"} - set(data)
    if missing:
        raise DatasetError(f"{path}: not an MPII ground-truth .mat file, missing {sorted(missing)}")
    if "headboxes_src" not in data:
        raise DatasetError(
            f"{path}: has no `headboxes_src`; PCKh needs head boxes (use the official "
            "detections_our_format.mat / gt_valid.mat)."
        )
    keypoints = np.transpose(data["pos_gt_src"], (2, 0, 1)).astype(np.float64)
    annotated = np.transpose(data["jnt_missing"]) == 0
    boxes = np.transpose(data["headboxes_src"], (2, 0, 1)).astype(np.float64)
    head = 0.6 * np.linalg.norm(boxes[:, 1] - boxes[:, 0], axis=-1)
    if keypoints.shape[1] != MPII.num_joints:
        raise DatasetError(f"{path}: {keypoints.shape[1]} joints, MPII has 16")
    return GroundTruth(
        keypoints, annotated, head, MPII, one_based=True, source=path, dataset="mpii"
    )
