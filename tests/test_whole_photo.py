"""The pose a user sees from a whole photo (issue #48): people found by default, each re-framed
from its pose as the model was trained, nobody reported for a photo of nobody, photos read as
phones and editors write them (EXIF orientation, 16-bit PNG, WebP, BMP), and the Python call
taking the boxes users have."""

import io
import json
import math
import subprocess

import numpy as np
import pytest
from conftest import PYTHON, ROOT, benchmark_module
from PIL import Image

import keras_hourglass as kh
from keras_hourglass import geometry
from keras_hourglass.poses import framing
from keras_hourglass.poses.boxes import Box, BoxError
from keras_hourglass.poses.media import InputError, decode_image, exif_turned

SKIER = ROOT / "docs/images/coco_000000000785.jpg"
SKIER_BOX = [281.0, 45.0, 219.0, 347.0]  # COCO's box of the skier


def _jpeg(pixels, **kw):
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=95, **kw)
    return out.getvalue()


def _exif_rotated(pixels, orientation=6):
    """A phone's photo: the sensor's rows stored turned, and the tag saying how to show them
    (6: turn 90 degrees clockwise to view; the stored rows are the view turned counter-clockwise)."""
    stored = np.ascontiguousarray(np.rot90(pixels, 1 if orientation == 6 else -1))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _jpeg(stored, exif=exif.tobytes())


# --- the crop geometry of a re-framed person ----------------------------------------------------


@pytest.mark.parametrize("angle", [0.0, 0.5, math.pi, -2.0])
def test_a_framing_maps_crop_points_back_through_its_own_matrix(angle):
    frame = framing.Framing(120.0, 80.0, 150.0, angle)
    a, center = frame.matrix(64)
    photo = np.array([[100.0, 60.0], [130.0, 90.0], [120.0, 80.0]])
    crop = geometry.source_to_crop_points(photo, a, center, 64)
    np.testing.assert_allclose(frame.to_photo(crop, 64), photo, atol=1e-9)
    # The crop's up direction in the photo is (sin a, -cos a): a point above the centre in the
    # crop lies along it.
    up = frame.to_photo(np.array([[31.5, 0.0]]), 64)[0] - [120.0, 80.0]
    np.testing.assert_allclose(
        up / np.linalg.norm(up), [math.sin(angle), -math.cos(angle)], atol=1e-12
    )


def test_a_pose_is_framed_as_training_frames_the_annotation():
    """Unturned, the framing of a pose is `box_from_joints` of its joints (the annotation's
    crop in training); an inverted body far from upright is turned when asked."""
    from keras_hourglass.datasets import box_from_joints

    rng = np.random.default_rng(1)
    keypoints = rng.uniform(50, 250, (14, 2))
    scores = np.full(14, 0.9)
    frame = framing.pose_framing(keypoints, scores, kh.LSP, framing.Framing(0, 0, 1))
    center, scale = box_from_joints(keypoints, np.ones(14, bool))
    assert frame.angle == 0.0
    np.testing.assert_allclose([frame.cx, frame.cy], center)
    assert frame.side == pytest.approx(scale * geometry.PERSON_BOX_PX)
    # Shoulders below the hips: upside down; turned (pi) when turning is on.
    upside = keypoints.copy()
    hips = [kh.LSP.index("left_hip"), kh.LSP.index("right_hip")]
    shoulders = [kh.LSP.index("left_shoulder"), kh.LSP.index("right_shoulder")]
    upside[hips] = [[140, 100], [160, 100]]
    upside[shoulders] = [[140, 200], [160, 200]]
    turned = framing.pose_framing(upside, scores, kh.LSP, frame, upright_deg=45)
    assert abs(abs(turned.angle) - math.pi) < 1e-9
    assert framing.pose_framing(upside, scores, kh.LSP, frame).angle == 0.0  # the default
    # Unconfident poses frame too (measured better); a threshold makes them frame no one.
    assert framing.pose_framing(keypoints, np.zeros(14), kh.LSP, frame) == frame
    assert framing.pose_framing(keypoints, np.zeros(14), kh.LSP, frame, threshold=0.2) is None


@pytest.fixture(scope="module")
def estimator():
    from keras_hourglass.poses.estimator import PoseEstimator

    return PoseEstimator(kh.pretrained_path())


def _lspet(shared_data, first, count):
    from scipy.io import loadmat

    folder = shared_data / "lspet"
    joints = loadmat(str(folder / "joints.mat"))["joints"]
    for number in range(first, first + count):
        path = folder / "images" / f"im{number:05d}.jpg"
        if path.is_file():
            yield path, joints[:, :2, number - 1], joints[:, 2, number - 1] > 0.5


def test_re_framing_a_bad_box_recovers_the_pose(estimator, shared_data):
    """Held-out LSPET people given a box 1.6x too large and a quarter of its side off centre (a
    detector's mistake): the re-framed pose (3 passes) is nearer the annotation than one pass."""
    from keras_hourglass.poses.media import read_image

    errors = {1: [], 3: []}
    for path, joints, visible in _lspet(shared_data, 9001, 24):
        pixels = read_image(str(path))[1]
        floats = pixels.astype(np.float32) / 255.0
        lo, hi = joints[visible].min(0), joints[visible].max(0)
        side = max(hi - lo) * 1.25
        bad = framing.Framing((lo[0] + hi[0]) / 2 + 0.25 * side, (lo[1] + hi[1]) / 2, 1.6 * side)
        for passes in errors:
            people = framing.refine(estimator.predictor, floats, [bad], kh.LSP, passes)
            distance = np.linalg.norm(people.keypoints[0] - joints, axis=1)[visible]
            errors[passes].append(np.median(distance) / side)
    assert np.mean(errors[3]) < 0.8 * np.mean(errors[1]), errors


def test_a_photo_of_nobody_gives_no_one(estimator, tmp_path):
    """A gradient and a noise photo: no person reported, in the library and on the command line
    ("no person found"), and the JSON lists no one."""
    height, width = 300, 400
    ramp = np.linspace(0, 255, width)[None, :, None] * np.ones((height, 1, 3))
    gradient = ramp.astype(np.uint8)
    poses = estimator.image(None, gradient)
    assert poses.people == [] and poses.keypoints.shape == (0, 14, 2)
    Image.fromarray(gradient).save(tmp_path / "gradient.png")
    out = tmp_path / "poses"
    run = subprocess.run(
        [PYTHON, str(ROOT / "eval/predict.py"), str(tmp_path / "gradient.png"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "no person found" in run.stderr + run.stdout
    record = json.loads((out / "gradient_pose.json").read_text())
    assert record["people"] == [] and (record["width"], record["height"]) == (width, height)


def test_the_skier_is_found_without_flags(estimator):
    """No box: the detector finds the skier, one person, joints in the skier's box."""
    from keras_hourglass.poses.media import read_image

    data, pixels = read_image(str(SKIER))
    poses = estimator.image(data, pixels)
    assert len(poses.people) == 1 and poses.found_by == "detector"
    x, y, w, h = SKIER_BOX
    inside = [
        x - 0.1 * w <= j["x"] <= x + 1.1 * w and y - 0.1 * h <= j["y"] <= y + 1.1 * h
        for j in poses.people[0]["joints"].values()
    ]
    assert sum(inside) >= 12 and poses.people[0]["crop"]["passes"] >= 1


# --- photos as phones and editors write them ----------------------------------------------------


@pytest.mark.parametrize("orientation", [6, 8])
def test_an_exif_rotated_photo_is_read_upright(orientation):
    pixels = np.asarray(Image.open(SKIER).convert("RGB"))
    data = _exif_rotated(pixels, orientation)
    assert exif_turned(data) and not exif_turned(SKIER.read_bytes())
    upright = decode_image(data, "phone.jpg")
    assert upright.shape == pixels.shape
    assert np.abs(upright.astype(int) - pixels).mean() < 4  # JPEG's loss only


def test_an_exif_rotated_photo_gets_the_upright_pose(tmp_path):
    """`hourglass-predict` on a phone's photo (stored sideways, EXIF 6) reports the upright
    photo's size and the skier's joints where they are in the upright photo."""
    pixels = np.asarray(Image.open(SKIER).convert("RGB"))
    (tmp_path / "phone.jpg").write_bytes(_exif_rotated(pixels))
    (tmp_path / "plain.jpg").write_bytes(_jpeg(pixels))
    out = tmp_path / "poses"
    run = subprocess.run(
        [PYTHON, str(ROOT / "eval/predict.py"), str(tmp_path), "--out", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    phone = json.loads((out / "phone_pose.json").read_text())
    plain = json.loads((out / "plain_pose.json").read_text())
    assert (phone["width"], phone["height"]) == (640, 425)
    assert len(phone["people"]) == len(plain["people"]) == 1
    a = np.array([[j["x"], j["y"]] for j in phone["people"][0]["joints"].values()])
    b = np.array([[j["x"], j["y"]] for j in plain["people"][0]["joints"].values()])
    assert np.median(np.linalg.norm(a - b, axis=1)) < 6.0  # the same pose, up to JPEG's loss


def test_a_16_bit_png_is_scaled_not_clipped():
    """A 16-bit greyscale PNG (values to 65,535): mid-grey stays mid-grey."""
    values = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (64, 1))
    out = io.BytesIO()
    Image.fromarray(values).save(out, format="PNG")
    pixels = decode_image(out.getvalue(), "deep.png")
    assert pixels.shape == (64, 256, 3) and pixels.dtype == np.uint8
    np.testing.assert_allclose(pixels[0, :, 0], np.round(values[0] / 257.0), atol=1)
    assert 120 < pixels.mean() < 135  # clipping gave 254


def test_a_photo_is_read_once_and_its_header_checked_once(tmp_path, monkeypatch):
    """Issue #49 item 3: `read_image` reads the file once and parses its header once (the one
    image check) before Pillow decodes it; a missing file and a cut one still say so."""
    from keras_hourglass.datasets import images
    from keras_hourglass.poses.media import read_image

    parsed = []
    real = images.image_size
    monkeypatch.setattr(images, "image_size", lambda source: parsed.append(1) or real(source))
    data, pixels = read_image(str(SKIER))
    assert data == SKIER.read_bytes() and pixels.shape == (425, 640, 3)
    assert len(parsed) == 1
    with pytest.raises(InputError, match="gone.jpg: no such file"):
        read_image(str(tmp_path / "gone.jpg"))
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.jpg: a truncated JPEG"):
        read_image(str(tmp_path / "cut.jpg"))


@pytest.mark.parametrize("fmt", ["WEBP", "BMP", "TIFF"])
def test_webp_bmp_and_tiff_photos_are_read(fmt):
    pixels = np.asarray(Image.open(SKIER).convert("RGB"))
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt, **({"quality": 95} if fmt == "WEBP" else {}))
    decoded = decode_image(out.getvalue(), f"photo.{fmt.lower()}")
    assert decoded.shape == pixels.shape
    assert np.abs(decoded.astype(int) - pixels).mean() < 4


def test_a_file_that_is_no_photo_is_refused_in_one_line():
    with pytest.raises(InputError, match="not an image .*JPEG, PNG, WebP"):
        decode_image(b"%PDF-1.4 not a photo" * 4, "notes.pdf")


# --- the Python call takes what users have -------------------------------------------------------


def test_estimate_poses_takes_boxes_as_users_have_them(tmp_path):
    """Per image a list of `Box`, [x, y, w, h] or `Box.around`; a path as well as an array; no
    box: the people found. The same box in each form gives the same pose."""
    model = kh.load_pretrained()
    pixels = np.asarray(Image.open(SKIER).convert("RGB"))
    x, y, w, h = SKIER_BOX
    side = max(w, h) * 1.25
    forms = [[Box(*SKIER_BOX)], [SKIER_BOX], [Box.around(x + w / 2 - 0.5, y + h / 2 - 0.5, side)]]
    poses = [model.estimate_poses(pixels, form)[0] for form in forms]  # one image: [its people]
    for people in poses:
        assert isinstance(people, list) and len(people) == 1
        assert list(people[0]) == list(kh.LSP.joint_names)
    first = np.array([[j["x"], j["y"]] for j in poses[0][0].values()])
    for people in poses[1:]:
        other = np.array([[j["x"], j["y"]] for j in people[0].values()])
        np.testing.assert_allclose(other, first, atol=0.5)
    found = model.estimate_poses([str(SKIER)])  # a path; the people found
    assert len(found) == 1 and len(found[0]) == 1
    again = np.array([[j["x"], j["y"]] for j in found[0][0].values()])
    assert np.median(np.linalg.norm(again - first, axis=1)) < 10.0
    with pytest.raises(BoxError, match=r"boxes\[0\]\[0\]"):
        model.estimate_poses(pixels, [[1, 2, 3]])
    with pytest.raises(BoxError, match="outside"):
        model.estimate_poses(pixels, [Box(2000, 0, 10, 10)])


def test_the_serving_client_finds_the_people_and_sends_upright_pixels(tmp_path, capsys):
    """No box: the request holds the detector's person (predict_encoded_boxes); a phone's photo
    goes as its upright pixels (TF Serving's decoder ignores EXIF), said on stderr."""
    from keras_hourglass.commands import serving_client

    pixels = np.asarray(Image.open(SKIER).convert("RGB"))
    phone = tmp_path / "phone.jpg"
    phone.write_bytes(_exif_rotated(pixels))
    parser, args = serving_client.parse_args([str(phone), "--rest", "http://x", "--print-request"])
    images, _, rows, _, boxes = serving_client.read_people(parser, args)
    assert "sent as upright PNG pixels (its EXIF orientation applied)" in capsys.readouterr().err
    assert np.array_equal(decode_image(images[0]), decode_image(phone.read_bytes()))
    assert len(rows) == 1 and boxes.shape == (1, 3)
    cx, cy, scale = boxes[0]
    x, y, w, h = SKIER_BOX
    assert x <= cx <= x + w and y <= cy <= y + h  # the skier, in the upright photo
    # The crop sent is the one BlazePose's landmarks frame (the skier's body, without COCO's
    # skis and poles), not the detector's box's square; the record keeps the detector's box.
    detected = args.detector(decode_image(images[0]))[0]
    assert rows[0][1]["bbox"] == detected.xywh
    side = scale * geometry.PERSON_BOX_PX
    assert abs(side - detected.square()[2]) > 10.0
    assert 0.6 < side / (1.25 * max(w, h)) < 1.1, side
    body = serving_client.rest_body([images[0]], boxes)
    assert body["signature_name"] == "predict_encoded_boxes"
    parser, args = serving_client.parse_args([str(SKIER), "--rest", "x", "--whole-image"])
    images, _, rows, _, boxes = serving_client.read_people(parser, args)
    assert boxes is None and images[0] == SKIER.read_bytes()  # sent as it is, whole


# --- the benchmark that measures all this ---------------------------------------------------------


def _benchmark():
    return benchmark_module("photo_accuracy")


def test_the_photo_benchmark_scores_the_nearest_reported_person():
    """Exact joints score 100, no one reported scores 0, a far second person does not count,
    and a person without both torso joints visible is not scored."""
    bench = _benchmark()
    rng = np.random.default_rng(0)
    joints = rng.uniform(100, 300, (14, 2))
    joints[bench.TORSO[0]], joints[bench.TORSO[1]] = [150, 100], [150, 200]  # torso 100 px
    visible = np.ones(14, bool)
    people = [("a.jpg", joints, visible), ("b.jpg", joints, visible)]
    off = joints + [25.0, 0.0]  # 0.25 torso away: wrong at 0.2
    found = {"a.jpg": [(off + 500, None), (joints, None)], "b.jpg": []}
    pck, scored, reported, empty = bench.score(people, found)
    np.testing.assert_allclose(pck, 50.0)  # a right, b empty
    assert (scored, reported, empty) == (2, 1.0, 1)
    near = joints + [0.0, 15.0]  # 0.15 torso away: right
    pck, *_ = bench.score(people, {"a.jpg": [(off, None)], "b.jpg": [(near, None)]})
    np.testing.assert_allclose(pck, 50.0)
    hidden = visible.copy()
    hidden[bench.TORSO[0]] = False
    assert bench.score([("c.jpg", joints, hidden)], {})[1] == 0  # not scored


@pytest.mark.slow
def test_the_photo_benchmark_runs_the_command_on_held_out_photos(shared_data, tmp_path):
    """Five held-out LSPET photos through `hourglass-predict` as the benchmark runs it: the
    default and the annotation's box, with the figures in its JSON."""
    bench = _benchmark()
    out = tmp_path / "figures.json"
    bench.main(
        ["--data-dir", str(shared_data / "lspet"), "--first", "9001", "--last", "9005",
         "--pipelines", "default,annotation", "--keep", str(tmp_path / "work"), "--json", str(out)]
    )  # fmt: skip
    figures = json.loads(out.read_text())
    assert set(figures) == {"default", "annotation"}
    assert figures["annotation"]["reported_per_photo"] == 1.0
    assert 0 <= figures["default"]["pck_limbs"] <= 100 and figures["default"]["seconds"] > 0
