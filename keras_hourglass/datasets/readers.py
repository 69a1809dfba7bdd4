"""The annotation readers: one function per file format, each returning `Records`.

Every reader takes the annotation file and the folder its image paths are relative to, checks
each person with `RecordBuilder` (nothing dropped silently; `skip_bad` lists what it leaves out)
and returns `Records` in this project's 0-based pixel convention with the dataset's skeleton.
`datasets.table` says which reader reads which dataset's folder.
"""

import csv
import os

import h5py  # MPII's pose-hg-train .h5 files
import numpy as np

from keras_hourglass.datasets.records import (
    DatasetError,
    RecordBuilder,
    box_from_list,
    check_file,
    load_json,
    load_mat,
    numbers,
)
from keras_hourglass.skeletons import COCO, FLIC, LSP, MPII

# --- MPII ------------------------------------------------------------------------------------


def read_mpii_h5(path, image_dir, skip_bad=False, check_images=True):
    """MPII from pose-hg-train's `annot/*.h5` (center, scale, part, visible, normalize, imgname).

    The file's centre and scale are already adjusted as pose-hg-train does (centre y + 15 s,
    scale x 1.25). Annotated = part != (0, 0) (the file's `visible` marks occlusion, not
    annotation); `normalize` (0.6 x head-box diagonal) is the PCKh normaliser.
    """
    check_file(path, "MPII annotation file")
    builder = RecordBuilder(path, MPII, skip_bad, check_images)
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
    check_file(path, "MPII JSON file")
    rows = load_json(path)
    if not isinstance(rows, list):
        raise DatasetError(f"{path}: expected a JSON list of people, got {type(rows).__name__}")
    builder = RecordBuilder(path, MPII, skip_bad, check_images)
    for i, row in enumerate(rows):
        try:
            joints = np.asarray(row["joints"], np.float64)
            annotated = np.asarray(row["joints_vis"]) > 0
            center = np.asarray(row["center"], np.float64)
            scale = float(row["scale"])
            image = row["image"]
            if not isinstance(image, str):
                raise TypeError(f"'image' must be a path, got {image!r:.40}")
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
    check_file(path, "LSP joints file")
    joints = np.asarray(load_mat(path, "joints"))
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
    builder = RecordBuilder(path, LSP, skip_bad, check_images)
    for k in range(xy.shape[0]):
        builder.add(
            k, os.path.join(image_dir, pattern % (k + 1)), xy[k] - 1.0, annotated[k], visible[k]
        )
    return builder.result()


# --- COCO ------------------------------------------------------------------------------------


def read_coco(path, image_dir, skip_bad=False, check_images=True):
    """COCO person keypoints JSON: one single-person record per annotation, the crop from `bbox`.

    v = 0 not labelled, 1 labelled but not visible, 2 visible: annotated = v > 0. Crowd
    annotations and people without keypoints are skipped and listed in `Records.skipped`. A file
    that is not a COCO keypoints object is an error; a malformed annotation (missing or mistyped
    `keypoints`, `bbox`, `image_id`, ...) is an error naming it, or skipped with `skip_bad`.
    """
    check_file(path, "COCO annotation file")
    data = load_json(path)
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
    builder = RecordBuilder(path, COCO, skip_bad, check_images)
    seen_ids = {}
    for j, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            builder.bad(
                f"annotations[{j}]", f"expected an object, got {ann!r:.60}", "malformed annotation"
            )
            continue
        record_id = ann.get("id", f"annotations[{j}]")
        if not isinstance(record_id, (int, str)) or isinstance(record_id, bool):
            record_id = f"annotations[{j}]"
        if "id" in ann and record_id in seen_ids:
            builder.bad(
                record_id,
                f"annotations[{j}] has the id of annotations[{seen_ids[record_id]}] (ids must "
                "be unique: a copy would count twice, or leak a held-out person into training)",
                "duplicate annotation id",
            )
            continue
        seen_ids.setdefault(record_id, j)
        try:
            crowd, count = ann.get("iscrowd", 0), ann.get("num_keypoints", None)
            if crowd not in (0, 1, True, False):
                raise ValueError(f"'iscrowd' must be 0 or 1, got {crowd!r:.40}")
            if crowd:
                builder.skip("iscrowd", record_id)
                continue
            values = numbers(ann.get("keypoints"), "'keypoints'", 3 * COCO.num_joints)
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
            center, scale = box_from_list(ann.get("bbox"), "'bbox'")
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
    check_file(path, "FLIC examples file")
    if split not in (None, "train", "test"):
        raise ValueError(f"`split` must be 'train', 'test' or None. Received: split={split!r}")
    examples = load_mat(path, "examples", squeeze_me=True, struct_as_record=False)
    examples = np.atleast_1d(examples)
    columns = [FLIC_POINTS[name] for name in FLIC.joint_names]
    builder = RecordBuilder(path, FLIC, skip_bad, check_images)
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
    skeleton's order), optionally "box": [x, y, w, h] (a detector's box, enlarged 1.25x) or
    "center": [x, y] with "scale" (MPII's convention: the crop side is 200 * scale px), and
    optionally "normalizer": the person's PCK normalising size in px (default: from the
    skeleton's normaliser joints)}. CSV: columns `image`, `<joint>_x`,
    `<joint>_y` for every joint of the skeleton, optional `<joint>_v`, optional `box_x, box_y,
    box_w, box_h`, and no others. Coordinates are 0-based pixels. A joint is not annotated when
    v = 0, or, without v, when both coordinates are empty (CSV) or null/NaN (JSON); v = 1 means
    annotated but occluded, v = 2 (or no v) visible. An annotated joint needs finite coordinates
    (NaN or inf with v > 0, or one coordinate missing, is an error). Without a box the person box
    is the annotated joints' box enlarged 1.25x. Image paths are relative to `image_dir`.
    Malformed rows (wrong types, missing fields, a cut-off or overlong CSV row) are errors naming
    the file and record, or are skipped and listed with `skip_bad`.
    """
    check_file(path, "custom annotation file")
    builder = RecordBuilder(path, skeleton, skip_bad, check_images)
    if path.lower().endswith(".json"):
        _read_custom_json(path, builder, skeleton, image_dir)
    elif path.lower().endswith(".csv"):
        _read_custom_csv(path, builder, skeleton, image_dir)
    else:
        raise DatasetError(f"{path}: custom annotations must be .json or .csv")
    return builder.result()


def _read_custom_json(path, builder, skeleton, image_dir):
    """`read_custom`'s JSON: a list of people objects, each checked and added to `builder`."""
    k = skeleton.num_joints
    rows = load_json(path)
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
            values = numbers(raw, "'keypoints'")
            if values.ndim != 2 or values.shape[0] != k or values.shape[1] not in (2, 3):
                raise ValueError(
                    f"'keypoints' must be {k} rows of [x, y] or [x, y, v] "
                    f"({skeleton.name}), got shape {values.shape}"
                )
            center_scale = _json_person_box(row)
            normalizer = row.get("normalizer")
            if normalizer is not None:
                normalizer = float(numbers([normalizer], "'normalizer'", 1)[0])
                if not (np.isfinite(normalizer) and normalizer > 0):
                    raise ValueError(f"'normalizer' must be positive, got {normalizer}")
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
            normalizer,
        )


def _read_custom_csv(path, builder, skeleton, image_dir):
    """`read_custom`'s CSV: a header naming the joints' columns, a row per person."""
    k = skeleton.num_joints
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
                else box_from_list([_float(v, "box") for v in box], "box_x, box_y, box_w, box_h")
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


def _json_person_box(row):
    """(centre, scale) from a custom JSON person's "box" or "center" + "scale", or None."""
    box, center, scale = row.get("box"), row.get("center"), row.get("scale")
    if box is not None and (center is not None or scale is not None):
        raise ValueError("give either 'box' or 'center' and 'scale', not both")
    if box is not None:
        return box_from_list(box)
    if center is None and scale is None:
        return None
    if center is None or scale is None:
        raise ValueError("'center' and 'scale' go together")
    center = numbers(center, "'center'", 2).reshape(2)
    scale = float(numbers([scale], "'scale'", 1)[0])
    if not (np.all(np.isfinite(center)) and np.isfinite(scale) and scale > 0):
        raise ValueError(
            f"'center' must be finite and 'scale' positive, got {center.tolist()}, {scale}"
        )
    return center, scale


def _add_custom(builder, i, image_path, xy, annotated, visible, center_scale, normalizer=None):
    center, scale = center_scale if center_scale is not None else (None, None)
    builder.add(i, image_path, xy, annotated, visible, center, scale, normalizer)
