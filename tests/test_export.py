"""The TF Serving export: signatures, equality with evaluation, requests, bad input, predict."""

import base64
import json
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import PYTHON, ROOT, assert_same_or_tied, randomize_weights

import keras_hourglass as kh
from keras_hourglass.deployment.saved_model import (
    ServingModelError,
    export_for_serving,
    load_serving_model,
)

# Confidences of the same model on NumPy and TensorFlow crops of one image: measured equal at
# the JSON files' 1e-4 rounding.
CROP_SCORE_ATOL = 1e-3

sys.path.insert(0, str(ROOT / "eval"))
import serving_client  # noqa: E402

pytestmark = pytest.mark.slow
SIGNATURES = ("serving_default", "serving_boxes", "predict_encoded", "predict_encoded_boxes")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A 1-stack 64x64 model with random weights, saved as .keras and exported with and without
    the flip test (versions 1 and 2)."""
    root = tmp_path_factory.mktemp("export")
    model = kh.build_hourglass(
        num_stacks=1, skeleton="mpii", filters=16, depth=4, input_shape=(64, 64, 3)
    )
    randomize_weights(model, np.random.default_rng(0), scale=0.1)
    model.save(root / "m.keras")
    flip = export_for_serving(model, str(root / "saved_models/hourglass"), kh.MPII)
    plain = export_for_serving(
        model, str(root / "saved_models/hourglass"), kh.MPII, flip_test=False
    )
    return {"root": root, "model": model, "flip": flip, "plain": plain}


def _saved_model_cli():
    """The saved_model_cli beside this interpreter (the venv's), else the one on PATH."""
    cli = pathlib.Path(PYTHON).parent / "saved_model_cli"
    return str(cli) if cli.is_file() else "saved_model_cli"


def _mpii_samples(shared_data):
    from keras_hourglass import datasets

    folder = shared_data / "mpii_samples"
    return datasets.read_mpii_json(str(folder / "test_mpii.json"), str(folder))


def test_versions_models_config_and_metadata(exported):
    root = exported["root"] / "saved_models"
    assert exported["flip"].endswith("hourglass/1") and exported["plain"].endswith("hourglass/2")
    config = (root / "models.config").read_text()
    assert 'name: "hourglass"' in config and 'base_path: "/models/hourglass"' in config
    assert config.count("config {") == 1
    meta = json.loads((root / "hourglass/2/assets/hourglass.json").read_text())
    assert meta["export"]["flip_test"] is False and meta["skeleton"]["name"] == "mpii"
    assert meta["skeleton"]["joint_names"] == list(kh.MPII.joint_names)
    assert meta["model_config"]["num_stacks"] == 1 and meta["codec"]["input_size"] == [64, 64]
    assert set(meta["signatures"]) == set(SIGNATURES) | {"predict_crops"}
    with pytest.raises(FileExistsError, match="already exists"):
        export_for_serving(exported["model"], str(root / "hourglass"), kh.MPII, version=1)


def test_saved_model_cli_show_lists_the_documented_signatures(exported):
    out = subprocess.run(
        [_saved_model_cli(), "show", "--dir", exported["flip"], "--all"],
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    blocks = dict(re.findall(r"signature_def\['(\w+)'\]:\n(.*?)(?=\nsignature_def|\Z)", out, re.S))
    assert set(SIGNATURES) | {"predict_crops"} <= set(blocks)

    def tensors(block, kind):
        part = block.split("output(s):")[0 if kind == "inputs" else 1]
        return {
            name: (dtype, shape)
            for name, dtype, shape in re.findall(
                r"\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: (\([^)]*\))", part
            )
        }

    images = ("DT_UINT8", "(-1, -1, -1, 3)")
    encoded = ("DT_STRING", "(-1)")
    boxes = ("DT_FLOAT", "(-1, 3)")
    assert tensors(blocks["serving_default"], "inputs") == {"images": images}
    assert tensors(blocks["serving_boxes"], "inputs") == {"images": images, "boxes": boxes}
    assert tensors(blocks["predict_encoded"], "inputs") == {"images": encoded}
    assert tensors(blocks["predict_encoded_boxes"], "inputs") == {"images": encoded, "boxes": boxes}
    assert tensors(blocks["predict_crops"], "inputs") == {"crops": ("DT_FLOAT", "(-1, 64, 64, 3)")}
    for name in SIGNATURES:
        assert tensors(blocks[name], "outputs") == {
            "keypoints": ("DT_FLOAT", "(-1, 16, 2)"),
            "scores": ("DT_FLOAT", "(-1, 16)"),
            "heatmaps": ("DT_FLOAT", "(-1, 16, 16, 16)"),
            "joint_names": ("DT_STRING", "(-1, 16)"),
        }, name


def test_saved_model_cli_run_on_a_real_image(exported, shared_data, tmp_path):
    data = (shared_data / "mpii_samples/052475643.jpg").read_bytes()
    image = tf.io.decode_jpeg(data).numpy()[None]
    np.save(tmp_path / "x.npy", image)
    result = subprocess.run(
        [
            _saved_model_cli(),
            "run",
            "--dir",
            exported["flip"],
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"images={tmp_path / 'x.npy'}",
            "--outdir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    keypoints = np.load(tmp_path / "out/keypoints.npy")
    assert keypoints.shape == (1, 16, 2) and image.shape[1:3] == (480, 854)
    loaded = tf.saved_model.load(exported["flip"])
    direct = loaded.signatures["serving_default"](images=tf.constant(image))
    np.testing.assert_allclose(keypoints, direct["keypoints"].numpy(), atol=1e-4)
    # The whole image is the person box: a box of side max(H, W) on the image centre.
    boxed = loaded.signatures["serving_boxes"](
        images=tf.constant(image), boxes=tf.constant([[426.5, 239.5, 854 / 200]])
    )
    np.testing.assert_allclose(boxed["keypoints"].numpy(), keypoints, atol=1e-4)


@pytest.mark.parametrize("flip", [True, False])
def test_saved_model_equals_the_evaluation_path_on_real_images(exported, shared_data, flip):
    """Loaded SavedModel (uint8 images + boxes, and JPEG bytes + boxes in one batch of images of
    two sizes) against the in-memory model through evaluation's tf.data crops,
    `keypoints_of_crops` and `crop_to_original`."""
    from keras_hourglass.inputs.tf_data import make_dataset

    records = _mpii_samples(shared_data)
    codec = kh.HeatmapCodec(64, 16)
    flip_index = kh.MPII.flip_index if flip else None
    want = {}
    for crops, _, meta in make_dataset(records, kh.MPII, codec, 8, training=False):
        keypoints, scores, heatmaps = kh.keypoints_of_crops(
            exported["model"], crops, codec, flip_index
        )
        want["keypoints"] = np.asarray(
            kh.crop_to_original(keypoints, meta["center"].numpy(), meta["scale"].numpy(), 64)
        )
        want["scores"], want["heatmaps"] = np.asarray(scores), np.asarray(heatmaps)
    assert want["keypoints"].shape == (5, 16, 2)

    loaded = tf.saved_model.load(exported["flip" if flip else "plain"])
    boxes = np.array([[*r.center, r.scale] for r in records], np.float32)
    files = [open(r.image_path, "rb").read() for r in records]
    encoded = loaded.signatures["predict_encoded_boxes"](
        images=tf.constant(files), boxes=tf.constant(boxes)
    )
    per_image = [
        loaded.signatures["serving_boxes"](
            images=tf.io.decode_jpeg(data)[None], boxes=tf.constant(box[None])
        )
        for data, box in zip(files, boxes)
    ]
    centers, scales = boxes[:, :2], boxes[:, 2]

    def to_heatmap(point, n):  # image pixels -> heatmap pixels of person n's crop
        crop = (point - centers[n]) * 64 / (200 * scales[n]) + 31.5
        return (crop + 0.5) / 4 - 0.5

    for got in (encoded, {k: np.concatenate([p[k].numpy() for p in per_image]) for k in want}):
        for name in ("scores", "heatmaps"):
            np.testing.assert_allclose(np.asarray(got[name]), want[name], atol=1e-4, err_msg=name)
        # Keypoints to 1e-4 px but where a random-weight heatmap has two maxima within 1e-4.
        assert_same_or_tied(
            got["keypoints"], want["keypoints"], want["heatmaps"], to_heatmap, 1e-4, 1e-4, 0.95
        )


def test_rest_body_is_the_documented_tf_serving_request(exported, shared_data):
    """The REST body is TF Serving's documented predict request, written out here as the
    documentation gives it (https://www.tensorflow.org/tfx/serving/api_rest, "Request format"
    and "Encoding binary values"): `{"signature_name": ..., "instances": [...]}` in the row
    format, one object per image naming every input of the signature, binary values as
    `{"b64": <standard base64>}`, numbers as plain JSON numbers. The documented decoding of it
    (b64 -> the string tensor, number lists -> the signature's float tensor) fed to the
    SavedModel gives what the gRPC request gives."""
    files = [
        (shared_data / "mpii_samples" / n).read_bytes() for n in ("052475643.jpg", "004645041.jpg")
    ]
    boxes = [[426.0, 240.0, 2.0], [640.0, 360.0, 3.0]]
    b64 = [base64.b64encode(f).decode("ascii") for f in files]
    documented = {
        "signature_name": "predict_encoded_boxes",
        "instances": [
            {"images": {"b64": b64[0]}, "boxes": [426.0, 240.0, 2.0]},
            {"images": {"b64": b64[1]}, "boxes": [640.0, 360.0, 3.0]},
        ],
    }
    body = serving_client.rest_body(files, boxes)
    assert json.loads(json.dumps(body)) == documented  # exactly, after a JSON round trip
    assert serving_client.rest_body(files) == {
        "signature_name": "predict_encoded",
        "instances": [{"images": {"b64": b64[0]}}, {"images": {"b64": b64[1]}}],
    }
    # Every instance names exactly the signature's inputs, as the row format requires.
    signature = serving_client.signature_def(exported["flip"], "predict_encoded_boxes")
    assert all(set(i) == set(signature.inputs) for i in documented["instances"])

    loaded = tf.saved_model.load(exported["flip"])
    from_rest = loaded.signatures["predict_encoded_boxes"](
        images=tf.constant([base64.b64decode(i["images"]["b64"]) for i in documented["instances"]]),
        boxes=tf.constant([i["boxes"] for i in documented["instances"]], tf.float32),
    )
    request = serving_client.predict_request(files, boxes, version=1)
    serving_client.check_request(request, signature)
    assert request.model_spec.signature_name == "predict_encoded_boxes"
    assert request.model_spec.name == "hourglass" and request.model_spec.version.value == 1
    inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
    assert list(inputs["images"]) == files
    from_grpc = loaded.signatures["predict_encoded_boxes"](
        **{k: tf.constant(v) for k, v in inputs.items()}
    )
    np.testing.assert_array_equal(from_rest["keypoints"].numpy(), from_grpc["keypoints"].numpy())

    missing = serving_client.predict_request(files)
    missing.model_spec.signature_name = "predict_encoded_boxes"
    with pytest.raises(serving_client.RequestError, match=r"missing \['boxes'\]"):
        serving_client.check_request(missing, signature)
    wrong = serving_client.predict_request(files, boxes)
    wrong.inputs["boxes"].CopyFrom(tf.make_tensor_proto(np.array(boxes, np.float64)))
    with pytest.raises(serving_client.RequestError, match="'boxes' is DT_DOUBLE.*DT_FLOAT"):
        serving_client.check_request(wrong, signature)
    with pytest.raises(serving_client.RequestError, match="no signature 'nope'"):
        serving_client.signature_def(exported["flip"], "nope")


def test_bad_input_errors_name_the_input(exported, shared_data, tmp_path):
    loaded = tf.saved_model.load(exported["flip"])
    data = (shared_data / "mpii_samples/052475643.jpg").read_bytes()
    image = tf.io.decode_jpeg(data)[None]
    png = tf.io.encode_png(image[0]).numpy()
    cases = [
        ("predict_encoded", {"images": [b"hello, not an image"]}, "not a JPEG or PNG file"),
        ("predict_encoded", {"images": [data[:5000]]}, "truncated JPEG or PNG"),
        ("predict_encoded", {"images": [png[:-20]]}, "truncated JPEG or PNG"),
        ("serving_default", {"images": tf.zeros([1, 0, 8, 3], tf.uint8)}, "zero height or width"),
        (
            "serving_boxes",
            {"images": image, "boxes": [[900.0, 10.0, 2.0]]},
            "centre \\(x, y\\) lies outside the image",
        ),
        (
            "serving_boxes",
            {"images": image, "boxes": [[-1.0, 10.0, 2.0]]},
            "centre \\(x, y\\) lies outside the image",
        ),
        (
            "serving_boxes",
            {"images": image, "boxes": [[400.0, 200.0, 0.0]]},
            "scale .* must be positive",
        ),
        (
            "serving_boxes",
            {"images": image, "boxes": [[400.0, 200.0, 2.0]] * 2},
            "one box per image",
        ),
    ]
    for name, inputs, message in cases:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            loaded.signatures[name](
                **{
                    k: tf.constant(v) if not isinstance(v, tf.Tensor) else v
                    for k, v in inputs.items()
                }
            )
    # The PNG itself (all of it) is accepted and gives the JPEG's pixels' answer.
    ok = loaded.signatures["predict_encoded"](images=tf.constant([png]))
    same = loaded.signatures["serving_default"](images=image)
    np.testing.assert_allclose(ok["keypoints"].numpy(), same["keypoints"].numpy(), atol=1e-4)
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError), match="uint8"):
        loaded.signatures["serving_default"](images=tf.zeros([1, 8, 8, 3], tf.float32))

    # A SavedModel without our signatures is refused when loaded, naming what it lacks.
    module = tf.Module()
    module.f = tf.function(lambda x: {"y": x * 2}, input_signature=[tf.TensorSpec([None])])
    tf.saved_model.save(module, str(tmp_path / "other"), signatures={"double": module.f})
    with pytest.raises(ServingModelError, match=r"lacks the signature\(s\) \['serving_default'\]"):
        load_serving_model(str(tmp_path / "other"))
    with pytest.raises(ServingModelError, match="not a SavedModel version folder"):
        load_serving_model(str(tmp_path))
    # A skeleton other than the model's own is refused at export time, and so is one that does
    # not fit the joints of a model saved without its skeleton.
    with pytest.raises(ValueError, match="trained on the 'mpii' skeleton, not 'lsp'"):
        export_for_serving(exported["model"], str(tmp_path / "bad"), kh.LSP)
    config = exported["model"].get_config()
    config.pop("skeleton")
    older = kh.StackedHourglass.from_config(config)
    with pytest.raises(ValueError, match="predicts 16 joints but skeleton 'lsp' has 14"):
        export_for_serving(older, str(tmp_path / "bad"), kh.LSP)


def _predict_cli(args, python_env):
    return subprocess.run(
        [PYTHON, str(ROOT / "eval/predict.py"), *args],
        env=python_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_predict_command_with_keras_file_and_saved_model(
    exported, shared_data, tmp_path, python_env
):
    from PIL import Image

    images = [str(shared_data / "mpii_samples" / n) for n in ("052475643.jpg", "004645041.jpg")]
    results = {}
    for kind, model in (("keras", exported["root"] / "m.keras"), ("saved", exported["flip"])):
        out = tmp_path / kind
        # PNG overlays, so the pixel comparison below sees the drawing and no JPEG noise (the
        # default follows the input's format: test_people.py).
        args = [*images, "--model", str(model), "--out", str(out), "--overlay-format", "png"]
        args += ["--whole-image", "--no-refine"]  # the photo as one box, as the paths compare
        result = _predict_cli(args, python_env)
        assert result.returncode == 0, result.stderr[-3000:]
        for path in images:
            name = path.rsplit("/", 1)[1][:-4]
            drawn = Image.open(out / f"{name}_pose.png")
            assert drawn.size == Image.open(path).size
            written = json.loads((out / f"{name}_pose.json").read_text())
            assert len(written["people"]) == 1 and written["found_by"] == "whole image"
            results[kind, name] = dict(written, joints=written["people"][0]["joints"])
    # A .keras file crops with NumPy/OpenCV, the SavedModel with TensorFlow (the one inference
    # path's only difference; equal crops give equal keypoints: test_one_inference_path.py):
    # the crops differ by ~0.004 on average, so every confidence agrees closely and positions
    # agree but where a random-weight heatmap has two near-equal maxima.
    same = []
    for name in ("052475643", "004645041"):
        a, b = results["keras", name], results["saved", name]
        assert list(a["joints"]) == list(kh.MPII.joint_names) and a["flip_test"] and b["flip_test"]
        for joint in a["joints"]:
            ja, jb = a["joints"][joint], b["joints"][joint]
            assert abs(ja["confidence"] - jb["confidence"]) <= CROP_SCORE_ATOL, (name, joint)
            same.append(abs(ja["x"] - jb["x"]) <= 1e-2 and abs(ja["y"] - jb["y"]) <= 1e-2)
    assert np.mean(same) >= 0.9, np.mean(same)  # 31 of 32 measured
    # The drawing changed pixels along the predicted skeleton (and not elsewhere).
    original = np.asarray(Image.open(images[0]).convert("RGB"), np.int16)
    drawn = np.asarray(Image.open(tmp_path / "saved/052475643_pose.png"), np.int16)
    changed = np.abs(drawn - original).sum(-1) > 30
    assert 0.0005 < changed.mean() < 0.2

    # With a box, against the SavedModel signature called directly.
    result = _predict_cli(
        [
            images[1],
            "--model",
            exported["flip"],
            "--out",
            str(tmp_path / "box"),
            "--box",
            "640,360,3",
            "--no-refine",
        ],
        python_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    boxed = json.loads((tmp_path / "box/004645041_pose.json").read_text())
    loaded = tf.saved_model.load(exported["flip"])
    direct = loaded.signatures["predict_encoded_boxes"](
        images=tf.constant([open(images[1], "rb").read()]), boxes=tf.constant([[640.0, 360, 3]])
    )
    # predict crops with NumPy/OpenCV for every format (`predict_crops`), the signature with
    # TensorFlow: as above, near-equal random-weight maxima may part a few joints.
    got = np.array([[j["x"], j["y"]] for j in boxed["people"][0]["joints"].values()])
    near = np.abs(got - direct["keypoints"].numpy()[0]).max(axis=1) <= 1e-2
    assert near.mean() >= 0.8, near
    confidence = np.array([j["confidence"] for j in boxed["people"][0]["joints"].values()])
    np.testing.assert_allclose(confidence, direct["scores"].numpy()[0], atol=CROP_SCORE_ATOL)
    # The served answer names the model's joints (what the serving client labels them with).
    assert [n.decode() for n in direct["joint_names"].numpy()[0]] == list(kh.MPII.joint_names)

    # Bad input: a text file, a truncated JPEG, an empty file, a box outside the image.
    (tmp_path / "notes.jpg").write_text("not an image")
    (tmp_path / "cut.jpg").write_bytes(open(images[0], "rb").read()[:4000])
    (tmp_path / "empty.png").write_bytes(b"")
    for args, message in [
        ([str(tmp_path / "notes.jpg")], "notes.jpg: not an image"),
        ([str(tmp_path / "cut.jpg")], "cut.jpg: a truncated JPEG (no end marker)"),
        ([str(tmp_path / "empty.png")], "empty.png: the file is empty"),
        ([images[0], "--box", "2000,10,2"], "lies outside"),
        ([images[0], "--box", "1,2"], "expected centre x, centre y and scale"),
    ]:
        result = _predict_cli(
            [*args, "--model", exported["flip"], "--out", str(tmp_path / "x")], python_env
        )
        assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]


def test_onnx_and_tflite_match_the_saved_model(exported, shared_data, tmp_path, python_env):
    """Both written from the model (`export.export_model`, not from the SavedModel); on real
    MPII crops their heatmaps and scores agree with the SavedModel's `predict_crops` to 1e-5 and
    their keypoints to 1e-3 px (ties between equal maxima aside)."""
    import warnings

    import onnxruntime

    from keras_hourglass.deployment.export import export_model
    from keras_hourglass.inputs.tf_data import make_dataset

    records = _mpii_samples(shared_data)
    crops = next(iter(make_dataset(records, kh.MPII, kh.HeatmapCodec(64, 16), 5, training=False)))[
        0
    ].numpy()
    want = tf.saved_model.load(exported["flip"]).signatures["predict_crops"](
        crops=tf.constant(crops)
    )
    onnx_path = export_model(exported["model"], str(tmp_path / "hg.onnx"), "onnx", kh.MPII)
    session = onnxruntime.InferenceSession(onnx_path)
    names = [o.name for o in session.get_outputs()]
    got_onnx = dict(zip(names, session.run(None, {"crops": crops})))
    tflite_path = export_model(exported["model"], str(tmp_path / "hg.tflite"), "tflite", kh.MPII)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice (LiteRT)
        interpreter = tf.lite.Interpreter(model_path=tflite_path)
    got_tflite = interpreter.get_signature_runner("predict_crops")(crops=crops)
    for got in (got_onnx, got_tflite):
        assert set(got) == {"keypoints", "scores", "heatmaps"}
        np.testing.assert_allclose(got["heatmaps"], want["heatmaps"].numpy(), atol=1e-5)
        np.testing.assert_allclose(got["scores"], want["scores"].numpy(), atol=1e-5)
        # Keypoints: equal to 1e-3 px, except where a random-weight heatmap has two maxima
        # within float rounding: there both picked a maximum.
        assert_same_or_tied(
            got["keypoints"],
            want["keypoints"].numpy(),
            want["heatmaps"].numpy(),
            lambda p, n: (p + 0.5) / 4 - 0.5,
            tie=1e-5,
        )
    meta = json.loads((tmp_path / "hg.onnx.json").read_text())
    assert meta["export"]["format"] == "onnx" and set(meta["signatures"]) == {"predict_crops"}

    # The command: --format onnx from a .keras file.
    result = subprocess.run(
        [
            PYTHON,
            str(ROOT / "train/export.py"),
            "--model",
            str(exported["root"] / "m.keras"),
            "--format",
            "onnx",
            "--out",
            str(tmp_path / "cli.onnx"),
        ],
        env=python_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    session = onnxruntime.InferenceSession(str(tmp_path / "cli.onnx"))
    out = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"crops": crops})))
    np.testing.assert_allclose(out["heatmaps"], want["heatmaps"].numpy(), atol=1e-5)


@pytest.fixture(scope="module")
def shipped_people():
    """The shipped model and 16 real people (LSPET training photos, cropped as evaluation crops
    them), with the `.keras` model's own keypoints (Keras, float32, flip test): what every
    exported format must give back."""
    from conftest import SHARED_DATA

    from keras_hourglass.datasets import read_dataset
    from keras_hourglass.deployment.export import calibration_crops

    if not (SHARED_DATA / "lspet").is_dir():
        pytest.skip("../shared/data/lspet is not present")
    model = kh.load_pretrained(kh.default_pretrained())
    people = read_dataset("lspet", str(SHARED_DATA / "lspet"), skip_bad=True).subset(0, 16)
    crops = calibration_crops(model, people, 16)
    keypoints, _ = kh.crop_predictor(model, True)(crops)
    return model, crops, keypoints


# (format, file, options, share of the joints within `within` crop pixels of the .keras
# model's). Float files compute what Keras computes (measured: every joint within 1e-4 px);
# int8's documented tolerance (docs/runtimes.md, the export's own int8_check) is 90% of the
# joints within one heatmap pixel (4 crop pixels at 128 -> 32): measured 94.6% on these people.
EVERY_FORMAT = [
    ("savedmodel", "sm/hourglass", {}, 1.0, 0.01),
    ("onnx", "m.onnx", {}, 1.0, 0.01),
    ("tflite", "m.tflite", {}, 1.0, 0.01),
    ("openvino", "m.xml", {}, 1.0, 0.01),
    ("openvino", "h.xml", {"precision": "fp16"}, 1.0, 0.01),
    ("openvino", "q.xml", {"precision": "int8"}, 0.9, 4.0),
]


@pytest.mark.parametrize(
    "format, name, options, share, within",
    EVERY_FORMAT,
    ids=[f"{f}-{o.get('precision', 'fp32')}" for f, _, o, _, _ in EVERY_FORMAT],
)
def test_every_format_export_writes_loads_and_gives_the_same_joints(
    shipped_people, tmp_path, format, name, options, share, within
):
    """Issue #49 item 2: `export_model` writes every format from the model, `load_predictor`
    loads each (ONNX and TFLite through OpenVINO), and the joints are the `.keras` model's."""
    from keras_hourglass.deployment.export import export_model
    from keras_hourglass.deployment.loader import load_model

    model, crops, want = shipped_people
    if options.get("precision") == "int8":
        options = {**options, "calibration": crops}
    path = export_model(model, str(tmp_path / name), format, **options)
    loaded = load_model(path, precision="fp32")
    assert loaded.format == format and loaded.skeleton == model.skeleton
    assert loaded.input_size == crops.shape[1]
    assert loaded.predictor.description.person_box_px == model.person_box_px  # the crop unit
    keypoints, scores = loaded.predictor(crops)
    assert keypoints.shape == want.shape and scores.shape == want.shape[:2]
    moved = np.linalg.norm(keypoints - want, axis=-1)
    assert np.mean(moved <= within) >= share, np.percentile(moved, [50, 90, 100])
