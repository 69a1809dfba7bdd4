"""One inference path: the SavedModel, `estimate_poses`, `evaluate.py` and `predict.py` give the
same keypoints for the same model, image and box.

The boxes are chosen so that every crop is an exact copy of image pixels (the person box is the
crop's own size, centred on a pixel corner), so the NumPy/OpenCV and TensorFlow resamplers give
identical crops (the images are PNG: JPEG decoders differ) and any difference left would be the
inference's own. Float rounding differs between the compilations (XLA here or in another
process, the SavedModel's graph), so a heatmap with two maxima closer than that could be ordered
either way: there both answers must be maxima (`conftest.assert_same_or_tied`; none seen).
"""

import json
import pathlib

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import assert_same_or_tied, randomize_weights, run_command
from PIL import Image

import keras_hourglass as kh
from keras_hourglass import datasets

SIZE = 64  # model input: a box of scale SIZE / 200 is copied pixel for pixel


def _exact_boxes(records):
    """(centre x, centre y, scale) per person: a SIZE px box around the person's centre whose
    crop samples integer pixels (a textured crop: flat image regions give flat heatmaps, whose
    equal maxima any two computations may order differently)."""
    return [
        (float(np.floor(r.center[0])) + 0.5, float(np.floor(r.center[1])) + 0.5, SIZE / 200.0)
        for r in records
    ]


@pytest.mark.slow
def test_savedmodel_estimate_poses_evaluate_and_predict_agree(shared_data, tmp_path, python_env):
    from keras_hourglass.deployment.saved_model import export_for_serving

    folder = shared_data / "mpii_samples"
    records = datasets.read_mpii_json(str(folder / "test_mpii.json"), str(folder))
    # PNG copies: JPEG decoders differ by a level here and there (Pillow's and TensorFlow's),
    # PNG decodes to the same pixels everywhere.
    sources = []
    for r in records:
        sources.append(tmp_path / (pathlib.Path(r.image_path).stem + ".png"))
        Image.open(r.image_path).convert("RGB").save(sources[-1])
    images = [np.asarray(Image.open(p)) for p in sources]
    boxes = _exact_boxes(records)
    model = kh.build_hourglass(
        num_stacks=2, skeleton="mpii", filters=16, depth=2, input_shape=(SIZE, SIZE, 3)
    )
    randomize_weights(model, np.random.default_rng(0))
    model.save(tmp_path / "m.keras")
    names = kh.MPII.joint_names

    # 1. estimate_poses (NumPy crops, the compiled crop predictor).
    poses = model.estimate_poses(images, boxes)
    ours = np.array([[[p[j]["x"], p[j]["y"]] for j in names] for p in poses])
    scores = np.array([[p[j]["confidence"] for j in names] for p in poses])

    # 2. The SavedModel's serving_boxes (TensorFlow crops, the traced graph).
    import tensorflow as tf

    saved = export_for_serving(model, str(tmp_path / "sm/hourglass"))
    signature = tf.saved_model.load(saved).signatures["serving_boxes"]
    served = [
        signature(images=tf.constant(im[None]), boxes=tf.constant([box], tf.float32))
        for im, box in zip(images, boxes)
    ]
    heatmaps = np.concatenate([s["heatmaps"].numpy() for s in served])

    def to_heatmap(point, n):  # image pixels -> heatmap pixels of person n's crop
        crop = (point - np.array(boxes[n][:2])) * SIZE / (200 * boxes[n][2]) + (SIZE - 1) / 2
        return (crop + 0.5) / 4 - 0.5

    def same(got):
        assert_same_or_tied(got, ours, heatmaps, to_heatmap, atol=1e-3, tie=1e-5, min_same=0.97)

    same(np.concatenate([s["keypoints"].numpy() for s in served]))
    np.testing.assert_allclose(
        np.concatenate([s["scores"].numpy() for s in served]), scores, atol=1e-4
    )

    # 3. evaluate.py on the same people as a custom data set (both input executors).
    folder = tmp_path / "people"
    folder.mkdir()  # (image paths are absolute)
    # The MPII joints with a torso normaliser (no head boxes here): the custom data's own table.
    table = dict(kh.MPII.get_config(), normalizer=["joints", ["left_shoulder", "right_hip"]])
    (folder / "skeleton.json").write_text(json.dumps(table))
    people = [
        {
            "image": str(path),
            "keypoints": [[float(x), float(y)] for x, y in kp],
            "center": [cx, cy],
            "scale": scale,
        }
        for path, kp, (cx, cy, scale) in zip(sources, ours, boxes)
    ]
    (folder / "test.json").write_text(json.dumps(people))
    for executor in ("tf.data", "numpy"):
        out = tmp_path / f"eval-{executor}"
        result = run_command(
            "eval/evaluate.py",
            [
                *("--model", str(tmp_path / "m.keras"), "--dataset", "custom"),
                *("--data-dir", str(folder), "--executor", executor, "--out", str(out)),
            ],
            python_env,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        table = pd.read_csv(out / "predictions.csv")
        same(table[["x", "y"]].to_numpy().reshape(len(sources), len(names), 2))
        np.testing.assert_allclose(
            table["confidence"].to_numpy().reshape(scores.shape), scores, atol=1e-4
        )
        # The predictions are the ground truth here: every joint is right (ties aside).
        summary = pd.read_csv(out / "summary.csv")
        assert summary.set_index("group").loc["Mean", "PCK@0.2"] >= 97
        # preds.mat round trip: scored again as a prediction file, the same tables.
        again = run_command(
            "eval/evaluate.py",
            [
                *("--preds", str(out / "preds.mat"), "--dataset", "custom"),
                *("--annotations", str(folder / "test.json"), "--out", str(out / "again")),
            ],
            python_env,
        )
        assert again.returncode == 0, again.stderr[-3000:]
        pd.testing.assert_frame_equal(pd.read_csv(out / "again/summary.csv"), summary)

    # 4. predict.py with the .keras file and with the SavedModel, one --box per image.
    for model_path in (tmp_path / "m.keras", saved):
        out = tmp_path / f"predict-{len(str(model_path))}"
        result = run_command(
            "eval/predict.py",
            [
                *map(str, sources),
                *("--model", str(model_path), "--out", str(out), "--no-refine"),
                *[a for box in boxes for a in ("--box", ",".join(f"{v!r}" for v in box))],
            ],
            python_env,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        got = []
        for path in sources:
            (person,) = json.loads((out / f"{path.stem}_pose.json").read_text())["people"]
            joints = person["joints"]
            assert list(joints) == list(names)
            got.append([[joints[j]["x"], joints[j]["y"]] for j in names])
            assert all(set(v) == {"x", "y", "confidence"} for v in joints.values())
        same(np.array(got))  # positions lie on a 0.5 px grid: the files' 0.01 px rounding is exact
        from scipy.io import loadmat

        mat = loadmat(out / "preds.mat")["preds"]  # 1-based, as MPII's tools read it
        np.testing.assert_allclose(mat - 1, np.array(got), atol=1e-3)


def test_the_compiled_predictor_is_made_once_per_model_and_reads_current_weights():
    model = kh.build_hourglass(
        num_stacks=1, skeleton="mpii", filters=16, depth=2, input_shape=(32, 32, 3)
    )
    predictor = kh.crop_predictor(model)
    assert kh.crop_predictor(model) is predictor  # kept with the model
    assert kh.crop_predictor(model, flip_test=False) is not predictor
    crops = np.random.default_rng(0).uniform(0, 1, (3, 32, 32, 3)).astype("float32")
    _, before = predictor(crops)
    assert np.all(before == 0)  # zero-initialised heads
    randomize_weights(model, np.random.default_rng(1))
    keypoints, after = predictor(crops)  # the same compiled function, the new weights
    want, want_scores, _ = kh.keypoints_of_crops(model, crops, model.codec, kh.MPII.flip_index)
    np.testing.assert_allclose(after, np.asarray(want_scores), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(keypoints, np.asarray(want), atol=1e-3)
    # Batches of any size (padded to a power of two inside) give the rows of one big batch.
    np.testing.assert_allclose(predictor(crops[:1])[1], after[:1], rtol=1e-4, atol=1e-5)
    # A codec is the model's own unless asked: the decoding rule travels with the model.
    assert predictor.codec.get_config() == model.codec.get_config()
    plain = kh.crop_predictor(model, codec=model.codec.replace(shift=False))
    assert plain.codec.shift is False and plain is not predictor


def test_named_joints_are_one_format():
    keypoints = np.array([[1.234567, 2.5], [3.0, 4.0]])
    scores = np.array([0.123456, 0.9])
    full = kh.named_joints(("a", "b"), keypoints, scores)
    assert full == {
        "a": {"x": 1.234567, "y": 2.5, "confidence": pytest.approx(0.123456)},
        "b": {"x": 3.0, "y": 4.0, "confidence": pytest.approx(0.9)},
    }
    rounded = kh.named_joints(("a", "b"), keypoints, scores, decimals=(2, 4))
    assert rounded["a"] == {"x": 1.23, "y": 2.5, "confidence": 0.1235}


def test_a_model_without_its_skeleton_needs_one_for_the_flip_test():
    model = kh.build_hourglass(num_stacks=1, filters=16, depth=2, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="skeleton"):
        kh.crop_predictor(model)
    keypoints, scores = kh.crop_predictor(model, flip_test=False)(np.zeros((2, 32, 32, 3)))
    assert keypoints.shape == (2, 16, 2) and scores.shape == (2, 16)


def test_records_of_a_custom_folder_carry_its_skeleton(tmp_path):
    (tmp_path / "skeleton.yaml").write_text(
        "name: hand\njoint_names: [wrist, thumb, index, left_mark, right_mark]\n"
        "flip_pairs: [[left_mark, right_mark]]\nlimbs: [[wrist, thumb], [wrist, index]]\n"
        "normalizer: [joints, [wrist, index]]\n"
    )
    Image.new("RGB", (40, 30)).save(tmp_path / "a.png")
    people = [
        {"image": "a.png", "keypoints": [[5, 5], [10, 5], [20, 20], [2, 3], [30, 4]]},
        {"image": "a.png", "keypoints": [[6, 5], [11, 5], [21, 20], [3, 3], [31, 4]]},
    ]
    (tmp_path / "train.json").write_text(json.dumps(people))
    records = datasets.read_dataset("custom", tmp_path, "train")
    assert records.skeleton.name == "hand" and records.skeleton.num_joints == 5
    assert records.skeleton.flip_index == (0, 1, 2, 4, 3)
    assert records[0].normalizer == pytest.approx(np.hypot(15, 15))
    with pytest.raises(datasets.MissingSplit, match="valid"):
        datasets.read_dataset("custom", tmp_path, "valid")
    model = kh.build_hourglass(
        num_stacks=1, skeleton=records.skeleton, filters=16, depth=2, input_shape=(32, 32, 3)
    )
    model.save(tmp_path / "hand.keras")
    loaded = keras.saving.load_model(tmp_path / "hand.keras")
    assert loaded.skeleton == records.skeleton  # the custom table travels with the model
