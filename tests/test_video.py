"""eval/predict.py on videos: every frame through the serving functions, overlay video, JSON lines."""

import json

import numpy as np
import pytest
from conftest import randomize_weights, run_command

import keras_hourglass as kh

SIZE = (192, 144)  # every frame of a video has one size


@pytest.fixture
def clip(tmp_path, shared_data):
    """Six frames made from the real MPII sample images (resized to one size), as PNG files and
    as a lossless FFV1 video, so frame i and picture i hold the same pixels."""
    import cv2
    from PIL import Image

    paths = sorted((shared_data / "mpii_samples").glob("*.jpg"))[:5]
    frames = []
    for i, path in enumerate(paths + paths[:1]):
        with Image.open(path) as image:
            frame = np.asarray(image.convert("RGB").resize(SIZE, Image.BILINEAR))
        Image.fromarray(frame).save(tmp_path / f"frame{i}.png")
        frames.append(frame)
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 10, SIZE)
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    model = kh.build_hourglass(
        num_stacks=1, skeleton="mpii", filters=16, depth=2, input_shape=(64, 64, 3)
    )
    randomize_weights(model, np.random.default_rng(3), scale=0.3)
    model.save(tmp_path / "m.keras")
    return tmp_path, video, frames


def _predict(args, env):
    return run_command("eval/predict.py", args, env)


@pytest.mark.slow
def test_video_frames_match_the_image_mode_and_files_are_written(clip, python_env):
    import cv2

    folder, video, frames = clip
    out = folder / "out"
    result = _predict(
        [
            "--video",
            str(video),
            "--model",
            str(folder / "m.keras"),
            "--out",
            str(out),
            "--batch",
            "4",
            "--no-track",  # every frame whole and once, as the pictures are
            "--whole-image",
            "--no-refine",
        ],
        python_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "6 frames in" in result.stdout and "frames/s" in result.stdout
    lines = [json.loads(line) for line in (out / "clip_pose.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in lines] == list(range(6))
    assert lines[1]["time_s"] == pytest.approx(0.1)
    assert [len(r["people"]) for r in lines] == [1] * 6
    assert lines[0]["people"][0]["track_id"] == 0
    assert set(lines[0]["people"][0]["joints"]) == set(kh.MPII.joint_names)
    overlay = cv2.VideoCapture(str(out / "clip_pose.mp4"))
    assert int(overlay.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    assert (
        int(overlay.get(cv2.CAP_PROP_FRAME_WIDTH)),
        int(overlay.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    ) == SIZE

    images = [str(folder / f"frame{i}.png") for i in range(5)]
    result = _predict(
        [*images, "--model", str(folder / "m.keras"), "--out", str(folder / "img")]
        + ["--whole-image", "--no-refine"],  # each picture whole, once, as the frames are
        python_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    same, total = 0, 0
    for i in range(6):
        written = json.loads((folder / "img" / f"frame{i % 5}_pose.json").read_text())
        picture = written["people"][0]["joints"]
        for joint, value in lines[i]["people"][0]["joints"].items():
            total += 1
            assert value["confidence"] == pytest.approx(picture[joint]["confidence"], abs=2e-4)
            same += (
                abs(value["x"] - picture[joint]["x"]) <= 0.02
                and abs(value["y"] - picture[joint]["y"]) <= 0.02
            )
    # Random weights can leave two heatmap maxima equal to float rounding: allow a few ties.
    assert same >= 0.95 * total, (same, total)


@pytest.mark.slow
def test_broken_and_truncated_videos(clip, python_env):
    folder, video, frames = clip
    junk = folder / "junk.mp4"
    junk.write_bytes(b"\x00\x01not a video" * 100)
    result = _predict(
        ["--video", str(junk), "--model", str(folder / "m.keras"), "--out", str(folder / "o")],
        python_env,
    )
    assert (
        result.returncode != 0 and "junk.mp4" in result.stderr and "Traceback" not in result.stderr
    )
    # Not videos, though OpenCV's FFmpeg "plays" them: a text file, a photo cut short.
    notes = folder / "notes.txt"
    notes.write_text("a shopping list\nnot a video\n")
    half = folder / "half.jpg"
    with open(folder / "frame0.png", "rb") as f:
        from PIL import Image

        Image.open(f).convert("RGB").save(folder / "whole.jpg")
    half.write_bytes((folder / "whole.jpg").read_bytes()[:2000])
    for bad, why in ((notes, "not a video"), (half, "a still image")):
        args = ["--video", str(bad), "--model", str(folder / "m.keras"), "--out", str(folder / "o")]
        result = _predict(args, python_env)
        assert result.returncode != 0 and why in result.stderr, result.stderr[-1000:]
        assert len(result.stderr.strip().splitlines()) == 1 and bad.name in result.stderr
    # A file cut short: the frames before the cut are predicted and kept.
    data = video.read_bytes()
    cut = folder / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    result = _predict(
        [
            "--video",
            str(cut),
            "--model",
            str(folder / "m.keras"),
            "--out",
            str(folder / "o"),
            "--batch",
            "2",
        ],
        python_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = (folder / "o/cut_pose.jsonl").read_text().splitlines()
    assert 1 <= len(lines) < 6 and (folder / "o/cut_pose.mp4").is_file()
    result = _predict(
        [
            "--video",
            str(video),
            "--model",
            str(folder / "m.keras"),
            "--out",
            str(folder / "o"),
            "--max-frames",
            "3",
            "--smooth",
            "0.5",
        ],
        python_env,
    )
    assert result.returncode == 0 and "3 frames in" in result.stdout
    smoothed = [json.loads(x) for x in (folder / "o/clip_pose.jsonl").read_text().splitlines()]
    assert len(smoothed) == 3
    for bad, message in (
        (["--smooth", "1"], "--smooth must be in [0, 1)"),
        (["--video", "7"], "cannot open it (no such camera)"),
    ):
        args = ["--model", str(folder / "m.keras"), "--out", str(folder / "o")]
        args = (["--video", str(video)] if "--video" not in bad else []) + args + bad
        result = _predict(args, python_env)
        assert result.returncode != 0 and message in result.stderr, result.stderr[-1000:]


def _predict_module():
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("predict_command", ROOT / "eval/predict.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _FakeCamera:
    """A camera showing bright 20 x 40 px squares (BGR frames): square i starts at x = starts[i]
    and moves `speeds[i]` px a frame; frames in `hidden` show no square."""

    def __init__(
        self, frames=8, shape=(120, 240), starts=(20,), speeds=(10,), hidden=(), rows=None
    ):
        self.frames, self.shape, self.read_count, self.released = frames, shape, 0, False
        self.starts, self.speeds, self.hidden = starts, speeds, set(hidden)
        self.rows = rows or [40] * len(starts)  # each square's top row

    def lefts(self, t):
        return [start + speed * t for start, speed in zip(self.starts, self.speeds)]

    def read(self):
        if self.read_count >= self.frames:
            return False, None
        frame = np.zeros((*self.shape, 3), np.uint8)
        if self.read_count not in self.hidden:
            for x, y in zip(self.lefts(self.read_count), self.rows):
                frame[y : y + 40, x : x + 20] = 255
        self.read_count += 1
        return True, frame

    def release(self):
        self.released = True


SQUARE = kh.Skeleton(
    "square",
    ("a", "b", "c", "d"),
    flip_pairs=(),
    limbs=(("a", "b"),),
    groups=(("All", ("a", "b", "c", "d")),),
    normalizer=("joints", ("a", "c")),
)


def _blobs(mask):
    """Bounding boxes (x0, y0, x1, y1) of the bright squares (connected regions), left to right."""
    from scipy import ndimage

    labels, _ = ndimage.label(mask)
    found = [
        (cols.start, rows.start, cols.stop, rows.stop)
        for rows, cols in ndimage.find_objects(labels)
    ]
    return sorted(found)


class _SquarePoses:
    """A stand-in crop predictor: the pose is the corners of the bright square nearest the
    crop's centre (confidence 1), none (confidence 0) in a crop without one."""

    input_size, num_joints = 64, 4

    def __call__(self, crops):
        keypoints, scores = [], []
        for crop in crops:
            blobs = _blobs(crop[..., 0] > 0.5)
            if not blobs:
                keypoints.append(np.zeros((4, 2)))
                scores.append(np.zeros(4))
                continue
            middle = (self.input_size - 1) / 2
            x0, y0, x1, y1 = min(
                blobs,
                key=lambda b: (
                    abs((b[0] + b[2] - 1) / 2 - middle) + abs((b[1] + b[3] - 1) / 2 - middle)
                ),
            )
            keypoints.append([[x0, y0], [x1 - 1, y0], [x1 - 1, y1 - 1], [x0, y1 - 1]])
            scores.append(np.ones(4))
        return np.array(keypoints, np.float64), np.array(scores)


class _SquareDetector:
    """A stand-in person detector: a box (x, y, w, h) per bright square of the frame."""

    def __init__(self):
        self.calls = 0

    def __call__(self, pixels):
        from keras_hourglass.poses.boxes import Box

        self.calls += 1
        return [
            Box(float(x0), float(y0), float(x1 - x0), float(y1 - y0), 0.9)
            for x0, y0, x1, y1 in _blobs(pixels[..., 0] > 128)
        ]


class _SquareEstimator:
    """What `predict_video` needs of a `PoseEstimator`, on the squares."""

    skeleton, min_person_score, passes = SQUARE, 0.15, 2

    def __init__(self, detector=None):
        self.predictor, self.detector = _SquarePoses(), detector


class _FakeWindow:
    def __init__(self, keys):
        self.keys, self.shown, self.waited, self.closed = dict(keys), [], 0, False

    def show(self, frame):
        self.shown.append(frame.copy())
        return self.keys.get(len(self.shown) - 1, -1)

    def wait(self):
        self.waited += 1
        return ord("x")  # any key resumes

    def close(self):
        self.closed = True


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_live_loop_follows_everyone_pauses_and_quits(tmp_path):
    """The camera loop with a fake camera, predictor, detector and window: two squares moving
    apart are found by the detector (every 3rd frame) and followed from their poses between,
    each keeping its track id; each frame's line lists both with the photos' person record;
    space pauses (waits for a key), q quits and keeps what was written."""
    from keras_hourglass.poses.estimator import predict_video

    camera = _FakeCamera(frames=10, starts=(40, 160), speeds=(-3, 4))
    detector = _SquareDetector()
    window = _FakeWindow({1: ord(" "), 7: ord("q")})
    run = predict_video(
        _SquareEstimator(detector), (camera, "camera0", 30.0, 0), str(tmp_path),
        window=window, detect_every=3,
    )  # fmt: skip
    assert run.frames == 8 and run.ended == " (quit: kept what was read)"
    assert camera.released and window.closed and window.waited == 1
    assert len(window.shown) == 8 and window.shown[0].shape == (120, 240, 3)
    assert detector.calls == 3  # frames 0, 3 and 6
    lines = _lines(tmp_path / "camera0_pose.jsonl")
    assert [line["frame"] for line in lines] == list(range(8))
    for t, line in enumerate(lines):
        people = line["people"]
        assert [p["track_id"] for p in people] == [0, 1]
        for p, left in zip(people, camera.lefts(t)):
            assert p["joints"]["a"]["x"] == pytest.approx(left, abs=0.6)
            assert p["joints"]["c"]["y"] == pytest.approx(79, abs=0.6)
            assert {"bbox", "box_score", "score", "crop"} <= set(p)
    assert (tmp_path / "camera0_pose.mp4").is_file()
    av = pytest.importorskip("av")
    with av.open(str(tmp_path / "camera0_pose.mp4")) as video:  # H.264, every frame kept on q
        assert video.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in video.decode(video=0)) == 8


def test_a_lost_person_is_looked_for_at_once_and_max_people_holds(tmp_path):
    """A square hidden for two frames: its track is not reported while hidden, the detector
    looks again in the frame after the loss, and when it is back it is followed again; with
    --max-people 1 only one of two squares is followed."""
    from keras_hourglass.poses.estimator import predict_video

    camera = _FakeCamera(frames=7, starts=(100,), speeds=(2,), hidden=(3, 4))
    detector = _SquareDetector()
    predict_video(
        _SquareEstimator(detector), (camera, "c", 10.0, 7), str(tmp_path), detect_every=100
    )
    lines = _lines(tmp_path / "c_pose.jsonl")
    assert [len(line["people"]) for line in lines] == [1, 1, 1, 0, 0, 1, 1]
    assert detector.calls == 4  # frame 0, the loss (3), nobody followed (4), back (5)
    assert lines[5]["people"][0]["joints"]["a"]["x"] == pytest.approx(110, abs=0.6)

    camera = _FakeCamera(frames=4, starts=(40, 160), speeds=(0, 0))
    predict_video(
        _SquareEstimator(_SquareDetector()), (camera, "m", 10.0, 4), str(tmp_path), max_people=1
    )
    assert [len(line["people"]) for line in _lines(tmp_path / "m_pose.jsonl")] == [1, 1, 1, 1]


def test_a_person_lost_just_after_a_detection_is_looked_for_soon():
    """Someone lost in the frame after a detection is looked for `LOST_WAIT` frames after that
    detection (not only at the next periodic one), while the others are followed."""
    from keras_hourglass.poses import tracking

    class OneHides(_FakeCamera):  # the right square is away in frames 1 and 2
        def read(self):
            ok, frame = super().read()
            if ok and self.read_count - 1 in (1, 2):
                frame[:, 120:] = 0
            return ok, frame

    camera = OneHides(frames=6, starts=(40, 160), speeds=(0, 0))
    detector = _SquareDetector()
    tracker = tracking.PeopleTracker(_SquarePoses(), SQUARE, detector, detect_every=100)
    seen = [[p.track_id for p in tracker(camera.read()[1])] for _ in range(6)]
    assert seen == [[0, 1], [0], [0], [0, 1], [0, 1], [0, 1]], seen
    assert detector.calls == 2  # frame 0, and frame 3 = LOST_WAIT after it
    assert tracking.LOST_WAIT == 3


def test_a_person_followed_is_kept_on_a_weaker_pose_than_starts_one():
    """Hysteresis: a followed square whose pose dims below the bar for a new person (0.15) but
    above `KEEP_FRACTION` of it stays followed; a new square that dim starts no track; one
    dimmer still is lost."""
    from keras_hourglass.poses import tracking
    from keras_hourglass.poses.boxes import Box

    class Dim(_SquarePoses):  # the confidence is the square's brightness
        def __call__(self, crops):
            keypoints, _ = super().__call__((crops > 0.02).astype(np.float32))
            return keypoints, np.array([[c[..., 0].max()] * 4 for c in crops])

    def detector(pixels):
        return [
            Box(float(x0), float(y0), float(x1 - x0), float(y1 - y0), 0.9)
            for x0, y0, x1, y1 in _blobs(pixels[..., 0] > 2)
        ]

    def frame(a, b=0.0):  # square a on the left, b on the right, at these brightnesses
        pixels = np.zeros((120, 240, 3), np.uint8)
        pixels[40:80, 40:60], pixels[40:80, 160:180] = round(255 * a), round(255 * b)
        return pixels

    tracker = tracking.PeopleTracker(Dim(), SQUARE, detector, detect_every=1)
    assert tracking.KEEP_FRACTION * 0.15 < 0.12 < 0.15
    seen = [
        [p.track_id for p in tracker(frame(*levels))]
        for levels in [(1.0,), (0.12, 0.12), (0.12, 0.12), (0.05, 0.12)]
    ]
    assert seen == [[0], [0], [0], []], seen


def test_people_who_cross_keep_their_ids(tmp_path):
    """Two squares walking past each other (one behind the other, 50 px apart in height): the
    one that starts on the left keeps id 0 all the way to the right, the other id 1, though
    they pass through one column and the detector looks again every 4th frame."""
    from keras_hourglass.poses.estimator import predict_video

    camera = _FakeCamera(frames=16, shape=(160, 260), starts=(20, 220), speeds=(12, -12),
                         rows=(10, 100))  # fmt: skip
    predict_video(
        _SquareEstimator(_SquareDetector()), (camera, "x", 10.0, 16), str(tmp_path),
        detect_every=4,
    )  # fmt: skip
    for t, line in enumerate(_lines(tmp_path / "x_pose.jsonl")):
        by_id = {p["track_id"]: p["joints"]["a"] for p in line["people"]}
        assert sorted(by_id) == [0, 1], (t, by_id)
        left, right = camera.lefts(t)
        assert by_id[0]["x"] == pytest.approx(left, abs=0.6)
        assert by_id[0]["y"] == pytest.approx(10, abs=0.6)
        assert by_id[1]["x"] == pytest.approx(right, abs=0.6)
        assert by_id[1]["y"] == pytest.approx(100, abs=0.6)


def test_tracks_that_converge_on_one_person_merge_and_the_older_id_stays():
    from keras_hourglass.poses import framing, tracking

    tracker = tracking.PeopleTracker(_SquarePoses(), SQUARE, _SquareDetector())
    frame = np.zeros((120, 240, 3), np.uint8)
    frame[40:80, 100:120] = 255
    first = tracker(frame)
    assert [p.track_id for p in first] == [0]
    ghost = tracking.Tracked(
        7, framing.Framing(109.5, 59.5, 50.0), first[0].keypoints + 1, np.ones(4)
    )
    tracker.tracks.append(ghost)
    assert [p.track_id for p in tracker(frame)] == [0]


def test_a_detection_of_someone_followed_is_not_predicted_again():
    """At a detection frame, the people followed have just been predicted by the follow pass:
    their detections cost no more network crops (a new person's would)."""
    from keras_hourglass.poses import tracking

    class Counting(_SquarePoses):
        crops = 0

        def __call__(self, crops):
            Counting.crops += len(crops)
            return super().__call__(crops)

    camera = _FakeCamera(frames=5, starts=(40, 160), speeds=(0, 0))
    detector = _SquareDetector()
    tracker = tracking.PeopleTracker(Counting(), SQUARE, detector, detect_every=2)
    per_frame = []
    for _ in range(5):
        before = Counting.crops
        people = tracker(camera.read()[1][..., ::-1])
        per_frame.append(Counting.crops - before)
        assert [p.track_id for p in people] == [0, 1]
    assert detector.calls == 3  # frames 0, 2, 4
    assert per_frame[0] >= 2 and per_frame[1:] == [2, 2, 2, 2], per_frame


def test_the_match_cost_prefers_the_near_pose():
    from keras_hourglass.poses.tracking import match_cost

    pose = np.array([[0.0, 0], [20, 0], [20, 40], [0, 40]])
    assert match_cost(pose, 50.0, pose) == 0.0
    assert match_cost(pose, 50.0, pose + 5) < match_cost(pose, 50.0, pose + 15) < 1.0
    assert match_cost(pose, 50.0, pose + 200) == 1.0


def test_show_without_window_support_says_what_to_install(tmp_path):
    """This machine's OpenCV is the headless build: --show refuses with what to install."""
    import cv2

    module = _predict_module()
    try:
        cv2.namedWindow("probe")
        cv2.destroyWindow("probe")
        pytest.skip("this OpenCV has window support")
    except cv2.error:
        pass
    with pytest.raises(module.InputError, match="install opencv-python instead"):
        module.Window("x")


def test_the_overlay_is_h264_that_decodes_back(tmp_path):
    """The overlay video is H.264 in MP4 (what browsers play): decoded back with PyAV, every frame
    is there, at the padded even size, close to what was written (lossy)."""
    av = pytest.importorskip("av")
    from keras_hourglass.poses import media as module

    frames = [np.full((33, 47, 3), 40 * i, np.uint8) for i in range(5)]
    writer = module.VideoWriter(str(tmp_path / "o.mp4"), 10.0, 47, 33)
    for frame in frames:
        writer.write(frame)
    writer.close()
    with av.open(str(tmp_path / "o.mp4")) as video:
        stream = video.streams.video[0]
        assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (48, 34)
        decoded = [f.to_ndarray(format="rgb24") for f in video.decode(video=0)]
    assert len(decoded) == 5
    for got, want in zip(decoded, frames):
        assert np.abs(got[:33, :47].astype(int) - want).mean() < 4


NO_TF_VIDEO = r"""
import runpy, sys
sys.modules["tensorflow"] = None  # importing TensorFlow or Keras fails in this process
sys.modules["keras"] = None
script, *args = sys.argv[1:]
sys.argv = [script, *args]
runpy.run_path(script, run_name="__main__")
"""


@pytest.mark.slow
def test_a_video_runs_without_tensorflow_or_keras(clip, python_env):
    """An exported OpenVINO model on a video where importing TensorFlow or Keras fails: the
    video loop, its progress and its files need neither."""
    import subprocess

    from conftest import PYTHON, ROOT

    from keras_hourglass.deployment import export

    folder, video, frames = clip
    model = kh.build_hourglass(
        num_stacks=1, skeleton="mpii", filters=16, depth=2, input_shape=(64, 64, 3)
    )
    xml = export.export_openvino(model, str(folder / "m.xml"))
    out = folder / "no_tf"
    result = subprocess.run(
        [PYTHON, "-c", NO_TF_VIDEO, str(ROOT / "eval/predict.py"), "--video", str(video),
         "--model", xml, "--out", str(out), "--whole-image"],
        env=python_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "6 frames in" in result.stdout
    lines = (out / "clip_pose.jsonl").read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[0])["people"][0]["track_id"] == 0


def test_the_trackers_are_a_table_like_the_detectors():
    """Issue #49 item 3: trackers are entries of `tracking.TRACKERS`, made by name
    (`make_tracker`) and chosen with --tracker; --no-track is --tracker detect."""
    from keras_hourglass.commands import predict
    from keras_hourglass.poses import tracking

    assert set(tracking.TRACKERS) == {"pose", "detect"}
    follow = tracking.make_tracker("pose", _SquarePoses(), SQUARE, _SquareDetector())
    every = tracking.make_tracker("detect", _SquarePoses(), SQUARE, None, detect_every=3)
    assert isinstance(follow, tracking.PeopleTracker) and follow.follow
    assert not every.follow and every.detect_every == 3
    with pytest.raises(ValueError, match="unknown tracker 'kalman'; known"):
        tracking.make_tracker("kalman", _SquarePoses(), SQUARE)
    parser = predict.build_parser()
    assert parser.parse_args(["x.jpg"]).tracker == "pose"
    assert parser.parse_args(["x.jpg", "--no-track"]).tracker == "detect"
    assert parser.parse_args(["x.jpg", "--tracker", "detect"]).tracker == "detect"
