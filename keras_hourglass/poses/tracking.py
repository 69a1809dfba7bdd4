"""Everyone in a video, each with a track id that stays with that person.

Top-down pose tracking as the trackers people use do it (detect, follow, match): the person
detector runs every `detect_every` frames, sooner when a person was lost (`LOST_WAIT` frames
after the last detection: a tiled detection costs many calls), and in every frame where no one
is followed; between detections each person is followed from its own pose (the next frame's
crop is the training framing of this frame's pose: `framing.pose_framing`), kept while its
pose is at least `KEEP_FRACTION` as confident as a new person must be. A detection of someone
already followed is left alone (that person was just predicted; a tiled detection
also skips the tiles the people followed cover); the other detections' poses are matched to
the people followed by the Hungarian assignment (SciPy) on a cost of box overlap and pose
distance, a matched detection refreshes its track, an unmatched confident one starts a new
track, and a track unseen for `max_missed` frames ends. Two tracks that converge on one person
are merged (the older id kept), and a second detection of someone followed starts no track.

    tracker = PeopleTracker(predictor, skeleton, detector)
    for pixels in frames:                      # (H, W, 3) uint8 RGB
        for person in tracker(pixels):         # the people seen in this frame
            person.track_id, person.keypoints, person.scores, person.framing

Pure NumPy/OpenCV/SciPy over any crop predictor (`deploy.CropPredictor`): no TensorFlow.
"""

import dataclasses
import functools

import numpy as np

from keras_hourglass.poses import framing as F
from keras_hourglass.poses.boxes import box_iou
from keras_hourglass.poses.detect import TiledDetector

__all__ = ["DETECT_EVERY", "MAX_MISSED", "TRACKERS", "PeopleTracker", "Tracked", "make_tracker"]

DETECT_EVERY = 10  # frames between detections (and sooner when someone is lost)
LOST_WAIT = 3  # after a loss the detector looks again once this many frames have passed
MAX_MISSED = 15  # a track unseen this many frames in a row ends
MATCH_COST = 0.7  # detection-track pairs costlier than this are not the same person
MERGE_COST = 0.35  # two tracks (or a new detection and a track) this alike are one person
NEW_TRACK_IOU = 0.5  # a detection whose crop overlaps a followed person's this much is that one
POSE_SCALE = 0.5  # pose distance in crop sides that costs as much as no box overlap
SAME_PLACE = 0.3  # a detection this close (in crop sides) to a followed person's crop is it
SAME_SIDE = 2.5  # ... when the crops' sides are within this factor (the detector's box is wider)
COVER_MARGIN = 1.2  # a followed person covers its joints' box this much enlarged (no tiles there)
KEEP_FRACTION = 2 / 3  # a followed pose is kept down to this fraction of the bar to start one


@dataclasses.dataclass
class Tracked:
    """One person followed: its id, the last crop (`framing.Framing`), pose (keypoints (K, 2)
    in the frame's pixels, scores (K,)), the detector's score when it was last detected, and
    frames since it was last seen (0: seen in this frame)."""

    track_id: int
    framing: object
    keypoints: np.ndarray
    scores: np.ndarray
    box_score: float = 1.0
    missed: int = 0
    smoothed: object = None

    @property
    def score(self):
        """Mean joint confidence (`framing.person_score`)."""
        return float(F.person_score(self.scores[None])[0])


def _pose_box(keypoints):
    """[x, y, w, h] of the joints' extent."""
    lo, hi = keypoints.min(axis=0), keypoints.max(axis=0)
    return [*lo, *(hi - lo)]


def _around(keypoints, factor):
    """[x, y, w, h] of the joints' box enlarged `factor` times about its centre."""
    x, y, w, h = _pose_box(keypoints)
    return [x - (factor - 1) * w / 2, y - (factor - 1) * h / 2, factor * w, factor * h]


def _followed(framing, live):
    """Whether a detection's crop is where a person followed already is (centres within
    `SAME_PLACE` of the followed crop's side, sides within `SAME_SIDE` times): not predicted
    again, as the follow pass has just predicted that person."""
    for other in live:
        near = np.hypot(framing.cx - other.cx, framing.cy - other.cy) <= SAME_PLACE * other.side
        if near and abs(np.log(framing.side / other.side)) <= np.log(SAME_SIDE):
            return True
    return False


def match_cost(track_keypoints, track_side, keypoints):
    """How unlike two poses are, in [0, 1]: the mean of (1 - IoU of the joints' boxes) and the
    joints' median distance in `POSE_SCALE` crop sides (capped at 1)."""
    overlap = box_iou(_pose_box(track_keypoints), _pose_box(keypoints))
    distance = np.median(np.linalg.norm(track_keypoints - keypoints, axis=1))
    return 0.5 * (1.0 - overlap) + 0.5 * min(1.0, distance / (POSE_SCALE * track_side))


class PeopleTracker:
    """People through the frames of one video (see the module's docstring).

    predictor: a crop predictor (`deploy.CropPredictor`); skeleton: its `Skeleton`.
    detector: pixels -> [Box] (`detect.make_detector`), or None: the whole frame is the first
        crop (one person, then followed).
    box: a `Box` for every frame (one person, track id 0, never detected) instead.
    detect_every: frames between detections. max_people: at most this many tracks (0: any).
    min_score: a new pose below this mean joint confidence is no one (`framing.MIN_PERSON_SCORE`);
        a person followed is kept down to `KEEP_FRACTION` of it (acrobats, blur: the pose
        dims for some frames without the person leaving).
    follow: False detects in every frame (no crop carried from the last frame).
    passes: network passes for a newly detected person (`framing.refine`)."""

    def __init__(
        self,
        predictor,
        skeleton,
        detector=None,
        *,
        box=None,
        detect_every=DETECT_EVERY,
        max_people=0,
        min_score=F.MIN_PERSON_SCORE,
        max_missed=MAX_MISSED,
        follow=True,
        passes=F.PASSES,
    ):
        self.predictor, self.skeleton, self.detector = predictor, skeleton, detector
        self.box = box
        self.detect_every = max(1, int(detect_every))
        self.max_people = int(max_people)
        self.min_score = float(min_score)
        self.max_missed = int(max_missed)
        self.follow = bool(follow)
        self.passes = int(passes)
        self.tracks = []
        self.frame = 0
        self.next_id = 0
        self.detections = 0  # detector runs so far
        self.detected_at = None  # the frame of the last detection
        self.lost = False  # someone was lost since the last detection

    def __call__(self, pixels):
        """One frame's people (`Tracked`, seen in this frame), by track id."""
        floats = pixels.astype(np.float32) / 255.0
        height, width = pixels.shape[:2]
        if self.box is not None:
            return self._fixed(floats)
        self.lost = self._follow(floats) or self.lost  # until the detector has looked
        since = None if self.detected_at is None else self.frame - self.detected_at
        due = (
            since is None
            or since >= self.detect_every
            or (self.lost and since >= min(LOST_WAIT, self.detect_every))
            or not self.follow
        )
        if due or not any(t.missed == 0 for t in self.tracks):
            self._detect(floats, pixels, height, width)
            self.detected_at, self.lost = self.frame, False
        self._merge()
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        self.frame += 1
        return sorted((t for t in self.tracks if t.missed == 0), key=lambda t: t.track_id)

    def _fixed(self, floats):
        frame = F.Framing.of_box(self.box)
        keypoints, scores = F.predict_framings(self.predictor, floats, [frame])
        self.frame += 1
        return [Tracked(0, frame, keypoints[0], scores[0], float(self.box.score))]

    def _follow(self, floats):
        """Each track's person predicted in the crop its last pose frames; True when someone
        followed was lost in this frame (the detector then looks at once)."""
        live = [t for t in self.tracks if t.missed == 0] if self.follow else []
        for t in self.tracks:
            if t not in live:
                t.missed += 1
        if not live:
            return False
        framings = []
        for t in live:
            nxt = F.pose_framing(t.keypoints, t.scores, self.skeleton, t.framing)
            framings.append(nxt or t.framing)
        keypoints, scores = F.predict_framings(self.predictor, floats, framings)
        lost = False
        for t, frame, kp, sc in zip(live, framings, keypoints, scores):
            if F.person_score(sc[None])[0] < self.min_score * KEEP_FRACTION:
                t.missed, lost = 1, True
                continue
            t.framing, t.keypoints, t.scores = frame, kp, sc
        return lost

    def _detect(self, floats, pixels, height, width):
        """The detector's people (or the whole frame when there is no detector and no one is
        followed), refined, matched to the tracks; the unmatched confident ones start tracks."""
        self.detections += 1
        if self.detector is not None:
            if isinstance(self.detector, TiledDetector):  # no tiles where people are followed
                followed = [_around(t.keypoints, COVER_MARGIN) for t in self.tracks if not t.missed]
                boxes = self.detector(pixels, followed)
            else:
                boxes = self.detector(pixels)
            live = [t.framing for t in self.tracks if t.missed == 0]
            boxes = [b for b in boxes if not _followed(F.Framing.of_box(b), live)]
            framings = [F.Framing.of_box(b) for b in boxes]
            box_scores = [float(b.score) for b in boxes]
        elif not any(t.missed == 0 for t in self.tracks):
            framings, box_scores = [F.Framing.whole(height, width)], [1.0]
        else:
            return
        if not framings:
            return
        found = F.refine(self.predictor, floats, framings, self.skeleton, self.passes)
        confident = F.person_score(found.scores) >= self.min_score
        people = [i for i in range(len(framings)) if confident[i]]
        from scipy.optimize import linear_sum_assignment

        tracks = self.tracks
        cost = np.ones((len(people), len(tracks)))
        for r, i in enumerate(people):
            for c, t in enumerate(tracks):
                cost[r, c] = match_cost(t.keypoints, t.framing.side, found.keypoints[i])
        matched = set()
        if people and tracks:
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if cost[r, c] > MATCH_COST:
                    continue
                i, t = people[r], tracks[c]
                matched.add(i)
                seen = t.missed == 0
                if not seen or found.scores[i].mean() >= t.scores.mean():
                    t.framing, t.keypoints, t.scores = (
                        found.framings[i],
                        found.keypoints[i],
                        found.scores[i],
                    )
                t.box_score, t.missed = box_scores[i], 0
        for r, i in enumerate(people):
            if i in matched or (cost.shape[1] and cost[r].min() <= MERGE_COST):
                continue  # matched, or a second detection of someone followed
            crop = found.framings[i].bbox()
            if any(
                box_iou(crop, t.framing.bbox()) >= NEW_TRACK_IOU
                for t in self.tracks
                if t.missed == 0
            ):
                continue
            if self.max_people and sum(t.missed == 0 for t in self.tracks) >= self.max_people:
                break
            self.tracks.append(
                Tracked(
                    self.next_id,
                    found.framings[i],
                    found.keypoints[i],
                    found.scores[i],
                    box_scores[i],
                )
            )
            self.next_id += 1

    def _merge(self):
        """Tracks seen in this frame that converged on one person: the older id stays."""
        seen = sorted((t for t in self.tracks if t.missed == 0), key=lambda t: t.track_id)
        gone = set()
        for i, a in enumerate(seen):
            if a.track_id in gone:
                continue
            for b in seen[i + 1 :]:
                if b.track_id not in gone and F.same_person(
                    a.keypoints, b.keypoints, a.framing.side
                ):
                    gone.add(b.track_id)
        self.tracks = [t for t in self.tracks if t.track_id not in gone]


# The trackers by name, as the detectors' table (`detect.DETECTORS`) and the runtimes': a
# tracker is called with each frame's pixels and returns the people seen in it (`Tracked`, with
# a track id that stays with the person). `predict_video`'s `tracker` and `--tracker` choose.
TRACKERS = {
    "pose": (
        functools.partial(PeopleTracker, follow=True),
        "each person followed from its last pose; the detector looks every --detect-every "
        "frames and when someone is lost (the default: one network pass a person a frame)",
    ),
    "detect": (
        functools.partial(PeopleTracker, follow=False),
        "the detector in every frame, its people matched to the tracks (box overlap and pose "
        "distance, Hungarian): slower, for scenes where people jump between frames",
    ),
}


def make_tracker(name, predictor, skeleton, detector=None, **options):
    """The tracker `name` (an entry of `TRACKERS`) on `predictor` and `detector`; `options`
    are `PeopleTracker`'s (box, detect_every, max_people, min_score, passes)."""
    if name not in TRACKERS:
        raise ValueError(f"unknown tracker {name!r}; known: {sorted(TRACKERS)}")
    return TRACKERS[name][0](predictor, skeleton, detector, **options)
