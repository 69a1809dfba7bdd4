"""The renovation's promises: a model that describes itself, one dataset table, training called
from the library."""

import json

import keras
import numpy as np
import pytest
from conftest import randomize_weights

import keras_hourglass as kh
from keras_hourglass import datasets
from keras_hourglass.datasets import DATASETS, get_dataset


def _model(skeleton="mpii", sigma=1.0, seed=0, **kwargs):
    model = kh.build_hourglass(
        num_stacks=1,
        filters=16,
        depth=2,
        input_shape=(64, 64, 3),
        skeleton=skeleton,
        sigma=sigma,
        **kwargs,
    )
    randomize_weights(model, np.random.default_rng(seed), scale=0.1)
    return model


# --- the model ---------------------------------------------------------------------------------


def test_skeleton_codec_and_crop_convention_travel_inside_the_keras_file(tmp_path):
    model = _model("lsp", sigma=1.5, person_box_px=180.0)
    assert model.num_keypoints == kh.LSP.num_joints == 14
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.skeleton == kh.LSP  # the whole table, equal field by field
    assert loaded.codec.get_config() == {
        "input_size": [64, 64],
        "heatmap_size": [16, 16],
        "sigma": 1.5,
        "shift": True,
        "offset": 0.0,
    }
    assert loaded.person_box_px == 180.0
    # A custom table (not one of the four) survives too: the model stores it, not its name.
    custom = kh.Skeleton(
        name="arms",
        joint_names=("left_wrist", "left_elbow", "right_elbow", "right_wrist"),
        flip_pairs=(("left_wrist", "right_wrist"), ("left_elbow", "right_elbow")),
        limbs=(("left_wrist", "left_elbow"), ("right_elbow", "right_wrist")),
        groups=(("Elbow", ("left_elbow", "right_elbow")), ("Wrist", ("left_wrist", "right_wrist"))),
        normalizer=("joints", ("left_elbow", "right_elbow")),
    )
    _model(custom).save(tmp_path / "c.keras")
    assert keras.saving.load_model(tmp_path / "c.keras").skeleton == custom


def test_a_model_saved_before_it_described_itself_still_loads(tmp_path):
    model = kh.build_hourglass(num_stacks=1, filters=16, depth=2, input_shape=(64, 64, 3))
    config = model.get_config()
    for key in ("skeleton", "sigma", "person_box_px"):  # what older files lack
        config.pop(key)
    old = kh.StackedHourglass.from_config(config)
    assert old.skeleton is None and old.num_keypoints == 16 and old.codec.sigma == 1.0
    with pytest.raises(ValueError, match="without its skeleton"):
        old.estimate_poses(np.zeros((40, 40, 3), np.uint8))
    from keras_hourglass.skeletons import model_skeleton

    with pytest.raises(ValueError, match="--skeleton"):
        model_skeleton(old)
    assert model_skeleton(old, "mpii") is kh.MPII


def test_skeleton_and_joint_count_must_agree():
    with pytest.raises(ValueError, match="disagrees with skeleton 'lsp'"):
        kh.build_hourglass(
            1, num_keypoints=16, filters=16, depth=2, input_shape=(64, 64, 3), skeleton="lsp"
        )
    with pytest.raises(ValueError, match="sigma"):
        kh.build_hourglass(1, filters=16, depth=2, input_shape=(64, 64, 3), sigma=0.0)
    from keras_hourglass.skeletons import model_skeleton

    with pytest.raises(ValueError, match="trained on the 'mpii' skeleton"):
        model_skeleton(_model("mpii"), "coco")


def test_estimate_poses_equals_the_serving_graph_on_real_images(shared_data):
    """One call from images and boxes to named keypoints (NumPy crops, any backend) gives what
    the SavedModel's `serving_boxes` and `serving_default` give (TensorFlow crops)."""
    import tensorflow as tf
    from PIL import Image

    from keras_hourglass.deployment.saved_model import PoseServer

    folder = shared_data / "mpii_samples"
    records = datasets.read_mpii_json(str(folder / "test_mpii.json"), str(folder))
    model = _model("mpii", seed=3)
    server = PoseServer(model)  # skeleton and codec: the model's own
    assert server.skeleton is kh.MPII or server.skeleton == kh.MPII
    images = [np.asarray(Image.open(r.image_path).convert("RGB")) for r in records]
    boxes = [(*r.center, r.scale) for r in records]

    poses = model.estimate_poses(images, boxes)
    assert len(poses) == len(records) and list(poses[0]) == list(kh.MPII.joint_names)
    whole = model.estimate_poses(images[0], whole_image=True)
    close = total = 0
    for i, (image, box) in enumerate(zip(images, boxes)):
        out = server.serving_boxes(tf.constant(image[None]), tf.constant([box], tf.float32))
        ours = np.array([[poses[i][j]["x"], poses[i][j]["y"]] for j in kh.MPII.joint_names])
        scores = np.array([poses[i][j]["confidence"] for j in kh.MPII.joint_names])
        np.testing.assert_allclose(scores, out["scores"].numpy()[0], atol=1e-4)  # 1.5e-8 seen
        # Both crops agree to ~0.004 mean absolute difference (tests/test_pydata.py); random
        # weights leave near-ties between heatmap pixels, so most joints, not all, match.
        distance = np.linalg.norm(ours - out["keypoints"].numpy()[0], axis=-1)
        close += int((distance < 0.5).sum())
        total += distance.size
    assert close / total >= 0.95, (close, total)  # 80 of 80 seen
    out = server.serving_default(tf.constant(images[0][None]))
    ours = np.array([[whole[0][j]["x"], whole[0][j]["y"]] for j in kh.MPII.joint_names])
    distance = np.linalg.norm(ours - out["keypoints"].numpy()[0], axis=-1)
    assert (distance < 0.5).mean() >= 0.8
    with pytest.raises(ValueError, match="2 boxes for 1 images"):
        model.estimate_poses([images[0]], boxes[:2])
    with pytest.raises(ValueError, match="positive scale"):
        model.estimate_poses(images[0], (10.0, 10.0, 0.0))


@pytest.mark.slow
def test_export_and_evaluate_need_nothing_but_the_keras_file(tmp_path, shared_data, python_env):
    """No --skeleton, no --sigma: the export's metadata holds the model's own."""
    from conftest import run_command

    model = _model("lsp", sigma=2.0)
    model.save(tmp_path / "lsp.keras")
    done = run_command(
        "train/export.py",
        ["--model", str(tmp_path / "lsp.keras"), "--out", str(tmp_path / "sm/hourglass")],
        python_env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    meta = json.loads((tmp_path / "sm/hourglass/1/assets/hourglass.json").read_text())
    assert kh.Skeleton.from_config(meta["skeleton"]) == kh.LSP
    assert meta["codec"]["sigma"] == 2.0 and meta["person_box_px"] == 200.0
    # evaluate.py refuses to score the LSP model on MPII people, naming both.
    image_dir = shared_data / "mpii_samples"
    result = run_command(
        "eval/evaluate.py",
        [
            "--model",
            str(tmp_path / "lsp.keras"),
            "--dataset",
            "mpii",
            "--data-dir",
            str(image_dir),
            "--annotations",
            str(image_dir / "test_mpii.json"),
            "--out",
            str(tmp_path / "out"),
        ],
        python_env,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "predicts the lsp joints" in result.stderr + result.stdout


# --- the dataset table -------------------------------------------------------------------------


def test_every_dataset_is_one_entry_with_what_the_commands_need():
    assert set(DATASETS) == {"synthetic", "mpii", "lsp", "lspet", "coco", "flic", "custom"}
    for name, entry in DATASETS.items():
        assert entry.name == name and entry.layout and entry.read and entry.annotation_readers
        # Custom data brings its own skeleton (the records carry it); every other entry has one.
        assert isinstance(entry.skeleton, kh.Skeleton) or name == "custom"
    assert get_dataset("lspet").skeleton is kh.LSP  # the lsp/lspet alias lives here only
    assert get_dataset("mpii").protocol == ("PCKh", 0.5)
    assert get_dataset("synthetic").protocol == ("PCK", 0.2)  # MPII joints, torso PCK
    assert [get_dataset(n).preds_base for n in ("mpii", "lsp", "flic", "coco")] == [1, 1, 1, 0]
    with pytest.raises(ValueError, match="known datasets"):
        get_dataset("h36m")
    # The synthetic figures are an ordinary entry: a data folder (made on first use), not a
    # special case; any other folder is refused, naming it.
    with pytest.raises(datasets.DatasetError, match="not a synthetic data folder"):
        datasets.read_dataset("synthetic", ".")


def test_prediction_files_are_scored_against_flic_annotations(tmp_path):
    """`--preds` with FLIC's examples.mat (which the old --preds path could not read)."""
    from test_datasets import write_flic

    from keras_hourglass.evaluation.protocols import evaluate, load_annotations

    write_flic(tmp_path)
    gt = load_annotations(str(tmp_path / "examples.mat"), "flic")
    assert gt.skeleton is kh.FLIC and gt.dataset == "flic" and gt.metric == ("PCK", 0.2)
    # The test split by default (FLIC's published numbers are on it).
    test = datasets.read_flic(
        str(tmp_path / "examples.mat"), str(tmp_path), split="test", check_images=False
    )
    assert len(gt.keypoints) == len(test)
    report = evaluate(gt.keypoints.copy(), gt)
    assert report.summary.set_index("group").loc["Mean", "PCK@0.2"] == 100.0


def test_coco_given_as_one_json_holds_people_out_for_validation(shared_data, tmp_path):
    from keras_hourglass.training.loop import load_data, make_config

    config = make_config(
        {
            "dataset": "coco",
            "data_dir": str(shared_data / "coco_samples"),
            "name": "c",
            "runs_dir": str(tmp_path),
            "skip_bad": True,
        }
    )
    data = load_data(config)
    train, val, skeleton = data.train, data.val, data.skeleton
    assert skeleton is kh.COCO and len(val) >= 1 and len(train) >= 1
    assert {id(r) for r in train}.isdisjoint({id(r) for r in val})
    assert [r.record_id for r in train + val] == [
        r.record_id
        for r in datasets.read_dataset("coco", str(shared_data / "coco_samples"), skip_bad=True)
    ]


# --- training in the library -------------------------------------------------------------------


def test_make_config_fills_the_demo_or_the_paper_and_names_bad_settings(tmp_path):
    from keras_hourglass.training.loop import DEMO, ConfigError, make_config

    demo = make_config({"name": "d"})
    assert (demo.stacks, demo.input_size, demo.learning_rate) == (
        DEMO["stacks"],
        DEMO["input_size"],
        DEMO["learning_rate"],
    )
    paper = make_config({"dataset": "lspet", "data_dir": str(tmp_path), "name": "p"})
    assert (paper.stacks, paper.filters, paper.input_size, paper.learning_rate) == (
        8,
        256,
        256,
        2.5e-4,
    )
    for values, message in (
        ({"stacks": 0}, "stacks must be a positive integer"),
        ({"batchsize": 3}, "unknown setting"),
        ({"dataset": "h36m"}, "unknown dataset"),
        ({"dataset": "mpii"}, "needs --data-dir"),
        ({"learning_rate": float("nan")}, "learning_rate must be a positive finite"),
        ({"name": "../x"}, "single folder name"),
    ):
        with pytest.raises(ConfigError, match=message):
            make_config(values)


@pytest.mark.slow
def test_train_runs_from_the_library_and_writes_a_self_describing_model(tmp_path):
    from keras_hourglass.training.loop import make_config, train

    config = make_config(
        {
            "name": "lib",
            "runs_dir": str(tmp_path),
            "stacks": 1,
            "filters": 16,
            "depth": 2,
            "input_size": 64,
            "batch_size": 4,
            "epochs": 1,
            "steps_per_epoch": 3,
            "train_samples": 16,
            "val_samples": 8,
            "sigma": 1.25,
        }
    )
    summary = train(config, verbose=0)
    assert summary["global_step"] == 3 and 0.0 <= summary["best"] <= 100.0
    model = keras.saving.load_model(summary["best_model"])
    assert model.skeleton == kh.MPII and model.sigma == 1.25
    saved = json.loads((tmp_path / "lib" / "config.json").read_text())
    assert saved["sigma"] == 1.25 and saved["stacks"] == 1
