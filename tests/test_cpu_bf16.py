"""`--onednn-bf16`: TensorFlow's oneDNN bfloat16 rewrite around the training loop (issue #24).

The rewrite must reach the training step (bfloat16 rounding moves the loss), must not reach
the crop predictor that validation and every command use (XLA-compiled float32: validation
numbers do not depend on the flag), and must leave TensorFlow's options as they were."""

import keras
import numpy as np
import pytest
from conftest import randomize_weights

from keras_hourglass.deployment.inference import crop_predictor
from keras_hourglass.deployment.runtimes import cpu_has_bf16
from keras_hourglass.skeletons import get_skeleton
from keras_hourglass.training import loop as training

tf = pytest.importorskip("tensorflow")
KEY = "auto_mixed_precision_onednn_bfloat16"


def _tiny(seed=0):
    config = training.make_config(
        {
            "stacks": 2,
            "filters": 32,
            "depth": 2,
            "input_size": 32,
            "batch_size": 4,
            "onednn_bf16": True,
        }
    )
    keras.utils.set_random_seed(seed)
    return config, training.build_model(config, get_skeleton("lsp"))


def test_rewrite_is_scoped_and_refused_off_tensorflow(monkeypatch):
    assert not tf.config.optimizer.get_experimental_options().get(KEY, False)
    with training.onednn_bfloat16(True):
        assert tf.config.optimizer.get_experimental_options()[KEY] is True
    assert not tf.config.optimizer.get_experimental_options().get(KEY, False)
    with pytest.raises(RuntimeError, match="inside"):
        with training.onednn_bfloat16(True):
            raise RuntimeError("inside")
    assert not tf.config.optimizer.get_experimental_options().get(KEY, False)
    with training.onednn_bfloat16(False):
        assert not tf.config.optimizer.get_experimental_options().get(KEY, False)

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(training.ConfigError, match="onednn_bf16"):
        training.make_config({"onednn_bf16": True})
    assert training.make_config({"onednn_bf16": False}).onednn_bf16 is False


@pytest.mark.slow
@pytest.mark.skipif(not cpu_has_bf16(), reason="the CPU has no native bfloat16 (AVX512-BF16/AMX)")
def test_rewrite_reaches_the_training_step_not_the_predictor():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (4, 32, 32, 3)).astype("float32")
    y = rng.uniform(0, 0.1, (4, 8, 8, 14)).astype("float32")
    crops = rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32")

    _, plain = _tiny()
    config, rewritten = _tiny()
    randomize_weights(plain, np.random.default_rng(1))  # the heads start at zero otherwise
    rewritten.set_weights(plain.get_weights())

    # Float32 first, the predictor made outside the rewrite.
    plain_loss = plain.train_on_batch(x, y)
    plain_out = crop_predictor(plain)(crops, return_heatmaps=True)
    with training.onednn_bfloat16(config.onednn_bf16):
        rewritten_loss = rewritten.train_on_batch(x, y)
        # made and first run inside, as the validation callback's is during fit
        rewritten_out = crop_predictor(rewritten)(crops, return_heatmaps=True)
        # the same forward pass as a plain (not XLA) graph made here: the rewrite reaches it
        graph_inside = tf.function(lambda t: rewritten(t, training=False)["heatmaps_1"])(crops)
    # The forward pass ran in bfloat16: the loss moved by rounding, and only by that. (The
    # weights barely show it after one step: RMSprop's first step is nearly lr x sign(g).)
    plain_loss, rewritten_loss = float(np.ravel(plain_loss)[0]), float(np.ravel(rewritten_loss)[0])
    assert 1e-6 < abs(rewritten_loss / plain_loss - 1) < 2e-2, (plain_loss, rewritten_loss)

    # The predictor of the rewritten model, compiled inside the scope, computes in float32:
    # the same model's weights through a float32 predictor made outside give the same numbers.
    _, reference = _tiny()
    reference.set_weights(rewritten.get_weights())
    reference_out = crop_predictor(reference)(crops, return_heatmaps=True)
    for got, want in zip(rewritten_out, reference_out):  # keypoints, scores, heatmaps
        np.testing.assert_allclose(got, want, atol=1e-5)
    graph_outside = tf.function(lambda t: reference(t, training=False)["heatmaps_1"])(crops)
    assert np.max(np.abs(graph_inside.numpy() - graph_outside.numpy())) > 1e-3
    assert plain_out[2].shape == rewritten_out[2].shape == (2, 8, 8, 14)
