"""A person's first framing from MediaPipe's BlazePose landmark model: where the body is, before
the hourglass says where its joints are.

    framer = LandmarkFramer()
    seen = framer(floats, Framing.of_box(box, -1.0))   # -> Seen(framing, presence, landmarks)

Why: the hourglass is only as good as its crop (the square of the joints' extent x 1.25, as it
was trained), and the first crop a photo offers is a detector's box (MediaPipe's: twice the
body's radius around the hips) or the whole photo. Re-framing from the hourglass's own first
pose (`framing.refine`) recovers most of it, but when that first pose is far off (an acrobat
upside down in a loose box, a small person in a wide photo) the re-frame follows it. BlazePose's
landmark model was trained on exactly those detector crops, turned upright by the detector's
axis: it places the body well from a loose box, and says whether a body is there at all
(its pose flag). So each first box goes through it twice, as MediaPipe's own tracking does (the
detector's region, then the region its landmarks give: `_roi`), and the hourglass's first crop is
the training framing of BlazePose's body landmarks (`body_framing`: the 12 limb joints, the neck
and a head top, LSP's annotated extent). The joints the user sees are the hourglass's alone:
BlazePose only chooses the crop, as the detector does. Measured on LSPET (docs/BENCHMARKS.md,
"The first crop from BlazePose's landmarks").

The model (`pose_landmark_full.tflite`, 256 x 256 input, 39 landmarks; Apache-2.0, The
MediaPipe Authors; Bazarevsky et al., "BlazePose", 2020) ships inside the `mediapipe` wheel
beside the person detector (`detect.compile_wheel_model`: found without importing mediapipe,
SHA-256 checked, compiled by OpenVINO). Nothing is downloaded.
"""

import dataclasses
import math

import numpy as np

from keras_hourglass import geometry
from keras_hourglass.poses.detect import compile_wheel_model
from keras_hourglass.poses.framing import MARGIN, Framing

__all__ = ["LandmarkFramer", "Seen", "body_framing"]

MODEL_FILE = "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"
MODEL_SHA256 = "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"
INPUT = 256
MIN_PRESENCE = 0.5  # MediaPipe's own threshold on its pose flag (ThresholdingCalculator)
ROI_SCALE = 1.25  # MediaPipe's landmark region: twice the alignment radius x 1.25
# BlazePose's 33 landmarks: the 12 limb joints (LSP's and MPII's, the person's left and right),
# the shoulders (11, 12) for the neck and the nose (0) for the head top; 33 and 34 are the
# alignment points (mid-hip and the body's radius) that MediaPipe's tracking frames from.
LIMBS = (28, 26, 24, 23, 25, 27, 16, 14, 12, 11, 13, 15)
NOSE, LEFT_SHOULDER, RIGHT_SHOULDER = 0, 11, 12
CENTRE, RADIUS = 33, 34


@dataclasses.dataclass(frozen=True)
class Seen:
    """What BlazePose saw in one region: the training `framing` of its body landmarks, its
    pose flag `presence` in [0, 1] (a body there: the larger of its two looks'), the first
    look's flag alone (`first`: the stricter, for a region no detector proposed), and the 33
    landmarks (33, 2) in the photo's pixels."""

    framing: Framing
    presence: float
    first: float
    landmarks: np.ndarray


def body_framing(landmarks):
    """The hourglass's training framing of BlazePose's landmarks (33+, 2): the square of the
    extent of the limb joints, the neck (the shoulders' midpoint) and the head top (the nose
    moved away from the neck by half their distance) x `MARGIN`, upright, as the annotation's
    joints are framed in training."""
    xy = np.asarray(landmarks, np.float64)
    neck = (xy[LEFT_SHOULDER] + xy[RIGHT_SHOULDER]) / 2.0
    top = xy[NOSE] + 0.5 * (xy[NOSE] - neck)
    points = np.vstack([xy[list(LIMBS)], neck, top])
    lo, hi = points.min(axis=0), points.max(axis=0)
    centre = (lo + hi) / 2.0
    side = max(float(np.max(hi - lo)), 1.0) * MARGIN
    return Framing(float(centre[0]), float(centre[1]), side)


def _roi(landmarks):
    """MediaPipe's landmark region from its alignment points: centred on the mid-hip, twice the
    radius x `ROI_SCALE` square, turned so the body stands up in it."""
    centre, towards = landmarks[CENTRE], landmarks[RADIUS] - landmarks[CENTRE]
    side = max(2.0 * float(np.hypot(*towards)) * ROI_SCALE, 1.0)
    angle = math.atan2(float(towards[0]), -float(towards[1]))
    return Framing(float(centre[0]), float(centre[1]), side, angle)


class LandmarkFramer:
    """BlazePose's landmark model as a first framing: `framer(floats, region)` -> `Seen`.

    floats: the photo (H, W, 3) float32 in [0, 1]; region: a `framing.Framing` (the detector's
    box turned by its axis, `Framing.of_box(box, -1.0)`, or the whole photo). The model runs on
    the region, then on the region its landmarks give (MediaPipe's tracking crop); the second
    look's landmarks frame the person, the presence is the larger of the two looks' flags (the
    second look alone can see a body in the noise its first look framed: on a region that no
    detector proposed, use `Seen.first`).
    threads: OpenVINO's CPU threads (0: all cores). A `detect.DetectorError` when it cannot run
    here."""

    def __init__(self, threads=0, min_presence=MIN_PRESENCE):
        what = "BlazePose landmark model"
        self._compiled = compile_wheel_model(MODEL_FILE, MODEL_SHA256, what, threads)
        self._landmarks = self._compiled.output("Identity")
        self._flag = self._compiled.output("Identity_1")
        self.min_presence = float(min_presence)

    def look(self, floats, region):
        """One run on `region`: (landmarks (39, 2) in the photo's pixels, presence)."""
        a, centre = region.matrix(INPUT)
        crop = geometry.warp(floats, a, centre, INPUT)
        out = self._compiled(crop[None].astype(np.float32, copy=False))
        raw = np.asarray(out[self._landmarks], np.float64).reshape(-1, 5)
        # MediaPipe's coordinates are continuous (0..256); pixel centres sit at integers here
        return region.to_photo(raw[:, :2] - 0.5, INPUT), float(np.ravel(out[self._flag])[0])

    def __call__(self, floats, region):
        first, presence = self.look(floats, region)
        second, again = self.look(floats, _roi(first))
        return Seen(body_framing(second), max(presence, again), presence, second[:33])
