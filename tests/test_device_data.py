"""The device executor (`keras_hourglass.inputs.device_data`). Its cases run JAX in-process, and
JAX's threads make a later `fork` in the same process unsafe (the OpenVINO/NNCF and
multiprocessing tests fork), so they run in a pytest process of their own (tests/device_cases.py);
training with it runs train.py in a subprocess."""

import json
import re
import subprocess

import pytest
from conftest import PYTHON, ROOT, run_command


def test_the_device_executors_cases_in_a_process_of_their_own(python_env):
    result = subprocess.run(
        [
            PYTHON,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(ROOT / "tests/device_cases.py"),
        ],
        cwd=ROOT,
        env=python_env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"\b5 passed|skipped", result.stdout), result.stdout[-2000:]


@pytest.mark.slow
def test_train_on_jax_with_the_device_executor(shared_data, tmp_path, python_env):
    """train.py --executor device on the JAX backend: the bank is cut once, training and the
    numpy executor's validation run, and a second call resumes the run's backup."""
    args = [
        "--dataset", "lspet", "--data-dir", str(shared_data / "lspet"), "--skip-bad",
        "--val-count", "32", "--stacks", "1", "--filters", "16", "--input-size", "64",
        "--batch-size", "8", "--steps-per-epoch", "4", "--epochs", "2", "--executor", "device",
        "--mixed-precision", "float32", "--runs-dir", str(tmp_path),
    ]  # fmt: skip
    env = dict(python_env, KERAS_BACKEND="jax")
    result = run_command("train/train.py", [*args, "--name", "device"], env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    people = int(re.search(r"train: (\d+) people", result.stdout).group(1))  # less 32 held out
    assert f"{people:,}/{people:,} people cut" in result.stdout
    assert f"person bank: {people:,} people as 111 px cuts" in result.stdout
    summary = json.loads((tmp_path / "device" / "summary.json").read_text())
    assert summary["input_pipeline"] == "device" and summary["global_step"] == 8
    again = run_command("train/train.py", [*args, "--name", "device", "--epochs", "3"], env)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads((tmp_path / "device" / "summary.json").read_text())
    assert summary["global_step"] == 12  # resumed after epoch 2, not started over
    refused = run_command("train/train.py", [*args, "--name", "tf"], python_env)
    assert refused.returncode != 0 and "KERAS_BACKEND=jax" in refused.stderr
    last = refused.stderr.strip().splitlines()[-1]  # argparse's usage, then the one error line
    assert "Traceback" not in refused.stderr and "KERAS_BACKEND=jax" in last, refused.stderr
    assert not (tmp_path / "tf").exists()
