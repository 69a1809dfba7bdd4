"""Published PyTorch checkpoints into Keras, without PyTorch: the reader, the converters, the
decoding conventions and the command, on fixtures that PyTorch wrote with each source's
parameter names and dict layouts (tests/fixtures/make_checkpoint_fixtures.py, which also
recorded PyTorch's outputs)."""

import json
import os
import pathlib
import subprocess
import zipfile

import keras
import numpy as np
import pytest
from conftest import PYTHON, ROOT, run_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keras_hourglass as kh
from keras_hourglass.checkpoints import CheckpointError, read_torch_checkpoint
from keras_hourglass.convert import (
    ConversionError,
    convert_checkpoint,
    convert_state_dict,
    state_dict_of,
)

FIXTURES = ROOT / "tests" / "fixtures"
CHECKPOINTS = {
    "psh_legacy.pt": "psh",  # legacy format, storages tagged cuda:0, model.module. prefix
    # the same typed as a GPU-trained file types them (torch.cuda.FloatStorage), as the published
    # PSH checkpoints are (tests/fixtures/cuda_typed.py)
    "psh_legacy_cuda.pt": "psh",
    "psh_zip.pt": "psh",  # zip format
    "bearpaw_legacy_py2.pth.tar": "bearpaw",  # legacy, Python 2 strings, PyTorch 0.2 tensors
    "bearpaw_plain.pth": "bearpaw",  # zip, a plain state dict without prefix
}
OUTPUTS = np.load(FIXTURES / "outputs.npz")
IMAGES = OUTPUTS["pixels"].astype("float32") / 255.0


def _relative(got, want):
    return float(np.abs(np.asarray(got) - want).max() / np.abs(want).max())


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_each_checkpoint_converts_to_pytorchs_outputs(name, tmp_path):
    model, report = convert_checkpoint(FIXTURES / name, input_size=64)
    source = CHECKPOINTS[name]
    assert report.source == source and report.stacks == 2 and report.depth == 4
    assert report.joints == 16 and model.skeleton == kh.MPII
    heatmaps = model(IMAGES, training=False)
    for s in range(2):
        assert _relative(heatmaps[f"heatmaps_{s}"], OUTPUTS[source][s]) < 1e-4, (name, s)
    # Every tensor accounted for: mapped or on the named ignore lists.
    state, _ = state_dict_of(read_torch_checkpoint(FIXTURES / name), name)
    assert report.mapped + sum(map(len, report.ignored.values())) == len(state)
    assert set(report.ignored) <= {
        "batch-norm step counters",
        "skip layers of same-width residuals, never applied",
    }
    # The .keras file rebuilds the source's network: stem, input mean, decoding offset.
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(
        np.asarray(loaded(IMAGES)["heatmaps_1"]), np.asarray(heatmaps["heatmaps_1"]), atol=1e-6
    )
    if source == "bearpaw":
        assert loaded.stem_widths == (4, 8, 16, 16) and loaded.codec.offset == 1.0
        assert loaded.input_mean == pytest.approx([0.4404, 0.4440, 0.4327])
    else:
        assert loaded.stem_widths == (8, 8, 8, 8) and loaded.codec.offset == 0.0
        assert loaded.input_mean is None


def test_gpu_typed_storages_are_read_as_the_cpu_bytes_they_are():
    cpu = read_torch_checkpoint(FIXTURES / "psh_legacy.pt")
    gpu = read_torch_checkpoint(FIXTURES / "psh_legacy_cuda.pt")
    assert b"torch.cuda\nFloatStorage" in (FIXTURES / "psh_legacy_cuda.pt").read_bytes()
    assert sorted(gpu["state_dict"]) == sorted(cpu["state_dict"])
    for key, value in cpu["state_dict"].items():
        np.testing.assert_array_equal(gpu["state_dict"][key], value)
        assert gpu["state_dict"][key].dtype == value.dtype


def test_the_formats_are_read_as_written():
    legacy = read_torch_checkpoint(FIXTURES / "psh_legacy.pt")
    zipped = read_torch_checkpoint(FIXTURES / "psh_zip.pt")
    assert sorted(legacy) == ["epoch", "optimizer", "state_dict"] and legacy["epoch"] == 3
    assert zipfile.is_zipfile(FIXTURES / "psh_zip.pt")
    for key, value in zipped["state_dict"].items():
        np.testing.assert_array_equal(legacy["state_dict"][key], value)
    # Optimizer state (Adam's moments) is read too, tensors and plain values.
    state = legacy["optimizer"]["state"]
    assert len(state) > 100 and all("exp_avg" in v for v in state.values())
    py2 = read_torch_checkpoint(FIXTURES / "bearpaw_legacy_py2.pth.tar")
    assert py2["arch"] == "hg2" and isinstance(py2["arch"], str) and py2["best_acc"] == 0.88
    assert all(isinstance(k, str) for k in py2["state_dict"])
    assert py2["state_dict"]["module.bn1.num_batches_tracked"].dtype == np.int64


def test_our_decoding_lands_where_each_sources_own_rule_puts_it():
    """The last stack's PyTorch heatmaps decoded by the converted model's codec and mapped back
    through the person box agree with each source's own decoder (written from its published
    code: tests/fixtures/make_checkpoint_fixtures.py), wherever the two rules for the
    quarter-pixel shift agree (an interior arg-max with unequal neighbours); bearpaw's needs the
    one-pixel offset, PSH's none."""
    cx, cy, scale = OUTPUTS["box"]
    for name, source in (("psh_zip.pt", "psh"), ("bearpaw_plain.pth", "bearpaw")):
        model, _ = convert_checkpoint(FIXTURES / name, input_size=64)
        heatmaps = OUTPUTS[source][-1]
        for codec, should_agree in ((model.codec, True), (model.codec.replace(offset=0.5), False)):
            keypoints, _ = codec.decode(heatmaps)
            ours = np.asarray(
                kh.crop_to_original(keypoints, np.array([[cx, cy]] * 2), np.array([scale] * 2), 64)
            )
            theirs = OUTPUTS[f"{source}_decoded"]
            checked = _rules_agree(heatmaps)
            assert checked.sum() >= 8, checked.sum()  # 12 of 32 in the fixtures
            close = np.all(np.abs(ours - theirs) < 1e-3, axis=-1)[checked]
            assert close.all() if should_agree else not close.any(), (name, codec)


def _rules_agree(heatmaps):
    """(B, K) joints whose arg-max is interior with unequal neighbours on both axes."""
    b, h, w, k = heatmaps.shape
    ok = np.zeros((b, k), bool)
    for i in range(b):
        for j in range(k):
            hm = heatmaps[i, ..., j]
            row, col = np.unravel_index(np.argmax(hm), hm.shape)
            if 0 < row < h - 1 and 0 < col < w - 1:
                ok[i, j] = (
                    hm[row, col + 1] != hm[row, col - 1] and hm[row + 1, col] != hm[row - 1, col]
                )
    return ok


def test_batch_norm_epsilon_must_be_the_sources():
    """A negative control: with Keras' default epsilon (1e-3) instead of PyTorch's 1e-5 the same
    weights give other heatmaps (the fixtures' variances are small enough to show it)."""
    model, _ = convert_checkpoint(FIXTURES / "psh_zip.pt", input_size=64)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            assert layer.epsilon == 1e-5 and layer.momentum == pytest.approx(0.9)
            layer.epsilon = 1e-3
    assert _relative(model(IMAGES)["heatmaps_1"], OUTPUTS["psh"][1]) > 1e-2


def test_wrong_or_damaged_weights_are_refused_naming_the_tensor():
    state, _ = state_dict_of(read_torch_checkpoint(FIXTURES / "bearpaw_plain.pth"), "b")
    psh, _ = state_dict_of(read_torch_checkpoint(FIXTURES / "psh_zip.pt"), "p")
    # A bearpaw file is not loaded into the paper's stem silently, nor the other way round.
    with pytest.raises(
        ConversionError, match="not a psh checkpoint: no tensor 'pre.0.conv.weight'"
    ):
        convert_state_dict(state, "psh", input_size=64)
    with pytest.raises(ConversionError, match="not a bearpaw checkpoint"):
        convert_state_dict(psh, "bearpaw", input_size=64)
    missing = {k: v for k, v in state.items() if k != "hg.1.hg.2.1.0.conv2.weight"}
    with pytest.raises(ConversionError, match="no tensor 'hg.1.hg.2.1.0.conv2.weight'"):
        convert_state_dict(missing, input_size=64)
    renamed = dict(missing, **{"hg.1.hg.2.1.0.conv2.weights": state["hg.1.hg.2.1.0.conv2.weight"]})
    with pytest.raises(ConversionError, match="no tensor 'hg.1.hg.2.1.0.conv2.weight'"):
        convert_state_dict(renamed, input_size=64)
    extra = dict(state, **{"hg.0.extra.weight": np.zeros(3, np.float32)})
    with pytest.raises(ConversionError, match="'hg.0.extra.weight' has no place"):
        convert_state_dict(extra, input_size=64)
    wrong = dict(state, **{"score.1.weight": np.zeros((16, 8, 1, 1), np.float32)})
    with pytest.raises(ConversionError, match=r"'score.1.weight' has shape \(16, 8, 1, 1\)"):
        convert_state_dict(wrong, input_size=64)
    nan = dict(state, **{"fc.0.1.running_var": np.full(16, np.nan, np.float32)})
    with pytest.raises(ConversionError, match="'fc.0.1.running_var' holds NaN"):
        convert_state_dict(nan, input_size=64)
    with pytest.raises(ConversionError, match="none of the known sources"):
        convert_state_dict({"encoder.weight": np.zeros(3)})


def _evil_pickle(marker):
    """A protocol-2 pickle that would call os.system('touch <marker>') when loaded."""
    command = f"touch {marker}".encode()
    return (
        b"\x80\x02cos\nsystem\nq\x00X"
        + len(command).to_bytes(4, "little")
        + command
        + b"q\x01\x85q\x02Rq\x03."
    )


def test_a_pickle_that_would_run_a_command_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    legacy = tmp_path / "evil.pt"
    legacy.write_bytes(_evil_pickle(marker))
    with pytest.raises(CheckpointError, match="os.system.*refused without running it"):
        read_torch_checkpoint(legacy)
    zipped = tmp_path / "evil_zip.pt"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("evil/data.pkl", _evil_pickle(marker))
        archive.writestr("evil/version", "3\n")
    with pytest.raises(CheckpointError, match="os.system.*refused"):
        read_torch_checkpoint(zipped)
    assert not marker.exists()


def test_cut_off_and_foreign_files_give_a_clear_error(tmp_path):
    for name in ("psh_legacy.pt", "bearpaw_plain.pth"):
        data = (FIXTURES / name).read_bytes()
        for fraction in (0.05, 0.5, 0.97):
            cut = tmp_path / f"cut-{fraction}-{name}"
            cut.write_bytes(data[: int(len(data) * fraction)])
            with pytest.raises(CheckpointError, match=str(cut.name)) as refused:
                read_torch_checkpoint(cut)
            assert "truncated" in str(refused.value), str(refused.value)
    (tmp_path / "image.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a checkpoint")
    with pytest.raises(CheckpointError, match="neither a zip archive nor a pickle"):
        read_torch_checkpoint(tmp_path / "image.jpg")
    with pytest.raises(CheckpointError, match="no such file"):
        read_torch_checkpoint(tmp_path / "absent.pt")


_LEGACY = (FIXTURES / "bearpaw_legacy_py2.pth.tar").read_bytes()
_ZIP = (FIXTURES / "psh_zip.pt").read_bytes()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    which=st.sampled_from(["legacy", "zip"]),
    edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.floats(0.0, 1.0)),
)
def test_the_reader_survives_mutated_files(which, edits, cut, tmp_path_factory):
    """Whatever bytes a damaged file holds, the reader returns or raises CheckpointError: never
    another exception, never a hang (bytes changed in the pickles, where they matter most, and
    anywhere; or the file cut)."""
    data = bytearray(_LEGACY if which == "legacy" else _ZIP)
    pickle_end = 60_000 if which == "legacy" else len(data)
    for where, value in edits:
        data[int(where * (pickle_end - 1))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    path = tmp_path_factory.mktemp("fuzz") / "mutated.pt"
    path.write_bytes(bytes(data))
    try:
        read_torch_checkpoint(path)
    except CheckpointError:
        pass


@pytest.mark.slow
def test_conversion_is_the_same_on_jax(tmp_path, python_env):
    script = (
        "import sys, json, numpy as np, keras\n"
        "assert keras.backend.backend() == 'jax'\n"
        "from keras_hourglass.convert import convert_checkpoint\n"
        "out = np.load(sys.argv[1]); images = out['pixels'].astype('float32') / 255\n"
        "errors = {}\n"
        "for name, source in json.loads(sys.argv[2]).items():\n"
        "    model, _ = convert_checkpoint(sys.argv[3] + '/' + name, input_size=64)\n"
        "    got = model(images, training=False)\n"
        "    errors[name] = max(float(np.abs(np.asarray(got[f'heatmaps_{s}']) - out[source][s]).max()"
        " / np.abs(out[source][s]).max()) for s in range(2))\n"
        "print(json.dumps({'errors': errors, 'tf': 'tensorflow' in sys.modules}))\n"
    )
    result = subprocess.run(
        [
            PYTHON,
            "-c",
            script,
            str(FIXTURES / "outputs.npz"),
            json.dumps(CHECKPOINTS),
            str(FIXTURES),
        ],
        env=dict(python_env, KERAS_BACKEND="jax"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["tf"] is False  # no TensorFlow on the JAX path
    assert all(error < 1e-4 for error in found["errors"].values()), found


@pytest.mark.slow
def test_the_command_writes_a_model_that_predicts_exports_and_serves(tmp_path, python_env):
    """train/convert.py on bearpaw's layout (its stem, input mean and decoding offset), then the
    .keras file alone: estimate_poses in memory and the exported SavedModel give the same
    keypoints, through the one inference path."""
    out = tmp_path / "bearpaw.keras"
    result = run_command(
        "train/convert.py",
        [str(FIXTURES / "bearpaw_legacy_py2.pth.tar"), "--out", str(out), "--input-size", "64"],
        python_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for expected in (
        "legacy (PyTorch <= 1.5)",
        "bearpaw/pytorch-pose",
        "2 stacks, 16 features, depth 4, 16 joints",
        "588 mapped",
        "ignored 96 (batch-norm step counters)",
        "decoding offset 1 heatmap px",
    ):
        assert expected in result.stdout, (expected, result.stdout)
    model = keras.saving.load_model(out)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)
    poses = model.estimate_poses(image, (34.5, 44.5, 0.3))
    from keras_hourglass.deployment.saved_model import export_for_serving

    saved = export_for_serving(model, str(tmp_path / "sm/hourglass"))
    import tensorflow as tf

    served = tf.saved_model.load(saved).signatures["serving_boxes"](
        images=tf.constant(image[None]), boxes=tf.constant([[34.5, 44.5, 0.3]], tf.float32)
    )
    ours = np.array([[p["x"], p["y"]] for p in poses[0].values()])
    np.testing.assert_allclose(served["keypoints"].numpy()[0], ours, atol=1e-3)
    meta = json.loads((pathlib.Path(saved) / "assets/hourglass.json").read_text())
    assert meta["codec"]["offset"] == 1.0 and meta["model_config"]["input_mean"]
    # Bad command lines: a missing file, a damaged one, a wrong forced source.
    for args, message in (
        ([str(tmp_path / "absent.pt"), "--out", str(out)], "no such file"),
        ([str(FIXTURES / "psh_zip.pt"), "--out", str(tmp_path / "x.h5")], "must end in .keras"),
        ([str(FIXTURES / "psh_zip.pt"), "--out", str(out), "--source", "bearpaw"], "not a bearpaw"),
    ):
        bad = run_command("train/convert.py", args, python_env)
        assert bad.returncode != 0 and message in bad.stderr, (args, bad.stderr[-500:])
        assert "Traceback" not in bad.stderr
    assert os.path.isfile(out)
