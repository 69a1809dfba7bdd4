"""Your own keypoints from every command: a skeleton that is none of the built-in ones (7 joints,
its own names), annotation files given with --annotations and the skeleton with --skeleton.

The people are the embedded stick figures, re-annotated with 7 of their joints under new names
(so the images are real renders with exact joints, and no download is needed).
"""

import importlib
import json
import pathlib

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, run_command, tiny_train_flags
from PIL import Image

import keras_hourglass as kh
from keras_hourglass.datasets import synthetic

# The custom joints and the MPII joints of the figures they are taken from.
JOINTS = {
    "crown": 9,
    "port_shoulder": 13,
    "port_elbow": 14,
    "port_hand": 15,
    "starboard_shoulder": 12,
    "starboard_elbow": 11,
    "starboard_hand": 10,
}
SKELETON = {
    "name": "arms",
    "joint_names": list(JOINTS),
    "flip_pairs": [[f"port_{j}", f"starboard_{j}"] for j in ("shoulder", "elbow", "hand")],
    "limbs": [["crown", "port_shoulder"], ["port_shoulder", "port_elbow"]],
    "groups": {"Crown": ["crown"], "Arms": [j for j in JOINTS if j != "crown"]},
    "normalizer": ["joints", ["port_shoulder", "starboard_shoulder"]],
}
SIZE = 32


def _write_people(folder, first, count, fmt):
    """`count` figures from index `first`, as a JSON list or a CSV of the custom joints."""
    (folder / "images").mkdir(exist_ok=True)
    people = []
    for index in range(first, first + count):
        annotation, image = synthetic.person(7, index, SIZE)
        Image.fromarray(image).save(folder / "images" / annotation["image"])
        rows = [annotation["keypoints"][i] for i in JOINTS.values()]
        people.append((f"images/{annotation['image']}", rows))
    if fmt == "json":
        path = folder / f"people{first}.json"
        path.write_text(json.dumps([{"image": i, "keypoints": k} for i, k in people]))
        return path
    path = folder / f"people{first}.csv"
    header = ["image"] + [f"{j}_{a}" for j in JOINTS for a in "xyv"]
    lines = [",".join(header)]
    for image, rows in people:
        lines.append(",".join([image] + [f"{v:g}" for row in rows for v in row]))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def arms(tmp_path_factory):
    """A folder of 40 training people (JSON), 8 test people (CSV), the skeleton kept apart."""
    root = tmp_path_factory.mktemp("arms")
    data = root / "data"
    data.mkdir()
    (root / "skeletons").mkdir()
    skeleton = root / "skeletons" / "arms.json"
    skeleton.write_text(json.dumps(SKELETON))
    return {
        "root": root,
        "skeleton": skeleton,
        "train": _write_people(data, 0, 40, "json"),
        "test": _write_people(data, 1000, 8, "csv"),
    }


def test_load_records_reads_annotations_with_a_skeleton_given_apart(arms):
    records = kh.datasets.load_records(
        "custom", annotations=str(arms["test"]), skeleton=str(arms["skeleton"])
    )
    assert len(records) == 8 and records.skeleton.joint_names == tuple(JOINTS)
    # The image paths are relative to the annotation file's folder (no --data-dir given).
    assert pathlib.Path(records[0].image_path).parent == arms["test"].parent / "images"
    # The CSV's joints are the figure's joints, by the custom names.
    annotation, _ = synthetic.person(7, 1000, SIZE)
    want = np.array([annotation["keypoints"][i][:2] for i in JOINTS.values()])
    np.testing.assert_allclose(records[0].keypoints, want, atol=1e-4)
    # Without --skeleton, and none beside the file: refused, saying what is missing.
    with pytest.raises(kh.datasets.DatasetError, match="needs its skeleton"):
        kh.datasets.load_records("custom", annotations=str(arms["test"]))
    # A built-in dataset's joints are fixed.
    with pytest.raises(kh.datasets.DatasetError, match="--skeleton is for custom data"):
        kh.datasets.load_records(
            "lspet", annotations=str(arms["test"]), skeleton=str(arms["skeleton"])
        )


@pytest.mark.parametrize(
    "change,message",
    [
        ({"flip_pairs": [["port_hand", "starboard_foot"]]}, "no joint 'starboard_foot'"),
        ({"joint_names": list(JOINTS)[:-1] + ["crown"]}, "duplicate"),
        ({"joint_names": list(JOINTS)[:-1]}, "people0.json, record 0"),  # 6 joints, 7 in the file
    ],
)
def test_train_py_refuses_a_bad_skeleton_before_training(arms, tmp_path, capsys, change, message):
    """train.py's main() in this process: the error names the file and what is wrong, and no
    run folder is made."""
    import importlib.util

    table = dict(SKELETON, **change)
    if "joint_names" in change:  # keep the other tables consistent with the names
        names = table["joint_names"]
        table["flip_pairs"] = [p for p in table["flip_pairs"] if set(p) <= set(names)]
        table["groups"] = {"All": sorted(set(names))}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(table))
    spec = importlib.util.spec_from_file_location("train_command", ROOT / "train/train.py")
    command = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(command)
    runs = tmp_path / "runs"
    with pytest.raises(SystemExit) as stopped:
        command.main(
            [
                *("--dataset", "custom", "--annotations", str(arms["train"])),
                *("--skeleton", str(bad), "--runs-dir", str(runs), "--epochs", "1"),
            ]
        )
    said = str(stopped.value.code) + capsys.readouterr().err
    assert stopped.value.code not in (0, None) and message in said, said[-2000:]
    assert "bad.json" in said or "people0.json" in said
    assert not runs.exists() or not list(runs.iterdir())


@pytest.mark.slow
def test_own_keypoints_through_train_evaluate_show_prepare_export_predict(
    arms, tmp_path, python_env
):
    names = list(JOINTS)
    people = ("--dataset", "custom", "--skeleton", str(arms["skeleton"]))
    # 1. train.py: the model learns the 7 custom joints and carries the skeleton.
    result = run_command(
        "train/train.py",
        [
            *people,
            *("--annotations", str(arms["train"]), "--val-count", "8"),
            *("--name", "arms", "--runs-dir", str(tmp_path / "runs")),
            *tiny_train_flags(),
            *("--epochs", "1", "--steps-per-epoch", "2"),
        ],
        python_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    model_path = tmp_path / "runs/arms/best.keras"
    model = keras.saving.load_model(model_path)
    assert model.skeleton.joint_names == tuple(names) and model.skeleton.name == "arms"
    assert model.outputs[-1].shape[-1] == 7
    config = json.loads((tmp_path / "runs/arms/config.json").read_text())
    assert config["annotations"] == str(arms["train"])
    assert config["skeleton"] == str(arms["skeleton"])

    # The other commands run in this process (their main(argv), what the scripts and console
    # commands call; a process each would cost TensorFlow's start-up every time).
    def command(name, argv):
        module = importlib.import_module(f"keras_hourglass.commands.{name}")
        try:
            return module.main(argv)
        except SystemExit as stopped:
            return stopped.code

    # 2. evaluate.py on the CSV: per-joint rows by the custom names, the skeleton's groups.
    out = tmp_path / "eval"
    command(
        "evaluate",
        [*people, "--model", str(model_path), "--annotations", str(arms["test"])]
        + ["--out", str(out)],
    )
    predictions = pd.read_csv(out / "predictions.csv")
    assert list(predictions["joint"][:7]) == names and len(predictions) == 8 * 7
    summary = pd.read_csv(out / "summary.csv").set_index("group")
    assert {"Crown", "Arms", "Mean"} <= set(summary.index) and "PCK@0.2" in summary.columns

    # 3. show_batch.py and prepare.py read the same people.
    command(
        "show_batch",
        [*people, "--annotations", str(arms["train"]), "--count", "4"]
        + ["--out", str(tmp_path / "batch.png")],
    )
    assert Image.open(tmp_path / "batch.png").size[0] > 0
    code = command(
        "show_batch",
        [*people, "--annotations", str(arms["train"]), "--max-image-pixels", "1000"]
        + ["--out", str(tmp_path / "batch2.png")],
    )
    assert "000000.png" in str(code) and not (tmp_path / "batch2.png").exists()
    command(
        "prepare",
        [*people, "--annotations", str(arms["test"]), "--crop-size", "32"]
        + ["--out", str(tmp_path / "cache")],
    )
    meta = json.loads((tmp_path / "cache/meta.json").read_text())
    assert meta["num_records"] == 8 and meta["num_joints"] == 7 and meta["skeleton"] == "arms"
    # The image size limit reaches prepare.py too (the 32x32 figures are 1,024 pixels).
    code = command(
        "prepare",
        [*people, "--annotations", str(arms["test"]), "--max-image-pixels", "1000"]
        + ["--out", str(tmp_path / "cache2")],
    )
    assert "001000.png" in str(code) and "1000" in str(code)

    # 4. export.py and predict.py name the joints from the model, with no further flag.
    command("export", ["--model", str(model_path), "--out", str(tmp_path / "served/arms")])
    assets = json.loads((tmp_path / "served/arms/1/assets/hourglass.json").read_text())
    assert assets["skeleton"]["joint_names"] == names
    image = arms["test"].parent / "images" / "001000.png"
    for source in (model_path, tmp_path / "served/arms/1"):
        poses = tmp_path / f"poses-{source.name}"
        argv = [str(image), "--model", str(source), "--out", str(poses), "--whole-image"]
        assert command("predict", argv) == 0  # the photo as the one person: a tiny model
        # trained for seconds finds no confident person, and nobody is no one (issue #48)
        written = json.loads((poses / "001000_pose.json").read_text())
        assert list(written["people"][0]["joints"]) == names


def test_prepare_caches_the_training_split_by_default(arms, tmp_path):
    """A folder with train (40 people) and test (8) splits: prepare.py without --split caches the
    training people, not the evaluation split."""
    import importlib.util
    import shutil

    folder = tmp_path / "folder"
    shutil.copytree(arms["train"].parent, folder)
    shutil.copy(arms["skeleton"], folder / "skeleton.json")
    (folder / "people0.json").rename(folder / "train.json")
    (folder / "people1000.csv").rename(folder / "test.csv")
    spec = importlib.util.spec_from_file_location("prepare_command", ROOT / "train/prepare.py")
    command = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(command)
    out = tmp_path / "cache"
    argv = ["--dataset", "custom", "--data-dir", str(folder), "--crop-size", "32"]
    command.main(argv + ["--out", str(out)])
    assert json.loads((out / "meta.json").read_text())["num_records"] == 40
    command.main(argv + ["--split", "test", "--out", str(tmp_path / "test-cache")])
    assert json.loads((tmp_path / "test-cache/meta.json").read_text())["num_records"] == 8


def test_paths_with_a_tilde_are_the_users_home(arms, monkeypatch):
    """`~` in paths that reach the library (config files, Python callers) is the home folder, as
    a shell would expand it: read_dataset, load_records, the skeleton file, make_config."""
    from keras_hourglass.training.loop import make_config

    monkeypatch.setenv("HOME", str(arms["root"]))
    records = kh.datasets.load_records(
        "custom", annotations="~/data/people1000.csv", skeleton="~/skeletons/arms.json"
    )
    assert len(records) == 8
    config = make_config(
        {"dataset": "custom", "annotations": "~/data/people0.json", "data_dir": "~/data"}
    )
    assert config.annotations == "~/data/people0.json"  # kept as given, expanded where used


def test_the_library_logs_instead_of_printing(arms, capsys):
    """From Python the library prints nothing of its own (its messages go to logging); the
    commands' configure_logging prints them to stdout, and quiet keeps warnings only."""
    import logging

    from keras_hourglass.cli import configure_logging
    from keras_hourglass.training.loop import load_data, make_config

    logger = logging.getLogger("keras_hourglass")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    config = make_config(
        {
            "dataset": "custom",
            "annotations": str(arms["train"]),
            "skeleton": str(arms["skeleton"]),
            "val_count": 4,
        }
    )
    try:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = False
        load_data(config)
        assert capsys.readouterr().out == ""
        configure_logging()
        load_data(config)
        assert "train: 36 people" in capsys.readouterr().out
        configure_logging(quiet=True)
        load_data(config)
        assert capsys.readouterr().out == ""
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved


@pytest.mark.slow
def test_training_from_a_crop_cache_of_exactly_its_people(arms, tmp_path, capsys):
    """train.py --cache DIR decodes the training people once into a crop cache and trains from
    it; a later run with the same people reuses it; other people (a different hold-out) or the
    numpy executor are refused before any run folder is made."""
    from keras_hourglass.commands import train as command

    cache, runs = tmp_path / "cache", tmp_path / "runs"
    flags = [
        *("--dataset", "custom", "--annotations", str(arms["train"])),
        *("--skeleton", str(arms["skeleton"]), "--cache", str(cache), "--runs-dir", str(runs)),
        *tiny_train_flags(),
        *("--epochs", "1", "--steps-per-epoch", "2"),
    ]
    command.main(flags + ["--name", "first", "--val-count", "4"])
    said = capsys.readouterr().out
    assert "Writing the training crops once into the cache" in said
    meta = json.loads((cache / "meta.json").read_text())
    held_out = kh.datasets.load_records(
        "custom", annotations=str(arms["train"]), skeleton=str(arms["skeleton"])
    )
    assert meta["record_ids"] == [str(r.record_id) for r in held_out[:-4]]  # not the 4 held out
    written = (cache / "meta.json").stat().st_mtime_ns
    summary = json.loads((runs / "first/summary.json").read_text())
    assert summary["global_step"] == 2
    # A later run with the same people reuses it (the check train() makes, without training).
    from keras_hourglass.cli import configure_logging
    from keras_hourglass.training.loop import _training_cache, load_data, make_config

    values = {
        "dataset": "custom",
        "annotations": str(arms["train"]),
        "skeleton": str(arms["skeleton"]),
        "cache": str(cache),
        "val_count": 4,
        "input_size": 32,
        "depth": 2,
    }
    configure_logging()
    config = make_config(values)
    assert _training_cache(config, load_data(config), "tf.data", True) == str(cache)
    assert "Training crops from the cache" in capsys.readouterr().out
    assert (cache / "meta.json").stat().st_mtime_ns == written
    for extra, message in [
        (["--val-count", "8"], "the cache holds other people"),
        (["--val-count", "4", "--executor", "numpy"], "--cache is read by the tf.data"),
    ]:
        with pytest.raises(SystemExit) as stopped:
            command.main(flags + ["--name", "third", *extra])
        said = str(stopped.value.code) + capsys.readouterr().err
        assert message in said, said[-2000:]
        assert not (runs / "third").exists()
