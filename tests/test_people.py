"""Several people per image: boxes from --bbox and detection files, every person predicted,
drawn and written with its box and score."""

import json
import os

import numpy as np
import pytest
from conftest import randomize_weights, run_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import keras_hourglass as kh
from keras_hourglass.datasets import synthetic
from keras_hourglass.deployment import inference
from keras_hourglass.evaluation import metrics
from keras_hourglass.poses import boxes


def test_person_box_is_the_top_down_convention():
    # A 60 x 120 box at (10, 20): the square of the longer side x 1.25 around its centre.
    cx, cy, scale = boxes.person_box((10, 20, 60, 120))
    assert (cx, cy) == (10 + 30 - 0.5, 20 + 60 - 0.5)  # pixel centres at integers
    assert scale == pytest.approx(120 * 1.25 / 200)
    # The same square in pixels, as the crop is made from it (no model unit on the way).
    assert boxes.Box(10, 20, 60, 120).square() == pytest.approx((cx, cy, 120 * 1.25))
    assert boxes.Box.around(50.0, 60.0, 90.0).square() == (50.0, 60.0, 90.0)


def test_person_scores_rescore_as_the_published_pipelines():
    scores = np.array([[0.9, 0.1, 0.5, 0.3], [0.1, 0.2, 0.15, 0.0], [0.8, 0.8, 0.8, 0.8]])
    got = metrics.person_scores(scores, [0.5, 1.0, 0.25])
    # Mean of the joints above 0.2 (strictly), times the box score; none above: 0.
    assert got == pytest.approx([0.5 * (0.9 + 0.5 + 0.3) / 3, 0.0, 0.25 * 0.8])


def test_parse_bbox_and_detection_files(tmp_path):
    assert boxes.parse_bbox("1,2.5,30,40") == (1.0, 2.5, 30.0, 40.0)
    for text, message in [
        ("1,2,3", "expected x,y,w,h"),
        ("1,2,a,4", "must be numbers"),
        ("1,2,0,4", "positive width and height"),
        ("1,2,nan,4", "NaN or infinite"),
    ]:
        with pytest.raises(boxes.BoxError, match=message):
            boxes.parse_bbox(text)
    coco = tmp_path / "dets.json"
    coco.write_text(
        json.dumps(
            [
                {"image_id": 42, "bbox": [0, 0, 10, 20], "score": 0.9, "category_id": 1},
                {"image_id": 42, "bbox": [5, 5, 10, 20], "score": 0.2, "category_id": 1},
                {"image_id": 42, "bbox": [5, 5, 10, 20], "score": 0.9, "category_id": 3},
                {"image_id": 7, "bbox": [1, 1, 5, 5], "score": 0.95},
            ]
        )
    )
    table = boxes.read_detections(coco, min_score=0.3)
    assert len(table) == 2  # the low score and the other category left out
    # Image 42 is COCO's 000000000042.jpg (and COCO_val2014_000000000042.jpg).
    assert table.of("x/000000000042.jpg") == [boxes.Detection((0, 0, 10, 20), 0.9)]
    assert table.of("COCO_val2014_000000000042.jpg") == table.of("000000000042.png")
    assert table.of("000000000043.jpg") == [] and len(table.of("7.jpg")) == 1
    mapping = tmp_path / "boxes.json"
    mapping.write_text(json.dumps({"a.jpg": [[0, 0, 4, 4], {"bbox": [1, 1, 2, 2], "score": 0.5}]}))
    table = boxes.read_detections(mapping)
    assert table.of("photos/a.jpg") == [
        boxes.Detection((0, 0, 4, 4), 1.0),
        boxes.Detection((1, 1, 2, 2), 0.5),
    ]
    for content, message in [
        ([{"image_id": 1, "bbox": [0, 0, 1]}], r"dets.json, entry 0: a box is \[x, y, w, h\]"),
        ([{"bbox": [0, 0, 1, 1]}], "entry 0: needs 'image_id' and 'bbox'"),
        ([{"image_id": 1, "bbox": [0, 0, 1, 1], "score": "high"}], "'score' must be a finite"),
        ({"a.jpg": {"bbox": [0, 0, 1, 1]}}, "image 'a.jpg': expected a list of boxes"),
        ({"a.jpg": [{"box": [0, 0, 1, 1]}]}, "box 0: needs 'bbox'"),
        ("boxes", "expected COCO detection results"),
    ]:
        coco.write_text(json.dumps(content))
        with pytest.raises(boxes.BoxError, match=message):
            boxes.read_detections(coco)
    coco.write_text("[{")
    with pytest.raises(boxes.BoxError, match="not a JSON file"):
        boxes.read_detections(coco)


_json = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)
_box = st.lists(st.floats() | st.integers(-5, 50) | st.text(max_size=2), min_size=3, max_size=5)
_detection = st.fixed_dictionaries(
    {"image_id": st.integers(0, 3) | st.text(max_size=3), "bbox": _box},
    optional={
        "score": st.floats() | st.none() | st.text(max_size=2),
        "category_id": st.integers(0, 2),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    data=st.one_of(
        _json,
        st.lists(_detection | _json, max_size=5),
        st.dictionaries(st.text(max_size=4), st.lists(_box | _detection | _json, max_size=3)),
    )
)
def test_fuzz_detection_files(tmp_path_factory, data):
    """Whatever the JSON, read_detections returns boxes with finite, positive sizes and finite
    scores, or raises BoxError; never another exception."""
    path = tmp_path_factory.mktemp("dets") / "d.json"
    path.write_text(json.dumps(data))
    try:
        table = boxes.read_detections(path)
    except boxes.BoxError:
        return
    for found in table.by_key.values():
        for bbox, score in found:
            assert np.all(np.isfinite(bbox)) and bbox[2] > 0 and bbox[3] > 0
            assert np.isfinite(score)


@pytest.mark.slow
def test_predict_py_predicts_every_person_of_an_image(tmp_path, python_env, capsys):
    """Two stick figures side by side in one image, given as --bbox twice and as COCO detection
    results: every person is predicted from its own box, exactly as the library predicts that
    box alone; scores, drawing and preds.mat follow."""
    size = 64
    canvas = np.zeros((size, 2 * size + 16, 3), np.uint8)
    canvas[:, :size] = synthetic.person(3, 0, size)[1]
    canvas[:, size + 16 :] = synthetic.person(3, 1, size)[1]
    image = tmp_path / "000000000042.png"
    Image.fromarray(canvas).save(image)
    model = kh.build_hourglass(
        num_stacks=1, skeleton="mpii", filters=16, depth=2, input_shape=(32, 32, 3)
    )
    randomize_weights(model, np.random.default_rng(5), scale=0.3)
    model.save(tmp_path / "m.keras")
    bboxes = [(2, 4, 60, 56), (size + 18, 0, 58, 64)]

    # What the library predicts for each box alone.
    want_kp, want_sc = inference.estimate_keypoints(
        inference.crop_predictor(model),
        [canvas, canvas],
        [boxes.Box(*b).square() for b in bboxes],
    )

    def check(out, box_scores):
        written = json.loads((out / "000000000042_pose.json").read_text())
        assert len(written["people"]) == 2
        for person, bbox, kp, sc, box_score in zip(
            written["people"], bboxes, want_kp, want_sc, box_scores
        ):
            assert person["bbox"] == list(map(float, bbox)) and person["box_score"] == box_score
            got = np.array([[j["x"], j["y"]] for j in person["joints"].values()])
            np.testing.assert_allclose(got, kp, atol=0.01)
            confidences = np.array([j["confidence"] for j in person["joints"].values()])
            np.testing.assert_allclose(confidences, sc, atol=1e-4)
            above = sc[sc > 0.2]
            want = box_score * (above.mean() if above.size else 0.0)
            assert person["score"] == pytest.approx(want, abs=1e-5)
        from scipy.io import loadmat

        mat = loadmat(out / "preds.mat")["preds"]
        np.testing.assert_allclose(mat - 1, want_kp, atol=1e-3)
        drawn = np.asarray(Image.open(out / "000000000042_pose.png").convert("RGB"))
        # The box outline (blue) along the top edge of the first box.
        assert np.all(drawn[bboxes[0][1], 10:50] == (80, 160, 255))

    out = tmp_path / "bbox"
    # --no-refine: the boxes as given, one pass each (re-framing is tests/test_whole_photo.py's)
    args = ["--model", str(tmp_path / "m.keras"), "--out", str(out), "--no-refine"]
    result = run_command(
        "eval/predict.py",
        [str(image), *args] + [a for b in bboxes for a in ("--bbox", ",".join(map(str, b)))],
        python_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 people" in result.stdout
    check(out, [1.0, 1.0])

    detections = tmp_path / "dets.json"
    detections.write_text(
        json.dumps(
            [
                {"image_id": 42, "bbox": list(bboxes[0]), "score": 0.9, "category_id": 1},
                {"image_id": 42, "bbox": [0, 0, 10, 10], "score": 0.1, "category_id": 1},
                {"image_id": 42, "bbox": list(bboxes[1]), "score": 0.6, "category_id": 1},
                {"image_id": 43, "bbox": [0, 0, 10, 10], "score": 0.99, "category_id": 1},
            ]
        )
    )
    # The rest in this process: the command's main(argv) (a process each costs TensorFlow's
    # start-up).
    from keras_hourglass.commands import predict

    out = tmp_path / "dets"
    argv = [str(image), "--model", str(tmp_path / "m.keras"), "--out", str(out), "--no-refine"]
    assert predict.main(argv + ["--detections", str(detections)]) == 0
    check(out, [0.9, 0.6])  # the 0.1 box is below --min-box-score 0.3; image 43 is another

    # A box outside the image, and --bbox with --box, are refused clearly.
    for extra, message in [
        (["--bbox", "500,0,10,10"], "lies outside the image"),
        (["--bbox", "0,0,10,10", "--box", "5,5,1"], "one of them"),
        (["--bbox", "0,0,-1,10"], "positive width and height"),
    ]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as stopped:
            predict.main([str(image), *args, *extra])
        said = str(stopped.value.code) + capsys.readouterr().err
        assert stopped.value.code not in (0, None) and message in said, said[-2000:]


def test_serving_client_sends_one_row_per_person(tmp_path, capsys):
    """--bbox twice: a REST body of two rows, the image in each, the boxes as predict.py crops
    them; --detections picks each image's boxes; a box outside the image is refused."""
    import base64
    import sys

    from conftest import ROOT

    sys.path.insert(0, str(ROOT / "eval"))
    import serving_client

    image = tmp_path / "000000000042.png"
    Image.fromarray(np.zeros((64, 144, 3), np.uint8)).save(image)
    data = image.read_bytes()
    bboxes = ["2,4,60,56", "82,0,58,64"]
    argv = [str(image), "--rest", "http://localhost:1", "--print-request"]
    assert serving_client.main(argv + [a for b in bboxes for a in ("--bbox", b)]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["signature_name"] == "predict_encoded_boxes" and len(body["instances"]) == 2
    for row, text in zip(body["instances"], bboxes):
        assert base64.b64decode(row["images"]["b64"]) == data
        want = boxes.person_box(boxes.parse_bbox(text))
        np.testing.assert_allclose(row["boxes"], want, rtol=1e-6)
    detections = tmp_path / "dets.json"
    detections.write_text(
        json.dumps(
            [
                {"image_id": 42, "bbox": [2, 4, 60, 56], "score": 0.8},
                {"image_id": 42, "bbox": [82, 0, 58, 64], "score": 0.1},
            ]
        )
    )
    assert serving_client.main(argv + ["--detections", str(detections)]) == 0
    body = json.loads(capsys.readouterr().out)
    assert len(body["instances"]) == 1  # the 0.1 box is below --min-box-score 0.3
    with pytest.raises(SystemExit):
        serving_client.main(argv + ["--bbox", "500,0,10,10"])
    assert "lies outside the image" in capsys.readouterr().err


def test_predict_and_serving_client_refuse_the_same_box_flags(tmp_path, capsys):
    """The box flags are one definition (cli.add_box_arguments): both commands refuse a bad
    --bbox, a score or IoU outside [0, 1] and two ways of giving people, with the same words."""
    import sys

    from conftest import ROOT

    from keras_hourglass.commands import predict

    sys.path.insert(0, str(ROOT / "eval"))
    import serving_client

    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(image)
    for extra, message in [
        (["--bbox", "1,2,3"], "expected x,y,w,h"),
        (["--min-box-score", "2"], "--min-box-score must be between 0 and 1, got 2.0"),
        (["--nms-thr", "-0.5"], "--nms-thr must be between 0 and 1, got -0.5"),
        (["--bbox", "0,0,9,9", "--detections", "d.json"], "one of them"),
    ]:
        said = []
        for main, argv in [
            (predict.main, [str(image), "--out", str(tmp_path / "out")]),
            (serving_client.main, [str(image), "--print-request"]),
        ]:
            capsys.readouterr()
            with pytest.raises(SystemExit) as stopped:
                main(argv + extra)
            assert stopped.value.code == 2
            said.append(capsys.readouterr().err.strip().splitlines()[-1].split("error: ")[-1])
        assert said[0] == said[1] and message in said[0], said


def test_nms_keeps_the_best_of_duplicate_boxes():
    a, b, c = (0, 0, 100, 200), (5, 5, 100, 200), (300, 0, 100, 200)
    assert boxes.box_iou(a, a) == pytest.approx(1.0) and boxes.box_iou(a, c) == 0.0
    kept = boxes.nms([(a, 0.5), (b, 0.9), (c, 0.7)], 0.3)
    assert kept == [(b, 0.9), (c, 0.7)]
    assert len(boxes.nms([(a, 0.5), (b, 0.9)], 1.0)) == 2  # 1 keeps every box
    assert metrics.person_scores(np.zeros((0, 14))).shape == (0,)  # an image without a person


_frame_box = st.tuples(
    st.floats(-300, 500), st.floats(-300, 500), st.floats(0.5, 400), st.floats(0.5, 400)
)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    found=st.lists(
        st.tuples(_frame_box, st.floats(0.0, 1.0)) | st.just(((10.0, 10.0, 50.0, 80.0), 0.8)),
        max_size=8,
    ),
    threshold=st.sampled_from([0.0, 0.3, 0.7, 1.0]),
)
def test_fuzz_a_detectors_boxes_through_predict_and_the_serving_client(found, threshold):
    """Empty, duplicate and out-of-image boxes of a 200 x 150 image: both commands keep the
    boxes that overlap the image and no kept pair overlaps above --nms-thr; every left-out box
    is said; nothing raises."""
    import argparse
    import io
    import sys

    from conftest import ROOT

    from keras_hourglass.commands import predict

    sys.path.insert(0, str(ROOT / "eval"))
    import serving_client

    class Table:
        def of(self, path, image_id=None):
            return [boxes.Detection(b, s) for b, s in found]

    args = argparse.Namespace(
        bbox=None, box=None, detections="d.json", detections_table=Table(), min_box_score=0.0,
        nms_thr=threshold, images=["a.png"],
    )  # fmt: skip
    out = io.StringIO()
    sys_stderr, sys.stderr = sys.stderr, out  # the notes are warnings: stderr, even under -q
    try:
        people = predict.people_of(args, "a.png", np.zeros((150, 200, 3), np.uint8))
    finally:
        sys.stderr = sys_stderr
    inside = [
        (b, s)
        for b, s in found
        if b[0] < 200 and b[1] < 150 and b[0] + b[2] > 0 and b[1] + b[3] > 0
    ]
    assert len(people) <= len(inside)
    kept = [p.xywh for p in people]
    for i in range(len(kept)):
        for j in range(i + 1, len(kept)):
            assert boxes.box_iou(kept[i], kept[j]) <= threshold + 1e-9
    assert out.getvalue().count("lies outside the image") == len(found) - len(inside)
    if len(people) < len(inside):
        assert "duplicates" in out.getvalue()
    for p in people:
        assert np.all(np.isfinite(p.square())) and p.square()[2] > 0

    png = io.BytesIO()
    Image.fromarray(np.zeros((150, 200, 3), np.uint8)).save(png, format="PNG")
    args.detections = None
    args.bbox = None
    rows_args = argparse.Namespace(**vars(args))
    rows_args.detections = "d.json"
    import keras_hourglass.poses.boxes as kb

    real = kb.read_detections
    kb.read_detections = lambda path, score: Table()
    err = io.StringIO()
    sys_stderr, sys.stderr = sys.stderr, err
    try:
        rows = serving_client.people_rows(rows_args, [png.getvalue()])
    finally:
        kb.read_detections = real
        sys.stderr = sys_stderr
    assert [r[1]["bbox"] for r in rows] == kept


@pytest.mark.slow
def test_predict_records_an_image_without_a_person_and_skips_unreadable_ones(tmp_path, python_env):
    """Real detector output: one image with duplicate and out-of-image boxes, one with no box
    above --min-box-score, one truncated file. With --skip-bad every readable image gets its
    JSON and overlay (the empty one with no people), preds.mat holds every person predicted, and
    nothing raises; without it the truncated file stops the run before anything is written."""
    from keras_hourglass.commands import predict

    size = 64
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[:] = synthetic.person(3, 0, size)[1]
    Image.fromarray(canvas).save(tmp_path / "000000000001.png")
    Image.fromarray(canvas).save(tmp_path / "000000000002.png")
    whole = (tmp_path / "000000000001.png").read_bytes()
    (tmp_path / "000000000003.png").write_bytes(whole[: len(whole) // 2])
    model = kh.build_hourglass(
        num_stacks=1, skeleton="mpii", filters=16, depth=2, input_shape=(32, 32, 3)
    )
    model.save(tmp_path / "m.keras")
    detections = tmp_path / "dets.json"
    detections.write_text(
        json.dumps(
            [
                {"image_id": 1, "bbox": [2, 4, 60, 56], "score": 0.9},
                {"image_id": 1, "bbox": [3, 4, 60, 56], "score": 0.8},  # a duplicate
                {"image_id": 1, "bbox": [500, 4, 60, 56], "score": 0.95},  # outside
                {"image_id": 2, "bbox": [2, 4, 60, 56], "score": 0.1},  # below 0.3
            ]
        )
    )
    images = [str(tmp_path / f"00000000000{i}.png") for i in (1, 2, 3)]
    argv = ["--model", str(tmp_path / "m.keras"), "--detections", str(detections)]
    with pytest.raises(SystemExit) as stopped:
        predict.main(images + argv + ["--out", str(tmp_path / "strict")])
    assert "truncated" in str(stopped.value.code) and not (tmp_path / "strict").exists()
    out = tmp_path / "o"
    assert predict.main(images + argv + ["--out", str(out), "--skip-bad"]) == 0
    first = json.loads((out / "000000000001_pose.json").read_text())
    assert len(first["people"]) == 1 and first["people"][0]["box_score"] == 0.9
    second = json.loads((out / "000000000002_pose.json").read_text())
    assert second["people"] == []
    assert (out / "000000000002_pose.png").is_file()
    assert not (out / "000000000003_pose.json").exists()
    from scipy.io import loadmat

    assert loadmat(out / "preds.mat")["preds"].shape == (1, 16, 2)


def test_expand_images_takes_files_folders_and_globs(tmp_path):
    from keras_hourglass.poses.output import InputListError, expand_images

    for name in ("a/x.jpg", "a/sub/y.png", "a/notes.txt", "a/.hidden.jpg", "b/x.JPG", "c.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = expand_images([str(tmp_path / "a"), str(tmp_path / "*.png"), str(tmp_path / "a/x.jpg")])
    assert [(os.path.relpath(i.path, tmp_path), i.stem, i.format) for i in found] == [
        ("a/sub/y.png", os.path.join("sub", "y"), "png"),
        ("a/x.jpg", "x", "jpg"),
        ("c.png", "c", "png"),
    ]  # the folder sorted and recursive, hidden files and .txt left out, a file named twice once
    with pytest.raises(InputListError, match="would both write x_pose"):
        expand_images([str(tmp_path / "a"), str(tmp_path / "b")])
    with pytest.raises(InputListError, match="no file matches"):
        expand_images([str(tmp_path / "*.gif")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputListError, match="a folder without photos"):
        expand_images([str(tmp_path / "empty")])


@pytest.mark.slow
def test_predict_a_folder_streams_keeps_formats_and_writes_coco_results(tmp_path):
    """A folder with a sub-folder and JPEG and PNG photos: outputs mirror the sub-folders, each
    overlay keeps its input's format (or --overlay-format), and --coco-results lists every
    person with the image id taken from the file name."""
    from keras_hourglass.commands import predict

    size = 64
    canvas = synthetic.person(3, 0, size)[1]
    (tmp_path / "in/sub").mkdir(parents=True)
    Image.fromarray(canvas).save(tmp_path / "in/000000000007.jpg", quality=95)
    Image.fromarray(canvas).save(tmp_path / "in/sub/000000000009.png")
    model = kh.build_hourglass(
        num_stacks=1, skeleton="mpii", filters=16, depth=2, input_shape=(32, 32, 3)
    )
    model.save(tmp_path / "m.keras")
    out = tmp_path / "out"
    # --whole-image: an untrained model finds no one in a photo (issue #48: nobody is no one)
    argv = [str(tmp_path / "in"), "--model", str(tmp_path / "m.keras"), "--whole-image"]
    argv += ["--out", str(out)]
    assert predict.main(argv + ["--coco-results", str(tmp_path / "coco.json")]) == 0
    assert (out / "000000000007_pose.jpg").is_file() and (
        out / "sub/000000000009_pose.png"
    ).is_file()
    assert Image.open(out / "000000000007_pose.jpg").format == "JPEG"
    assert json.loads((out / "sub/000000000009_pose.json").read_text())["people"]
    results = json.loads((tmp_path / "coco.json").read_text())
    assert sorted(r["image_id"] for r in results) == [7, 9]
    assert all(len(r["keypoints"]) == 3 * 16 and r["category_id"] == 1 for r in results)
    assert predict.main(argv[:-1] + [str(tmp_path / "png"), "--overlay-format", "png"]) == 0
    assert (tmp_path / "png/000000000007_pose.png").is_file()
