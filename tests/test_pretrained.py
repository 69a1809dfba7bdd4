"""The model that ships with the package: it loads by name, is the file its card names, reproduces
its card's accuracy on real held-out people, and every command takes its name."""

import io
import json
import os
import re
import subprocess
import zipfile

import h5py
import numpy as np
import pytest
from conftest import PYTHON, ROOT

import keras_hourglass as kh
from keras_hourglass import pretrained

CARD = ROOT / "docs" / "models.md"


def card_entry(name):
    """What docs/models.md says of a shipped model: its SHA-256 and its PCK@0.2 (flip test) on the
    last 50 held-out LSPET people."""
    text = CARD.read_text(encoding="utf-8")
    section = text.split(f"## `{name}`", 1)[1].split("\n## ", 1)[0]
    sha = re.search(r"SHA-256 `([0-9a-f]{64})`", section).group(1)
    pck50 = float(re.search(r"last 50 held-out people[^*]*\*\*([0-9.]+)%\*\*", section).group(1))
    return sha, pck50


def test_a_model_ships_with_the_package_and_is_the_default():
    names = kh.list_pretrained()
    assert names and names[0] == kh.default_pretrained()
    total = 0
    for name in names:
        info = kh.pretrained_info(name)
        path = kh.pretrained_path(name)  # checks the SHA-256
        assert os.path.dirname(path) == pretrained.WEIGHTS_DIR
        assert os.path.getsize(path) == info["bytes"]
        total += info["bytes"]
    assert total <= 30_000_000  # issue #38: the shipped weights stay under 30 MB


def test_the_card_names_each_shipped_file_by_its_hash():
    for name in kh.list_pretrained():
        sha, _ = card_entry(name)
        assert sha == kh.pretrained_info(name)["sha256"]
        assert sha == pretrained.file_sha256(kh.pretrained_path(name))


def test_the_shipped_model_loads_by_name_and_names_its_joints():
    name = kh.default_pretrained()
    model = kh.load_pretrained(name)
    info = kh.pretrained_info(name)
    assert list(model.skeleton.joint_names) == info["joints"]
    assert model.skeleton.name == info["skeleton"] == "lsp"
    assert model.codec.input_size[0] == info["input_size"]
    assert model.count_params() == info["parameters"]
    # No optimizer state travels with it (half the file); a fresh compile trains it further.
    assert getattr(model, "optimizer", None) is None
    with (
        zipfile.ZipFile(kh.pretrained_path(name)) as archive,
        archive.open("model.weights.h5") as weights,
    ):
        with h5py.File(io.BytesIO(weights.read())) as h5:
            assert "optimizer" not in h5
    kh.compile_hourglass(model)
    assert model.optimizer is not None


def test_unknown_names_and_damaged_files_are_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(
        pretrained.PretrainedError, match=r"no shipped model named 'nope'.*shipped: "
    ):
        kh.pretrained_info("nope")
    with pytest.raises(pretrained.PretrainedError, match=r"--model 'nope': no such file or folder"):
        pretrained.resolve_model("nope")
    name = kh.default_pretrained()
    assert pretrained.resolve_model(None) == (kh.pretrained_path(name), name)
    assert pretrained.resolve_model(name) == (kh.pretrained_path(name), name)
    here = str(tmp_path)
    assert pretrained.resolve_model(here) == (here, None)
    damaged = tmp_path / "weights"
    damaged.mkdir()
    info = kh.pretrained_info(name)
    data = bytearray(open(kh.pretrained_path(name), "rb").read())
    data[len(data) // 2] ^= 0xFF
    (damaged / info["file"]).write_bytes(bytes(data))
    from keras_hourglass import presets  # the index and its files (pretrained re-exports them)

    monkeypatch.setattr(presets, "WEIGHTS_DIR", str(damaged))
    with pytest.raises(pretrained.PretrainedError, match="damaged or was replaced"):
        pretrained.pretrained_path(name)


def test_the_shipped_model_reproduces_its_card_on_50_real_held_out_people(shared_data):
    """The card's PCK@0.2 (flip test) on the last 50 held-out LSPET people, recomputed here with
    the library's evaluation: within 0.5 points."""
    from keras_hourglass.datasets import (
        DATASETS,
        check_image_files,
        ground_truth_from_records,
        load_records,
    )
    from keras_hourglass.deployment.inference import crop_predictor, predict_people
    from keras_hourglass.evaluation.protocols import evaluate

    name = kh.default_pretrained()
    _, expected = card_entry(name)
    assert expected == pytest.approx(kh.pretrained_info(name)["heldout"]["flip50"]["PCK@0.2"])
    model = kh.load_pretrained(name)
    records = load_records("lspet", str(shared_data / "lspet"), None, None, None, True)
    records = check_image_files(records, skip_bad=True).subset(-50, None)
    assert [r.record_id for r in records] == [str(i) for i in range(9950, 10000)]
    preds, _ = predict_people(crop_predictor(model, True), records, 25)
    gt = ground_truth_from_records(records, normalizer=DATASETS["lspet"].normalizer)
    pck = float(evaluate(preds, gt).summary.set_index("group").loc["Mean"].iloc[0])
    assert pck == pytest.approx(expected, abs=0.5)
    assert pck > 40.0  # a trained model, not an untrained one (those score about 1%)


@pytest.mark.slow
def test_every_command_takes_the_shipped_models_name(tmp_path, python_env, shared_data):
    """predict (no --model: the default, said by name), evaluate, export and the serving client's
    local mode, each run as a user would."""
    name = kh.default_pretrained()
    photo = ROOT / "docs/images/coco_000000000785.jpg"
    env = dict(python_env, KERAS_HOURGLASS_CACHE=str(tmp_path / "cache"))

    def run(script, *args):
        result = subprocess.run(
            [PYTHON, str(ROOT / script), *map(str, args)],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        return result

    predicted = run("eval/predict.py", photo, "--bbox", "281,45,219,347", "--no-refine")
    assert f"model: {name}, shipped with keras-hourglass" in predicted.stdout
    pose = json.loads((tmp_path / "poses/coco_000000000785_pose.json").read_text())
    assert pose["model"] == name and pose["skeleton"] == "lsp"
    joints = pose["people"][0]["joints"]
    assert list(joints) == kh.pretrained_info(name)["joints"]
    # The skier's head is above her ankles, and her joints lie in her box.
    assert joints["head_top"]["y"] < joints["right_ankle"]["y"] - 150
    xy = np.array([[j["x"], j["y"]] for j in joints.values()])
    assert (xy[:, 0] > 250).all() and (xy[:, 0] < 530).all()

    evaluated = run(
        "eval/evaluate.py", "--model", name, "--dataset", "lspet", "--data-dir",
        shared_data / "lspet", "--skip-bad", "--held-out", 50, "--no-flip",
    )  # fmt: skip
    assert (tmp_path / "results" / name / "summary.csv").is_file()
    assert "PCK@0.2 mean over 50 people of lspet" in evaluated.stdout

    run("train/export.py", "--model", name)
    assert (tmp_path / "saved_models" / name / "1" / "saved_model.pb").is_file()
    assert f'name: "{name}"' in (tmp_path / "saved_models/models.config").read_text()

    local = run("eval/serving_client.py", photo, "--local", name, "--bbox", "281,45,219,347")
    people = json.loads(local.stdout)[str(photo)]["people"]
    served = np.array([[j["x"], j["y"]] for j in people[0]["joints"].values()])
    assert np.abs(served - xy).max() < 2.0  # the SavedModel's flip test = predict's
    again = run("eval/serving_client.py", photo, "--local", tmp_path / "saved_models" / name)
    assert json.loads(again.stdout)[str(photo)]["people"]


def test_the_pose_estimator_gives_a_photos_people_predicted_drawn_and_recorded():
    """The library's pose loop (keras_hourglass.poses.estimator, what predict.py and the demo page run) on
    the README's photo with the shipped model: two boxes (the skier's and the photo's) as two
    people, each recorded with LSP's 14 named joints, drawn over the photo; no box: the whole
    photo is the person; no person: nothing drawn; a box outside the photo: a BoxError."""
    from keras_hourglass.poses.boxes import Box, BoxError
    from keras_hourglass.poses.estimator import ImagePoses, PoseEstimator
    from keras_hourglass.poses.media import read_image

    photo = ROOT / "docs/images/coco_000000000785.jpg"
    data, pixels = read_image(str(photo))
    estimator = PoseEstimator(kh.pretrained_path(), runtime="keras", passes=1)
    bbox = [281.0, 45.0, 219.0, 347.0]  # COCO's box of the skier
    height, width = pixels.shape[:2]
    boxes = [Box(*bbox, score=0.9), Box(0, 0, width, height)]
    poses = estimator.image(data, pixels, boxes, batch=2, threshold=0.2)
    assert isinstance(poses, ImagePoses) and poses.keypoints.shape == (2, 14, 2)
    keypoints, scores = estimator.people(data, pixels, boxes)  # one pass: the boxes as given
    np.testing.assert_allclose(poses.keypoints, keypoints, atol=1e-3)
    assert [p["box"]["center"] for p in poses.people] == [list(b.square()[:2]) for b in boxes]
    assert [p["crop"]["passes"] for p in poses.people] == [1, 1]
    first = poses.people[0]
    assert list(first["joints"]) == list(kh.LSP.joint_names)
    assert first["bbox"] == bbox and first["box_score"] == 0.9
    assert 0 < first["score"] <= 0.9  # the joints' mean confidence times the box's score
    x, y, w, h = bbox  # the skier's joints lie in (a margin around) the skier's box
    inside = [
        x - 0.1 * w <= j["x"] <= x + 1.1 * w and y - 0.1 * h <= j["y"] <= y + 1.1 * h
        for j in first["joints"].values()
    ]
    assert sum(inside) >= 12, first["joints"]
    assert poses.people[1]["bbox"] == [0, 0, width, height]
    whole = estimator.image(data, pixels, None, whole_image=True)
    assert len(whole.people) == 1 and whole.people[0]["crop"]["side"] == max(width, height)
    assert whole.found_by == "whole image"
    with pytest.raises(BoxError, match="lies outside the image"):
        estimator.image(data, pixels, [Box(width + 5, 0, 10, 10)], where=str(photo))
    drawn = np.asarray(poses.drawn)
    assert drawn.shape == pixels.shape and (drawn != pixels).any()
    plain = estimator.image(data, pixels, boxes, batch=2, threshold=0.2, draw=False)
    assert plain.drawn is None and plain.people == poses.people  # the page draws in the browser
    nobody = estimator.image(data, pixels, [], threshold=0.2)
    assert nobody.people == [] and nobody.keypoints.shape == (0, 14, 2)
    np.testing.assert_array_equal(np.asarray(nobody.drawn), pixels)
