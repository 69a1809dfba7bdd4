"""People in the model's own framing: from a first box to the crop the model was trained on.

A top-down model is only as good as its crop. It was trained on people whose crop is the square
of their joints' extent enlarged 1.25x, upright; a detector's box (MediaPipe's: a square of twice
the body's radius around the hips), a user's box or the whole photo is another framing, and the
pose suffers (issue #48: 18 points from the detector's box, 34 from the whole photo). So each
person is predicted, re-framed from the predicted joints exactly as training framed the
annotation (`pose_framing`), and predicted again until the framing stops moving (`refine`):

    framings = [Framing.of_box(box) for box in boxes]      # or [Framing.whole(h, w)]
    people = refine(predictor, floats, framings, skeleton)            # -> Refined

A `Framing` is a square crop: its centre and side in the photo's pixels and an angle. The angle
turns the crop so that the body stands upright in it (hips below shoulders, as nearly all
training people do) and the joints are mapped back into the photo. The body's axis comes from
the detector (MediaPipe's hips-to-head vector) or from the pose (hips to shoulders); a body
within `UPRIGHT_DEG` of upright is left unturned, as the training crops are. Measured on
LSPET (docs/BENCHMARKS.md, "The whole-photo pipeline"), turning hurt the shipped model, whose
training people include the inverted acrobats unturned: the default never turns.

`search_people` is the whole photo's way in: the detector's people, or, when it finds no one,
its 2 x 2 tiles, then the photo turned a quarter, a half and three quarters (the detector
misses inverted faces), then the whole photo as one first framing; with a landmark framer
(`landmarks.LandmarkFramer`: BlazePose's landmark model) each first box is framed from the
body it sees; people whose pose is not confident (and whose body it does not see) are dropped
(nobody in the photo gives no one) and two framings that converged on one person are one.
Pure NumPy/OpenCV on any crop predictor (`deploy.CropPredictor`).
"""

import dataclasses
import math

import numpy as np

from keras_hourglass import geometry
from keras_hourglass.poses.detect import closer_boxes, turned_boxes

__all__ = [
    "Framing",
    "MIN_PERSON_SCORE",
    "Refined",
    "body_axis",
    "pose_framing",
    "predict_framings",
    "refine",
    "search_people",
]

MARGIN = 1.25  # the training crop: the joints' extent x 1.25 (datasets.JOINT_BOX_MARGIN)
AXIS_THRESHOLD = 0.2  # hips and shoulders this confident give the body's axis
FRAME_THRESHOLD = 0.0  # a pose frames its person when MIN_JOINTS joints reach this: measured,
MIN_JOINTS = 4  # re-framing even unconfident poses scores 1.5 points more than at 0.2
UPRIGHT_DEG = 180.0  # bodies tilted more than this are turned upright: 180, never (measured)
PASSES = 2  # network passes per person at most: the box, then one re-framed crop (measured)
TOLERANCE = 0.05  # a framing that moves less than this (of its side) has converged
MIN_PERSON_SCORE = 0.15  # a person whose mean joint confidence is below this is nobody (calibrated)
SAME_PERSON = 0.15  # two poses whose joints are this close (of the side) are one person
OWN_REACH = 1.5  # among several people, a joint beyond this x the first crop's half side from
OWN_CONFIDENT = 0.5  # its centre frames no re-crop unless this confident (no stolen joints)


@dataclasses.dataclass(frozen=True)
class Framing:
    """A square crop of a photo: centre (`cx`, `cy`) and `side` in the photo's pixels (pixel
    centres at integers), and `angle` in radians: the crop's up direction is the photo's
    (sin angle, -cos angle), so 0 is upright and pi upside down."""

    cx: float
    cy: float
    side: float
    angle: float = 0.0

    @classmethod
    def of_box(cls, box, upright_deg=None):
        """The crop of a `boxes.Box` (`Box.square`: the longer side x 1.25), turned by the
        box's body angle when it is more than `upright_deg` from upright."""
        cx, cy, side = box.square()
        angle = float(getattr(box, "angle", 0.0) or 0.0)
        return cls(cx, cy, side, turn_if_needed(angle, upright_deg))

    @classmethod
    def whole(cls, height, width):
        """The whole photo: the square of its longer side, centred."""
        return cls((width - 1) / 2.0, (height - 1) / 2.0, float(max(height, width)))

    def matrix(self, size):
        """`geometry.crop_matrix`'s (A, centre) for a crop of `size` pixels."""
        return geometry.crop_matrix(
            np.array([self.cx, self.cy]),
            self.side / geometry.PERSON_BOX_PX,
            size,
            angle=self.angle,
        )

    def to_photo(self, points, size):
        """Crop pixels (..., 2) of a `size` crop -> the photo's pixels."""
        a, center = self.matrix(size)
        m = (size - 1) / 2.0
        return (np.asarray(points, np.float64) - m) @ np.asarray(a).T + center

    def moved_from(self, other):
        """How far this framing is from `other`, as a fraction of the side: the larger of the
        centre's shift, the side's change and the corners' turn."""
        shift = math.hypot(self.cx - other.cx, self.cy - other.cy) / self.side
        grown = abs(math.log(self.side / other.side))
        turn = abs(math.sin((self.angle - other.angle) / 2.0)) * 2.0 * math.sqrt(0.5)
        return max(shift, grown, turn)

    def corners(self):
        """The crop's corners in the photo's pixels (4, 2)."""
        half = self.side / 2.0
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        offsets = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
        turn = np.array([[cos, -sin], [sin, cos]])
        return offsets @ turn.T + np.array([self.cx, self.cy])

    def bbox(self):
        """[x, y, w, h] of the crop's axis-aligned bounds (continuous pixels: the corner of
        pixel (0, 0) is (0, 0))."""
        corners = self.corners()
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        return [float(lo[0] + 0.5), float(lo[1] + 0.5), float(hi[0] - lo[0]), float(hi[1] - lo[1])]

    def crop_box(self):
        """(centre x, centre y, scale) of the crop unturned, in MPII's convention (scale = side /
        200 px), as `--box` takes it."""
        return [float(self.cx), float(self.cy), float(self.side / geometry.PERSON_BOX_PX)]

    def record(self):
        """The framing as the outputs write it."""
        return {
            "center": [round(self.cx, 2), round(self.cy, 2)],
            "side": round(self.side, 2),
            "angle_deg": round(math.degrees(self.angle), 2),
        }


def _pairs(skeleton, word):
    return [i for i, name in enumerate(skeleton.joint_names) if word in name]


def body_axis(keypoints, scores, skeleton, threshold=AXIS_THRESHOLD):
    """The body's up direction (unit (2,) in the photo, y down) from hips to shoulders, or None
    when the skeleton has no hips and shoulders or they are not confident."""
    hips, shoulders = _pairs(skeleton, "hip"), _pairs(skeleton, "shoulder")
    if not hips or not shoulders:
        return None
    scores = np.asarray(scores)
    hips = [i for i in hips if scores[i] >= threshold]
    shoulders = [i for i in shoulders if scores[i] >= threshold]
    if not hips or not shoulders:
        return None
    up = np.mean(keypoints[shoulders], axis=0) - np.mean(keypoints[hips], axis=0)
    length = float(np.hypot(*up))
    return None if length < 1e-6 else up / length


def turn_if_needed(angle, upright_deg=None):
    """`angle` (radians, in (-pi, pi]) when the body is more than `upright_deg` (default
    `UPRIGHT_DEG`) from upright, else 0 (left as the training crops are)."""
    upright_deg = UPRIGHT_DEG if upright_deg is None else upright_deg
    angle = math.remainder(float(angle), 2 * math.pi)
    return angle if abs(math.degrees(angle)) > upright_deg else 0.0


def upright_angle(axis, upright_deg=None):
    """The crop angle that stands a body with up direction `axis` upright (`turn_if_needed`)."""
    return turn_if_needed(math.atan2(float(axis[0]), -float(axis[1])), upright_deg)


def pose_framing(
    keypoints, scores, skeleton, previous, threshold=FRAME_THRESHOLD, upright_deg=None,
    within=None,
):  # fmt: skip
    """The training framing of a predicted pose: turned upright by the body's axis when it is
    far from upright (`turn_if_needed`; else as `previous`), the square of the joints' extent
    in that frame x 1.25, centred on it. Every joint counts (measured: the confident ones
    alone frame the person tighter than the annotation and lose 3 points), except, with
    `within` (the person's first `Framing`, when a photo holds several people), joints beyond
    `OWN_REACH` x its half side from its centre that are less than `OWN_CONFIDENT` confident: a
    neighbour's limb does not pull the crop over to the neighbour. None when fewer than
    `MIN_JOINTS` joints reach `threshold` (no pose to frame)."""
    keypoints, scores = np.asarray(keypoints, np.float64), np.asarray(scores)
    if within is not None:
        reach = OWN_REACH * within.side / 2.0
        offset = np.abs(keypoints - [within.cx, within.cy]).max(axis=1)
        own = (offset <= reach) | (scores >= OWN_CONFIDENT)
        keypoints, scores = keypoints[own], scores[own]
    if (scores >= threshold).sum() < MIN_JOINTS:
        return None
    axis = body_axis(keypoints, scores, skeleton)
    angle = previous.angle if axis is None else upright_angle(axis, upright_deg)
    cos, sin = math.cos(angle), math.sin(angle)
    turn = np.array([[cos, -sin], [sin, cos]])
    local = keypoints @ turn  # every joint, in the crop's turned frame
    lo, hi = local.min(axis=0), local.max(axis=0)
    side = max(float(np.max(hi - lo)), 1.0) * MARGIN
    center = turn @ ((lo + hi) / 2.0)
    return Framing(float(center[0]), float(center[1]), side, angle)


def predict_framings(predictor, floats, framings):
    """One photo's people, a crop each: `floats` (H, W, 3) float32 in [0, 1] -> keypoints
    (P, K, 2) in the photo's pixels and scores (P, K)."""
    size = predictor.input_size
    k = predictor.num_joints
    if not framings:
        return np.zeros((0, k, 2)), np.zeros((0, k))
    crops = []
    for framing in framings:
        a, center = framing.matrix(size)
        crops.append(geometry.warp(floats, a, center, size))
    keypoints, scores = predictor(np.stack(crops))
    keypoints = np.stack([f.to_photo(kp, size) for f, kp in zip(framings, keypoints)])
    return keypoints, np.asarray(scores, np.float64)


@dataclasses.dataclass
class Refined:
    """People after `refine`: keypoints (P, K, 2) in the photo's pixels, scores (P, K), the
    final framings, and the network passes each took."""

    keypoints: np.ndarray
    scores: np.ndarray
    framings: list
    passes: list


def refine(
    predictor, floats, framings, skeleton, passes=PASSES, tolerance=TOLERANCE, upright_deg=None
):
    """Predicts each framing, re-frames each person from its pose and predicts again, at most
    `passes` network passes, until no framing moves more than `tolerance` of its side. The
    people still moving are predicted together in one call per pass. With several people,
    each is re-framed from its own joints only (`pose_framing`'s `within`: its first crop)."""
    keypoints, scores = predict_framings(predictor, floats, framings)
    first = list(framings) if len(framings) > 1 else [None] * len(framings)
    framings, used = list(framings), [1] * len(framings)
    moving = list(range(len(framings)))
    for _ in range(passes - 1):
        nxt = {}
        for i in moving:
            framing = pose_framing(
                keypoints[i], scores[i], skeleton, framings[i], upright_deg=upright_deg,
                within=first[i],
            )  # fmt: skip
            if framing is not None and framing.moved_from(framings[i]) > tolerance:
                nxt[i] = framing
        if not nxt:
            break
        moving = list(nxt)
        kp, sc = predict_framings(predictor, floats, [nxt[i] for i in moving])
        for j, i in enumerate(moving):
            keypoints[i], scores[i], framings[i] = kp[j], sc[j], nxt[i]
            used[i] += 1
    return Refined(keypoints, scores, framings, used)


def person_score(scores):
    """A person's confidence: the mean of its joints' confidences (P,)."""
    return np.asarray(scores, np.float64).reshape(len(scores), -1).mean(axis=1)


def same_person(a_keypoints, b_keypoints, side):
    """Whether two poses are one person: their joints' median distance within `SAME_PERSON`
    of the framing's side."""
    distance = np.median(np.linalg.norm(a_keypoints - b_keypoints, axis=1))
    return bool(distance <= SAME_PERSON * side)


@dataclasses.dataclass
class Found:
    """`search_people`'s answer: the people (`Refined`, box scores, the first boxes: a `Box`
    or None for the whole photo), how they were found ("detector", "closer", "turned",
    "whole"), the people left out as not confident, and each kept person's landmark presence
    (`landmarks.Seen.presence`; None where no landmark model framed them)."""

    people: Refined
    box_scores: list
    boxes: list
    how: str
    dropped: int
    presence: list = dataclasses.field(default_factory=list)


def search_people(
    predictor,
    floats,
    pixels,
    skeleton,
    detector=None,
    passes=PASSES,
    min_score=MIN_PERSON_SCORE,
    upright_deg=None,
    framer=None,
):
    """Everyone in a photo, found as a person would: the detector's people (`detector`:
    pixels -> [Box], or None), else its people in the photo's 2 x 2 tiles (`closer_boxes`),
    else in the photo turned, else the whole photo as a first framing. With `framer`
    (`landmarks.LandmarkFramer`), each first box is framed by BlazePose's landmarks, and a
    person whose body it sees (presence at least its `min_presence`) starts from that framing
    and is kept whatever the hourglass's confidence; the others start from the box. Each person
    is refined into the training framing, the unconfident dropped (mean joint confidence below
    `min_score`, unless seen) and duplicates merged (the more confident kept)."""
    height, width = pixels.shape[:2]
    boxes, how = [], "whole"
    if detector is not None:
        boxes, how = detector(pixels), "detector"
        if not boxes:
            boxes, how = closer_boxes(detector, pixels), "closer"
        if not boxes:
            boxes, how = turned_boxes(detector, pixels), "turned"
    if boxes:
        # People found in the turned photo are turned back by that quarter (they lie or hang
        # there): their crop is turned whatever `upright_deg` says.
        turn = -1.0 if how == "turned" else upright_deg
        framings = [Framing.of_box(box, turn) for box in boxes]
        regions = [Framing.of_box(box, -1.0) for box in boxes]  # as MediaPipe's landmark crop
        scores_of_boxes = [float(box.score) for box in boxes]
    else:
        framings, scores_of_boxes, boxes, how = (
            [Framing.whole(height, width)],
            [1.0],
            [None],
            "whole",
        )
        regions = list(framings)
    presence, body = [None] * len(framings), [False] * len(framings)
    if framer is not None:
        for i, region in enumerate(regions):
            seen = framer(floats, region)  # the whole photo: only the first look's flag counts
            presence[i] = seen.presence if boxes[i] is not None else seen.first
            body[i] = presence[i] >= framer.min_presence
            if body[i]:
                framings[i] = seen.framing
    people = refine(predictor, floats, framings, skeleton, passes, upright_deg=upright_deg)
    confidence = person_score(people.scores)
    order = np.argsort(-confidence, kind="stable")
    kept = []
    for i in order:
        if confidence[i] < min_score and not body[i]:
            continue
        if any(
            same_person(people.keypoints[i], people.keypoints[j], people.framings[j].side)
            for j in kept
        ):
            continue
        kept.append(int(i))
    dropped = len(order) - len(kept)
    kept = sorted(kept, key=lambda i: -confidence[i])
    chosen = Refined(
        people.keypoints[kept],
        people.scores[kept],
        [people.framings[i] for i in kept],
        [people.passes[i] for i in kept],
    )
    return Found(
        chosen,
        [scores_of_boxes[i] for i in kept],
        [boxes[i] for i in kept],
        how,
        dropped,
        [presence[i] for i in kept],
    )
