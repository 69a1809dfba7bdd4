"""The model, codec decoding and inference run on JAX (the GPU path) with TensorFlow's outputs."""

import json
import subprocess

import numpy as np
import pytest
from conftest import PYTHON, randomize_weights

import keras_hourglass as kh

JAX_SCRIPT = r"""
import json, sys
import numpy as np
import keras
assert keras.backend.backend() == "jax", keras.backend.backend()
import keras_hourglass as kh
from keras_hourglass.network.pck_metric import HeatmapPCK
model = keras.saving.load_model(sys.argv[1], compile=False)
x = np.load(sys.argv[2])
outputs = model(x, training=False)
keypoints, scores, heatmaps = kh.keypoints_of_crops(model, x, model.codec, kh.MPII.flip_index)
fast_keypoints, fast_scores = kh.crop_predictor(model)(x)
np.savez(sys.argv[3], keypoints=np.asarray(keypoints), scores=np.asarray(scores),
         fast_keypoints=np.asarray(fast_keypoints), fast_scores=np.asarray(fast_scores),
         heatmaps=np.asarray(heatmaps),
         **{name: np.asarray(value) for name, value in outputs.items()})
print(json.dumps({"tensorflow_imported": "tensorflow" in sys.modules}))
"""


@pytest.mark.slow
def test_same_weights_give_the_same_outputs_on_tensorflow_and_jax(tmp_path, python_env):
    model = kh.build_hourglass(
        num_stacks=2, skeleton="mpii", filters=16, depth=2, input_shape=(32, 32, 3)
    )
    rng = np.random.default_rng(0)
    randomize_weights(model, rng)
    path = tmp_path / "model.keras"
    model.save(path)
    x = rng.uniform(0, 1, (3, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)

    env = dict(python_env, KERAS_BACKEND="jax")
    result = subprocess.run(
        [PYTHON, "-c", JAX_SCRIPT, str(path), str(tmp_path / "x.npy"), str(tmp_path / "jax.npz")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Nothing on the JAX path imports TensorFlow (the GPU machines have none).
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"tensorflow_imported": False}

    jax_out = np.load(tmp_path / "jax.npz")
    tf_out = model(x, training=False)
    for name, value in tf_out.items():
        np.testing.assert_allclose(jax_out[name], np.asarray(value), rtol=1e-4, atol=1e-4)
    keypoints, scores, heatmaps = kh.keypoints_of_crops(model, x, model.codec, kh.MPII.flip_index)
    np.testing.assert_allclose(jax_out["heatmaps"], np.asarray(heatmaps), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(jax_out["scores"], np.asarray(scores), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(jax_out["keypoints"], np.asarray(keypoints), atol=1e-3)
    # The compiled predictor (jax.jit / XLA tf.function, padded to a power-of-two batch) gives
    # the same answer.
    np.testing.assert_allclose(jax_out["fast_keypoints"], np.asarray(keypoints), atol=1e-3)
    np.testing.assert_allclose(jax_out["fast_scores"], np.asarray(scores), rtol=1e-4, atol=1e-4)
    tf_fast = kh.crop_predictor(model)(x)
    np.testing.assert_allclose(np.asarray(tf_fast[0]), np.asarray(keypoints), atol=1e-3)
    np.testing.assert_allclose(np.asarray(tf_fast[1]), np.asarray(scores), rtol=1e-4, atol=1e-4)
