"""The OpenVINO runtime (keras_hourglass.deployment.runtimes): the converted crop path computes what Keras
computes (float32 to 1e-4; bfloat16 within its rounding), exported files carry their description
and load without TensorFlow, the commands choose it by default and say so, and bad choices are
refused with the flag or variable named."""

import json
import logging
import os
import subprocess

import keras
import numpy as np
import pytest
from conftest import PYTHON, randomize_weights, run_command

import keras_hourglass as kh
from keras_hourglass import geometry
from keras_hourglass.deployment import export, runtimes
from keras_hourglass.deployment.inference import crop_predictor

pytestmark = pytest.mark.skipif(
    not runtimes.openvino_installed(), reason="OpenVINO is not installed"
)


def _tiny(seed=0, stacks=1, size=64):
    keras.utils.set_random_seed(seed)
    model = kh.build_hourglass(
        num_stacks=stacks, filters=16, depth=3, input_shape=(size, size, 3), skeleton=kh.MPII
    )
    randomize_weights(model, np.random.default_rng(seed))
    return model


def _real_crops(shared_data, size):
    """Crops of the MPII sample images' people (real photographs), as the pipeline makes them."""
    from PIL import Image

    folder = shared_data / "mpii_samples"
    crops = []
    for path in sorted(folder.glob("*.jpg"))[:4]:
        image = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0
        h, w = image.shape[:2]
        center, scale = geometry.whole_image_box(float(h), float(w))
        crops.append(geometry.crop_person(image, center, scale, size))
    return np.stack(crops)


@pytest.fixture(scope="module")
def model():
    return _tiny()


def test_openvino_fp32_equals_keras_on_real_crops(model, shared_data):
    crops = _real_crops(shared_data, 64)
    for flip in (True, False):
        ref = crop_predictor(model, flip)(crops, return_heatmaps=True)
        ov = runtimes.predictor(model, flip, "openvino", "fp32")(crops, return_heatmaps=True)
        scale = np.abs(ref[2]).max()
        np.testing.assert_allclose(ov[2], ref[2], atol=1e-4 * scale)
        np.testing.assert_allclose(ov[1], ref[1], atol=1e-4 * scale)
        np.testing.assert_allclose(ov[0], ref[0], atol=1e-3)


def test_openvino_bf16_within_bfloat16_rounding(model, shared_data):
    if not runtimes.cpu_has_bf16():
        pytest.skip("this CPU has no native bfloat16")
    crops = _real_crops(shared_data, 64)
    ref = crop_predictor(model, True)(crops, return_heatmaps=True)
    ov = runtimes.predictor(model, True, "openvino", "bf16")(crops, return_heatmaps=True)
    scale = np.abs(ref[2]).max()
    error = np.abs(ov[2] - ref[2]).max() / scale
    # bfloat16 keeps 8 bits of mantissa (2^-8 = 0.4% per rounding); through 3 residual levels
    # the errors add up to about 1-2%, never the size of the signal.
    assert 1e-5 < error < 5e-2, error


def test_the_converted_predictor_follows_the_weights(model, shared_data):
    crops = _real_crops(shared_data, 64)[:2]
    first = runtimes.predictor(model, True, "openvino", "fp32")
    assert runtimes.predictor(model, True, "openvino", "fp32") is first  # converted once
    other = _tiny(seed=1)
    saved = model.get_weights()
    try:
        model.set_weights(other.get_weights())
        again = runtimes.predictor(model, True, "openvino", "fp32")
        assert again is not first
        np.testing.assert_allclose(
            again(crops, return_heatmaps=True)[2],
            crop_predictor(other, True)(crops, return_heatmaps=True)[2],
            atol=1e-4,
        )
    finally:
        model.set_weights(saved)


@pytest.mark.slow
def test_a_conversion_is_kept_on_disk_for_the_next_process(shared_data, tmp_path, monkeypatch):
    """The first predictor of a model converts it and writes the conversion into the cache
    folder; a later process (here: the in-memory cache forgotten, the converter made to fail)
    reads it back and predicts the same; other weights are another key; `off` keeps nothing."""
    monkeypatch.setenv("KERAS_HOURGLASS_CACHE", str(tmp_path / "cache"))
    model = _tiny(seed=3)
    crops = _real_crops(shared_data, 64)[:2]
    first = runtimes.predictor(model, True, "openvino", "fp32")(crops)
    kept = sorted((tmp_path / "cache/openvino").glob("*.xml"))
    assert len(kept) == 1 and kept[0].with_suffix(".bin").is_file()
    assert kept[0].stem == runtimes.conversion_key(model, True, model.codec)
    runtimes._CONVERTED.clear()

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(runtimes, "openvino_model", no_conversion)
    again = runtimes.predictor(model, True, "openvino", "fp32")(crops)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    other = _tiny(seed=4)
    assert runtimes.conversion_key(other, True, other.codec) != kept[0].stem
    assert runtimes.conversion_key(model, False, model.codec) != kept[0].stem
    monkeypatch.undo()
    monkeypatch.setenv("KERAS_HOURGLASS_CACHE", "off")
    runtimes._CONVERTED.clear()
    runtimes.predictor(other, True, "openvino", "fp32")
    assert len(list((tmp_path / "cache/openvino").glob("*.xml"))) == 1


def test_estimate_poses_on_openvino_equals_keras(model, shared_data):
    from PIL import Image

    image = np.asarray(Image.open(sorted((shared_data / "mpii_samples").glob("*.jpg"))[0]))
    box = (image.shape[1] / 2, image.shape[0] / 2, image.shape[0] / 200)
    a = model.estimate_poses(image, box, runtime="keras")[0]
    b = model.estimate_poses(image, box, runtime="openvino", precision="fp32")[0]
    assert set(a) == set(b) == set(kh.MPII.joint_names)
    for joint in a:
        assert abs(a[joint]["x"] - b[joint]["x"]) < 0.05
        assert abs(a[joint]["confidence"] - b[joint]["confidence"]) < 1e-4


def test_auto_resolution_and_its_overrides(monkeypatch):
    monkeypatch.delenv("KERAS_HOURGLASS_RUNTIME", raising=False)
    monkeypatch.delenv("KERAS_HOURGLASS_PRECISION", raising=False)
    expected = "openvino" if keras.backend.backend() == "tensorflow" else "keras"
    assert runtimes.resolve_runtime("auto") == expected
    assert runtimes.resolve_precision("auto", "openvino") == (
        "bf16" if runtimes.cpu_has_bf16() else "fp32"
    )
    assert runtimes.resolve_precision("auto", "keras") == "fp32"
    monkeypatch.setenv("KERAS_HOURGLASS_RUNTIME", "keras")
    assert runtimes.resolve_runtime("auto") == "keras"
    assert runtimes.resolve_runtime("openvino") == "openvino"  # an argument beats the variable
    monkeypatch.setenv("KERAS_HOURGLASS_RUNTIME", "tpu")
    with pytest.raises(runtimes.RuntimeChoiceError, match="KERAS_HOURGLASS_RUNTIME"):
        runtimes.resolve_runtime("auto")
    monkeypatch.setenv("KERAS_HOURGLASS_PRECISION", "fp32")
    assert runtimes.resolve_precision("auto", "openvino") == "fp32"
    with pytest.raises(runtimes.RuntimeChoiceError, match="keras runtime predicts in float32"):
        runtimes.resolve_precision("bf16", "keras")
    with pytest.raises(runtimes.RuntimeChoiceError, match="precision must be one of"):
        runtimes.resolve_precision("int4", "openvino")


@pytest.mark.slow
def test_exported_files_load_and_predict_as_converted(model, shared_data, tmp_path):
    crops = _real_crops(shared_data, 64)
    ref = runtimes.predictor(model, True, "openvino", "fp32")(crops, return_heatmaps=True)
    fp32 = export.export_openvino(model, str(tmp_path / "m.xml"))
    fp16 = export.export_openvino(model, str(tmp_path / "h.xml"), precision="fp16")
    int8 = export.export_openvino(
        model, str(tmp_path / "q.xml"), precision="int8", calibration=crops
    )
    sizes = {p: os.path.getsize(p[:-4] + ".bin") for p in (fp32, fp16, int8)}
    assert sizes[fp16] < 0.6 * sizes[fp32] and sizes[int8] < 0.6 * sizes[fp32], sizes
    meta = json.loads((tmp_path / "q.xml.json").read_text())
    assert meta["export"]["precision"] == "int8" and meta["export"]["calibration_crops"] == 4
    check = meta["export"]["int8_check"]  # how far int8 moved the calibration people's joints
    assert check["people"] == 4 and 0 <= check["within_1px"] <= 1 and check["median"] >= 0
    assert meta["skeleton"]["name"] == "mpii" and meta["codec"] == model.codec.get_config()
    loaded = runtimes.OpenVINOPredictor.from_file(fp32, "fp32")
    assert loaded.flip_test and loaded.skeleton.joint_names == kh.MPII.joint_names
    out = loaded(crops, return_heatmaps=True)
    np.testing.assert_array_equal(out[2], ref[2])
    half = runtimes.OpenVINOPredictor.from_file(fp16, "fp32")(crops, return_heatmaps=True)
    np.testing.assert_allclose(half[2], ref[2], atol=1e-2 * np.abs(ref[2]).max())
    quant = runtimes.OpenVINOPredictor.from_file(int8, "fp32")(crops, return_heatmaps=True)
    error = np.abs(quant[2] - ref[2]).max() / np.abs(ref[2]).max()
    assert 0 < error < 0.2, error  # quantised, and still the same heatmaps in outline
    # int8 stops at the heatmaps: the flip average and the codec run in float, so the file's
    # keypoints are its own heatmaps decoded (NNCF's defaults quantised the arg-max's
    # comparison, and the keypoints left the heatmaps' peaks: PCK 32 -> 1.4)
    keypoints, scores = (keras.ops.convert_to_numpy(t) for t in model.codec.decode(quant[2]))
    np.testing.assert_allclose(quant[0], keypoints, atol=1e-4)
    np.testing.assert_allclose(quant[1], scores, atol=1e-6)
    with pytest.raises(ValueError, match="needs calibration crops"):
        export.export_openvino(model, str(tmp_path / "x.xml"), precision="int8")
    with pytest.raises(ValueError, match=r"\.xml file"):
        export.export_openvino(model, str(tmp_path / "x.onnx"))
    (tmp_path / "bad.xml").write_bytes((tmp_path / "m.xml").read_bytes())
    (tmp_path / "bad.xml.json").write_text('{"codec": {}}')
    with pytest.raises(runtimes.RuntimeChoiceError, match="bad.xml.json"):
        runtimes.OpenVINOPredictor.from_file(str(tmp_path / "bad.xml"))
    (tmp_path / "bare.xml").write_bytes((tmp_path / "m.xml").read_bytes())
    with pytest.raises(runtimes.RuntimeChoiceError, match="no description"):
        runtimes.OpenVINOPredictor.from_file(str(tmp_path / "bare.xml"))


# Loads an exported .xml where `import tensorflow` fails, on the JAX backend, and predicts crops.
NO_TF = r"""
import sys, json
sys.modules["tensorflow"] = None
import numpy as np
from keras_hourglass.deployment.loader import load_predictor
p = load_predictor(sys.argv[1], precision="fp32")
crops = np.load(sys.argv[2])
keypoints, scores = p(crops)
print(json.dumps({"keypoints": keypoints.tolist(), "runtime": type(p).__name__}))
"""


def test_int8_export_under_q_prints_nothing(model, shared_data, tmp_path, capfd):
    """-q (the package logger above INFO) quiets NNCF too: its INFO lines and its progress
    bars (rich, on stdout), which have no switch of their own."""
    crops = _real_crops(shared_data, 64)
    logger = logging.getLogger("keras_hourglass")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        capfd.readouterr()
        export.export_openvino(model, str(tmp_path / "q.xml"), precision="int8", calibration=crops)
        out, err = capfd.readouterr()
    finally:
        logger.setLevel(level)
    assert (tmp_path / "q.bin").is_file()
    assert "Statistics collection" not in out + err and "INFO:nncf" not in out + err, out + err


def test_an_exported_model_predicts_without_tensorflow(model, shared_data, tmp_path, python_env):
    crops = _real_crops(shared_data, 64)
    path = export.export_openvino(model, str(tmp_path / "m.xml"))
    np.save(tmp_path / "crops.npy", crops)
    env = dict(python_env, KERAS_BACKEND="jax")
    result = subprocess.run(
        [PYTHON, "-c", NO_TF, path, str(tmp_path / "crops.npy")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["runtime"] == "OpenVINOPredictor"
    np.testing.assert_allclose(out["keypoints"], crop_predictor(model, True)(crops)[0], atol=1e-3)


@pytest.mark.slow
def test_predict_py_runs_openvino_by_default_and_takes_the_xml(
    model, shared_data, tmp_path, python_env
):
    model_path = tmp_path / "m.keras"
    model.save(model_path)
    image = sorted((shared_data / "mpii_samples").glob("*.jpg"))[0]
    env = {k: v for k, v in python_env.items() if k not in ("KERAS_HOURGLASS_RUNTIME",)}
    env["KERAS_HOURGLASS_CACHE"] = str(tmp_path / "cache")  # never the user's
    outputs = {}
    for name, args in {
        "auto": ["--model", str(model_path)],
        "keras": ["--model", str(model_path), "--runtime", "keras"],
        "xml": ["--model", str(tmp_path / "m.xml"), "--precision", "fp32"],
    }.items():
        if name == "xml":
            exported = run_command(
                "train/export.py",
                [
                    "--model",
                    str(model_path),
                    "--format",
                    "openvino",
                    "--out",
                    str(tmp_path / "m.xml"),
                ],
                env,
            )
            assert exported.returncode == 0, exported.stderr[-2000:]
        result = run_command(
            "eval/predict.py", [str(image), *args, "--out", str(tmp_path / name)], env
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        outputs[name] = json.loads((tmp_path / name / f"{image.stem}_pose.json").read_text())
    bf16 = "bf16" if runtimes.cpu_has_bf16() else "fp32"
    assert (outputs["auto"]["runtime"], outputs["auto"]["precision"]) == ("openvino", bf16)
    assert (outputs["keras"]["runtime"], outputs["keras"]["precision"]) == ("keras", "fp32")
    assert (outputs["xml"]["runtime"], outputs["xml"]["precision"]) == ("openvino", "fp32")
    joints = [outputs[n]["people"][0]["joints"] for n in ("keras", "xml")]
    for joint in kh.MPII.joint_names:
        assert abs(joints[0][joint]["x"] - joints[1][joint]["x"]) < 0.05
        assert abs(joints[0][joint]["y"] - joints[1][joint]["y"]) < 0.05
    refused = run_command(
        "train/export.py",
        ["--model", str(model_path), "--format", "openvino", "--precision", "int8"],
        env,
    )
    assert refused.returncode == 2 and "--calibration-dataset" in refused.stderr
    refused = run_command(
        "train/export.py", ["--model", str(model_path), "--precision", "fp16"], env
    )
    assert refused.returncode == 2 and "--precision is for --format openvino" in refused.stderr
    refused = run_command(
        "eval/predict.py",
        [
            str(image),
            "--model",
            str(tmp_path / "m.xml"),
            "--runtime",
            "keras",
            "--out",
            str(tmp_path / "x"),
        ],
        env,
    )
    assert refused.returncode != 0 and "--runtime openvino" in refused.stderr


# eval/predict.py as a user runs it, telling afterwards (on stderr) whether Keras, TensorFlow
# or JAX were imported.
PREDICT_WITH_MODULES = """
import atexit, runpy, sys
heavy = ("keras", "tensorflow", "jax")
atexit.register(lambda: print("MODULES", [m for m in heavy if m in sys.modules], file=sys.stderr))
sys.argv = ["eval/predict.py", *sys.argv[1:]]
runpy.run_path("eval/predict.py", run_name="__main__")
"""


@pytest.mark.slow
def test_a_converted_keras_file_predicts_again_without_keras(shared_data, tmp_path, python_env):
    """Issue #40 item 3: the first predict on a .keras file converts it and records the file in
    the conversion cache; the next run predicts through keras_hourglass.deployment.core without
    importing Keras, TensorFlow or JAX and writes the same JSON. A file with other weights at
    the same path, or a broken cache entry, is converted again (Keras loaded), not mistaken."""
    from conftest import ROOT

    model_path = tmp_path / "m.keras"
    _tiny(seed=7).save(model_path)
    image = sorted((shared_data / "mpii_samples").glob("*.jpg"))[0]
    env = {k: v for k, v in python_env.items() if k != "KERAS_HOURGLASS_RUNTIME"}
    env["KERAS_HOURGLASS_CACHE"] = str(tmp_path / "cache")

    def predict(name):
        result = subprocess.run(
            [PYTHON, "-c", PREDICT_WITH_MODULES, str(image), "--model", str(model_path)]
            + ["--precision", "fp32", "--out", str(tmp_path / name)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        line = [x for x in result.stderr.splitlines() if x.startswith("MODULES")][-1]
        out = json.loads((tmp_path / name / f"{image.stem}_pose.json").read_text())
        return eval(line.split(" ", 1)[1]), out

    modules, first = predict("first")
    assert "keras" in modules  # converted: Keras was needed
    assert [p.name for p in (tmp_path / "cache/openvino").glob("file-*.json")]
    modules, second = predict("second")
    assert modules == []
    assert second == first and second["runtime"] == "openvino"

    _tiny(seed=8).save(model_path)  # other weights, same path
    modules, third = predict("third")
    assert "keras" in modules
    assert third["people"][0]["joints"] != first["people"][0]["joints"]
    for entry in (tmp_path / "cache/openvino").glob("file-*.json"):
        entry.write_text("{not json")
    modules, fourth = predict("fourth")
    assert "keras" in modules and fourth == third


@pytest.mark.slow
def test_evaluate_py_takes_the_runtime_and_the_exported_xml(shared_data, tmp_path, python_env):
    """Issue #39 item 4: evaluate.py scores a .keras file on Keras (default) or OpenVINO
    (--runtime), and an exported .xml, with the same people and protocol: float32 OpenVINO
    gives Keras' keypoints (to 0.05 px, argmax ties aside) and the summary says the runtime."""
    import pandas as pd

    model = _tiny(seed=11)
    model.save(tmp_path / "m.keras")
    export.export_openvino(model, str(tmp_path / "m.xml"))
    from keras_hourglass import datasets

    samples = shared_data / "mpii_samples"
    env = {k: v for k, v in python_env.items() if k != "KERAS_HOURGLASS_RUNTIME"}
    env["KERAS_HOURGLASS_CACHE"] = str(tmp_path / "cache")
    # MPII's JSON has no head boxes: PCKh is refused in one line, before predicting.
    mpii = ["--dataset", "mpii", "--data-dir", str(samples)]
    mpii += ["--annotations", str(samples / "test_mpii.json")]
    refused = run_command("eval/evaluate.py", ["--model", str(tmp_path / "m.keras"), *mpii], env)
    assert refused.returncode != 0 and "no head boxes" in refused.stderr
    assert "Traceback" not in refused.stderr and "/1" not in refused.stdout
    # The same people as custom data scored with a torso PCK.
    folder = tmp_path / "people"
    folder.mkdir()
    table = dict(kh.MPII.get_config(), normalizer=["joints", ["left_shoulder", "right_hip"]])
    (folder / "skeleton.json").write_text(json.dumps(table))
    records = datasets.read_mpii_json(str(samples / "test_mpii.json"), str(samples))
    people = [
        {
            "image": r.image_path,
            "keypoints": [
                [float(x), float(y)] if seen else [None, None]
                for (x, y), seen in zip(r.keypoints, r.annotated)
            ],
            "center": np.asarray(r.center).tolist(),
            "scale": float(r.scale),
        }
        for r in records
    ]
    (folder / "test.json").write_text(json.dumps(people))
    data = ["--dataset", "custom", "--data-dir", str(folder)]
    tables = {}
    for name, model_args in {
        "keras": ["--model", str(tmp_path / "m.keras")],
        "openvino": ["--model", str(tmp_path / "m.keras"), "--runtime", "openvino"],
        "xml": ["--model", str(tmp_path / "m.xml")],
    }.items():
        result = run_command(
            "eval/evaluate.py",
            [*model_args, "--precision", "fp32", *data, "--out", str(tmp_path / name)]
            if name != "keras"
            else [*model_args, *data, "--out", str(tmp_path / name)],
            env,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        runtime = "keras/fp32" if name == "keras" else "openvino/fp32"
        assert runtime in result.stdout, result.stdout[-1000:]
        tables[name] = pd.read_csv(tmp_path / name / "predictions.csv")
    want = tables["keras"][["x", "y"]].to_numpy()
    for name in ("openvino", "xml"):
        got = tables[name][["x", "y"]].to_numpy()
        assert got.shape == want.shape
        close = np.abs(got - want).max(axis=1) < 0.05
        assert close.mean() >= 0.9, close.mean()
    refused = run_command(
        "eval/evaluate.py",
        ["--model", str(tmp_path / "m.xml"), "--runtime", "keras", *data, "--out", "x"],
        env,
    )
    assert refused.returncode != 0 and "runs on --runtime openvino" in refused.stderr
    refused = run_command(
        "eval/evaluate.py",
        ["--model", str(tmp_path / "m.keras"), "--precision", "bf16", *data],
        env,
    )
    assert refused.returncode == 2 and "--precision bf16 is for --runtime openvino" in (
        refused.stderr
    )


@pytest.mark.slow
def test_every_runtime_is_a_crop_predictor_with_one_description(model, shared_data, tmp_path):
    """Issue #39 item 1: Keras', OpenVINO's and the SavedModel's predictors implement the one
    declared interface (`deploy.CropPredictor`), and both export formats are read by the one
    `deploy.ModelDescription` (written by `deploy.describe`), giving the same skeleton, codec,
    flip test and crop convention; a description without its codec is one error naming it."""
    from keras_hourglass.deployment import core as deploy
    from keras_hourglass.deployment.saved_model import SavedModelCrops, export_for_serving

    assert not isinstance(object(), deploy.CropPredictor)
    keras_side = crop_predictor(model, True)
    xml = export.export_openvino(model, str(tmp_path / "m.xml"))
    openvino_side = runtimes.OpenVINOPredictor.from_file(xml, "fp32")
    saved = SavedModelCrops(export_for_serving(model, str(tmp_path / "sm/hourglass")))
    crops = _real_crops(shared_data, 64)
    for predictor in (keras_side, openvino_side, saved):
        assert isinstance(predictor, deploy.CropPredictor), type(predictor)
        keypoints, scores = predictor(crops)
        assert keypoints.shape == (len(crops), 16, 2) and scores.shape == (len(crops), 16)
    described = {
        "openvino": deploy.ModelDescription.from_file(xml + ".json"),
        "savedmodel": saved.description,
    }
    assert openvino_side.description == described["openvino"]
    for fmt, description in described.items():
        assert description.format == fmt and description.precision == "fp32"
        assert description.skeleton == kh.MPII and description.flip_test is True
        assert description.codec == model.codec.get_config()
        assert description.input_size == 64 and description.heatmap_size == (16, 16)
        assert description.person_box_px == model.person_box_px
    older = dict(described["savedmodel"].fields)  # an export from before the whole table
    older["skeleton"] = {"name": "mpii", "joint_names": list(kh.MPII.joint_names)}
    older["export"] = {**older["export"], "format": "saved_model"}  # and before one spelling
    assert deploy.ModelDescription.from_dict(older).skeleton is kh.get_skeleton("mpii")
    assert deploy.ModelDescription.from_dict(older).format == "savedmodel"
    broken = {k: v for k, v in older.items() if k != "codec"}
    with pytest.raises(deploy.DescriptionError, match="here.json: not an exported model"):
        deploy.ModelDescription.from_dict(broken, "here.json")


@pytest.mark.slow
def test_one_export_entry_point_writes_every_format(model, tmp_path):
    """Issue #39 item 1: `export_model(model, path, format)` reaches each format's writer, and
    each file describes itself through the one ModelDescription."""
    from keras_hourglass.deployment import core as deploy

    assert kh.export_model is export.export_model
    saved = export.export_model(model, str(tmp_path / "sm/hourglass"), "savedmodel", version=3)
    assert os.path.basename(saved) == "3" and os.path.isfile(os.path.join(saved, "saved_model.pb"))
    described = deploy.ModelDescription.from_file(os.path.join(saved, "assets/hourglass.json"))
    assert (described.format, described.precision) == ("savedmodel", "fp32")
    xml = export.export_model(model, str(tmp_path / "m.xml"), "openvino", precision="fp16")
    described = deploy.ModelDescription.from_file(xml + ".json")
    assert (described.format, described.precision) == ("openvino", "fp16")
    assert described.skeleton == kh.MPII and described.flip_test
    with pytest.raises(ValueError, match="format must be one of"):
        export.export_model(model, str(tmp_path / "m.mlmodel"), "coreml")


def test_predict_py_refuses_runtimes_a_file_cannot_run_on(tmp_path):
    from keras_hourglass.commands.predict import InputError, Predictor

    (tmp_path / "1").mkdir()
    with pytest.raises(InputError, match="is a SavedModel, which runs on TensorFlow"):
        Predictor(str(tmp_path / "1"), runtime="openvino")
    (tmp_path / "m.xml").write_text("<net/>")
    with pytest.raises(InputError, match="is an OpenVINO model: it runs on --runtime openvino"):
        Predictor(str(tmp_path / "m.xml"), runtime="keras")
    with pytest.raises(InputError, match="no description"):
        Predictor(str(tmp_path / "m.xml"))
