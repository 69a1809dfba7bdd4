"""Dataset readers: annotation files -> lists of person records. Pure Python/NumPy.

Every reader returns a `Records` list of `PersonRecord`s in this project's pixel convention
(0-based pixel indices, pixel centres at integers; MATLAB-made annotations such as MPII and LSP
are 1-based and are shifted by -1 on reading), with the person's centre and scale in the
pose-hg-train convention (the crop is the square of side 200 * scale px centred on the centre).

Bad input (a missing image, non-finite or negative coordinates of an annotated joint, a zero or
negative scale, the wrong number of joints, an empty dataset) raises `DatasetError` naming the file
and record; with `skip_bad=True` such records are left out and listed in `Records.skipped`
instead. Nothing is dropped silently: every reader also lists the records it skips by design
(COCO crowds and people without keypoints) in `Records.skipped`.
"""

import csv
import dataclasses
import functools
import json
import os

import numpy as np

from keras_hourglass.geometry import PERSON_BOX_PX
from keras_hourglass.skeletons import COCO, FLIC, LSP, MPII, Skeleton

# Annotated joints may lie outside the image (MPII annotates head tops above the frame, e.g.
# valid.h5 row 87 at y = -15), but one farther from the person centre than this many person-box
# sides (200 * scale px) is corrupt (a sign error, a sentinel such as -1 or -999 taken for a
# coordinate) and is an error.
MAX_BOX_DISTANCE = 1.0

# No image is this large: an annotated coordinate beyond it is corrupt (1e300, a sign-flipped
# sentinel) and is refused when reading, before a person box is built from it.
MAX_COORDINATE = 1e6

# Refused above this many pixels (width x height) before anything decodes the image: a 48 MP
# phone photo passes, a 69-byte PNG claiming 60000 x 60000 does not. Raise it with the commands'
# --max-image-pixels.
MAX_IMAGE_PIXELS = 50_000_000

# An annotated joint may lie outside its image (MPII head tops above the frame), but not farther
# than this many image sides from it: such a joint is corrupt (checked by check_image_files, which
# reads the image size; this is what catches corrupt joints of datasets whose person box is built
# from the joints themselves, where the distance-from-box check cannot fail).
MAX_OUTSIDE_IMAGE = 0.5

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
    """A list of `PersonRecord`s with `skipped`: {reason: [record ids]} of what was left out."""

    def __init__(self, records=(), skipped=None, source=""):
        super().__init__(records)
        self.skipped = skipped or {}
        self.source = source

    def summary(self):
        parts = [f"{len(self)} people from {self.source}"]
        for reason, ids in self.skipped.items():
            parts.append(
                f"skipped {len(ids)} ({reason}): {', '.join(map(str, ids[:10]))}"
                + (" ..." if len(ids) > 10 else "")
            )
        return "; ".join(parts)


def _check_file(path, what):
    if not os.path.isfile(path):
        raise DatasetError(f"{what} {path!r} does not exist.")


def _load_mat(path, key, **kwargs):
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


def _torso(keypoints, annotated, skeleton):
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


class _Builder:
    """Validates and collects records for one source file."""

    def __init__(self, source, skeleton, skip_bad, check_images):
        self.source = source
        self.skeleton = skeleton
        self.skip_bad = skip_bad
        self.check_images = check_images
        self.records = []
        self.skipped = {}

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
            normalizer = _torso(keypoints, annotated, self.skeleton)
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
        if not self.records:
            raise DatasetError(
                f"{self.source}: no usable people"
                + (f" (skipped: {self.skipped})" if self.skipped else "")
            )
        return Records(self.records, self.skipped, self.source)


# --- MPII ------------------------------------------------------------------------------------


def read_mpii_h5(path, image_dir, skip_bad=False, check_images=True):
    """MPII from pose-hg-train's `annot/*.h5` (center, scale, part, visible, normalize, imgname).

    The file's centre and scale are already adjusted as pose-hg-train does (centre y + 15 s,
    scale x 1.25). Annotated = part != (0, 0) (the file's `visible` marks occlusion, not
    annotation); `normalize` (0.6 x head-box diagonal) is the PCKh normaliser.
    """
    import h5py

    _check_file(path, "MPII annotation file")
    builder = _Builder(path, MPII, skip_bad, check_images)
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        raise DatasetError(
            f"{path}: not a readable HDF5 file ({error})", "unreadable file"
        ) from None
    with f:
        missing = {"center", "scale", "part", "visible", "imgname"} - set(f)
        if missing:
            raise DatasetError(f"{path}: not a pose-hg-train MPII file, missing {sorted(missing)}")
        part = np.asarray(f["part"], np.float64)
        visible = np.asarray(f["visible"]) > 0
        center = np.asarray(f["center"], np.float64)
        scale = np.asarray(f["scale"], np.float64)
        normalize = np.asarray(f["normalize"], np.float64) if "normalize" in f else None
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["imgname"]]
    for i in range(len(names)):
        annotated = np.any(part[i] != 0, axis=1)
        builder.add(
            i,
            os.path.join(image_dir, names[i]),
            part[i] - 1.0,
            annotated,
            visible[i],
            center[i] - 1.0,
            scale[i],
            normalize[i] if normalize is not None else float("nan"),
        )
    return builder.result()


def read_mpii_json(path, image_dir, skip_bad=False, check_images=True):
    """MPII from the HRNet / mmpose JSON (image, joints, joints_vis, center, scale).

    `center` and `scale` there are raw MPII (objpos, person height / 200); they are adjusted as
    the reference code does (centre y + 15 s, then scale x 1.25). `joints_vis` is the annotated
    flag. The JSON has no head boxes, so `normalizer` is NaN (PCKh needs the .h5 or .mat).
    """
    _check_file(path, "MPII JSON file")
    with open(path) as f:
        rows = json.load(f)
    builder = _Builder(path, MPII, skip_bad, check_images)
    for i, row in enumerate(rows):
        try:
            joints = np.asarray(row["joints"], np.float64)
            annotated = np.asarray(row["joints_vis"]) > 0
            center = np.asarray(row["center"], np.float64)
            scale = float(row["scale"])
            image = row["image"]
        except (KeyError, TypeError, ValueError) as error:
            raise DatasetError(f"{path}, record {i}: malformed entry ({error!r})") from None
        center = center + np.array([0.0, 15.0 * scale])
        builder.add(
            i,
            os.path.join(image_dir, image),
            joints - 1.0,
            annotated,
            None,
            center - 1.0,
            scale * 1.25,
            float("nan"),
        )
    return builder.result()


# --- LSP -------------------------------------------------------------------------------------


def read_lsp(path, image_dir, skip_bad=False, check_images=True, image_pattern=None):
    """LSP (`joints.mat` 3 x 14 x N) or LSP Extended (14 x 3 x N); the layout is detected.

    LSP Extended: the third value is 1 for visible joints and 0 for joints that are occluded or
    outside the frame, whose coordinates are unreliable (e.g. (0, -26)); only visible joints are
    annotated. LSP: every joint is annotated; the third value is read as an occlusion flag.
    Image k (0-based) is `im%05d.jpg % (k + 1)` (LSPET) or `im%04d.jpg % (k + 1)` (LSP).
    Centre and scale come from the annotated joints' box enlarged 1.25x.
    """
    _check_file(path, "LSP joints file")
    joints = np.asarray(_load_mat(path, "joints"))
    if not np.issubdtype(joints.dtype, np.number):
        raise DatasetError(
            f"{path}: `joints` must be numbers, got {joints.dtype}", "unreadable file"
        )
    if joints.ndim != 3:
        raise DatasetError(f"{path}: `joints` must be 3-D, got shape {joints.shape}")
    if joints.shape[:2] == (14, 3):
        extended = True
        xy = joints[:, :2, :].transpose(2, 0, 1)
        flag = joints[:, 2, :].T > 0
        annotated, visible = flag, flag
    elif joints.shape[:2] == (3, 14):
        extended = False
        xy = joints[:2].transpose(2, 1, 0)
        annotated = np.ones(xy.shape[:2], bool)
        visible = joints[2].T == 0
    else:
        raise DatasetError(
            f"{path}: `joints` must be 14 x 3 x N (LSPET) or 3 x 14 x N (LSP), got {joints.shape}"
        )
    pattern = image_pattern or ("im%05d.jpg" if extended else "im%04d.jpg")
    builder = _Builder(path, LSP, skip_bad, check_images)
    for k in range(xy.shape[0]):
        builder.add(
            k, os.path.join(image_dir, pattern % (k + 1)), xy[k] - 1.0, annotated[k], visible[k]
        )
    return builder.result()


# --- COCO ------------------------------------------------------------------------------------


def _load_json(path):
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


def _numbers(value, what, count=None):
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


def _box(value, what="'box'"):
    """[x, y, w, h] with finite numbers and w, h > 0 -> (centre, scale)."""
    box = _numbers(value, what, 4).reshape(4)
    if not np.all(np.isfinite(box)) or box[2] <= 0 or box[3] <= 0:
        raise ValueError(
            f"{what} must be [x, y, w, h] with finite numbers and w, h > 0, got {box.tolist()}"
        )
    return box_from_xywh(box)


def read_coco(path, image_dir, skip_bad=False, check_images=True):
    """COCO person keypoints JSON: one single-person record per annotation, the crop from `bbox`.

    v = 0 not labelled, 1 labelled but not visible, 2 visible: annotated = v > 0. Crowd
    annotations and people without keypoints are skipped and listed in `Records.skipped`. A file
    that is not a COCO keypoints object is an error; a malformed annotation (missing or mistyped
    `keypoints`, `bbox`, `image_id`, ...) is an error naming it, or skipped with `skip_bad`.
    """
    _check_file(path, "COCO annotation file")
    data = _load_json(path)
    if not isinstance(data, dict):
        raise DatasetError(
            f"{path}: expected a COCO object with 'images' and 'annotations', "
            f"got a JSON {type(data).__name__}",
            "not a COCO file",
        )
    image_list, annotations = data.get("images"), data.get("annotations")
    if not isinstance(image_list, list) or not isinstance(annotations, list):
        raise DatasetError(f"{path}: 'images' and 'annotations' must be lists", "not a COCO file")
    images = {}
    for j, im in enumerate(image_list):
        if not (
            isinstance(im, dict)
            and isinstance(im.get("id"), int)
            and not isinstance(im.get("id"), bool)
            and isinstance(im.get("file_name"), str)
        ):
            raise DatasetError(
                f"{path}, images[{j}]: needs an integer 'id' and a string "
                f"'file_name', got {im!r:.80}",
                "malformed image entry",
            )
        images[im["id"]] = im["file_name"]
    builder = _Builder(path, COCO, skip_bad, check_images)
    for j, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            builder.bad(
                f"annotations[{j}]", f"expected an object, got {ann!r:.60}", "malformed annotation"
            )
            continue
        record_id = ann.get("id", f"annotations[{j}]")
        if not isinstance(record_id, (int, str)) or isinstance(record_id, bool):
            record_id = f"annotations[{j}]"
        try:
            crowd, count = ann.get("iscrowd", 0), ann.get("num_keypoints", None)
            if crowd not in (0, 1, True, False):
                raise ValueError(f"'iscrowd' must be 0 or 1, got {crowd!r:.40}")
            if crowd:
                builder.skip("iscrowd", record_id)
                continue
            values = _numbers(ann.get("keypoints"), "'keypoints'", 3 * COCO.num_joints)
            values = values.reshape(-1, 3)
            flags = values[:, 2]
            if not np.all(np.isin(flags, (0, 1, 2))):
                raise ValueError(
                    f"keypoint visibility flags must be 0, 1 or 2, got "
                    f"{sorted(set(flags.tolist()) - {0.0, 1.0, 2.0})[:5]}"
                )
            if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
                raise ValueError(f"'num_keypoints' must be an integer, got {count!r:.40}")
            if not np.any(values[:, 2] > 0):
                builder.skip("no keypoints", record_id)
                continue
            image_id = ann.get("image_id")
            if (
                isinstance(image_id, bool)
                or not isinstance(image_id, int)
                or image_id not in images
            ):
                raise ValueError(f"unknown image_id {image_id!r:.40}")
            center, scale = _box(ann.get("bbox"), "'bbox'")
        except ValueError as error:
            builder.bad(record_id, str(error), "malformed annotation")
            continue
        builder.add(
            record_id,
            os.path.join(image_dir, images[image_id]),
            values[:, :2],
            values[:, 2] > 0,
            values[:, 2] > 1,
            center,
            scale,
        )
    return builder.result()


# --- FLIC ------------------------------------------------------------------------------------

# FLIC's 29 points (1-based in its documentation): the 11 evaluated joints, in FLIC's order.
FLIC_POINTS = {
    "left_shoulder": 0,
    "left_elbow": 1,
    "left_wrist": 2,
    "right_shoulder": 3,
    "right_elbow": 4,
    "right_wrist": 5,
    "left_hip": 6,
    "right_hip": 9,
    "left_eye": 12,
    "right_eye": 13,
    "nose": 16,
}


def read_flic(path, image_dir, split=None, skip_bad=False, check_images=True):
    """FLIC `examples.mat` (struct array with coords 2 x 29, filepath, istrain, istest).

    Args:
        split: "train", "test" or None for all, from FLIC's own istrain / istest flags.

    The 11 joints of the FLIC skeleton are taken from the 29 points; NaN points are unannotated.
    Centre and scale come from the annotated joints' box enlarged 1.25x.
    """
    _check_file(path, "FLIC examples file")
    if split not in (None, "train", "test"):
        raise ValueError(f"`split` must be 'train', 'test' or None. Received: split={split!r}")
    examples = _load_mat(path, "examples", squeeze_me=True, struct_as_record=False)
    examples = np.atleast_1d(examples)
    columns = [FLIC_POINTS[name] for name in FLIC.joint_names]
    builder = _Builder(path, FLIC, skip_bad, check_images)
    for i, ex in enumerate(examples):
        if split == "train" and not bool(ex.istrain):
            continue
        if split == "test" and not bool(ex.istest):
            continue
        coords = np.asarray(ex.coords, np.float64)
        if coords.shape != (2, 29):
            raise DatasetError(f"{path}, example {i}: coords must be 2 x 29, got {coords.shape}")
        xy = coords[:, columns].T
        annotated = np.all(np.isfinite(xy), axis=1)
        builder.add(i, os.path.join(image_dir, str(ex.filepath)), xy - 1.0, annotated)
    return builder.result()


# --- custom ----------------------------------------------------------------------------------


def read_custom(path, skeleton, image_dir="", skip_bad=False, check_images=True):
    """Users' own data: one JSON object or CSV row per person.

    JSON: a list of {"image": path, "keypoints": [[x, y] or [x, y, v], ...] (K rows in the
    skeleton's order), "box": [x, y, w, h] (optional)}. CSV: columns `image`, `<joint>_x`,
    `<joint>_y` for every joint of the skeleton, optional `<joint>_v`, optional `box_x, box_y,
    box_w, box_h`, and no others. Coordinates are 0-based pixels. A joint is not annotated when
    v = 0, or, without v, when both coordinates are empty (CSV) or null/NaN (JSON); v = 1 means
    annotated but occluded, v = 2 (or no v) visible. An annotated joint needs finite coordinates
    (NaN or inf with v > 0, or one coordinate missing, is an error). Without a box the person box
    is the annotated joints' box enlarged 1.25x. Image paths are relative to `image_dir`.
    Malformed rows (wrong types, missing fields, a cut-off or overlong CSV row) are errors naming
    the file and record, or are skipped and listed with `skip_bad`.
    """
    _check_file(path, "custom annotation file")
    builder = _Builder(path, skeleton, skip_bad, check_images)
    k = skeleton.num_joints
    if path.lower().endswith(".json"):
        rows = _load_json(path)
        if not isinstance(rows, list):
            raise DatasetError(
                f"{path}: expected a JSON list of people, got a JSON {type(rows).__name__}",
                "not a list",
            )
        for i, row in enumerate(rows):
            try:
                if not isinstance(row, dict):
                    raise ValueError(f"expected an object, got {row!r:.60}")
                if not isinstance(row.get("image"), str) or not row["image"]:
                    raise ValueError("needs 'image', a non-empty string path")
                raw = row.get("keypoints")
                if isinstance(raw, list):  # null coordinates mean "not annotated"
                    raw = [
                        [float("nan") if v is None else v for v in r] if isinstance(r, list) else r
                        for r in raw
                    ]
                values = _numbers(raw, "'keypoints'")
                if values.ndim != 2 or values.shape[0] != k or values.shape[1] not in (2, 3):
                    raise ValueError(
                        f"'keypoints' must be {k} rows of [x, y] or [x, y, v] "
                        f"({skeleton.name}), got shape {values.shape}"
                    )
                box = row.get("box")
                center_scale = None if box is None else _box(box)
                xy, annotated, visible = _custom_flags(values)
            except ValueError as error:
                builder.bad(i, str(error), "malformed record")
                continue
            _add_custom(
                builder,
                i,
                os.path.join(image_dir, row["image"]),
                xy,
                annotated,
                visible,
                center_scale,
            )
    elif path.lower().endswith(".csv"):
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:  # Excel writes a BOM
                lines = list(csv.reader(f))
        except UnicodeDecodeError as error:
            raise DatasetError(f"{path}: not UTF-8 text ({error.reason})", "not UTF-8") from None
        except csv.Error as error:
            raise DatasetError(f"{path}: not a CSV file ({error})", "invalid CSV") from None
        if not lines:
            raise DatasetError(f"{path}: empty CSV file", "empty file")
        header = [h.strip() for h in lines[0]]
        needed = ["image"] + [f"{j}_{a}" for j in skeleton.joint_names for a in "xy"]
        optional = [f"{j}_v" for j in skeleton.joint_names] + ["box_x", "box_y", "box_w", "box_h"]
        missing = [c for c in needed if c not in header]
        unknown = [c for c in header if c not in needed and c not in optional]
        if missing or unknown or len(set(header)) != len(header):
            raise DatasetError(
                f"{path}: columns must be {needed[:3]} ... for the {k} joints of {skeleton.name}"
                + (f"; missing {missing}" if missing else "")
                + (f"; unknown {unknown}" if unknown else "")
                + ("; repeated columns" if len(set(header)) != len(header) else ""),
                "wrong columns",
            )
        has_v = all(f"{j}_v" in header for j in skeleton.joint_names)
        has_box = {"box_x", "box_y", "box_w", "box_h"} <= set(header)
        for i, fields in enumerate(lines[1:]):
            if not fields:
                continue  # a blank line
            try:
                if len(fields) != len(header):
                    raise ValueError(
                        f"has {len(fields)} fields, the header has {len(header)} "
                        "(a cut-off or overlong row)"
                    )
                row = dict(zip(header, fields))
                if not row["image"].strip():
                    raise ValueError("empty 'image'")
                values = np.array(
                    [
                        [_float(row[f"{j}_x"], f"{j}_x"), _float(row[f"{j}_y"], f"{j}_y")]
                        + ([_float(row[f"{j}_v"], f"{j}_v", 0.0)] if has_v else [])
                        for j in skeleton.joint_names
                    ]
                )
                box = [row[c] for c in ("box_x", "box_y", "box_w", "box_h")] if has_box else None
                if box is not None and all(v.strip() == "" for v in box):
                    box = None
                center_scale = (
                    None
                    if box is None
                    else _box([_float(v, "box") for v in box], "box_x, box_y, box_w, box_h")
                )
                xy, annotated, visible = _custom_flags(values)
            except ValueError as error:
                builder.bad(i, str(error), "malformed record")
                continue
            _add_custom(
                builder,
                i,
                os.path.join(image_dir, row["image"].strip()),
                xy,
                annotated,
                visible,
                center_scale,
            )
    else:
        raise DatasetError(f"{path}: custom annotations must be .json or .csv")
    return builder.result()


def _float(text, column, empty=float("nan")):
    text = (text or "").strip()
    if not text:
        return empty
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"column {column}: {text!r:.40} is not a number") from None


def _custom_flags(values):
    """(xy, annotated, visible) of custom keypoint rows; raises ValueError for an annotated joint
    without finite coordinates (NaN/inf with v > 0, one of x and y missing, inf anywhere)."""
    xy = values[:, :2]
    finite = np.isfinite(xy)
    if values.shape[1] == 3:
        v = values[:, 2]
        if not np.all(np.isfinite(v)) or np.any((v != 0) & (v != 1) & (v != 2)):
            raise ValueError(f"visibility flags must be 0, 1 or 2, got {v.tolist()}")
        annotated, visible = v > 0, v > 1
    else:
        # Without flags, a joint with both coordinates missing (NaN) is not annotated.
        annotated = ~np.all(np.isnan(xy), axis=1)
        visible = annotated
    bad = annotated & ~np.all(finite, axis=1)
    if bad.any():
        raise ValueError(
            f"annotated joints {np.flatnonzero(bad).tolist()} need finite "
            f"coordinates, got {xy[bad].tolist()}"
        )
    return xy, annotated, visible


def _add_custom(builder, i, image_path, xy, annotated, visible, center_scale):
    center, scale = center_scale if center_scale is not None else (None, None)
    builder.add(i, image_path, xy, annotated, visible, center, scale)


# --- the dataset table ------------------------------------------------------------------------


def _read_mpii(data_dir, split, skip_bad):
    for candidate in (
        os.path.join(data_dir, "annot", f"{split}.h5"),
        os.path.join(data_dir, f"{split}.h5"),
    ):
        if os.path.isfile(candidate):
            return read_mpii_h5(candidate, os.path.join(data_dir, "images"), skip_bad)
    raise DatasetError(f"{data_dir}: no annot/{split}.h5 (pose-hg-train MPII layout)")


def _read_lsp(data_dir, split, skip_bad):
    return read_lsp(
        os.path.join(data_dir, "joints.mat"), os.path.join(data_dir, "images"), skip_bad
    )


def _read_coco(data_dir, split, skip_bad):
    annotations = os.path.join(data_dir, "annotations", f"person_keypoints_{split}.json")
    if os.path.isfile(annotations):
        return read_coco(annotations, os.path.join(data_dir, split), skip_bad)
    jsons = sorted(f for f in os.listdir(data_dir) if f.endswith(".json"))
    if len(jsons) == 1:
        return read_coco(os.path.join(data_dir, jsons[0]), data_dir, skip_bad)
    raise DatasetError(f"{data_dir}: no annotations/person_keypoints_{split}.json")


def _read_flic(data_dir, split, skip_bad):
    path = os.path.join(data_dir, "examples.mat")
    return read_flic(path, os.path.join(data_dir, "images"), split, skip_bad)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One dataset: everything the commands need to know of it, in one entry of `DATASETS`.

    Attributes:
        name: the `--dataset` name.
        skeleton: its `Skeleton` (joint order, flip pairs, report groups).
        layout: the folder layout `read` expects (shown in the docs and errors).
        read: `(data_dir, split, skip_bad) -> Records` from that layout; None for synthetic data.
        annotation_readers: {file suffix: reader(path, image_dir, skip_bad=...)} for an
            annotation file given on its own (`evaluate.py --annotations`).
        mat_variable: the variable that marks this dataset's `.mat` annotation file (so a
            `.mat` given with `--preds` is recognised), or "".
        train_split: the split `train.py` trains on.
        val_split: the split it validates on; None: the last `held_out` people of the training
            split are held out instead.
        eval_split: the split `evaluate.py` scores by default.
        held_out: people held out for validation when there is no validation split (None: a
            tenth of the people).
        normalizer: what normalises PCK (the skeleton's `normalizer` form): MPII's head box
            (PCKh@0.5) or the torso (PCK@0.2).
        preds_base: pixel base of the dataset's published prediction files (1: MATLAB-made).
        coco_oks: also score COCO's OKS AP/AR.
    """

    name: str
    skeleton: Skeleton
    layout: str
    read: object = None
    annotation_readers: dict = dataclasses.field(default_factory=dict)
    mat_variable: str = ""
    train_split: str = None
    val_split: str = None
    eval_split: str = None
    held_out: int = None
    normalizer: tuple = None
    preds_base: int = 1
    coco_oks: bool = False

    @property
    def protocol(self):
        """(metric name, threshold): ("PCKh", 0.5) for head-box datasets, ("PCK", 0.2) else."""
        return metric_of(self.normalizer or self.skeleton.normalizer)

    def records(self, data_dir, split=None, skip_bad=False):
        """Reads `split` (default: `eval_split`) of the dataset from its folder."""
        if self.read is None:
            raise ValueError(f"the {self.name} dataset has no files to read")
        if not os.path.isdir(data_dir):
            raise DatasetError(f"Data folder {data_dir!r} does not exist.")
        return self.read(data_dir, split or self.eval_split, skip_bad)


def metric_of(normalizer):
    """(metric name, threshold) of a PCK normaliser: PCKh@0.5 for the head box, PCK@0.2 else."""
    return ("PCKh", 0.5) if normalizer[0] == "head_box" else ("PCK", 0.2)


_TORSO = ("joints", ("left_shoulder", "right_hip"))

# One entry per dataset; adding a dataset means adding one entry here (and its reader above).
DATASETS = {
    "synthetic": Dataset(
        "synthetic",
        MPII,
        "none: stick figures drawn on the fly (keras_hourglass.synthetic), no download",
        normalizer=_TORSO,
        preds_base=0,
    ),
    "mpii": Dataset(
        "mpii",
        MPII,
        "annot/{train,valid}.h5 (pose-hg-train) and images/",
        _read_mpii,
        {".h5": read_mpii_h5, ".json": read_mpii_json},
        mat_variable="pos_gt_src",
        train_split="train",
        val_split="valid",
        eval_split="valid",
    ),
    "lsp": Dataset(
        "lsp",
        LSP,
        "joints.mat and images/ (im0001.jpg ...)",
        _read_lsp,
        {".mat": read_lsp},
        mat_variable="joints",
        held_out=1000,
    ),
    "lspet": Dataset(
        "lspet",
        LSP,
        "joints.mat and images/ (im00001.jpg ...)",
        _read_lsp,
        {".mat": read_lsp},
        mat_variable="joints",
        held_out=1000,
    ),
    "coco": Dataset(
        "coco",
        COCO,
        "annotations/person_keypoints_<split>.json and <split>/, or one .json beside its images",
        _read_coco,
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
        _read_flic,
        {".mat": functools.partial(read_flic, split="test")},  # its published figures' split
        mat_variable="examples",
        train_split="train",
        eval_split="test",
    ),
}

# The datasets with files (every entry but synthetic).
FILE_DATASETS = tuple(name for name, entry in DATASETS.items() if entry.read is not None)


def get_dataset(name):
    """The `Dataset` entry of `name`."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"Unknown dataset {name!r}; known datasets: {list(DATASETS)}") from None


def read_dataset(name, data_dir, split=None, skip_bad=False):
    """Reads a dataset in its usual folder layout (see each entry's `layout` in `DATASETS`); the
    split defaults to the dataset's evaluation split (mpii: valid; coco: val2017; flic: test)."""
    if name not in FILE_DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; known datasets: {list(FILE_DATASETS)}")
    return DATASETS[name].records(data_dir, split, skip_bad)


# --- images ----------------------------------------------------------------------------------

_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_size(path):
    """(width, height) of a JPEG or PNG read from its header, without decoding any pixels.
    `path` is a file path or the file's bytes. Raises ValueError for a header that cannot be
    read."""
    import contextlib
    import io

    opened = (
        contextlib.nullcontext(io.BytesIO(path))
        if isinstance(path, (bytes, bytearray))
        else open(path, "rb")
    )
    with opened as f:
        head = f.read(24)
        if head[:8] == b"\x89PNG\r\n\x1a\n":
            if head[12:16] != b"IHDR":
                raise ValueError("PNG without IHDR header")
            return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        if head[:2] != b"\xff\xd8":
            raise ValueError("neither JPEG nor PNG")
        f.seek(2)
        while True:
            marker = f.read(2)
            if len(marker) < 2 or marker[0] != 0xFF:
                raise ValueError("JPEG without a frame header (SOF)")
            if marker[1] in (0xD8, 0x01) or 0xD0 <= marker[1] <= 0xD7:
                continue  # markers without a length
            length = int.from_bytes(f.read(2), "big")
            if marker[1] in _SOF_MARKERS:
                frame = f.read(5)
                if len(frame) < 5:
                    raise ValueError("JPEG frame header cut off")
                return int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big")
            if length < 2:
                raise ValueError("corrupt JPEG segment length")
            f.seek(length - 2, 1)


def check_image_size(width, height, where, max_pixels=None):
    """DatasetError when width x height exceeds `max_pixels` (default MAX_IMAGE_PIXELS) or is 0."""
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    if width <= 0 or height <= 0:
        raise DatasetError(f"{where} has no pixels ({width} x {height})", "empty image")
    if width * height > limit:
        raise DatasetError(
            f"{where} is {width} x {height} = {width * height:,} pixels, above the limit of "
            f"{limit:,} (decoding it would take {width * height * 12 / 2**30:.1f} GiB as float "
            "RGB); raise the limit with --max-image-pixels if it is real",
            "image too large",
        )


def check_image_files(records, max_pixels=None):
    """Cheap checks of every image before any training or evaluation starts.

    Reads each file's first and last bytes and its header: a zero-size file, an unknown format,
    a JPEG without its end marker (truncated), a PNG without IEND, an image above `max_pixels`
    (default `MAX_IMAGE_PIXELS`) and an annotated joint farther than `MAX_OUTSIDE_IMAGE` image
    sides outside its image raise `DatasetError` naming the file and record.
    """
    seen = {}
    for record in records:
        path = record.image_path
        if path not in seen:
            seen[path] = _check_image_file(record, path, max_pixels)
        width, height = seen[path]
        margin = MAX_OUTSIDE_IMAGE * max(width, height)
        xy = np.asarray(record.keypoints)[np.asarray(record.annotated, bool)]
        outside = (
            (xy[:, 0] < -margin)
            | (xy[:, 0] > width - 1 + margin)
            | (xy[:, 1] < -margin)
            | (xy[:, 1] > height - 1 + margin)
        )
        if outside.any():
            raise DatasetError(
                f"record {record.record_id}: annotated joints at {xy[outside].tolist()} lie "
                f"far outside its image {path!r} ({width} x {height}): corrupt coordinates?",
                "coordinates far outside the image",
            )


def _check_image_file(record, path, max_pixels):
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(max(size - 12, 0))
            tail = f.read()
    except OSError as error:
        raise DatasetError(
            f"record {record.record_id}: cannot read image {path!r}: {error}"
        ) from None
    if size == 0:
        raise DatasetError(f"record {record.record_id}: image {path!r} is empty")
    if head[:3] == b"\xff\xd8\xff":
        if b"\xff\xd9" not in tail:
            raise DatasetError(
                f"record {record.record_id}: image {path!r} is a truncated JPEG (no end marker)"
            )
    elif head == b"\x89PNG\r\n\x1a\n":
        if b"IEND" not in tail:
            raise DatasetError(f"record {record.record_id}: image {path!r} is a truncated PNG")
    else:
        raise DatasetError(f"record {record.record_id}: image {path!r} is neither JPEG nor PNG")
    try:
        width, height = image_size(path)
    except ValueError as error:
        raise DatasetError(
            f"record {record.record_id}: image {path!r} has a corrupt header ({error})"
        ) from None
    check_image_size(width, height, f"record {record.record_id}: image {path!r}", max_pixels)
    return width, height
