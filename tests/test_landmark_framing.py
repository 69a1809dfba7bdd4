"""The first crop of a person found in a photo: BlazePose's landmark model frames it
(`poses.landmarks`), the detector's 2 x 2 tiles look again when the whole photo shows no one
(`detect.closer_boxes`)."""

import importlib.metadata
import math

import numpy as np
import pytest

import keras_hourglass as kh
from keras_hourglass.poses import detect, framing
from keras_hourglass.poses.boxes import Box


def _framer_or_skip():
    from keras_hourglass.poses.landmarks import LandmarkFramer

    try:
        return LandmarkFramer()
    except detect.DetectorError as error:
        pytest.skip(str(error))


# --- the framing of BlazePose's landmarks -------------------------------------------------------


def test_body_framing_is_the_training_crop_of_the_lsp_extent():
    """The landmarks' framing is `box_from_joints` (training's crop of the annotation) of LSP's
    14 joints as BlazePose places them: the 12 limbs by name, the neck between the shoulders,
    the head top beyond the nose."""
    from keras_hourglass import geometry
    from keras_hourglass.datasets import box_from_joints
    from keras_hourglass.poses.landmarks import body_framing

    rng = np.random.default_rng(3)
    landmarks = rng.uniform(0, 400, (39, 2))
    named = {  # BlazePose's landmark indices, as its model card names them
        "right_ankle": 28, "right_knee": 26, "right_hip": 24, "left_hip": 23,
        "left_knee": 25, "left_ankle": 27, "right_wrist": 16, "right_elbow": 14,
        "right_shoulder": 12, "left_shoulder": 11, "left_elbow": 13, "left_wrist": 15,
    }  # fmt: skip
    lsp = np.array([landmarks[named[name]] for name in kh.LSP.joint_names[:12]])
    neck = (landmarks[11] + landmarks[12]) / 2
    top = landmarks[0] + 0.5 * (landmarks[0] - neck)
    joints = np.vstack([lsp, neck, top])
    center, scale = box_from_joints(joints, np.ones(14, bool))
    frame = body_framing(landmarks)
    np.testing.assert_allclose([frame.cx, frame.cy], center)
    assert frame.side == pytest.approx(scale * geometry.PERSON_BOX_PX)
    assert frame.angle == 0.0
    # The hands' and feet's own landmarks (17-22, 29-32) and the face's are not the extent.
    moved = landmarks.copy()
    moved[[1, 2, 3, 17, 18, 19, 29, 30, 31, 32]] += 1000.0
    assert body_framing(moved) == frame


def test_the_landmark_model_frames_people_far_nearer_than_the_detectors_box(shared_data):
    """Held-out LSPET people (im09001-im09040) whose detector box is found: BlazePose's
    framing of that box is much nearer the annotation's training crop (centre offset or size
    change, as a fraction of the side) than the box's own crop, and it sees a body in nearly
    all of them (measured: median 0.08 against 0.41, a body in 37 of 37)."""
    from scipy.io import loadmat

    from keras_hourglass.poses.media import read_image

    framer = _framer_or_skip()
    detector = detect.PersonDetector()
    joints = loadmat(str(shared_data / "lspet/joints.mat"))["joints"]
    box_errors, framer_errors, presence = [], [], []
    for number in range(9001, 9041):
        path = shared_data / "lspet/images" / f"im{number:05d}.jpg"
        if not path.is_file():
            continue
        pixels = read_image(str(path))[1]
        xy, visible = joints[:, :2, number - 1], joints[:, 2, number - 1] > 0.5
        lo, hi = xy[visible].min(0), xy[visible].max(0)
        centre, side = (lo + hi) / 2, (hi - lo).max() * framing.MARGIN
        boxes = detector(pixels)
        if not boxes:
            continue
        box = min(boxes, key=lambda b: math.dist((b.x + b.w / 2, b.y + b.h / 2), centre))

        def error(frame, centre=centre, side=side):
            shift = math.dist((frame.cx, frame.cy), centre) / side
            return max(shift, abs(math.log(frame.side / side)))

        seen = framer(pixels.astype(np.float32) / 255.0, framing.Framing.of_box(box, -1.0))
        box_errors.append(error(framing.Framing.of_box(box)))
        framer_errors.append(error(seen.framing))
        presence.append(seen.presence)
    assert len(box_errors) >= 25
    assert np.median(framer_errors) < min(0.15, 0.5 * np.median(box_errors)), (
        np.median(framer_errors),
        np.median(box_errors),
    )
    assert np.mean(np.array(presence) >= framer.min_presence) >= 0.9


def test_the_landmark_model_is_found_in_mediapipes_wheel_or_named_missing(monkeypatch):
    """Without mediapipe's wheel: one line naming the model and the install, and the estimator
    goes on with the detector's boxes (said once)."""
    from keras_hourglass.poses.landmarks import LandmarkFramer

    def no_package(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", no_package)
    with pytest.raises(detect.DetectorError, match="BlazePose landmark model.*mediapipe==0.10.21"):
        LandmarkFramer()


# --- the search: first crops, who is kept ------------------------------------------------------


class _Spread:
    """A crop predictor whose joints spread over the crop's middle half, all `confidence`
    sure; it counts its calls."""

    input_size, num_joints = 32, 14

    def __init__(self, confidence):
        self.confidence, self.calls = confidence, 0

    def __call__(self, crops):
        self.calls += 1
        ring = np.linspace(0, 2 * np.pi, 14, endpoint=False)
        points = 15.5 + 8 * np.stack([np.cos(ring), np.sin(ring)], axis=1)
        n = len(crops)
        return np.repeat(points[None], n, 0), np.full((n, 14), self.confidence)


class _Framer:
    """A landmark model that sees a body (`presence`, or `first` on its first look alone) and
    frames it as `frame`; it records the regions it was shown."""

    min_presence = 0.5

    def __init__(self, frame, presence, first=None):
        self.frame, self.presence = frame, presence
        self.first = presence if first is None else first
        self.regions = []

    def __call__(self, floats, region):
        from keras_hourglass.poses.landmarks import Seen

        self.regions.append(region)
        return Seen(self.frame, self.presence, self.first, np.zeros((33, 2)))


PHOTO = np.zeros((240, 320, 3), np.uint8)
BOX = Box(100.0, 60.0, 80.0, 80.0, 0.9, angle=0.4)


def _search(predictor, detector, framer, passes=1):
    floats = PHOTO.astype(np.float32) / 255.0
    return framing.search_people(
        predictor, floats, PHOTO, kh.LSP, detector, passes=passes, framer=framer
    )


def test_a_person_starts_from_the_landmarks_framing_and_is_kept_when_seen():
    """The detector's box goes to the landmark model turned by the body's axis (MediaPipe's
    region); a body seen there is predicted in the landmark model's framing and kept although
    the pose is unconfident; a body not seen starts from the box and is dropped as before."""
    frame = framing.Framing(150.0, 110.0, 120.0)
    seen = _Framer(frame, presence=0.9)
    found = _search(_Spread(0.05), lambda pixels: [BOX], seen)
    assert seen.regions == [framing.Framing.of_box(BOX, -1.0)]
    assert seen.regions[0].angle == pytest.approx(0.4)
    assert found.people.framings == [frame] and found.presence == [0.9]
    assert found.how == "detector" and found.dropped == 0

    unseen = _search(_Spread(0.05), lambda pixels: [BOX], _Framer(frame, presence=0.2))
    assert len(unseen.people.framings) == 0 and unseen.dropped == 1
    confident = _search(_Spread(0.6), lambda pixels: [BOX], _Framer(frame, presence=0.2))
    assert confident.people.framings == [framing.Framing.of_box(BOX)]
    assert confident.presence == [0.2]


def test_the_whole_photo_counts_only_the_landmark_models_first_look():
    """No one found anywhere: the whole photo goes to the landmark model, and a body that only
    its second look (framed from the first look's noise) sees is nobody."""
    frame = framing.Framing(150.0, 110.0, 120.0)
    nobody = _search(_Spread(0.05), lambda pixels: [], _Framer(frame, presence=0.9, first=0.1))
    assert len(nobody.people.framings) == 0 and nobody.how == "whole"
    somebody = _search(_Spread(0.05), lambda pixels: [], _Framer(frame, presence=0.9, first=0.8))
    assert somebody.people.framings == [frame] and somebody.presence == [0.8]


def test_no_one_on_the_whole_photo_sends_the_detector_to_its_2x2_tiles():
    """A detector that sees people only when they fill enough of its input (a small person in
    a wide photo) finds them in the 2 x 2 tiles: boxes in the photo's pixels, found "closer";
    a tiled detector that already looks at that grid is not run again."""
    height, width = PHOTO.shape[:2]

    def near_sighted(pixels):
        h, w = pixels.shape[:2]
        return [Box(10.0, 20.0, 30.0, 30.0, 0.8)] if w < 0.75 * width else []

    boxes = detect.closer_boxes(near_sighted, PHOTO)
    tiles = detect.tiles(height, width, 2)
    assert len(boxes) >= 1
    starts = {(x0 + 10.0, y0 + 20.0) for x0, y0, _, _ in tiles}
    assert all((b.x, b.y) in starts and b.w == 30.0 for b in boxes)
    assert detect.closer_boxes(detect.TiledDetector(near_sighted, (1, 2)), PHOTO) == []
    found = _search(_Spread(0.6), near_sighted, None)
    assert found.how == "closer" and len(found.people.framings) >= 1


def test_the_photos_people_with_and_without_the_landmark_model(tmp_path):
    """The skier of the README through the command: found, one person, by default and with
    --no-landmarks; the two first crops differ (the landmark model framed the default's)."""
    import json
    import subprocess

    from conftest import PYTHON, ROOT

    _framer_or_skip()
    photo = ROOT / "docs/images/coco_000000000785.jpg"
    crops = {}
    for flags in ([], ["--no-landmarks"]):
        out = tmp_path / ("plain" if not flags else "boxes")
        run = subprocess.run(
            [PYTHON, str(ROOT / "eval/predict.py"), str(photo), "--out", str(out), "-q", *flags],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        record = json.loads((out / "coco_000000000785_pose.json").read_text())
        assert len(record["people"]) == 1 and record["found_by"] == "detector"
        crops[tuple(flags)] = record["people"][0]["crop"]
    assert crops[()] != crops[("--no-landmarks",)]
