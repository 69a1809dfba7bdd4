"""People boxes from outside: `--bbox x,y,w,h` and files of detections per image.

    boxes = parse_bbox("120,40,200,380")                     # (x, y, w, h) in image pixels
    table = read_detections("detections.json", min_score=0.3)
    found = table.of("photos/000000397133.jpg")              # [Detection(bbox, score), ...]
    cx, cy, scale = person_box(found[0].bbox)                # the crop of that person

A box is `[x, y, w, h]`, COCO's convention: the top-left corner and the size in pixels. The
crop around it is the top-down convention of the published COCO pipelines (SimpleBaseline and
HRNet, `_xywh2cs` in leoxiaobin/deep-high-resolution-net.pytorch lib/dataset/coco.py): a square
of the longer side, enlarged 1.25x, centred on the box (`datasets.box_from_xywh`).

A detections file is JSON, either
- COCO's detection results, what detectors write for COCO: a list of
  `{"image_id": 397133, "bbox": [x, y, w, h], "score": 0.98, "category_id": 1}` (entries of
  other categories than 1, person, are left out); an image matches an `image_id` by its file
  name (`000000397133.jpg` is image 397133) or by the id given in a COCO annotation file, or
- a mapping of image file names (or paths) to lists of boxes, each `[x, y, w, h]` or
  `{"bbox": [x, y, w, h], "score": s}`.
A box without a score has score 1. Every entry is checked: a malformed one is an error naming
the file and the entry.
"""

import collections
import dataclasses
import json
import math
import os

from keras_hourglass.datasets.records import box_from_xywh
from keras_hourglass.geometry import PERSON_BOX_PX

__all__ = [
    "Box",
    "BoxError",
    "Detection",
    "Detections",
    "check_inside",
    "parse_bbox",
    "person_box",
    "read_detections",
    "to_box",
]

PERSON_CATEGORY = 1  # COCO's category id of people

Detection = collections.namedtuple("Detection", ["bbox", "score"])


class BoxError(ValueError):
    """A box or detections file that cannot be used; the message says where and why."""


@dataclasses.dataclass(frozen=True)
class Box:
    """A person's box at the library's edge: the top-left corner `x`, `y` and the size `w`, `h` in
    the image's pixels (COCO's convention), with a `score` (a detector's; 1 for a box a user
    gave), all in pixels: the square the network's crop shows around it is `square()`.
    `Box.around` is a crop given directly by its centre and side (MPII's centre and scale x 200
    px, or x a model's own person box for a model whose unit differs). `angle`
    (radians) is the body's turn where a detector knows it: the body's up direction is the
    image's (sin angle, -cos angle), 0 upright, pi upside down (`framing` stands it upright)."""

    x: float
    y: float
    w: float
    h: float
    score: float = 1.0
    center: tuple = None  # set by `around`: the crop's centre and side, kept exactly
    side: float = None
    angle: float = 0.0

    @classmethod
    def around(cls, cx, cy, side, score=1.0):
        """The person whose crop is the square of `side` pixels centred on (`cx`, `cy`); the box
        is that square."""
        return cls(
            cx + 0.5 - side / 2, cy + 0.5 - side / 2, side, side, score, (cx, cy), float(side)
        )

    @property
    def xywh(self):
        return [self.x, self.y, self.w, self.h]

    @property
    def given_as_crop(self):
        return self.side is not None

    def square(self):
        """(centre x, centre y, side) in pixels of the square the network's crop shows: the
        longer side x 1.25 centred on the box (the top-down convention), or the square given
        to `around`."""
        if self.given_as_crop:
            return float(self.center[0]), float(self.center[1]), float(self.side)
        cx, cy, scale = person_box(self.xywh)
        return cx, cy, scale * PERSON_BOX_PX

    def check_inside(self, width, height, where):
        """Raises `BoxError` when the box does not overlap the `width` x `height` image (a crop
        given by its centre: when the centre lies outside)."""
        if not self.given_as_crop:
            return check_inside(self.xywh, width, height, where)
        cx, cy = self.center
        if not (0 <= cx <= width - 1 and 0 <= cy <= height - 1):
            raise BoxError(
                f"{where}: the centre ({cx}, {cy}) lies outside the image ({width}x{height})"
            )


def _bbox(values, where):
    """A checked (x, y, w, h) of finite floats with w, h > 0."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) != 4:
        raise BoxError(f"{where}: a box is [x, y, w, h], got {values!r:.80}")
    try:
        box = tuple(float(v) for v in values)
        if any(isinstance(v, bool) for v in values):
            raise TypeError
    except (TypeError, ValueError):
        raise BoxError(f"{where}: a box is four numbers [x, y, w, h], got {values!r:.80}") from None
    if not all(math.isfinite(v) for v in box):
        raise BoxError(f"{where}: the box {list(box)} has a NaN or infinite value")
    if box[2] <= 0 or box[3] <= 0:
        raise BoxError(f"{where}: the box {list(box)} needs a positive width and height")
    return box


def _score(value, where):
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BoxError(f"{where}: 'score' must be a finite number, got {value!r:.40}")
    return float(value)


def to_box(value, where="the box"):
    """A person box as users hold one: a `Box` as it is, or [x, y, w, h] (COCO's) checked
    (finite, positive size) into a `Box`; a `BoxError` naming `where` otherwise."""
    if isinstance(value, Box):
        return value
    return Box(*_bbox(value, where))


def parse_bbox(text):
    """`--bbox x,y,w,h` -> (x, y, w, h) floats; a clear error for anything else."""
    parts = text.split(",")
    if len(parts) != 4:
        raise BoxError(
            f"--bbox {text!r}: expected x,y,w,h (top-left corner and size), e.g. 40,20,200,380"
        )
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise BoxError(f"--bbox {text!r}: x,y,w,h must be numbers") from None
    return _bbox(values, f"--bbox {text!r}")


def person_box(bbox):
    """The person box (centre x, centre y, scale) of the crop around an [x, y, w, h] box, the
    top-down convention (a square of the longer side x 1.25), in MPII's convention (scale =
    the square's side / 200 px), as the datasets' records hold it."""
    center, scale = box_from_xywh(bbox)
    return [float(center[0]), float(center[1]), float(scale)]


def check_inside(bbox, width, height, where):
    """Raises `BoxError` when an [x, y, w, h] box does not overlap its `width` x `height`
    image (`where` names the image)."""
    x, y, w, h = bbox
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise BoxError(
            f"{where}: the box {list(bbox)} (x, y, w, h) lies outside the image ({width}x{height})"
        )


# Boxes of one image overlapping a higher-scored one by more than this IoU are duplicates of it
# (mmpose's top-down demo: `--nms-thr 0.3`).
NMS_IOU = 0.3


def box_iou(a, b):
    """Intersection over union of two [x, y, w, h] boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def nms(boxes, threshold=NMS_IOU):
    """Greedy non-maximum suppression of [(bbox, score)]: highest score first, a box whose IoU
    with a kept one is above `threshold` is dropped (`threshold` >= 1 keeps every box). Returns
    the kept ones, highest score first (ties in the given order)."""
    order = sorted(range(len(boxes)), key=lambda i: -boxes[i][1])
    kept = []
    for i in order:
        if all(box_iou(boxes[i][0], boxes[k][0]) <= threshold for k in kept):
            kept.append(i)
    return [boxes[i] for i in kept]


def detected_people(boxes, width, height, where, threshold=NMS_IOU):
    """A detector's boxes of one image made usable: boxes that do not overlap the image left out,
    duplicates removed (`nms`). Returns (kept [(bbox, score)], notes): one line per thing left
    out, naming the image and the box, for the command to print."""
    notes, inside = [], []
    for bbox, score in boxes:
        try:
            check_inside(bbox, width, height, where)
        except BoxError as error:
            notes.append(f"note: {error}; left out")
            continue
        inside.append((bbox, score))
    kept = nms(inside, threshold)
    if len(kept) < len(inside):
        notes.append(
            f"note: {where}: {len(inside) - len(kept)} of {len(inside)} boxes overlap a "
            f"higher-scored one by more than IoU {threshold:g} (--nms-thr); left out as duplicates"
        )
    return kept, notes


class Detections:
    """The boxes of a detections file by image (`read_detections`)."""

    def __init__(self, path, by_key, coco):
        self.path = path
        self.by_key = by_key  # image_id (COCO results) or file name / path -> [Detection]
        self.coco = coco  # COCO detection results: keyed by image_id

    def __len__(self):
        return sum(len(v) for v in self.by_key.values())

    def of(self, image_path, image_id=None):
        """The detections of an image, by its COCO `image_id` when given, else by its path, file
        name, or (COCO results) the number its file name is."""
        if self.coco:
            if image_id is None:
                stem = os.path.splitext(os.path.basename(image_path))[0]
                digits = stem.rsplit("_", 1)[-1]  # COCO_val2014_000000397133 as well
                image_id = int(digits) if digits.isdigit() else stem
            return list(self.by_key.get(image_id, []))
        for key in (image_path, os.path.normpath(image_path), os.path.basename(image_path)):
            if key in self.by_key:
                return list(self.by_key[key])
        return []

    def keys(self):
        return set(self.by_key)


def read_detections(path, min_score=0.0):
    """Reads a detections file (either format of the module's docstring), keeping boxes with a
    score of at least `min_score`. Raises `BoxError` naming the file and entry."""
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isfile(path):
        raise BoxError(f"detections file {path!r} does not exist")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BoxError(f"{path}: not a JSON file of detections ({error})") from None
    by_key = collections.defaultdict(list)
    if isinstance(data, list):  # COCO detection results
        for i, entry in enumerate(data):
            where = f"{path}, entry {i}"
            if not isinstance(entry, dict):
                raise BoxError(f"{where}: expected an object with image_id, bbox, score")
            if "image_id" not in entry or "bbox" not in entry:
                raise BoxError(f"{where}: needs 'image_id' and 'bbox' (COCO detection results)")
            image_id = entry["image_id"]
            if isinstance(image_id, bool) or not isinstance(image_id, (int, str)):
                raise BoxError(f"{where}: 'image_id' must be a number or a string")
            category = entry.get("category_id", PERSON_CATEGORY)
            box, score = _bbox(entry["bbox"], where), _score(entry.get("score"), where)
            if category == PERSON_CATEGORY and score >= min_score:
                by_key[image_id].append(Detection(box, score))
        return Detections(path, dict(by_key), coco=True)
    if isinstance(data, dict):
        for image, boxes in data.items():
            if not isinstance(boxes, list):
                raise BoxError(f"{path}, image {image!r}: expected a list of boxes")
            for i, entry in enumerate(boxes):
                where = f"{path}, image {image!r}, box {i}"
                if isinstance(entry, dict):
                    if "bbox" not in entry:
                        raise BoxError(f"{where}: needs 'bbox': [x, y, w, h]")
                    box, score = _bbox(entry["bbox"], where), _score(entry.get("score"), where)
                else:
                    box, score = _bbox(entry, where), 1.0
                if score >= min_score:
                    by_key[os.path.normpath(image)].append(Detection(box, score))
        return Detections(path, dict(by_key), coco=False)
    raise BoxError(
        f"{path}: expected COCO detection results (a list) or a mapping of images to boxes, "
        f"got a JSON {type(data).__name__}"
    )
