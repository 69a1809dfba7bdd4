"""The three end-to-end commands (train, evaluate, export) on a tiny configuration."""

import json
import subprocess

import pandas as pd
import pytest
from conftest import PYTHON, ROOT


def _run(args, env, cwd):
    result = subprocess.run(
        [PYTHON, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


@pytest.mark.slow
def test_train_evaluate_export_end_to_end(tmp_path, python_env):
    _run(
        [
            str(ROOT / "train/train.py"),
            "--name",
            "tiny",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--stacks",
            "2",
            "--filters",
            "16",
            "--depth",
            "2",
            "--input-size",
            "32",
            "--epochs",
            "2",
            "--steps-per-epoch",
            "3",
            "--batch-size",
            "4",
            "--val-samples",
            "8",
            "--verbose",
            "0",
        ],
        python_env,
        tmp_path,
    )
    run = tmp_path / "runs" / "tiny"
    for name in (
        "best.keras",
        "last.keras",
        "log.csv",
        "config.json",
        "summary.json",
        "backup/latest",
    ):
        assert (run / name).is_file(), name
    log = pd.read_csv(run / "log.csv")
    # The monitor is the dataset's protocol whatever the stack count; every stack's loss is logged.
    assert len(log) == 2 and "val_pck" in log and {"heatmaps_0_loss", "heatmaps_1_loss"} <= set(log)
    assert json.loads((run / "config.json").read_text())["filters"] == 16
    # TensorBoard: scalars, and predicted skeletons and heatmaps as images.
    assert list((run / "tensorboard" / "train").glob("events.out.tfevents.*"))
    assert list((run / "tensorboard" / "images").glob("events.out.tfevents.*"))

    out = _run(
        [
            str(ROOT / "eval/evaluate.py"),
            "--model",
            str(run / "best.keras"),
            "--samples",
            "12",
            "--batch-size",
            "5",
        ],
        python_env,
        tmp_path,
    )
    # The demo's evaluation writes the tables every dataset gets (one PCK path).
    summary = pd.read_csv(run / "summary.csv")
    assert list(summary.columns) == [
        "group",
        "PCK@0.2",
        "PCK@0.1",
        "PCK@0.2 weighted",
        "PCK@0.1 weighted",
    ]
    assert summary.group.iloc[-1] == "Mean" and summary["PCK@0.2"].between(0, 100).all()
    per_joint = pd.read_csv(run / "per_joint.csv")
    assert len(per_joint) == 16 and per_joint["count"].sum() > 0
    predictions = pd.read_csv(run / "predictions.csv")
    assert len(predictions) == 12 * 16
    mean = summary.set_index("group").loc["Mean", "PCK@0.2"]
    assert f"{mean:.2f}%" in out and "Wrote summary.csv" in out

    _run(
        [
            str(ROOT / "train/export.py"),
            "--model",
            str(run / "best.keras"),
            "--out",
            str(tmp_path / "saved_models" / "hourglass"),
        ],
        python_env,
        tmp_path,
    )
    version = tmp_path / "saved_models" / "hourglass" / "1"
    assert (version / "saved_model.pb").is_file()
    assert (version / "assets" / "hourglass.json").is_file()
    assert (tmp_path / "saved_models" / "models.config").is_file()


@pytest.mark.slow
def test_redirected_output_has_no_progress_bar_escapes_and_quiet_has_no_bar(tmp_path, python_env):
    """`hourglass-train ... > log` and `hourglass-evaluate ... > log`: no ANSI escape code (a
    line per epoch instead of the live bar); with -q no progress line at all (issue #49 item
    7: Keras draws its bar with escapes on any POSIX system, a terminal or not)."""
    train = [
        str(ROOT / "train/train.py"), "--name", "q", "--runs-dir", str(tmp_path / "runs"),
        "--stacks", "1", "--filters", "16", "--depth", "2", "--input-size", "32",
        "--epochs", "1", "--steps-per-epoch", "3", "--batch-size", "4", "--val-samples", "8",
    ]  # fmt: skip
    logs = {}
    for quiet in (False, True):
        for name, argv in (
            ("train", train + ["--name", f"q{int(quiet)}"]),
            ("evaluate", [str(ROOT / "eval/evaluate.py"), "--model",
                          str(tmp_path / "runs/q0/best.keras"), "--samples", "8"]),
        ):  # fmt: skip
            done = subprocess.run(
                [PYTHON, *argv, *(["-q"] if quiet else [])],
                env=python_env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr[-2000:]
            logs[name, quiet] = done.stdout + done.stderr
    for (name, quiet), text in logs.items():
        assert "\x1b[" not in text, (name, quiet, text[-500:])
        assert "━" not in text, (name, quiet)  # no bar drawn
    assert "3/3" in logs["train", False]  # the epoch's one line when redirected
    assert "3/3" not in logs["train", True] and "8/8" not in logs["evaluate", True]
