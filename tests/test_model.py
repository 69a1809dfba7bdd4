import keras
import numpy as np
import pytest
from conftest import randomize_weights

import keras_hourglass as kh

TINY = dict(num_stacks=2, num_keypoints=5, filters=16, depth=2, input_shape=(32, 32, 3))


def _randomize(model, seed=0):
    randomize_weights(model, np.random.default_rng(seed))


def test_default_parameter_count_matches_the_paper():
    model = kh.build_hourglass()
    count = model.count_params()
    # Paper: ~25.5M for 8 stacks, 256 features (RECIPE.md: 25.4-25.6M).
    assert 25.0e6 <= count <= 26.2e6, count
    assert count == 25_554_688


@pytest.mark.parametrize("stacks,expected_millions", [(1, 3.4), (2, 6.6)])
def test_smaller_stacks_match_the_reference_sizes(stacks, expected_millions):
    count = kh.build_hourglass(num_stacks=stacks).count_params()
    assert abs(count / 1e6 - expected_millions) < 0.06


def test_output_names_and_shapes():
    model = kh.build_hourglass(
        num_stacks=3, num_keypoints=16, filters=32, depth=4, input_shape=(64, 64, 3)
    )
    assert model.output_names == ["heatmaps_0", "heatmaps_1", "heatmaps_2"]
    out = model(np.zeros((2, 64, 64, 3), "float32"))
    assert sorted(out) == ["heatmaps_0", "heatmaps_1", "heatmaps_2"]
    for value in out.values():
        assert tuple(value.shape) == (2, 16, 16, 16)
    default = kh.build_hourglass()
    assert [tuple(o.shape) for o in default.outputs] == [(None, 64, 64, 16)] * 8


def test_architecture_has_the_papers_blocks():
    model = kh.build_hourglass(**TINY)
    names = [layer.name for layer in model.layers]
    stem = model.get_layer("stem_conv")
    assert stem.kernel_size == (7, 7) and stem.strides == (2, 2) and stem.filters == 64
    # Residual skips: 1x1 conv where channels change (64->128, 128->filters), identity else.
    assert "stem_res1_skip" in names and "stem_res2_skip" not in names
    assert model.get_layer("stem_res2_conv1").filters == 64  # bottleneck to half
    # Recursive hourglass: depth 2 means one inner level, nearest-neighbour upsampling.
    assert "hg0_inner_low2_add" in names and "hg0_inner_inner_up_add" not in names
    assert model.get_layer("hg0_upsample").interpolation == "nearest"
    # Merge between stacks but not after the last.
    assert "hg0_merge" in names and "hg1_merge" not in names


def test_config_round_trip_gives_equal_outputs():
    model = kh.build_hourglass(**TINY)
    _randomize(model)
    config = model.get_config()
    assert config["num_stacks"] == 2 and config["filters"] == 16 and config["depth"] == 2
    rebuilt = kh.StackedHourglass.from_config(config)
    assert rebuilt.get_config() == config
    rebuilt.set_weights(model.get_weights())
    x = np.random.default_rng(1).uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    a, b = model(x), rebuilt(x)
    for name in a:
        np.testing.assert_allclose(np.asarray(a[name]), np.asarray(b[name]), atol=1e-6)


def test_keras_file_round_trip(tmp_path):
    model = kh.build_hourglass(**TINY)
    _randomize(model, seed=3)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    assert isinstance(loaded, kh.StackedHourglass)
    assert loaded.get_config() == model.get_config()
    x = np.random.default_rng(2).uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    a, b = model(x), loaded(x)
    for name in a:
        np.testing.assert_allclose(np.asarray(a[name]), np.asarray(b[name]), atol=1e-6)
        assert np.abs(np.asarray(a[name])).max() > 1e-3  # outputs are not trivially zero


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_outputs_are_float32(policy):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = kh.build_hourglass(**TINY)
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.get_layer("hg0_res_conv1").compute_dtype == policy.split("_")[1]
    out = model(np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype("float32"))
    for value in out.values():
        assert keras.backend.standardize_dtype(value.dtype) == "float32"
    kh.compile_hourglass(model)
    y = {n: np.zeros((2, 8, 8, 5), "float32") for n in model.output_names}
    logs = model.train_on_batch(np.zeros((2, 32, 32, 3), "float32"), y, return_dict=True)
    assert np.isfinite(logs["loss"])


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(num_stacks=0), "num_stacks"),
        (dict(filters=15), "even"),
        (dict(input_shape=(100, 100, 3)), "multiples of"),
        (dict(depth=2.5), "depth"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kh.build_hourglass(**{**TINY, **kwargs})


def test_loss_is_applied_to_every_stack_output():
    model = kh.build_hourglass(**TINY)
    _randomize(model, seed=5)
    kh.compile_hourglass(model)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (3, 32, 32, 3)).astype("float32")
    y = {n: rng.uniform(0, 1, (3, 8, 8, 5)).astype("float32") for n in model.output_names}
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    predictions = model.predict(x, verbose=0)
    total = 0.0
    for name in model.output_names:
        expected = np.mean((predictions[name] - y[name]) ** 2)
        assert logs[f"{name}_loss"] == pytest.approx(expected, rel=1e-4)
        total += expected
    assert logs["loss"] == pytest.approx(total, rel=1e-4)
    # A target change on the first stack alone changes the first stack's loss and the total.
    y2 = dict(y, heatmaps_0=y["heatmaps_0"] + 1.0)
    logs2 = model.evaluate(x, y2, verbose=0, return_dict=True)
    assert logs2["heatmaps_0_loss"] > logs["heatmaps_0_loss"] + 0.5
    assert logs2["heatmaps_1_loss"] == pytest.approx(logs["heatmaps_1_loss"], rel=1e-5)
    assert logs2["loss"] > logs["loss"] + 0.5


def test_optimizer_is_the_papers_rmsprop():
    model = kh.compile_hourglass(kh.build_hourglass(**TINY))
    optimizer = model.optimizer
    assert isinstance(
        optimizer, kh.TorchRMSprop
    )  # epsilon outside the square root (test_optimizer)
    assert float(optimizer.learning_rate) == pytest.approx(2.5e-4)
    assert optimizer.rho == pytest.approx(0.99) and optimizer.epsilon == pytest.approx(1e-8)


def test_fit_and_evaluate_trace_their_step_once():
    """On TensorFlow without a strategy Keras creates the loss trackers and optimizer slots inside
    the first trace of the step, and TensorFlow then traces the step again (measured: 12 s of a
    35 s tiny fit). The model builds them first: one trace each, whatever the targets' form."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the double trace is TensorFlow's")
    model = kh.build_hourglass(**{**TINY, "num_stacks": 1})
    model.compile()
    traces = []
    train_step, test_step = model.train_step, model.test_step
    model.train_step = lambda data: traces.append("train") or train_step(data)
    model.test_step = lambda data: traces.append("test") or test_step(data)
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (8, 32, 32, 3)).astype("float32")
    y = rng.uniform(0, 1, (8, 8, 8, 5)).astype("float32")
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    result = model.evaluate(x, [y], batch_size=4, verbose=0, return_dict=True)  # per-stack list
    assert traces == ["train", "test"]
    assert len(history.history["loss"]) == 2 and np.isfinite(result["loss"])
    assert int(model.optimizer.iterations) == 4


def test_one_target_supervises_every_stack_and_fits(tmp_path):
    """The data gives one target; the model applies it to every stack (intermediate
    supervision) and still logs the loss of each stack."""
    model = kh.build_hourglass(**TINY)
    _randomize(model, seed=6)
    model.compile(run_eagerly=True)  # the paper's defaults live with the model (eager: fast)
    assert isinstance(model.optimizer, kh.TorchRMSprop)
    assert float(model.optimizer.learning_rate) == pytest.approx(2.5e-4)
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (4, 32, 32, 3)).astype("float32")
    y = rng.uniform(0, 1, (4, 8, 8, 5)).astype("float32")
    single = model.evaluate(x, y, verbose=0, return_dict=True)
    per_stack = model.evaluate(x, {n: y for n in model.output_names}, verbose=0, return_dict=True)
    predictions = model(x, training=False)
    for name in model.output_names:
        expected = np.mean((np.asarray(predictions[name]) - y) ** 2)
        assert single[f"{name}_loss"] == pytest.approx(expected, rel=1e-4)
        assert single[f"{name}_loss"] == pytest.approx(per_stack[f"{name}_loss"], rel=1e-6)
    assert single["loss"] == pytest.approx(per_stack["loss"], rel=1e-6)
    history = model.fit(x, y, epochs=2, batch_size=2, verbose=0)
    assert sorted(k for k in history.history if k.endswith("_loss")) == [
        "heatmaps_0_loss",
        "heatmaps_1_loss",
    ]
    # Saved and loaded, it is compiled the same way with the optimizer state (a resume).
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.optimizer, kh.TorchRMSprop) and loaded.run_eagerly
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 4
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert loaded.train_on_batch(x, y, return_dict=True)["loss"] == pytest.approx(
        model.train_on_batch(x, y, return_dict=True)["loss"], rel=1e-5
    )
