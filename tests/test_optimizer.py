"""TorchRMSprop: the reference code's RMSprop (epsilon outside the square root), checked against a
float64 NumPy version of Torch7's `optim.rmsprop` on every backend we run on."""

import json
import subprocess

import keras
import numpy as np
import pytest
from conftest import PYTHON

import keras_hourglass as kh

LR, RHO, EPS = 2.5e-4, 0.99, 1e-8


def torch7_rmsprop(w0, gradients, lr=LR, rho=RHO, eps=EPS):
    """Torch7 optim.rmsprop in float64: m = 0; m = rho m + (1 - rho) g^2; w -= lr g / (sqrt(m) + eps)."""
    w = np.asarray(w0, np.float64).copy()
    m = np.zeros_like(w)
    for g in gradients:
        g = np.asarray(g, np.float64)
        m = rho * m + (1.0 - rho) * g * g
        w = w - lr * g / (np.sqrt(m) + eps)
    return w


def gradient_sequence(steps=6, seed=0):
    """Gradients whose sizes span 1e-8 to 1 (heatmap-MSE gradients are mostly 1e-7 to 1e-5), with
    random signs that change between steps, and zeros."""
    rng = np.random.default_rng(seed)
    sizes = 10.0 ** np.linspace(-8, 0, 41)
    out = []
    for _ in range(steps):
        g = sizes * rng.uniform(0.5, 2.0, sizes.shape) * rng.choice([-1.0, 1.0], sizes.shape)
        g[::10] = 0.0  # a zero gradient must not move a weight (0 / eps)
        out.append(g.astype("float32"))
    return out


def run_keras(optimizer, gradients, w0):
    variable = keras.Variable(np.asarray(w0, "float32"))
    for g in gradients:
        optimizer.apply([keras.ops.convert_to_tensor(g)], [variable])
    return np.asarray(variable, np.float64)


def close_to_reference(result, w0, gradients):
    """Compares the weights' movement (w - w0) with the float64 reference, per weight."""
    expected = torch7_rmsprop(w0, gradients) - w0
    moved = result - w0
    return np.allclose(moved, expected, rtol=2e-5, atol=1e-12), moved, expected


def test_matches_torch7_rmsprop_in_float64_and_keras_rmsprop_does_not():
    gradients = gradient_sequence()
    w0 = np.zeros(gradients[0].shape)  # zero start: float32 holds the movement to 1e-7
    ours = run_keras(kh.TorchRMSprop(learning_rate=LR, rho=RHO, epsilon=EPS), gradients, w0)
    ok, moved, expected = close_to_reference(ours, w0, gradients)
    assert ok, np.max(np.abs(moved - expected) / np.maximum(np.abs(expected), 1e-12))
    # The reference's first step is lr * g / (0.1 |g| + eps): about 10 lr for |g| >> 1e-7 even at
    # g = 1e-6, and the zero gradients stayed put.
    assert abs(moved[::10]).max() == 0.0
    assert abs(torch7_rmsprop(w0, gradients[:1])[21]) > 9 * LR  # |g| ~ 1e-4
    # The same comparison tells Keras' RMSprop (epsilon inside the square root) apart: its steps
    # on gradients below 1e-4 are a small fraction of the reference's.
    theirs = run_keras(
        keras.optimizers.RMSprop(learning_rate=LR, rho=RHO, epsilon=EPS), gradients, w0
    )
    ok, moved, expected = close_to_reference(theirs, w0, gradients)
    assert not ok
    small = (np.abs(gradients[0]) > 0) & (np.abs(gradients[0]) < 1e-6)
    assert np.median(np.abs(moved[small]) / np.abs(expected[small])) < 0.05


def test_compile_hourglass_uses_it_and_it_survives_a_keras_file(tmp_path):
    model = kh.build_hourglass(
        num_stacks=1, num_keypoints=4, filters=16, depth=2, input_shape=(32, 32, 3)
    )
    kh.compile_hourglass(model, learning_rate=1e-3)
    assert isinstance(model.optimizer, kh.TorchRMSprop)
    assert not isinstance(model.optimizer, keras.optimizers.RMSprop)
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (4, 32, 32, 3)).astype("float32")
    y = {"heatmaps_0": rng.uniform(0, 1, (4, 8, 8, 4)).astype("float32")}
    model.train_on_batch(x, y)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.optimizer, kh.TorchRMSprop)
    assert loaded.optimizer.get_config()["epsilon"] == EPS
    assert loaded.optimizer.get_config()["rho"] == RHO
    assert float(loaded.optimizer.learning_rate) == pytest.approx(1e-3)
    assert int(loaded.optimizer.iterations) == 1
    # The squared-gradient averages travel too: the next step is the same for both.
    model.train_on_batch(x, y)
    loaded.train_on_batch(x, y)
    for a, b in zip(model.trainable_weights, loaded.trainable_weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mixed_precision_gradients_and_loss_scaling(dtype):
    """Under mixed precision the variables are float32 and gradients may arrive in a low
    precision, and mixed_float16 wraps the optimizer in a LossScaleOptimizer: both give the
    reference's update of the (rounded) gradients."""
    scale = 2.0**4  # scaled gradients stay inside float16's range (65504)
    gradients = [g * 1e3 for g in gradient_sequence(steps=4, seed=2)]
    scaled = [keras.ops.cast(keras.ops.convert_to_tensor(g * scale), dtype) for g in gradients]
    w0 = np.zeros(gradients[0].shape)
    variable = keras.Variable(np.zeros(gradients[0].shape, "float32"))
    optimizer = keras.optimizers.LossScaleOptimizer(
        kh.TorchRMSprop(LR, RHO, EPS), initial_scale=scale
    )
    for g in scaled:
        optimizer.apply([g], [variable])
    rounded = [np.asarray(keras.ops.cast(g, "float32"), np.float64) / scale for g in scaled]
    expected = torch7_rmsprop(w0, rounded) - w0
    assert np.abs(expected).max() > 1e-3
    np.testing.assert_allclose(np.asarray(variable, np.float64), expected, rtol=1e-4, atol=1e-12)
    # A model under the policy trains with it (compile wraps it for mixed_float16).
    keras.mixed_precision.set_dtype_policy(f"mixed_{dtype}")
    try:
        model = kh.build_hourglass(
            num_stacks=1, num_keypoints=4, filters=16, depth=2, input_shape=(32, 32, 3)
        )
        kh.compile_hourglass(model, learning_rate=1e-3)
        before = [np.asarray(w) for w in model.trainable_weights]
        rng = np.random.default_rng(3)
        x = rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32")
        loss = model.train_on_batch(x, {"heatmaps_0": rng.uniform(0, 1, (2, 8, 8, 4))})
        assert np.isfinite(loss).all()
        moved = [np.abs(np.asarray(w) - b).max() for w, b in zip(model.trainable_weights, before)]
        assert max(moved) > 1e-4 and all(np.isfinite(m) for m in moved)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


JAX_SCRIPT = r"""
import json, sys
import numpy as np
import keras
assert keras.backend.backend() == "jax"
import keras_hourglass as kh
gradients = np.load(sys.argv[1])
variable = keras.Variable(np.zeros(gradients.shape[1:], "float32"))
optimizer = kh.TorchRMSprop(2.5e-4, 0.99, 1e-8)
for g in gradients:
    optimizer.apply([keras.ops.convert_to_tensor(g)], [variable])
np.save(sys.argv[2], np.asarray(variable))
print(json.dumps({"tensorflow_imported": "tensorflow" in sys.modules}))
"""


def test_same_update_on_the_jax_backend(tmp_path, python_env):
    gradients = np.stack(gradient_sequence(seed=4))
    np.save(tmp_path / "g.npy", gradients)
    result = subprocess.run(
        [PYTHON, "-c", JAX_SCRIPT, str(tmp_path / "g.npy"), str(tmp_path / "w.npy")],
        env=dict(python_env, KERAS_BACKEND="jax"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"tensorflow_imported": False}
    w0 = np.zeros(gradients.shape[1:])
    ok, moved, expected = close_to_reference(
        np.load(tmp_path / "w.npy").astype(np.float64), w0, list(gradients)
    )
    assert ok, np.max(np.abs(moved - expected))


@pytest.mark.parametrize(
    "bad", [dict(rho=1.0), dict(rho=-0.1), dict(epsilon=-1.0), dict(epsilon=float("nan"))]
)
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError, match="TorchRMSprop"):
        kh.TorchRMSprop(**bad)
