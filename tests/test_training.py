"""train/train.py: configuration, resuming after SIGKILL, MirroredStrategy, bad input."""

import dataclasses
import json
import math
import os
import re
import signal
import socket
import subprocess
import time

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import PYTHON, ROOT, randomize_weights, run_command, script_on, tiny_train_flags

import keras_hourglass  # noqa: F401  (registers the model class for loading)

TINY = tiny_train_flags(stacks=2)
VAL_PCK_ATOL = 0.0


def _train(args, env, **kwargs):
    return run_command("train/train.py", args, env, **kwargs)


@pytest.mark.slow
def test_config_file_flags_and_help(tmp_path, python_env, capsys):
    (tmp_path / "run.yaml").write_text(
        "stacks: 3\nlearning_rate: 0.002\nbatch_size: 8\nexecutor: numpy\nworkers: 2\n"
        "max_image_pixels: 1000000\nremat: true\n"
    )
    result = _train(
        [
            "--config",
            str(tmp_path / "run.yaml"),
            "--batch-size",
            "4",
            "--name",
            "c",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--filters",
            "16",
            "--depth",
            "2",
            "--input-size",
            "32",
            "--epochs",
            "1",
            "--steps-per-epoch",
            "2",
            "--val-samples",
            "8",
            "--verbose",
            "0",
        ],
        python_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((tmp_path / "runs/c/config.json").read_text())
    assert config["stacks"] == 3 and config["learning_rate"] == 0.002  # from the file
    assert config["batch_size"] == 4  # the flag wins
    assert config["depth"] == 2 and config["epochs"] == 1
    assert config["dataset"] == "synthetic"
    # The input pipeline's settings come from the file too, and config.json records them; the
    # run trained with remat (recomputing its 3 stacks; tests/test_remat.py for the numbers).
    assert config["executor"] == "numpy" and config["workers"] == 2
    assert config["max_image_pixels"] == 1000000 and config["remat"] is True
    # The run can be repeated exactly from its resolved config: read back as train.py reads
    # --config, it is the same settings table, value for value.
    from keras_hourglass.training.loop import load_config_file, make_config

    (tmp_path / "again.json").write_text(json.dumps(dict(config, name="again")))
    again = make_config(load_config_file(str(tmp_path / "again.json")))
    assert dataclasses.asdict(again) == dict(config, name="again")
    command = _train_command()
    with pytest.raises(SystemExit) as stopped:
        command.main(["--help"])
    assert stopped.value.code == 0
    helptext = capsys.readouterr().out
    for flag in (
        "--dataset",
        "--data-dir",
        "--stacks",
        "--filters",
        "--batch-size",
        "--epochs",
        "--steps-per-epoch",
        "--learning-rate",
        "--input-size",
        "--sigma",
        "--mixed-precision",
        "--remat",
        "--seed",
        "--name",
        "--config",
        "--strategy",
    ):
        assert flag in helptext, flag
    assert "default: 8; synthetic: 2" in " ".join(helptext.split())


def _train_command():
    """train/train.py as a module, to call its main() in this process (a subprocess costs
    10 s of start-up)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_command", ROOT / "train/train.py")
    command = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(command)
    return command


@pytest.mark.parametrize(
    "args,message",
    [
        (["--dataset", "mpi"], "invalid choice: 'mpi'"),
        (["--dataset", "lspet"], "needs --data-dir"),
        (["--dataset", "lspet", "--data-dir", "/nonexistent"], "does not exist"),
        (["--input-size", "100"], "multiple of"),
        (["--num-processes", "2", "--process-id", "1"], "--coordinator must be host:port"),
        (
            ["--num-processes", "2", "--process-id", "2", "--coordinator", "127.0.0.1:1"],
            "--process-id must be in 0..1",
        ),
        (
            [
                "--num-processes",
                "3",
                "--process-id",
                "0",
                "--coordinator",
                "127.0.0.1:1",
                "--batch-size",
                "16",
            ],
            "batch_size 16 does not divide over 3 processes",
        ),
        (
            ["--num-processes", "2", "--process-id", "0", "--coordinator", "127.0.0.1:1"],
            "needs the JAX backend",
        ),
        # Bad numbers.
        (["--max-minutes", "-1"], "max_minutes"),
        (["--learning-rate", "nan"], "learning_rate"),
        (["--sigma", "inf"], "sigma"),
    ],
)
def test_bad_settings_stop_before_training(args, message, tmp_path, capsys):
    """train.py's own main() in this process (a subprocess per case cost 10 s of start-up)."""
    command = _train_command()
    with pytest.raises(SystemExit) as stopped:
        command.main(args + ["--runs-dir", str(tmp_path)])
    said = str(stopped.value.code) + capsys.readouterr().err
    assert stopped.value.code not in (0, None) and message in said, said[-2000:]
    assert not list(tmp_path.iterdir())  # stopped before any run folder was made


def test_unknown_config_key_and_empty_data_dir(tmp_path, python_env):
    (tmp_path / "bad.json").write_text(json.dumps({"stack": 4}))
    result = _train(["--config", str(tmp_path / "bad.json")], python_env)
    assert result.returncode != 0 and "unknown setting(s) ['stack']" in result.stderr
    (tmp_path / "empty").mkdir()
    result = _train(
        ["--dataset", "lspet", "--data-dir", str(tmp_path / "empty"), "--runs-dir", str(tmp_path)],
        python_env,
    )
    assert (
        result.returncode != 0
        and "joints.mat" in result.stderr
        and "does not exist" in result.stderr
    )


@pytest.mark.slow
def test_a_killed_run_resumes_where_it_stopped(tmp_path, python_env):
    common = TINY + [
        "--epochs",
        "3",
        "--steps-per-epoch",
        "10",
        "--backup-every",
        "2",
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    reference = _train(common + ["--name", "whole"], python_env)
    assert reference.returncode == 0, reference.stderr[-3000:]

    process = subprocess.Popen(
        [PYTHON, str(ROOT / "train/train.py"), *common, "--name", "killed"],
        env=python_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    latest = tmp_path / "runs/killed/backup/latest"
    deadline = time.time() + 300
    while time.time() < deadline:  # kill mid-way through the second epoch
        if latest.is_file() and latest.read_text().strip() >= "step-000000014":
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    step = int(latest.read_text().strip().split("-")[1])
    assert 14 <= step < 30, step

    resumed = _train(common + ["--name", "killed"], python_env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming" in resumed.stdout
    state = json.loads(
        (tmp_path / "runs/killed/backup" / latest.read_text().strip() / "state.json").read_text()
    )
    assert state["global_step"] == 30
    log = pd.read_csv(tmp_path / "runs/killed/log.csv")
    assert log.epoch.tolist() == [0, 1, 2]
    # Same batches, same optimizer state, same schedule: the same weights as the whole run.
    a = keras.saving.load_model(tmp_path / "runs/whole/last.keras", compile=False)
    b = keras.saving.load_model(tmp_path / "runs/killed/last.keras", compile=False)
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_allclose(np.asarray(wa), np.asarray(wb), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        pd.read_csv(tmp_path / "runs/whole/log.csv").learning_rate, log.learning_rate
    )
    # Resuming with another model shape is refused.
    other = _train(common + ["--name", "killed", "--filters", "32"], python_env)
    assert other.returncode != 0 and "other settings" in other.stderr


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path, python_env):
    result = _train(
        TINY
        + [
            "--epochs",
            "1",
            "--steps-per-epoch",
            "2",
            "--strategy",
            "mirrored",
            "--logical-cpus",
            "2",
            "--name",
            "m",
            "--runs-dir",
            str(tmp_path),
        ],
        python_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 replicas" in result.stdout
    odd = _train(
        TINY
        + [
            "--epochs",
            "1",
            "--steps-per-epoch",
            "2",
            "--strategy",
            "mirrored",
            "--logical-cpus",
            "2",
            "--batch-size",
            "5",
            "--name",
            "o",
            "--runs-dir",
            str(tmp_path),
        ],
        python_env,
    )
    assert odd.returncode != 0 and "does not divide over 2 replicas" in odd.stderr


@pytest.mark.slow
def test_loss_falls_and_pck_rises_on_real_lspet_images(shared_data):
    import keras_hourglass as kh
    from keras_hourglass import datasets as D
    from keras_hourglass.inputs.augmentation import Augmentation
    from keras_hourglass.inputs.tf_data import make_dataset
    from keras_hourglass.training.callbacks import PoseValidation

    keras.utils.set_random_seed(0)
    records = D.read_lsp(
        str(shared_data / "lspet/joints.mat"), str(shared_data / "lspet/images"), skip_bad=True
    ).subset(None, 16)
    codec = kh.HeatmapCodec(64, 16)
    gentle = Augmentation(
        scale_sigma=0.05, rotation_prob=0.0, flip_prob=0.0, colour_range=(0.9, 1.1)
    )
    train = make_dataset(records, kh.LSP, codec, 8, training=True, seed=0, augmentation=gentle)
    model = kh.build_hourglass(
        num_stacks=1, num_keypoints=14, filters=32, depth=4, input_shape=(64, 64, 3)
    )
    kh.compile_hourglass(model, learning_rate=2.5e-3)
    validation = PoseValidation(records, 16)
    logs = {}
    validation.set_model(model)
    validation.on_epoch_end(0, logs)
    before = logs["val_pck"]
    history = model.fit(train, epochs=4, steps_per_epoch=40, callbacks=[validation], verbose=0)
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]
    assert history.history["val_pck"][-1] > before + 15.0, (before, history.history["val_pck"])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_as_one_process_on_the_same_global_batch(tmp_path, python_env):
    """Two JAX processes on 127.0.0.1 (gloo all-reduce) through Keras' distribution API: both
    finish with identical weights, only process 0 writes, and the result matches one process
    trained on the same global batches."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = dict(python_env, KERAS_BACKEND="jax", TMPDIR=str(scratch))
    args = TINY + ["--runs-dir", str(tmp_path / "runs"), "--epochs", "2", "--steps-per-epoch", "1"]
    cluster = ["--coordinator", f"127.0.0.1:{_free_port()}", "--num-processes", "2"]
    procs = [
        subprocess.Popen(
            [
                PYTHON,
                str(ROOT / "train/train.py"),
                *args,
                "--name",
                "two",
                *cluster,
                "--process-id",
                str(i),
            ],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in (1, 0)
    ]
    try:
        outputs = [p.communicate(timeout=600)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    digests = [
        re.search(r"Weights SHA-256: (\w+) \(process (\d) of 2\)", out).groups() for out in outputs
    ]
    assert digests[0][0] == digests[1][0] and {d[1] for d in digests} == {"0", "1"}
    run = tmp_path / "runs/two"
    assert json.loads((run / "summary.json").read_text())["weights_sha256"] == digests[0][0]
    assert {"best.keras", "last.keras", "log.csv", "config.json", "backup"} <= set(os.listdir(run))
    assert list(scratch.iterdir()) == []  # process 1 wrote only to a scratch folder it removed

    single = _train(args + ["--name", "one"], dict(python_env, KERAS_BACKEND="jax"))
    assert single.returncode == 0, single.stderr[-3000:]
    two_log = pd.read_csv(run / "log.csv")
    one_log = pd.read_csv(tmp_path / "runs/one/log.csv")
    # Measured: training losses agree to 2e-7 (below); the validation PCK (every process scores
    # all validation people with its replica) is the same.
    np.testing.assert_allclose(two_log["loss"], one_log["loss"], rtol=1e-6)
    np.testing.assert_allclose(two_log["val_pck"], one_log["val_pck"], atol=VAL_PCK_ATOL)
    two = keras.saving.load_model(run / "last.keras")
    one = keras.saving.load_model(tmp_path / "runs/one/last.keras")
    assert int(two.optimizer.iterations) == int(one.optimizer.iterations) == 2
    # The reference RMSprop (TorchRMSprop) moves a weight by lr * g / (sqrt(v) + 1e-8): on its
    # first step 10 * lr * sign(g) (0.01 here) for any |g| >> 1e-7, and still about lr for the
    # rounding noise (1e-9 .. 1e-10) that stands for the exactly-zero gradient of a bias before
    # batch norm. The all-reduce and one batch round differently, so such weights move apart by
    # up to ~lr: measured 9.3e-4 (stem_conv/bias) after two steps, the rest far less. So the
    # weights are compared as a whole (relative L2) and bounded per weight by that noise.
    diffs = [
        np.asarray(a.value, np.float64) - np.asarray(b.value, np.float64)
        for a, b in zip(two.weights, one.weights)
    ]
    diff = max(float(np.abs(d).max()) for d in diffs)
    total = math.sqrt(
        sum(float(np.sum(np.square(np.asarray(b.value, np.float64)))) for b in one.weights)
    )
    relative = math.sqrt(sum(float(np.sum(np.square(d))) for d in diffs)) / total
    assert diff < 3e-3 and relative < 1e-3, (diff, relative)


@pytest.mark.slow
def test_max_minutes_ends_training_cleanly_with_the_best_checkpoint(tmp_path, python_env):
    runs = tmp_path / "runs"
    args = TINY + [
        "--epochs",
        "5",
        "--steps-per-epoch",
        "50",
        "--runs-dir",
        str(runs),
        "--name",
        "budget",
        "--max-minutes",
        "0.0001",
    ]
    result = _train(args, python_env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--max-minutes budget" in result.stdout
    # TensorFlow's start-up noise stays out of the terminal (keras_hourglass.quiet).
    assert "cuInit" not in result.stderr and "oneDNN custom operations" not in result.stderr
    summary = json.loads((runs / "budget/summary.json").read_text())
    # Stopped after the first batch: one (short) epoch, validated and checkpointed.
    assert summary["stopped_by_budget"] and summary["global_step"] == 1
    assert (runs / "budget/best.keras").is_file()
    assert pd.read_csv(runs / "budget/log.csv").epoch.tolist() == [0]


# The cosine schedule's rate reaches the optimizer on this backend: with total_steps=1 the rate
# is the base rate for the first batch and 0 after, so 3 batches move the weights exactly as 1.
COSINE = r"""
import sys
import keras, numpy as np
import keras_hourglass as kh
from keras_hourglass.training.callbacks import CosineSchedule

def fit(steps, schedule):
    keras.utils.set_random_seed(0)
    model = kh.build_hourglass(num_stacks=1, filters=8, depth=2, input_shape=(32, 32, 3),
                               skeleton=kh.LSP)
    model.compile(optimizer=kh.TorchRMSprop(1e-2))
    rng = np.random.default_rng(0)
    x = rng.random((4, 32, 32, 3), np.float32)
    y = rng.random((4, 8, 8, 14), np.float32)
    callbacks = [CosineSchedule(1e-2, total_steps=1)] if schedule else []
    model.fit(x, y, batch_size=1, epochs=1, steps_per_epoch=steps, verbose=0,
              callbacks=callbacks, shuffle=False)
    # trainable weights only: the batch norms' moving statistics follow every batch at any rate
    return [keras.ops.convert_to_numpy(v) for v in model.trainable_weights]

one, three, constant = fit(1, False), fit(3, True), fit(3, False)
same = all(np.allclose(a, b, atol=1e-7) for a, b in zip(one, three))
moved = not all(np.allclose(a, b, atol=1e-7) for a, b in zip(one, constant))
print(keras.backend.backend(), same, moved)
"""


@pytest.mark.parametrize("backend", ["tensorflow", pytest.param("jax", marks=pytest.mark.slow)])
def test_cosine_schedule_sets_the_rate_the_step_uses(backend, python_env):
    words = script_on(backend, COSINE, python_env, timeout=300)
    assert words[-3:] == [backend, "True", "True"], words


def test_cosine_schedule_follows_the_budget_clock():
    from keras_hourglass.training.callbacks import CosineSchedule

    start = time.time()
    schedule = CosineSchedule(1e-3, minutes=10, start=start - 300)  # half the budget spent
    assert math.isclose(schedule.rate(), 0.5e-3, rel_tol=1e-3)
    schedule = CosineSchedule(1e-3, minutes=10, start=start - 900)  # past the budget: 0
    assert schedule.rate() == 0.0
    schedule = CosineSchedule(1e-3, total_steps=100, initial_step=25)  # a resumed step schedule
    assert math.isclose(schedule.rate(), 1e-3 * 0.5 * (1 + math.cos(math.pi / 4)))
    with pytest.raises(ValueError, match="budget"):
        CosineSchedule(1e-3)


def test_tensorboard_images_reuse_the_validation_predictor(tmp_path):
    """The TensorBoard crops go through the predictor compiled for the validation's batch
    (padded with zeros), not a second compilation, and draw that predictor's keypoints."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("TensorBoard images are written on the TensorFlow backend")
    import tensorflow as tf

    import keras_hourglass as kh
    from keras_hourglass.deployment.inference import crop_predictor
    from keras_hourglass.training.callbacks import TensorBoardImages

    model = kh.build_hourglass(
        num_stacks=1, filters=16, depth=2, input_shape=(32, 32, 3), skeleton="lsp"
    )
    randomize_weights(model, np.random.default_rng(3))
    crops = np.random.default_rng(4).uniform(0, 1, (8, 32, 32, 3)).astype("float32")
    predictor = crop_predictor(model, flip_test=False)
    validation = predictor(crops)  # what validation compiles: batches of 8
    images = TensorBoardImages(str(tmp_path), crops, max_images=4, batch=8)
    images.set_model(model)
    images.on_epoch_end(0)
    assert predictor._run.experimental_get_tracing_count() == 1
    tags = [
        value.tag
        for path in tmp_path.iterdir()
        for record in tf.data.TFRecordDataset(str(path))
        for value in tf.compat.v1.Event.FromString(record.numpy()).summary.value
    ]
    assert sorted(tags) == ["heatmaps", "predictions"]
    # Padding does not change the first crops' keypoints.
    padded = predictor(np.concatenate([crops[:4], np.zeros_like(crops[:4])]))
    np.testing.assert_allclose(padded[0][:4], validation[0][:4], atol=1e-4)
