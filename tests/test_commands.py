"""The three end-to-end commands (train, evaluate, export) on a tiny configuration."""

import json
import os
import subprocess

import numpy as np
import pandas as pd
import pytest

from conftest import PYTHON, ROOT, randomize_weights


def _run(args, env, cwd):
    result = subprocess.run([PYTHON, *args], env=env, cwd=cwd, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


@pytest.mark.slow
def test_train_evaluate_export_end_to_end(tmp_path, python_env):
    _run([str(ROOT / "train/train.py"), "--name", "tiny", "--runs-dir", str(tmp_path / "runs"),
          "--stacks", "2", "--filters", "16", "--depth", "2", "--input-size", "32",
          "--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "4", "--val-samples", "8",
          "--verbose", "0"], python_env, tmp_path)
    run = tmp_path / "runs" / "tiny"
    for name in ("best.keras", "last.keras", "log.csv", "config.json", "summary.json", "backup/latest"):
        assert (run / name).is_file(), name
    log = pd.read_csv(run / "log.csv")
    assert len(log) == 2 and "val_heatmaps_1_pck" in log and "heatmaps_0_loss" in log
    assert json.loads((run / "config.json").read_text())["filters"] == 16
    # TensorBoard: scalars, and predicted skeletons and heatmaps as images.
    assert list((run / "tensorboard" / "train").glob("events.out.tfevents.*"))
    assert list((run / "tensorboard" / "images").glob("events.out.tfevents.*"))

    out = _run([str(ROOT / "eval/evaluate.py"), "--model", str(run / "best.keras"),
                "--samples", "12", "--batch-size", "5"], python_env, tmp_path)
    table = pd.read_csv(run / "pck.csv")
    assert list(table.columns) == ["joint", "PCK@0.2", "count"]
    assert len(table) == 17 and table.joint.iloc[-1] == "Mean"
    assert table["PCK@0.2"].between(0, 100).all()
    assert "Wrote" in out

    _run([str(ROOT / "train/export.py"), "--model", str(run / "best.keras"),
          "--out", str(tmp_path / "saved_models" / "hourglass")], python_env, tmp_path)
    version = tmp_path / "saved_models" / "hourglass" / "1"
    assert (version / "saved_model.pb").is_file()
    assert (version / "assets" / "hourglass.json").is_file()
    # A second export takes the next version.
    _run([str(ROOT / "train/export.py"), "--model", str(run / "best.keras"),
          "--out", str(tmp_path / "saved_models" / "hourglass"), "--no-flip"], python_env, tmp_path)
    assert (tmp_path / "saved_models" / "hourglass" / "2" / "saved_model.pb").is_file()


@pytest.mark.slow
def test_saved_model_matches_the_in_memory_model(tmp_path):
    import tensorflow as tf

    import keras_hourglass as kh
    from keras_hourglass.export import export_for_serving

    model = kh.build_hourglass(num_stacks=1, num_keypoints=16, filters=16, depth=2,
                               input_shape=(32, 32, 3))
    rng = np.random.default_rng(0)
    randomize_weights(model, rng)
    path = export_for_serving(model, str(tmp_path / "hg"), kh.MPII)
    loaded = tf.saved_model.load(path)
    serve = loaded.signatures["serving_default"]
    assert set(serve.structured_outputs) == {"keypoints", "scores", "heatmaps"}

    # A non-square image: the whole image is the person box (side = max(H, W)).
    image = rng.integers(0, 256, (1, 40, 64, 3)).astype(np.uint8)
    got = {k: v.numpy() for k, v in serve(images=tf.constant(image)).items()}
    assert got["keypoints"].shape == (1, 16, 2) and got["heatmaps"].shape == (1, 8, 8, 16)

    # The same path by hand: pad to the 64x64 box, resize 2x down, predict, map back.
    codec = kh.HeatmapCodec(32, 8)
    padded = np.zeros((1, 64, 64, 3), np.float32)
    padded[:, 12:52] = image / 255.0
    crop = tf.image.resize(padded, (32, 32), method="bilinear", antialias=False).numpy()
    keypoints, scores, heatmaps = kh.predict_keypoints(model, crop, codec, kh.MPII.flip_index)
    np.testing.assert_allclose(got["heatmaps"], np.asarray(heatmaps), atol=1e-4)
    np.testing.assert_allclose(got["scores"], np.asarray(scores), atol=1e-4)
    expected = kh.crop_to_original(keypoints, np.array([[31.5, 19.5]]), np.array([64 / 200]), 32)
    np.testing.assert_allclose(got["keypoints"], np.asarray(expected), atol=1e-3)
    # The crop's centre pixel (15.5, 15.5) maps to the image's centre.
    centre = kh.crop_to_original(np.full((1, 1, 2), 15.5), np.array([[31.5, 19.5]]),
                                 np.array([64 / 200]), 32)
    np.testing.assert_allclose(np.asarray(centre)[0, 0], [31.5, 19.5], atol=1e-5)
