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
import json
import os

import numpy as np

from keras_hourglass.skeletons import COCO, FLIC, LSP, MPII

# Annotated joints may lie outside the image (MPII annotates head tops above the frame, e.g.
# valid.h5 row 87 at y = -15), but one farther from the person centre than this many person-box
# sides (200 * scale px) is corrupt (a sign error, a sentinel such as -1 or -999 taken for a
# coordinate) and is an error.
MAX_BOX_DISTANCE = 1.0

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
            parts.append(f"skipped {len(ids)} ({reason}): {', '.join(map(str, ids[:10]))}"
                         + (" ..." if len(ids) > 10 else ""))
        return "; ".join(parts)


def _check_file(path, what):
    if not os.path.isfile(path):
        raise DatasetError(f"{what} {path!r} does not exist.")


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
    return center, side / 200.0


def box_from_xywh(box, margin=JOINT_BOX_MARGIN):
    """Centre and scale from a COCO-style [x, y, w, h] box (continuous coordinates)."""
    x, y, w, h = (float(v) for v in box)
    center = np.array([x + w / 2.0 - 0.5, y + h / 2.0 - 0.5])
    return center, max(w, h) * margin / 200.0


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

    def add(self, record_id, image_path, keypoints, annotated, visible=None, center=None,
            scale=None, normalizer=None):
        try:
            record = self._make(record_id, image_path, keypoints, annotated, visible, center,
                                scale, normalizer)
        except DatasetError as error:
            if not self.skip_bad:
                raise
            self.skip(error.reason, record_id)
            return
        self.records.append(record)

    def _make(self, record_id, image_path, keypoints, annotated, visible, center, scale,
              normalizer):
        where = f"{self.source}, record {record_id}"
        k = self.skeleton.num_joints
        keypoints = np.asarray(keypoints, np.float64)
        if keypoints.shape != (k, 2):
            raise DatasetError(
                f"{where}: expected {k} joints ({self.skeleton.name}) as ({k}, 2) coordinates, "
                f"got shape {keypoints.shape}", "wrong number of joints"
            )
        annotated = np.asarray(annotated, bool).reshape(-1)
        if annotated.shape != (k,):
            raise DatasetError(f"{where}: expected {k} annotation flags, got {annotated.shape}",
                               "wrong number of joints")
        visible = annotated.copy() if visible is None else (np.asarray(visible, bool) & annotated)
        bad = annotated & ~np.all(np.isfinite(keypoints), axis=1)
        if bad.any():
            names = [self.skeleton.joint_names[i] for i in np.flatnonzero(bad)]
            raise DatasetError(f"{where}: non-finite coordinates for annotated joints {names}",
                               "non-finite coordinates")
        if not annotated.any():
            raise DatasetError(f"{where}: no annotated joints", "no annotated joints")
        if center is None or scale is None:
            center, scale = box_from_joints(keypoints, annotated)
        center = np.asarray(center, np.float64).reshape(2)
        scale = float(scale)
        if not np.all(np.isfinite(center)):
            raise DatasetError(f"{where}: non-finite person centre {center.tolist()}",
                               "non-finite centre")
        if not (np.isfinite(scale) and scale > 0):
            raise DatasetError(f"{where}: person scale must be positive, got {scale}",
                               "non-positive scale")
        far = annotated & np.any(np.abs(keypoints - center) > MAX_BOX_DISTANCE * 200 * scale, axis=1)
        if far.any():
            names = [self.skeleton.joint_names[i] for i in np.flatnonzero(far)]
            raise DatasetError(
                f"{where}: annotated joints {names} at {keypoints[far].tolist()} lie farther than "
                f"a person box ({200 * scale:.0f} px) from the centre {center.tolist()}: "
                "negative or corrupt coordinates?", "coordinates far outside the person box"
            )
        if normalizer is None:
            normalizer = _torso(keypoints, annotated, self.skeleton)
        if self.check_images and not os.path.isfile(image_path):
            raise DatasetError(f"{where}: image {image_path!r} does not exist",
                               "image does not exist")
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
    with h5py.File(path, "r") as f:
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
            i, os.path.join(image_dir, names[i]), part[i] - 1.0, annotated, visible[i],
            center[i] - 1.0, scale[i],
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
        builder.add(i, os.path.join(image_dir, image), joints - 1.0, annotated, None,
                    center - 1.0, scale * 1.25, float("nan"))
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
    from scipy.io import loadmat

    _check_file(path, "LSP joints file")
    joints = loadmat(path)["joints"]
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
        builder.add(k, os.path.join(image_dir, pattern % (k + 1)), xy[k] - 1.0, annotated[k],
                    visible[k])
    return builder.result()


# --- COCO ------------------------------------------------------------------------------------

def read_coco(path, image_dir, skip_bad=False, check_images=True):
    """COCO person keypoints JSON: one single-person record per annotation, the crop from `bbox`.

    v = 0 not labelled, 1 labelled but not visible, 2 visible: annotated = v > 0. Crowd
    annotations and people without keypoints are skipped and listed in `Records.skipped`.
    """
    _check_file(path, "COCO annotation file")
    with open(path) as f:
        data = json.load(f)
    images = {im["id"]: im["file_name"] for im in data.get("images", [])}
    builder = _Builder(path, COCO, skip_bad, check_images)
    for ann in data.get("annotations", []):
        record_id = ann.get("id", len(builder.records))
        if ann.get("iscrowd", 0):
            builder.skip("iscrowd", record_id)
            continue
        if ann.get("num_keypoints", 0) == 0:
            builder.skip("no keypoints", record_id)
            continue
        if ann.get("image_id") not in images:
            raise DatasetError(f"{path}, annotation {record_id}: unknown image_id {ann.get('image_id')}")
        values = np.asarray(ann["keypoints"], np.float64)
        if values.size != 3 * COCO.num_joints:
            raise DatasetError(
                f"{path}, annotation {record_id}: expected {3 * COCO.num_joints} keypoint values "
                f"(17 x (x, y, v)), got {values.size}"
            )
        values = values.reshape(-1, 3)
        center, scale = box_from_xywh(ann["bbox"])
        builder.add(record_id, os.path.join(image_dir, images[ann["image_id"]]), values[:, :2],
                    values[:, 2] > 0, values[:, 2] > 1, center, scale)
    return builder.result()


# --- FLIC ------------------------------------------------------------------------------------

# FLIC's 29 points (1-based in its documentation): the 11 evaluated joints, in FLIC's order.
FLIC_POINTS = {"left_shoulder": 0, "left_elbow": 1, "left_wrist": 2, "right_shoulder": 3,
               "right_elbow": 4, "right_wrist": 5, "left_hip": 6, "right_hip": 9,
               "left_eye": 12, "right_eye": 13, "nose": 16}


def read_flic(path, image_dir, split=None, skip_bad=False, check_images=True):
    """FLIC `examples.mat` (struct array with coords 2 x 29, filepath, istrain, istest).

    Args:
        split: "train", "test" or None for all, from FLIC's own istrain / istest flags.

    The 11 joints of the FLIC skeleton are taken from the 29 points; NaN points are unannotated.
    Centre and scale come from the annotated joints' box enlarged 1.25x.
    """
    from scipy.io import loadmat

    _check_file(path, "FLIC examples file")
    if split not in (None, "train", "test"):
        raise ValueError(f"`split` must be 'train', 'test' or None. Received: split={split!r}")
    examples = loadmat(path, squeeze_me=True, struct_as_record=False)["examples"]
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
    box_w, box_h`. Coordinates are 0-based pixels; v = 0 (or empty/NaN coordinates) means not
    annotated, v = 1 annotated but occluded, v = 2 (or no v) visible. Without a box the person box
    is the annotated joints' box enlarged 1.25x. Image paths are relative to `image_dir`.
    """
    _check_file(path, "custom annotation file")
    builder = _Builder(path, skeleton, skip_bad, check_images)
    k = skeleton.num_joints
    if path.lower().endswith(".json"):
        with open(path) as f:
            rows = json.load(f)
        if not isinstance(rows, list):
            raise DatasetError(f"{path}: expected a JSON list of people")
        for i, row in enumerate(rows):
            if "image" not in row or "keypoints" not in row:
                raise DatasetError(f"{path}, record {i}: needs 'image' and 'keypoints'")
            values = np.asarray(row["keypoints"], np.float64)
            if values.ndim != 2 or values.shape[0] != k or values.shape[1] not in (2, 3):
                raise DatasetError(
                    f"{path}, record {i}: 'keypoints' must be {k} rows of [x, y] or [x, y, v] "
                    f"({skeleton.name}), got shape {values.shape}"
                )
            _add_custom(builder, i, os.path.join(image_dir, row["image"]), values, row.get("box"))
    elif path.lower().endswith(".csv"):
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            fields = set(reader.fieldnames or ())
            needed = {"image"} | {f"{j}_{a}" for j in skeleton.joint_names for a in "xy"}
            if needed - fields:
                raise DatasetError(f"{path}: missing columns {sorted(needed - fields)}")
            has_v = all(f"{j}_v" in fields for j in skeleton.joint_names)
            has_box = {"box_x", "box_y", "box_w", "box_h"} <= fields
            for i, row in enumerate(reader):
                values = np.array([[_float(row[f"{j}_x"]), _float(row[f"{j}_y"])]
                                   + ([_float(row[f"{j}_v"])] if has_v else [])
                                   for j in skeleton.joint_names])
                box = [row[c] for c in ("box_x", "box_y", "box_w", "box_h")] if has_box else None
                if box is not None and any(v.strip() == "" for v in box):
                    box = None
                _add_custom(builder, i, os.path.join(image_dir, row["image"]), values, box)
    else:
        raise DatasetError(f"{path}: custom annotations must be .json or .csv")
    return builder.result()


def _float(text):
    text = (text or "").strip()
    return float(text) if text else float("nan")


def _add_custom(builder, i, image_path, values, box):
    xy = values[:, :2]
    if values.shape[1] == 3:
        v = values[:, 2]
        annotated = (v > 0) & np.all(np.isfinite(xy), axis=1)
        visible = v > 1
    else:
        annotated = np.all(np.isfinite(xy), axis=1)
        visible = annotated
    center = scale = None
    if box is not None:
        center, scale = box_from_xywh(box)
    builder.add(i, image_path, xy, annotated, visible, center, scale)


# --- by name ---------------------------------------------------------------------------------

DATASETS = ("mpii", "lsp", "lspet", "coco", "flic")


def read_dataset(name, data_dir, split=None, skip_bad=False):
    """Reads a dataset in its usual folder layout.

    - mpii: `annot/<split>.h5` (split train or valid, default valid) and `images/`; also accepts
      the folder of ../shared/data/mpii_annot with `valid.h5` directly in it.
    - lsp, lspet: `joints.mat` and `images/`.
    - coco: `annotations/person_keypoints_<split>.json` and `<split>/` (default val2017), or a
      single `*.json` in the folder with the images beside it.
    - flic: `examples.mat` and `images/` (split train or test).
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; known datasets: {list(DATASETS)}")
    if not os.path.isdir(data_dir):
        raise DatasetError(f"Data folder {data_dir!r} does not exist.")
    if name == "mpii":
        split = split or "valid"
        for candidate in (os.path.join(data_dir, "annot", f"{split}.h5"),
                          os.path.join(data_dir, f"{split}.h5")):
            if os.path.isfile(candidate):
                return read_mpii_h5(candidate, os.path.join(data_dir, "images"), skip_bad)
        raise DatasetError(f"{data_dir}: no annot/{split}.h5 (pose-hg-train MPII layout)")
    if name in ("lsp", "lspet"):
        return read_lsp(os.path.join(data_dir, "joints.mat"), os.path.join(data_dir, "images"),
                        skip_bad)
    if name == "coco":
        split = split or "val2017"
        annotations = os.path.join(data_dir, "annotations", f"person_keypoints_{split}.json")
        if os.path.isfile(annotations):
            return read_coco(annotations, os.path.join(data_dir, split), skip_bad)
        jsons = sorted(f for f in os.listdir(data_dir) if f.endswith(".json"))
        if len(jsons) == 1:
            return read_coco(os.path.join(data_dir, jsons[0]), data_dir, skip_bad)
        raise DatasetError(f"{data_dir}: no annotations/person_keypoints_{split}.json")
    return read_flic(os.path.join(data_dir, "examples.mat"), os.path.join(data_dir, "images"),
                     split, skip_bad)


# --- images ----------------------------------------------------------------------------------

def check_image_files(records):
    """Cheap checks that every image is a complete JPEG or PNG, before any training starts.

    Reads each file's first and last bytes: a zero-size file, an unknown format or a JPEG
    without its end marker (truncated) raises `DatasetError` naming the file and record.
    """
    seen = {}
    for record in records:
        path = record.image_path
        if path in seen:
            continue
        seen[path] = True
        try:
            size = os.path.getsize(path)
            with open(path, "rb") as f:
                head = f.read(8)
                f.seek(max(size - 12, 0))
                tail = f.read()
        except OSError as error:
            raise DatasetError(f"record {record.record_id}: cannot read image {path!r}: {error}") from None
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
            raise DatasetError(
                f"record {record.record_id}: image {path!r} is neither JPEG nor PNG"
            )
