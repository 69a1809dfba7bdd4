"""Training, validation, resuming and evaluation in a process where `import tensorflow` fails (the
GPU machines, and Keras users on JAX or PyTorch without TensorFlow)."""

import json
import subprocess

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import PYTHON, ROOT, tiny_train_flags

import keras_hourglass  # noqa: F401  (registers the model class for loading)

# Runs a command script with TensorFlow made unimportable, as where it is not installed.
BLOCK = r"""
import runpy, sys
sys.modules["tensorflow"] = None
script, *args = sys.argv[1:]
sys.argv = [script, *args]
runpy.run_path(script, run_name="__main__")
"""

TINY = tiny_train_flags(stacks=2, verbose=2) + ["--workers", "2"]


def _run(script, args, env):
    result = subprocess.run(
        [PYTHON, "-c", BLOCK, str(ROOT / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


@pytest.fixture
def jax_env(python_env):
    return dict(python_env, KERAS_BACKEND="jax")


@pytest.mark.slow
def test_train_resume_and_evaluate_without_tensorflow(tmp_path, jax_env, shared_data):
    runs = tmp_path / "runs"
    common = TINY + ["--runs-dir", str(runs), "--steps-per-epoch", "3"]
    whole = _run("train/train.py", common + ["--epochs", "2", "--name", "whole"], jax_env)
    assert "TensorBoard logs are written on the TensorFlow backend only" in whole.stdout
    assert "input pipeline: numpy" in whole.stdout
    # A run that stopped after epoch 1 and is started again continues to the same weights.
    _run("train/train.py", common + ["--epochs", "1", "--name", "split"], jax_env)
    resumed = _run("train/train.py", common + ["--epochs", "2", "--name", "split"], jax_env)
    assert "Resuming" in resumed.stdout
    a = keras.saving.load_model(runs / "whole/last.keras", compile=False)
    b = keras.saving.load_model(runs / "split/last.keras", compile=False)
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_allclose(np.asarray(wa), np.asarray(wb), rtol=1e-4, atol=1e-5)
    log = pd.read_csv(runs / "split/log.csv")
    assert log.epoch.tolist() == [0, 1] and "val_pck" in log and "learning_rate" in log
    summary = json.loads((runs / "whole/summary.json").read_text())
    assert summary["input_pipeline"] == "numpy" and summary["global_step"] == 6

    # Real people: LSPET training with the per-epoch held-out PCK, no TensorFlow anywhere.
    lspet = _run(
        "train/train.py",
        [
            "--dataset",
            "lspet",
            "--data-dir",
            str(shared_data / "lspet"),
            "--skip-bad",
            "--val-count",
            "16",
            "--epochs",
            "1",
            "--name",
            "lspet",
        ]
        + common,
        jax_env,
    )
    log = pd.read_csv(runs / "lspet/log.csv")
    assert "val_pck" in log and np.isfinite(log.val_pck).all()
    # --val-count holds 16 people out; the tiny flags' --val-samples 8 validates on 8 of them.
    assert "validation: 8 people (the first 8 of 16)" in lspet.stdout
    # LSPET record 8074's joint lies far outside its image: skipped and listed, not fatal.
    assert "skipped 1 (coordinates far outside the image): 8074" in lspet.stdout

    # evaluate.py on the 5 real MPII images (the synthetic model predicts MPII's 16 joints).
    out = tmp_path / "eval"
    _run(
        "eval/evaluate.py",
        [
            "--model",
            str(runs / "whole/best.keras"),
            "--dataset",
            "mpii",
            "--annotations",
            str(shared_data / "mpii_annot/valid.h5"),
            "--data-dir",
            str(shared_data / "mpii_samples"),
            "--skip-bad",
            "--out",
            str(out),
        ],
        jax_env,
    )
    summary = pd.read_csv(out / "summary.csv")
    assert summary.group.tolist()[-1] == "Mean" and len(pd.read_csv(out / "predictions.csv")) == 80


def test_the_loader_reads_a_keras_file_without_tensorflow(jax_env):
    """The one loader on a .keras file (the shipped model's) where `import tensorflow` fails:
    what evaluate does on the GPU machines (it once imported the SavedModel exporter for a
    skeleton helper, and stopped there)."""
    code = (
        'import sys; sys.modules["tensorflow"] = None\n'
        "from keras_hourglass.deployment.loader import load_model\n"
        'loaded = load_model("lspet-hg2-128", runtime="keras")\n'
        "print(loaded.format, loaded.runtime, loaded.skeleton.name, loaded.predictor.num_joints)\n"
    )
    result = subprocess.run(
        [PYTHON, "-c", code], env=jax_env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-4:] == ["keras", "keras", "lsp", "14"], result.stdout
