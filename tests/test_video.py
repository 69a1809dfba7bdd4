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
        [*images, "--model", str(folder / "m.keras"), "--out", str(folder / "img")], python_env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    same, total = 0, 0
    for i in range(6):
        picture = json.loads((folder / "img" / f"frame{i % 5}_pose.json").read_text())["joints"]
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
