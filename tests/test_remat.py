"""Rematerialisation by stacks (`model.remat`, `train.py --remat`): training computes the same
numbers as without it, keeps less for the backward pass, and the compiler does not undo it.
train.py's --remat is tested through the command in tests/test_training.py (config file)."""

import numpy as np
import pytest
from conftest import script_on

import keras_hourglass as kh

# An SGD step of a tiny 2-stack model from the same random weights, with and without remat:
# every weight and batch-norm statistic after it (SGD, not RMSprop: RMSprop turns rounding
# noise in a zero gradient into a full step).
SAME_NUMBERS = """
import numpy as np, keras, keras_hourglass as kh

def weights_after_steps(remat):
    keras.utils.set_random_seed(1)
    model = kh.build_hourglass(num_stacks=2, filters=16, depth=2, input_shape=(32, 32, 3),
                               num_keypoints=4)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.2, v.shape).astype("float32") if v.trainable
                       else np.abs(rng.normal(1, 0.1, v.shape)).astype("float32")
                       for v in model.weights])
    model.remat = remat
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    x = rng.uniform(0, 1, (4, 32, 32, 3)).astype("float32")
    y = rng.uniform(0, 1, (4, 8, 8, 4)).astype("float32")
    before = [v.numpy() for v in model.weights]
    model.train_on_batch(x, y)
    after = [v.numpy() for v in model.weights]
    moved = [float(np.max(np.abs(a - b))) for a, b, v in zip(after, before, model.weights)
             if "moving" in v.path or "kernel" in v.path]
    return after, (min(moved), float(np.median(moved))), model

plain, moved, _ = weights_after_steps(False)
remat, _, model = weights_after_steps(True)
diff = max(float(np.max(np.abs(a - b))) for a, b in zip(plain, remat))
segments = len(model._remat_plan)
print(keras.backend.backend(), segments, *moved, diff)
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_remat_trains_to_the_same_numbers(backend, python_env):
    name, segments, least_moved, median_moved, diff = script_on(backend, SAME_NUMBERS, python_env)[
        -5:
    ]
    assert name == backend
    assert int(segments) == 3  # the stem and two stacks, each recomputed on its own
    # Every kernel and moving statistic took part in the steps, most of them by far more than
    # the tolerance below.
    assert float(least_moved) > 0 and float(median_moved) > 1e-2, (least_moved, median_moved)
    # Kernels, biases, BN scales and moving statistics: the same step to float32 rounding
    # (4e-7 measured), batch norm's statistics updated once, not again in the backward pass.
    assert float(diff) < 1e-5, diff


@pytest.mark.slow
def test_remat_keeps_a_stack_instead_of_all_of_them(python_env):
    """What the training step keeps from its forward pass for the backward pass, per image:
    with remat only the segments' inputs and outputs (measured by JAX on the model's vjp)."""
    pytest.importorskip("jax")
    script = """
import jax, numpy as np, keras, keras_hourglass as kh
def kept_per_image(remat):
    model = kh.build_hourglass(num_stacks=4, filters=32, depth=3, input_shape=(64, 64, 3))
    model.remat = remat
    trainable = [v.value for v in model.trainable_variables]
    others = [v.value for v in model.non_trainable_variables]
    def loss(trainable, x):
        outputs, _ = model.stateless_call(trainable, others, x, training=True)
        return sum(keras.ops.sum(o) for o in outputs.values())
    def kept(x):
        return jax.tree.leaves(jax.vjp(loss, trainable, x)[1])
    sizes = [sum(int(np.prod(a.shape)) * a.dtype.itemsize
                 for a in jax.eval_shape(kept, jax.ShapeDtypeStruct((b, 64, 64, 3), "float32")))
             for b in (1, 3)]
    return (sizes[1] - sizes[0]) / 2
print(kept_per_image(False), kept_per_image(True))
"""
    plain, remat = (float(w) for w in script_on("jax", script, python_env)[-2:])
    # Without remat every layer's output of 4 stacks; with it the stem's and the stacks'
    # outputs only (the features between stacks, the heatmaps): far less than one stack.
    assert remat < plain / 8, (plain, remat)


@pytest.mark.slow
def test_the_compiled_step_keeps_the_recomputation(python_env):
    """XLA's CPU compiler merges `jax.checkpoint`'s recomputation back into the forward pass
    (no less memory than without it, measured); ours must survive compilation: more
    convolutions in the compiled step, and less memory planned for it."""
    pytest.importorskip("jax")
    script = """
import jax, numpy as np, keras, keras_hourglass as kh
# A narrow stem, so that the stacks (what remat recomputes one at a time) hold most activations.
def compiled(remat):
    model = kh.build_hourglass(num_stacks=4, filters=32, depth=3, input_shape=(64, 64, 3),
                               stem_widths=(16, 32, 32, 32))
    model.remat = remat
    model.compile()
    x, y = np.zeros((1, 64, 64, 3), "float32"), np.zeros((1, 16, 16, 16), "float32")
    model._symbolic_build(data_batch=(x, y, None))
    state = model._get_jax_state(trainable_variables=True, non_trainable_variables=True,
                                 optimizer_variables=True, metrics_variables=True,
                                 purge_model_variables=False)
    data = (jax.ShapeDtypeStruct((32, 64, 64, 3), "float32"),
            jax.ShapeDtypeStruct((32, 16, 16, 16), "float32"), None)
    step = jax.jit(model.train_step).lower(state, data).compile()
    return step.as_text().count("convolution("), step.memory_analysis().temp_size_in_bytes
(c0, m0), (c1, m1) = compiled(False), compiled(True)
print(c0, c1, m0, m1)
"""
    convs_plain, convs_remat, memory_plain, memory_remat = (
        int(w) for w in script_on("jax", script, python_env, timeout=900)[-4:]
    )
    assert convs_remat > convs_plain, (convs_plain, convs_remat)
    assert memory_remat < 0.6 * memory_plain, (memory_plain, memory_remat)


def test_remat_is_a_training_setting():
    model = kh.build_hourglass(num_stacks=2, filters=16, depth=2, input_shape=(32, 32, 3))
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.1, w.shape).astype("float32") for w in model.get_weights()])
    x = rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    plain = model.predict(x, verbose=0)
    model.remat = True
    # Inference runs the ordinary graph (nothing to keep for a backward pass) and gives the
    # same heatmaps; the setting is not part of the model's config or files.
    remat = model.predict(x, verbose=0)
    for name in plain:
        np.testing.assert_array_equal(plain[name], remat[name])
    assert "remat" not in model.get_config()
    with pytest.raises(ValueError, match="remat"):
        model.remat = "yes"
