"""Person records, the form every reader returns, and the checks that build them.

A `Records` list of `PersonRecord`s is in this project's pixel convention (0-based pixel indices,
pixel centres at integers; MATLAB-made annotations such as MPII and LSP are 1-based and are
shifted by -1 on reading), with the person's centre and scale in the pose-hg-train convention
(the crop is the square of side 200 * scale px centred on the centre), and it knows its skeleton.

Bad input (a missing image, non-finite or negative coordinates of an annotated joint, a zero or
negative scale, the wrong number of joints, an empty dataset) raises `DatasetError` naming the file
and record; with `skip_bad=True` such records are left out and listed in `Records.skipped`
instead. Nothing is dropped silently: readers also list the records they skip by design (COCO
crowds and people without keypoints) in `Records.skipped`.
"""

import dataclasses
import json
import os

import numpy as np

from keras_hourglass.geometry import PERSON_BOX_PX

# Annotated joints may lie outside the image (MPII annotates head tops above the frame, e.g.
# valid.h5 row 87 at y = -15), but one farther from the person centre than this many person-box
# sides (200 * scale px) is corrupt (a sign error, a sentinel such as -1 or -999 taken for a
# coordinate) and is an error.
MAX_BOX_DISTANCE = 1.0

# No image is this large: an annotated coordinate beyond it is corrupt (1e300, a sign-flipped
# sentinel) and is refused when reading, before a person box is built from it.
MAX_COORDINATE = 1e6


# The joints' box is enlarged by this to give a person box for datasets without one (LSP, FLIC,
# custom data without a box), so the crop keeps some context around the extreme joints.
JOINT_BOX_MARGIN = 1.25


class DatasetError(ValueError):
    """An annotation or image that cannot be used; the message names the file and record.

    `reason` is a short category ("image does not exist", ...) used to group skipped records.
    """

    def __init__(self, message, reason=None):
        super().__init__(message)
        self.reason = reason or message


class MissingSplit(DatasetError):
    """A data folder without the split asked for (training then holds people out instead)."""

    def __init__(self, message):
        super().__init__(message, "no such split")


@dataclasses.dataclass
class PersonRecord:
    """One annotated person.

    Attributes:
        image_path: path of the image file.
        keypoints: (K, 2) float64 (x, y) in original-image pixels, 0-based.
        annotated: (K,) bool, the joint has a ground-truth position (the training and PCK mask).
        visible: (K,) bool, the joint is annotated and not occluded (when the dataset says).
        center: (2,) float64 person centre (x, y), 0-based pixels.
        scale: person scale; the crop side is 200 * scale px.
        normalizer: the dataset metric's normalising size in px (MPII: 0.6 x head-box diagonal;
            LSP, FLIC, COCO: torso = left shoulder to right hip); NaN when unknown.
        record_id: a stable identifier (row index or annotation id) used in error messages and
            prediction files.
    """

    image_path: str
    keypoints: np.ndarray
    annotated: np.ndarray
    visible: np.ndarray
    center: np.ndarray
    scale: float
    normalizer: float
    record_id: str


class Records(list):
    """A list of `PersonRecord`s that knows where it came from.

    Attributes:
        skipped: {reason: [record ids]} of what was left out.
        source: the annotation file (or folder) read.
        skeleton: the `Skeleton` of the records' joints (the dataset's, or a custom data set's
            own table), or None where a caller built the list by hand.
    """

    def __init__(self, records=(), skipped=None, source="", skeleton=None):
        super().__init__(records)
        self.skipped = skipped or {}
        self.source = source
        self.skeleton = skeleton

    def subset(self, start=None, stop=None, keep_skipped=True):
        """Records [start:stop] as `Records` of the same source and skeleton."""
        return Records(
            self[start:stop], self.skipped if keep_skipped else {}, self.source, self.skeleton
        )

    def summary(self):
        parts = [f"{len(self)} people from {self.source}"]
        for reason, ids in self.skipped.items():
            parts.append(
                f"skipped {len(ids)} ({reason}): {', '.join(map(str, ids[:10]))}"
                + (" ..." if len(ids) > 10 else "")
            )
        return "; ".join(parts)


def check_file(path, what):
    if not os.path.isfile(path):
        raise DatasetError(f"{what} {path!r} does not exist.")


def load_mat(path, key, **kwargs):
    """Variable `key` of a MATLAB file, or a DatasetError naming the file."""
    from scipy.io import loadmat

    try:
        data = loadmat(path, **kwargs)
    except (
        Exception
    ) as error:  # SciPy raises ValueError, TypeError, OSError, ... for non-.mat files
        raise DatasetError(
            f"{path}: not a readable MATLAB .mat file ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''})",
            "unreadable file",
        ) from None
    if key not in data:
        raise DatasetError(
            f"{path}: no variable {key!r} (found "
            f"{sorted(k for k in data if not k.startswith('__'))})",
            "unreadable file",
        )
    return data[key]


def torso_size(keypoints, annotated, skeleton):
    a, b = skeleton.normalizer[1] if skeleton.normalizer[0] == "joints" else (None, None)
    if a is None:
        return float("nan")
    ia, ib = skeleton.index(a), skeleton.index(b)
    if not (annotated[ia] and annotated[ib]):
        return float("nan")
    return float(np.linalg.norm(keypoints[ia] - keypoints[ib]))


def box_from_joints(keypoints, annotated, margin=JOINT_BOX_MARGIN):
    """Centre and scale of the square around the annotated joints, enlarged by `margin`."""
    points = keypoints[annotated]
    lo, hi = points.min(axis=0), points.max(axis=0)
    center = (lo + hi) / 2.0
    side = max(float(np.max(hi - lo)), 1.0) * margin
    return center, side / PERSON_BOX_PX


def box_from_xywh(box, margin=JOINT_BOX_MARGIN):
    """Centre and scale from a COCO-style [x, y, w, h] box (continuous coordinates)."""
    x, y, w, h = (float(v) for v in box)
    center = np.array([x + w / 2.0 - 0.5, y + h / 2.0 - 0.5])
    return center, max(w, h) * margin / PERSON_BOX_PX


class RecordBuilder:
    """Validates and collects records for one source file. Two records of the same image with
    the same annotated joints are one person written twice: the second is an error naming both
    (a copy would count twice in validation, and a copy on each side of a held-out split would
    leak a validation person into training), or with `skip_bad` skipped and listed."""

    def __init__(self, source, skeleton, skip_bad, check_images):
        self.source = source
        self.skeleton = skeleton
        self.skip_bad = skip_bad
        self.check_images = check_images
        self.records = []
        self.skipped = {}

    def _drop_duplicates(self):
        first, kept = {}, []
        for record in self.records:
            key = (
                record.image_path,
                np.asarray(record.annotated, bool).tobytes(),
                np.round(np.asarray(record.keypoints, np.float64), 6).tobytes(),
            )
            if key in first:
                self.bad(
                    record.record_id,
                    f"the same image and joints as record {first[key]} (a duplicate)",
                    "duplicate of an earlier record",
                )
                continue
            first[key] = record.record_id
            kept.append(record)
        self.records = kept

    def skip(self, reason, record_id):
        self.skipped.setdefault(reason, []).append(record_id)

    def bad(self, record_id, message, reason):
        """A malformed record: an error naming the file and record, or with `skip_bad` listed
        in `skipped` under `reason`."""
        if not self.skip_bad:
            raise DatasetError(f"{self.source}, record {record_id}: {message}", reason)
        self.skip(reason, record_id)

    def add(
        self,
        record_id,
        image_path,
        keypoints,
        annotated,
        visible=None,
        center=None,
        scale=None,
        normalizer=None,
    ):
        try:
            record = self._make(
                record_id, image_path, keypoints, annotated, visible, center, scale, normalizer
            )
        except DatasetError as error:
            if not self.skip_bad:
                raise
            self.skip(error.reason, record_id)
            return
        self.records.append(record)

    def _make(
        self, record_id, image_path, keypoints, annotated, visible, center, scale, normalizer
    ):
        where = f"{self.source}, record {record_id}"
        k = self.skeleton.num_joints
        keypoints = np.asarray(keypoints, np.float64)
        if keypoints.shape != (k, 2):
            raise DatasetError(
                f"{where}: expected {k} joints ({self.skeleton.name}) as ({k}, 2) coordinates, "
                f"got shape {keypoints.shape}",
                "wrong number of joints",
            )
        annotated = np.asarray(annotated, bool).reshape(-1)
        if annotated.shape != (k,):
            raise DatasetError(
                f"{where}: expected {k} annotation flags, got {annotated.shape}",
                "wrong number of joints",
            )
        visible = annotated.copy() if visible is None else (np.asarray(visible, bool) & annotated)
        bad = annotated & ~np.all(np.isfinite(keypoints), axis=1)
        if bad.any():
            names = [self.skeleton.joint_names[i] for i in np.flatnonzero(bad)]
            raise DatasetError(
                f"{where}: non-finite coordinates for annotated joints {names}",
                "non-finite coordinates",
            )
        huge = annotated & np.any(np.abs(keypoints) > MAX_COORDINATE, axis=1)
        if huge.any():
            names = [self.skeleton.joint_names[i] for i in np.flatnonzero(huge)]
            raise DatasetError(
                f"{where}: annotated joints {names} at {keypoints[huge].tolist()} lie beyond any "
                f"image (|coordinate| > {MAX_COORDINATE:g} px): corrupt coordinates?",
                "coordinates far outside the image",
            )
        if not annotated.any():
            raise DatasetError(f"{where}: no annotated joints", "no annotated joints")
        if center is None or scale is None:
            center, scale = box_from_joints(keypoints, annotated)
        center = np.asarray(center, np.float64).reshape(2)
        scale = float(scale)
        if not np.all(np.isfinite(center)):
            raise DatasetError(
                f"{where}: non-finite person centre {center.tolist()}", "non-finite centre"
            )
        if not (np.isfinite(scale) and scale > 0):
            raise DatasetError(
                f"{where}: person scale must be positive, got {scale}", "non-positive scale"
            )
        far = annotated & np.any(
            np.abs(keypoints - center) > MAX_BOX_DISTANCE * PERSON_BOX_PX * scale, axis=1
        )
        if far.any():
            names = [self.skeleton.joint_names[i] for i in np.flatnonzero(far)]
            raise DatasetError(
                f"{where}: annotated joints {names} at {keypoints[far].tolist()} lie farther than "
                f"a person box ({PERSON_BOX_PX * scale:.0f} px) from the centre {center.tolist()}: "
                "negative or corrupt coordinates?",
                "coordinates far outside the person box",
            )
        if normalizer is None:
            normalizer = torso_size(keypoints, annotated, self.skeleton)
        if self.check_images and not os.path.isfile(image_path):
            raise DatasetError(
                f"{where}: image {image_path!r} does not exist", "image does not exist"
            )
        return PersonRecord(
            image_path=image_path,
            keypoints=np.where(annotated[:, None], keypoints, 0.0),
            annotated=annotated,
            visible=visible,
            center=center,
            scale=scale,
            normalizer=float(normalizer),
            record_id=str(record_id),
        )

    def result(self):
        self._drop_duplicates()
        if not self.records:
            raise DatasetError(
                f"{self.source}: no usable people"
                + (f" (skipped: {self.skipped})" if self.skipped else "")
            )
        return Records(self.records, self.skipped, self.source, self.skeleton)


# --- parsing helpers of the readers -------------------------------------------------------


def load_json(path):
    """The parsed JSON of `path`, or a DatasetError naming the file (not UTF-8, not JSON)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except UnicodeDecodeError as error:
        raise DatasetError(
            f"{path}: not UTF-8 text ({error.reason} at byte {error.start})", "not UTF-8"
        ) from None
    except json.JSONDecodeError as error:
        raise DatasetError(
            f"{path}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})",
            "invalid JSON",
        ) from None
    except RecursionError:
        raise DatasetError(f"{path}: JSON nested too deeply", "invalid JSON") from None


def numbers(value, what, count=None):
    """`value` as a float64 array of numbers (a list of numbers or of lists of numbers); raises
    ValueError with a readable message otherwise (strings, booleans, null, objects)."""

    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{what} must hold numbers, found {type(v).__name__} {v!r:.40}")

    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{what} must be a list, got {type(value).__name__}")
    for v in value:
        if isinstance(v, (list, tuple)):
            for w in v:
                check(w)
        else:
            check(v)
    try:
        array = np.asarray(value, np.float64)
    except ValueError:
        raise ValueError(f"{what} must be a list of equal-length rows of numbers") from None
    if count is not None and array.size != count:
        raise ValueError(f"{what}: expected {count} numbers, got {array.size}")
    return array


def box_from_list(value, what="'box'"):
    """[x, y, w, h] with finite numbers and w, h > 0 -> (centre, scale)."""
    box = numbers(value, what, 4).reshape(4)
    if not np.all(np.isfinite(box)) or box[2] <= 0 or box[3] <= 0:
        raise ValueError(
            f"{what} must be [x, y, w, h] with finite numbers and w, h > 0, got {box.tolist()}"
        )
    return box_from_xywh(box)
