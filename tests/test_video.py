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
            "--no-track",  # every frame whole, as the pictures are
        ],
        python_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "6 frames in" in result.stdout and "frames/s" in result.stdout
    lines = [json.loads(line) for line in (out / "clip_pose.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in lines] == list(range(6))
    assert lines[1]["time_s"] == pytest.approx(0.1)
    assert set(lines[0]["joints"]) == set(kh.MPII.joint_names)
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
        for joint, value in lines[i]["joints"].items():
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
    """A camera that shows a bright square moving right by 10 px a frame (BGR frames)."""

    def __init__(self, frames=8, shape=(120, 160)):
        self.frames, self.shape, self.read_count, self.released = frames, shape, 0, False

    def read(self):
        if self.read_count >= self.frames:
            return False, None
        frame = np.zeros((*self.shape, 3), np.uint8)
        x = 20 + 10 * self.read_count
        frame[40:80, x : x + 20] = 255
        self.read_count += 1
        return True, frame

    def release(self):
        self.released = True


class _PoseOfTheSquare:
    """A stand-in predictor: the 'pose' is the square's four corners (confidence 1), or nothing
    (confidence 0) on the frames listed in `lost`; records the box it was given per call."""

    person_box_px = 200.0
    skeleton = kh.Skeleton(
        "square",
        ("a", "b", "c", "d"),
        flip_pairs=(),
        limbs=(("a", "b"),),
        groups=(("All", ("a", "b", "c", "d")),),
        normalizer=("joints", ("a", "c")),
    )

    def __init__(self, lost=()):
        self.lost, self.boxes, self.seen = set(lost), [], 0

    def frames(self, frames, box=None):
        self.boxes.append(box)
        keypoints, scores = [], []
        for frame in frames:
            ys, xs = np.nonzero(frame[..., 0] > 128)
            corners = [[xs.min(), ys.min()], [xs.max(), ys.min()], [xs.max(), ys.max()]]
            keypoints.append(corners + [[xs.min(), ys.max()]])
            scores.append([0.0] * 4 if self.seen in self.lost else [1.0] * 4)
            self.seen += 1
        return np.array(keypoints, np.float64), np.array(scores)


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


def test_live_loop_follows_the_person_pauses_and_quits(tmp_path):
    """The camera loop with a fake camera, predictor and window: the box of each frame is the
    square around the last pose (x 1.25), the whole frame after a lost pose; space pauses
    (waits for a key), q quits and keeps what was written."""
    from keras_hourglass.poses import predict_video

    camera, predictor = _FakeCamera(frames=8), _PoseOfTheSquare(lost=[3])
    window = _FakeWindow({1: ord(" "), 5: ord("q")})
    run = predict_video(
        predictor, (camera, "camera0", 30.0, 0), str(tmp_path), batch=1, window=window
    )
    assert (
        run.frames == 6
        and run.ended == " (quit: kept what was read)"
        and camera.released
        and window.closed
        and window.waited == 1
    )
    assert len(window.shown) == 6 and window.shown[0].shape == (120, 160, 3)
    lines = [json.loads(x) for x in (tmp_path / "camera0_pose.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and (tmp_path / "camera0_pose.mp4").is_file()
    # Frame 0: the whole frame. Frame t: around frame t-1's square (x from 20 + 10 (t - 1)),
    # the side 1.25 x the square's 39 px extent, but at least 160 / 8 = 20 px.
    assert predictor.boxes[0] is None and lines[0]["box"] == "whole frame"
    for t in (1, 2, 3, 5):
        left = 20 + 10 * (t - 1)
        cx, cy, scale = predictor.boxes[t]
        assert (cx, cy) == pytest.approx((left + 9.5, 59.5))
        assert scale * 200 == pytest.approx(39 * 1.25)
        assert lines[t]["box"]["center"] == pytest.approx([left + 9.5, 59.5], abs=0.01)
    assert predictor.boxes[4] is None  # frame 3's pose was lost: frame 4 sees the whole frame
    av = pytest.importorskip("av")
    with av.open(str(tmp_path / "camera0_pose.mp4")) as video:  # H.264, every frame kept on q
        assert video.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in video.decode(video=0)) == 6


def test_follow_keeps_the_box_inside_sensible_limits():
    from keras_hourglass import poses as module

    keypoints = np.array([[10.0, 10], [12, 10], [12, 12], [10, 12]])
    # A tiny pose: the box is at least an eighth of the frame's longer side.
    cx, cy, scale = module.follow(keypoints, np.ones(4), (100, 400), 0.2, 200.0)
    assert (cx, cy) == (11, 11) and scale * 200 == pytest.approx(50)
    assert module.follow(keypoints, [1, 0.1, 0.1, 0.1], (100, 400), 0.2, 200.0) is None
    assert module.follow(keypoints - 50, np.ones(4), (100, 400), 0.2, 200.0) is None  # outside
    # In a model whose person box is 100 px, the same box is twice the scale.
    assert module.follow(keypoints, np.ones(4), (100, 400), 0.2, 100.0)[2] == pytest.approx(
        2 * scale
    )


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
    from keras_hourglass import media as module

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
