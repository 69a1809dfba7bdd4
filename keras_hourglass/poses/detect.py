"""Automatic person boxes: MediaPipe's BlazePose person detector, run by OpenVINO, for the top-down
pose loop (`hourglass-predict --detect`, the demo page).

    detector = PersonDetector()
    boxes = detector(pixels)          # [Box(x, y, w, h, score)], highest score first

The detector (`pose_detection.tflite`, 224 x 224 input, 2,254 SSD anchors; Apache-2.0, The
MediaPipe Authors; Bazarevsky et al., "BlazePose", 2020) ships inside the `mediapipe` wheel
(0.10.21, the last with the legacy solutions' models): we read that file and never import
mediapipe, whose pins (numpy<2, protobuf<5) clash with TensorFlow's, so it is installed with
`pip install --no-deps mediapipe==0.10.21`. Nothing is downloaded at run time; the file's
SHA-256 is checked so the measured model is the one that runs.

What it finds: one detection per person, from the face and the hips: MediaPipe's alignment
points give the body's centre (the mid-hip), its radius and its axis (mid-hip towards the
head: `Box.angle`, MediaPipe's rotation); the box is the square of twice that radius around
the centre, so the network's crop (1.25x, `Box.crop`) is MediaPipe's own
landmark crop. As MediaPipe decodes it: letterboxed to 224 px, scores a sigmoid, weighted
non-maximum suppression at IoU 0.3. Its limits (docs/demo.md, docs/BENCHMARKS.md): trained
for people whose face is visible and who are not tiny; people seen from behind, far away or
in crowds are often missed.
"""

import dataclasses
import functools
import hashlib
import importlib.metadata
import math
import os

import numpy as np

from keras_hourglass.poses.boxes import Box, box_iou, nms

__all__ = [
    "DETECTORS",
    "DETECT_SCALES",
    "DetectorError",
    "PersonDetector",
    "TiledDetector",
    "closer_boxes",
    "compile_wheel_model",
    "detector_path",
    "make_detector",
    "parse_scales",
    "tiles",
    "turned_boxes",
    "wheel_model",
]

MODEL_FILE = "mediapipe/modules/pose_detection/pose_detection.tflite"
MODEL_SHA256 = "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"
INSTALL = "pip install --no-deps mediapipe==0.10.21"
INPUT = 224
MIN_SCORE = 0.5  # MediaPipe's pose detection threshold
NMS_IOU = 0.3  # MediaPipe's weighted suppression
DETECT_SCALES = (1,)  # the whole photo once: fast, for one or a few people (measured)
TILE_OVERLAP = 0.25  # neighbouring tiles share this fraction of a tile
PERSON_NMS_IOU = 0.3  # one person found in two tiles or scales: boxes overlapping this much
COVERED = 0.5  # a tile this much covered by people already followed is not looked at (video)
COVER_CELL = 8  # pixels per cell of that coverage's mask
CLOSER_GRID = 2  # no one on the whole photo: its 2 x 2 tiles next (measured: +1.2 points)


class DetectorError(RuntimeError):
    """The person detector cannot run here: one line saying what to install."""


def wheel_model(name, sha256, what):
    """The path of the model file `name` inside mediapipe's installed wheel (found without
    importing mediapipe), checked by its SHA-256 so the measured model is the one that runs; a
    `DetectorError` naming `what` when it is missing or different."""
    try:
        found = [f for f in importlib.metadata.files("mediapipe") or () if str(f) == name]
    except importlib.metadata.PackageNotFoundError:
        found = []
    if not found:
        raise DetectorError(
            f"the {what} ships in mediapipe's wheel, which is not installed: {INSTALL}"
        )
    path = str(found[0].locate())
    if not os.path.isfile(path):
        raise DetectorError(f"the {what} {path} is missing: reinstall it ({INSTALL})")
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != sha256:
        raise DetectorError(
            f"{path} is not the {what} this version was measured with (SHA-256 "
            f"{digest[:16]}..., expected {sha256[:16]}...): {INSTALL}"
        )
    return path


def compile_wheel_model(name, sha256, what, threads=0):
    """The wheel's model `name` (`wheel_model`) compiled by OpenVINO for the CPU (`threads`: its
    CPU threads, 0 all cores); a `DetectorError` when OpenVINO or the file is missing."""
    try:
        import openvino as ov
    except ImportError:
        raise DetectorError(
            f"the {what} runs on OpenVINO, which is not installed: "
            "pip install 'keras-hourglass[openvino]'"
        ) from None
    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": int(threads)} if threads else {}
    return core.compile_model(core.read_model(wheel_model(name, sha256, what)), "CPU", config)


def detector_path():
    """The installed `pose_detection.tflite` (`wheel_model`)."""
    return wheel_model(MODEL_FILE, MODEL_SHA256, "person detector")


@functools.cache
def _anchors():
    """MediaPipe's SSD anchors of the pose detector (ssd_anchors_calculator: 5 layers, strides
    8, 16, 32, 32, 32, aspect ratio 1 and its interpolated twin, fixed size, offset 0.5):
    (2254, 2) centres in [0, 1]."""
    strides = [8, 16, 32, 32, 32]
    centres, layer = [], 0
    while layer < len(strides):
        same = 0  # layers of one stride share one grid: two anchors per layer and cell
        while layer + same < len(strides) and strides[layer + same] == strides[layer]:
            same += 1
        cells = math.ceil(INPUT / strides[layer])
        for y in range(cells):
            for x in range(cells):
                centres.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * (2 * same))
        layer += same
    return np.array(centres, np.float32)


class PersonDetector:
    """People in an RGB image as `Box`es (score: the detector's, in [0, 1]).

    min_score: detections below it are left out (default 0.5, MediaPipe's).
    threads: OpenVINO's CPU threads (0: all cores)."""

    def __init__(self, min_score=MIN_SCORE, threads=0):
        self._compiled = compile_wheel_model(MODEL_FILE, MODEL_SHA256, "person detector", threads)
        self.min_score = float(min_score)

    def __call__(self, pixels):
        """(H, W, 3) uint8 RGB -> [Box], highest score first."""
        import cv2

        height, width = pixels.shape[:2]
        factor = INPUT / max(height, width)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        left, top = (INPUT - size[0]) // 2, (INPUT - size[1]) // 2
        canvas = np.zeros((INPUT, INPUT, 3), np.float32)  # letterboxed, as MediaPipe's
        shrink = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
        canvas[top : top + size[1], left : left + size[0]] = cv2.resize(
            pixels, size, interpolation=shrink
        )
        out = self._compiled(canvas[None] / 127.5 - 1.0)
        raw, logits = out[self._compiled.output(0)][0], out[self._compiled.output(1)][0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -100, 100)))
        keep = np.nonzero(scores >= self.min_score)[0]
        anchors = _anchors()[keep]
        raw = raw[keep] / INPUT

        # Boxes (the face) to suppress duplicates with, and the alignment points 0 (mid-hip)
        # and 1 (the body's radius) for the person box, in the image's pixels.
        def pixels_of(u, v):
            return (u * INPUT - left) / factor, (v * INPUT - top) / factor

        found = []
        for (ax, ay), r, score in zip(anchors, raw, scores[keep]):
            cx, cy, w, h = r[0] + ax, r[1] + ay, r[2], r[3]
            x0, y0 = pixels_of(cx - w / 2, cy - h / 2)
            x1, y1 = pixels_of(cx + w / 2, cy + h / 2)
            hx, hy = pixels_of(r[4] + ax, r[5] + ay)
            ex, ey = pixels_of(r[6] + ax, r[7] + ay)
            side = 2.0 * math.hypot(ex - hx, ey - hy)
            length = max(math.hypot(ex - hx, ey - hy), 1e-9)  # the body's axis, hips to head
            axis = ((ex - hx) / length, (ey - hy) / length)
            found.append((float(score), (x0, y0, x1 - x0, y1 - y0), (hx, hy, side), axis))
        return self._suppress(found, width, height)

    @staticmethod
    def _suppress(found, width, height):
        """MediaPipe's weighted non-maximum suppression over the face boxes: each kept person is
        the score-weighted mean of the detections that overlap it; boxes off the image and of
        no size are left out."""
        found.sort(key=lambda f: -f[0])
        boxes = []
        while found:
            top = found[0]
            group = [f for f in found if box_iou(top[1], f[1]) > NMS_IOU]
            found = [f for f in found if box_iou(top[1], f[1]) <= NMS_IOU]
            weights = np.array([f[0] for f in group])
            hx, hy, side = np.average([f[2] for f in group], axis=0, weights=weights)
            ux, uy = np.average([f[3] for f in group], axis=0, weights=weights)
            angle = math.atan2(float(ux), -float(uy))  # MediaPipe's rotation, as Box.angle
            box = Box(
                float(hx - side / 2),
                float(hy - side / 2),
                float(side),
                float(side),
                top[0],
                angle=angle,
            )
            inside = box.x < width and box.y < height and box.x + side > 0 and box.y + side > 0
            if side > 1 and inside:
                boxes.append(box)
        return boxes


def turned_boxes(detector, pixels, quarters=(2, 1, 3)):
    """The detector on the photo turned by `quarters` quarters (counter-clockwise; default a half,
    a quarter, three quarters: it finds faces and misses them upside down), its boxes mapped
    back (centre, and the body's angle turned with it); the first turn that finds anyone."""
    height, width = pixels.shape[:2]
    for turns in quarters:
        found = detector(np.ascontiguousarray(np.rot90(pixels, turns)))
        if not found:
            continue
        boxes = []
        for box in found:
            cx, cy = box.x + box.w / 2.0, box.y + box.h / 2.0  # continuous
            if turns == 1:  # np.rot90 once: counter-clockwise
                ox, oy = width - cy, cx
            elif turns == 2:
                ox, oy = width - cx, height - cy
            else:
                ox, oy = cy, height - cx
            angle = math.remainder(turns * math.pi / 2.0, 2 * math.pi)  # the quarter turned
            boxes.append(
                Box(ox - box.w / 2.0, oy - box.h / 2.0, box.w, box.h, box.score, angle=angle)
            )
        return boxes
    return []


def closer_boxes(detector, pixels, grid=CLOSER_GRID):
    """The people a detector that found no one on the whole photo finds in its `grid` x `grid`
    tiles (a person small in a wide photo is `grid` times larger there): the second scale a
    person would try. [] when `detector` already looks at that grid (`TiledDetector`)."""
    if isinstance(detector, TiledDetector):
        if grid in detector.scales:
            return []
        detector = detector.detector
    return TiledDetector(detector, (grid,), turned=False)(pixels)


def tiles(height, width, grid, overlap=TILE_OVERLAP):
    """The `grid` x `grid` tiles of a photo as (x0, y0, x1, y1) pixel bounds: each tile is
    1/grid of the photo's width and height enlarged by `overlap` (so a person on a seam is whole
    in one of them), spread evenly from edge to edge; grid 1 is the whole photo."""
    if grid < 1:
        raise ValueError(f"a tile grid must be at least 1, got {grid}")

    def spans(length):
        size = min(length, max(1, math.ceil(length / grid * (1.0 + overlap))))
        if grid == 1:
            return [(0, length)]
        step = (length - size) / (grid - 1)
        return [(round(i * step), round(i * step) + size) for i in range(grid)]

    return [(x0, y0, x1, y1) for y0, y1 in spans(height) for x0, x1 in spans(width)]


def parse_scales(text):
    """`--detect-scales` "1,2" -> (1, 2): tile grids, each a whole number from 1 to 8, once each;
    a `ValueError` saying what is wrong."""
    try:
        scales = tuple(int(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        raise ValueError(
            f"give whole numbers separated by commas (e.g. 1,2), got {text!r}"
        ) from None
    if not scales or any(not 1 <= s <= 8 for s in scales) or len(set(scales)) != len(scales):
        raise ValueError(f"give distinct tile grids from 1 to 8 (e.g. 1,2), got {text!r}")
    return scales


class TiledDetector:
    """A detector run at several scales, for people of every size (group photos, crowds): scale
    1 is the whole photo, scale n each tile of an n x n grid (`tiles`: the detector sees those
    people n times larger, as its 224 px input is shared by fewer of them). The boxes of all
    tiles are mapped back into the photo and one person found twice (two tiles, two scales) is
    one: person-level non-maximum suppression at IoU `iou`, the higher score kept. A tile where
    the detector finds no one is looked at upside down as well (`turned`: it finds faces, and
    acrobats hang). Cost: one detector call per tile, 1 + 4 + 9 for scales 1, 2, 3, and one more
    per empty tile. In a video, tiles mostly covered by the people already followed (`covered`)
    are not looked at: a tiled detection there costs the tiles where someone new could be."""

    def __init__(
        self, detector, scales=DETECT_SCALES, overlap=TILE_OVERLAP, iou=PERSON_NMS_IOU, turned=True
    ):
        self.detector = detector
        self.turned = bool(turned)
        self.scales = tuple(scales)
        self.overlap = float(overlap)
        self.iou = float(iou)

    def __call__(self, pixels, covered=()):
        """(H, W, 3) uint8 RGB -> [Box] in the photo's pixels, highest score first. `covered`:
        [x, y, w, h] of people already followed; a tile (of a grid above 1) at least `COVERED`
        inside them is skipped."""
        height, width = pixels.shape[:2]
        mask = _coverage(height, width, covered)
        found = []
        for grid in self.scales:
            for x0, y0, x1, y1 in tiles(height, width, grid, self.overlap):
                if grid > 1 and mask is not None and _covered(mask, x0, y0, x1, y1) >= COVERED:
                    continue
                part = pixels if grid == 1 else np.ascontiguousarray(pixels[y0:y1, x0:x1])
                boxes = self.detector(part)
                if not boxes and grid > 1 and self.turned:
                    boxes = turned_boxes(self.detector, part, quarters=(2,))
                for box in boxes:
                    found.append(dataclasses.replace(box, x=box.x + x0, y=box.y + y0))
        if len(self.scales) == 1 and self.scales[0] == 1:
            return found  # one call: the detector's own suppression holds
        return [box for _, _, box in nms([(b.xywh, b.score, b) for b in found], self.iou)]


def _coverage(height, width, boxes):
    """A coarse mask (a cell per `COVER_CELL` pixels) of the union of [x, y, w, h] `boxes`, or
    None for no box."""
    if not len(boxes):
        return None
    mask = np.zeros((-(-height // COVER_CELL), -(-width // COVER_CELL)), bool)
    for x, y, w, h in boxes:
        x0, y0 = max(0, int(x // COVER_CELL)), max(0, int(y // COVER_CELL))
        x1, y1 = int(-(-(x + w) // COVER_CELL)), int(-(-(y + h) // COVER_CELL))
        mask[y0 : max(y0, y1), x0 : max(x0, x1)] = True
    return mask


def _covered(mask, x0, y0, x1, y1):
    """The fraction of the tile (x0, y0, x1, y1) inside the coverage mask."""
    cells = mask[y0 // COVER_CELL : -(-y1 // COVER_CELL), x0 // COVER_CELL : -(-x1 // COVER_CELL)]
    return float(cells.mean()) if cells.size else 0.0


DETECTORS = {
    "blazepose": (
        PersonDetector,
        "MediaPipe's BlazePose person detector (mediapipe's wheel, run by OpenVINO): one box "
        "per person from the face and hips, with the body's axis",
    ),
}


def make_detector(name="blazepose", scales=DETECT_SCALES, **options):
    """The person detector `name` (an entry of `DETECTORS`) over the tile grids `scales`
    (`TiledDetector`; (1,): the whole photo once). A `DetectorError` when it cannot run here."""
    if name not in DETECTORS:
        raise DetectorError(f"unknown person detector {name!r}; known: {sorted(DETECTORS)}")
    detector = DETECTORS[name][0](**options)
    scales = tuple(scales)
    return detector if scales == (1,) else TiledDetector(detector, scales)
