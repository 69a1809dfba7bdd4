"""Export a stacked hourglass as a TF Serving SavedModel with pre- and post-processing inside.

Signatures (every input is required, as TF Serving requires: a request without one of a
signature's inputs is refused with "input size does not match signature", so an optional box
is a second signature rather than an optional input):

- `serving_default`: `images` uint8 [batch, H, W, 3] (any H, W), the whole image is the person;
- `serving_boxes`: `images` as above and `boxes` float32 [batch, 3] (centre x, centre y, scale;
  the person box is 200 * scale pixels square, MPII's convention);
- `predict_encoded`: `images` string [batch] of JPEG/PNG files (what a REST client sends as
  base64), each of any size; `predict_encoded_boxes`: the same with `boxes`;
- `predict_crops`: float32 person crops [batch, S, S, 3] in [0, 1] (evaluation).

Every image signature returns `keypoints` float32 [batch, K, 2] (x, y) in the input image's
pixels (pixel centres at integers), `scores` float32 [batch, K] (heatmap peaks) and `heatmaps`
float32 [batch, S/4, S/4, K] (last stack, flip-averaged). The crop is the tf.data pipeline's
(`inputs.tf_data.tf_crop_person`, with its anti-aliasing), the prediction and decoding are
`inference.keypoints_of_crops` with the model's own codec, and the map back is
`crop_to_original`: the code evaluation, prediction and validation run.
"""

import json
import os
import re
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from keras_hourglass import files, geometry
from keras_hourglass.datasets import MAX_IMAGE_PIXELS
from keras_hourglass.deployment.core import ModelDescription, describe
from keras_hourglass.deployment.inference import crop_to_original, keypoints_of_crops
from keras_hourglass.inputs.tf_data import tf_crop_person
from keras_hourglass.network.codec import HeatmapCodec
from keras_hourglass.skeletons import model_skeleton

SIGNATURES = (
    "serving_default",
    "serving_boxes",
    "predict_encoded",
    "predict_encoded_boxes",
    "predict_crops",
)
OUTPUTS = ("keypoints", "scores", "heatmaps")


def next_version(base_dir):
    """The next free TF Serving version number under `base_dir` (1 when empty)."""
    if not os.path.isdir(base_dir):
        return 1
    versions = [int(n) for n in os.listdir(base_dir) if re.fullmatch(r"\d+", n)]
    return max(versions, default=0) + 1


def _checked_box(box, height, width):
    """`box` (3,) after checks that raise InvalidArgumentError naming the input."""
    h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    center, scale = box[:2], box[2]
    checks = [
        tf.debugging.assert_all_finite(box, "boxes: a box has a NaN or infinite value"),
        tf.debugging.assert_greater(
            scale, 0.0, message="boxes: the scale (third value, box side / 200 px) must be positive"
        ),
        tf.debugging.assert_greater_equal(
            center, 0.0, message="boxes: the centre (x, y) lies outside the image (negative)"
        ),
        tf.debugging.assert_less_equal(
            center,
            tf.stack([w - 1.0, h - 1.0]),
            message="boxes: the centre (x, y) lies outside the image (beyond its width or height)",
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(center), tf.identity(scale)


def _check_size(image, name):
    shape = tf.shape(image)
    check = tf.debugging.assert_positive(
        shape[:2], message=f"{name}: an image has zero height or width"
    )
    with tf.control_dependencies([check]):
        return tf.identity(image), shape[0], shape[1]


def _is_jpeg_or_png(data):
    head = tf.strings.substr(data, 0, 4)
    return tf.logical_or(tf.strings.substr(head, 0, 3) == b"\xff\xd8\xff", head == b"\x89PNG")


def _has_end_marker(data):
    """JPEG files end with the EOI marker FF D9 (allowing a few padding bytes after it), PNG
    files with the IEND chunk: a file cut short has neither."""
    length = tf.strings.length(data)
    tail = tf.io.decode_raw(
        tf.strings.substr(tf.strings.join([b"\0" * 32, data]), length, 32), tf.uint8
    )
    jpeg_end = tf.reduce_any((tail[:-1] == 0xFF) & (tail[1:] == 0xD9))
    png_end = tf.strings.substr(data, tf.maximum(length - 8, 0), 8) == b"IEND\xaeB`\x82"
    is_png = tf.strings.substr(data, 0, 4) == b"\x89PNG"
    return tf.where(is_png, png_end, jpeg_end)


def _header_pixels(data):
    """Width x height from a JPEG's frame header or a PNG's IHDR, without decoding (int64)."""

    def png():
        raw = tf.cast(
            tf.io.decode_raw(
                tf.strings.substr(tf.strings.join([data, b"\0" * 24]), 16, 8), tf.uint8
            ),
            tf.int64,
        )
        width = raw[0] * 2**24 + raw[1] * 2**16 + raw[2] * 2**8 + raw[3]
        height = raw[4] * 2**24 + raw[5] * 2**16 + raw[6] * 2**8 + raw[7]
        return width * height

    def jpeg():
        shape = tf.cast(tf.io.extract_jpeg_shape(data), tf.int64)
        return shape[0] * shape[1]

    return tf.cond(tf.strings.substr(data, 0, 4) == b"\x89PNG", png, jpeg)


def _decode(data, max_pixels):
    checks = [
        tf.debugging.Assert(
            _is_jpeg_or_png(data),
            [
                "images: an element is not a JPEG or PNG file; its first bytes are",
                tf.strings.substr(data, 0, 8),
            ],
        ),
    ]
    with tf.control_dependencies(checks):
        checks.append(
            tf.debugging.Assert(
                _has_end_marker(data),
                [
                    "images: an element is a truncated JPEG or PNG file (no end marker); bytes:",
                    tf.strings.length(data),
                ],
            )
        )
    with tf.control_dependencies(checks):
        pixels = _header_pixels(data)
        checks.append(
            tf.debugging.Assert(
                pixels <= max_pixels,
                [
                    f"images: an element's header claims more pixels than the limit of {max_pixels:,} "
                    "set at export (--max-image-pixels); pixels:",
                    pixels,
                ],
            )
        )
    with tf.control_dependencies(checks):
        image = tf.io.decode_image(data, channels=3, expand_animations=False, dtype=tf.uint8)
    image.set_shape([None, None, 3])
    return image


class PoseServer(tf.Module):
    """The serving functions of a model: what the SavedModel's signatures run (TF Serving,
    `eval/predict.py` and the serving client on a SavedModel folder).

    Args:
        model: a stacked hourglass (any Keras backend variables traced by TensorFlow).
        skeleton: its `Skeleton` (flip pairs for the flip test); default: the model's own (only
            models saved before they described themselves need it).
        flip_test: average with the mirrored crop.
        max_pixels: encoded images whose header claims more pixels are refused before decoding
            (default `datasets.MAX_IMAGE_PIXELS`).

    The codec (input size, heatmap size, sigma, decoding rule) and the crop convention are the
    model's own (`model.codec`, `model.person_box_px`).
    """

    def __init__(self, model, skeleton=None, flip_test=True, max_pixels=None):
        super().__init__()
        if keras.backend.backend() != "tensorflow":
            raise RuntimeError(
                "Exporting and serving run TensorFlow graphs: use KERAS_BACKEND=tensorflow "
                f"(this process has {keras.backend.backend()!r}); a model trained on JAX loads "
                "there from its .keras file."
            )
        skeleton = model_skeleton(model, skeleton)
        check_model(model, skeleton)
        self.skeleton = skeleton
        # The model's crop convention, in the geometry module's 200 px person boxes.
        self.box_factor = model.person_box_px / geometry.PERSON_BOX_PX

        self.max_pixels = int(MAX_IMAGE_PIXELS if max_pixels is None else max_pixels)
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be positive, got {max_pixels}")
        self.model = model
        self.size = int(model.inputs[0].shape[1])
        self.codec = model.codec
        self.flip_index = skeleton.flip_index if flip_test else None
        size = self.size
        image_spec = tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")
        boxes_spec = tf.TensorSpec([None, 3], tf.float32, name="boxes")
        encoded_spec = tf.TensorSpec([None], tf.string, name="images")
        crops_spec = tf.TensorSpec([None, size, size, 3], tf.float32, name="crops")
        self.serving_default = tf.function(self._images, input_signature=[image_spec])
        self.serving_boxes = tf.function(
            self._images_boxes, input_signature=[image_spec, boxes_spec]
        )
        self.predict_encoded = tf.function(self._encoded, input_signature=[encoded_spec])
        self.predict_encoded_boxes = tf.function(
            self._encoded_boxes, input_signature=[encoded_spec, boxes_spec]
        )
        self.predict_crops = tf.function(self._crops, input_signature=[crops_spec])

    # One image at a time through the pipeline's crop (images of one batch may differ in size
    # for the encoded signatures), then one batched network call.
    def _crop(self, image, box=None):
        image, height, width = _check_size(image, "images")
        if box is None:
            h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
            center, scale = geometry.whole_image_box(h, w, xp=tf)
        else:
            center, scale = _checked_box(box, height, width)
            scale = scale * self.box_factor
        floats = tf.cast(image, tf.float32) / 255.0
        return tf_crop_person(floats, center, scale, self.size), center, scale

    def _predict(self, crops, centers, scales):
        keypoints, scores, heatmaps = keypoints_of_crops(
            self.model, crops, self.codec, self.flip_index
        )
        names = tf.constant(self.skeleton.joint_names, tf.string)
        return {
            "keypoints": crop_to_original(keypoints, centers, scales, self.size),
            "scores": scores,
            "heatmaps": heatmaps,
            # The model's joint names with every answer (a row per person: TF Serving's REST row
            # format needs every output batched), so clients name joints from the server.
            "joint_names": tf.tile(names[None], [tf.shape(scores)[0], 1]),
        }

    def _map(self, fn, elements):
        size = self.size
        return tf.map_fn(
            fn,
            elements,
            fn_output_signature=(
                tf.TensorSpec([size, size, 3], tf.float32),
                tf.TensorSpec([2], tf.float32),
                tf.TensorSpec([], tf.float32),
            ),
        )

    def _check_boxes(self, images, boxes):
        check = tf.debugging.assert_equal(
            tf.shape(images)[0],
            tf.shape(boxes)[0],
            message="boxes: one box per image is needed (boxes and images differ in batch size)",
        )
        with tf.control_dependencies([check]):
            return tf.identity(boxes)

    def _images(self, images):
        return self._predict(*self._map(lambda image: self._crop(image), images))

    def _images_boxes(self, images, boxes):
        boxes = self._check_boxes(images, boxes)
        return self._predict(*self._map(lambda e: self._crop(e[0], e[1]), (images, boxes)))

    def _encoded(self, images):
        return self._predict(
            *self._map(lambda data: self._crop(_decode(data, self.max_pixels)), images)
        )

    def _encoded_boxes(self, images, boxes):
        boxes = self._check_boxes(images, boxes)
        return self._predict(
            *self._map(lambda e: self._crop(_decode(e[0], self.max_pixels), e[1]), (images, boxes))
        )

    def _crops(self, crops):
        keypoints, scores, heatmaps = keypoints_of_crops(
            self.model, crops, self.codec, self.flip_index
        )
        return {"keypoints": keypoints, "scores": scores, "heatmaps": heatmaps}


def check_model(model, skeleton):
    """Refuses, at export time, a model that the serving graph cannot run."""
    shape = tuple(model.inputs[0].shape) if getattr(model, "inputs", None) else None
    if (
        shape is None
        or len(shape) != 4
        or shape[1] is None
        or shape[1] != shape[2]
        or shape[3] != 3
    ):
        raise ValueError(
            f"Export needs a model with a square RGB input of known size "
            f"(batch, S, S, 3); this model's input is {shape}."
        )
    joints = model.outputs[-1].shape[-1]
    if joints != skeleton.num_joints:
        raise ValueError(
            f"The model predicts {joints} joints but skeleton {skeleton.name!r} has "
            f"{skeleton.num_joints}: pass the skeleton it was trained with."
        )


def metadata(server, flip_test):
    skeleton = server.skeleton
    size = server.size
    k = skeleton.num_joints
    image_outputs = {
        "keypoints": f"float32 [batch, {k}, 2] (x, y) in input-image pixels",
        "scores": f"float32 [batch, {k}] heatmap peak values",
        "heatmaps": f"float32 [batch, {size // 4}, {size // 4}, {k}] last stack",
        "joint_names": f"string [batch, {k}] the model's joint names (the same in every row)",
    }
    box = server.box_factor * geometry.PERSON_BOX_PX
    boxes = (
        f"float32 [batch, 3] person centre x, centre y (pixels) and scale (box side / {box:g} px)"
    )
    meta = describe(
        server.model,
        server.codec,
        skeleton,
        flip_test,
        "savedmodel",
        export={"max_image_pixels": server.max_pixels, "tensorflow_version": tf.__version__},
    )
    # The crop convention is the server's (its box factor), which is the model's.
    meta["person_box_px"] = server.box_factor * geometry.PERSON_BOX_PX
    meta["signatures"] = {
        "serving_default": {
            "inputs": {"images": "uint8 [batch, height, width, 3]"},
            "outputs": image_outputs,
        },
        "serving_boxes": {
            "inputs": {"images": "uint8 [batch, height, width, 3]", "boxes": boxes},
            "outputs": image_outputs,
        },
        "predict_encoded": {
            "inputs": {"images": "string [batch] JPEG or PNG files"},
            "outputs": image_outputs,
        },
        "predict_encoded_boxes": {
            "inputs": {"images": "string [batch] JPEG or PNG files", "boxes": boxes},
            "outputs": image_outputs,
        },
        "predict_crops": {
            "inputs": {"crops": f"float32 [batch, {size}, {size}, 3] in [0, 1]"},
            "outputs": {
                **{n: v for n, v in image_outputs.items() if n != "joint_names"},
                "keypoints": f"float32 [batch, {k}, 2] crop pixels",
            },
        },
    }
    return meta


POLICY_FILE = "version_policy.json"  # beside the versions: the policy models.config serves


def parse_version_policy(text):
    """`latest:N` (the N newest versions), `all`, or `specific:1,3` -> (kind, numbers); raises
    ValueError saying what is expected."""
    kind, _, rest = str(text).strip().partition(":")
    try:
        if kind == "all" and not rest:
            return "all", ()
        numbers = tuple(int(v) for v in rest.split(",")) if rest else ()
    except ValueError:
        numbers = ()
    if kind == "latest" and len(numbers) == 1 and numbers[0] >= 1:
        return "latest", numbers
    if kind == "specific" and numbers and all(n >= 1 for n in numbers):
        return "specific", tuple(sorted(set(numbers)))
    raise ValueError(
        f"version policy {text!r}: expected latest:N (N >= 1), all, or specific:V1,V2,..."
    )


def _policy_text(kind, numbers):
    if kind == "all":
        return "model_version_policy { all {} }"
    if kind == "latest":
        return f"model_version_policy {{ latest {{ num_versions: {numbers[0]} }} }}"
    return (
        "model_version_policy { specific { " + " ".join(f"versions: {v}" for v in numbers) + " } }"
    )


def parse_version_labels(text):
    """`stable=1,canary=2` -> {"stable": 1, "canary": 2}; raises ValueError saying what is
    expected (TF Serving's labels: letters, digits, '-' and '_'; positive versions)."""
    labels = {}
    for item in str(text).split(","):
        label, _, version = item.strip().partition("=")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", label) or not version.isdigit():
            raise ValueError(
                f"version labels {text!r}: expected label=version pairs such as stable=1,canary=2"
            )
        if label in labels or int(version) < 1:
            raise ValueError(f"version labels {text!r}: each label once, versions from 1")
        labels[label] = int(version)
    return labels


def set_version_policy(base_dir, policy=None, labels=None):
    """Records which versions of the model in `base_dir` TF Serving serves (`policy` as
    `parse_version_policy` takes it; None keeps the recorded one) and its version labels
    (`labels` as `parse_version_labels` takes it, e.g. stable=1,canary=2: clients may ask for a
    label instead of a number; None keeps them, "" removes them), then rewrites models.config
    beside it. A label must name a version folder that exists and that the policy serves."""
    path = os.path.join(base_dir, POLICY_FILE)
    recorded = {"policy": "latest:1"}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            recorded = json.load(f)
    if policy is not None:
        parse_version_policy(policy)
        recorded["policy"] = policy
    if labels is not None:
        recorded["labels"] = parse_version_labels(labels) if labels else {}
    os.makedirs(base_dir, exist_ok=True)
    present = sorted(int(v) for v in os.listdir(base_dir) if re.fullmatch(r"\d+", v))
    served = _served(recorded["policy"], present)
    for label, version in recorded.get("labels", {}).items():
        if version not in served:
            raise ValueError(
                f"version label {label}={version}: version {version} is not served by "
                f"{recorded['policy']} in {base_dir} (versions there: {present})"
            )
    files.write_json(path, recorded)
    return write_models_config(os.path.dirname(os.path.abspath(base_dir)))


def _served(policy, present):
    kind, numbers = parse_version_policy(policy)
    if kind == "all":
        return set(present)
    if kind == "latest":
        return set(present[-numbers[0] :])
    return set(numbers) & set(present)


# Beside models.config, for `--enable_batching --batching_parameters_file=...`: requests arriving
# within 2 ms are run as one batch of up to 32 images (TF Serving's BatchingParameters, text
# format). Written once; an operator's edits are kept.
BATCHING_FILE = "batching_parameters.txt"
BATCHING_PARAMETERS = """\
# TF Serving's BatchingParameters for `--enable_batching --batching_parameters_file=` this file:
# requests that arrive within batch_timeout_micros of each other run as one batch of at most
# max_batch_size images. Written once by keras-hourglass's export; your edits are kept.
max_batch_size { value: 32 }
batch_timeout_micros { value: 2000 }
max_enqueued_batches { value: 100 }
num_batch_threads { value: 4 }
"""


def write_models_config(root):
    """Writes `root/models.config` for `tensorflow_model_server --model_config_file`: one entry
    per model folder under `root` that holds numbered versions, with base paths as seen inside
    the tensorflow/serving container when `root` is mounted at /models, and each model's version
    policy (its `version_policy.json`, `set_version_policy`; default latest:1, TF Serving's own
    default, written out)."""
    names = sorted(
        n
        for n in os.listdir(root)
        if os.path.isdir(os.path.join(root, n))
        and any(re.fullmatch(r"\d+", v) for v in os.listdir(os.path.join(root, n)))
    )
    entries = []
    for n in names:
        recorded = {"policy": "latest:1"}
        path = os.path.join(root, n, POLICY_FILE)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                recorded = json.load(f)
        labels = "".join(
            f'    version_labels {{ key: "{label}" value: {version} }}\n'
            for label, version in sorted(recorded.get("labels", {}).items())
        )
        entries.append(
            f'  config {{\n    name: "{n}"\n    base_path: "/models/{n}"\n'
            f'    model_platform: "tensorflow"\n'
            f"    {_policy_text(*parse_version_policy(recorded['policy']))}\n{labels}  }}\n"
        )
    path = os.path.join(root, "models.config")
    files.write_text(path, f"model_config_list {{\n{''.join(entries)}}}\n")
    batching = os.path.join(root, BATCHING_FILE)
    if not os.path.exists(batching):
        files.write_text(batching, BATCHING_PARAMETERS)
    return path


def warmup_requests(server, model_name="hourglass"):
    """TF Serving's warm-up records for an export: one `PredictionLog` per serving signature (a
    mid-grey 64x64 image, JPEG for the encoded signatures, a box at its centre), serialized, for
    `assets.extra/tf_serving_warmup_requests`. Serving runs them when it loads a version, so the
    first user request does not pay for tracing and memory set-up. None when
    tensorflow-serving-api (the `serving` extra) is not installed."""
    try:
        from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    except ImportError:
        return None
    image = tf.fill([1, 64, 64, 3], tf.constant(128, tf.uint8))
    encoded = tf.io.encode_jpeg(image[0]).numpy()
    inputs = {
        "serving_default": {"images": image},
        "serving_boxes": {"images": image, "boxes": tf.constant([[31.5, 31.5, 0.32]])},
        "predict_encoded": {"images": tf.constant([encoded])},
        "predict_encoded_boxes": {
            "images": tf.constant([encoded]),
            "boxes": tf.constant([[31.5, 31.5, 0.32]]),
        },
        "predict_crops": {"crops": tf.fill([1, server.size, server.size, 3], 0.5)},
    }
    records = []
    for name in SIGNATURES:
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name=name)
        )
        for key, value in inputs[name].items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        log = prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)
        )
        records.append(log.SerializeToString())
    return records


def export_for_serving(
    model, base_dir, skeleton=None, version=None, flip_test=True, max_pixels=None
):
    """Writes `base_dir/<version>/`, a SavedModel for TF Serving, atomically, and
    `models.config` beside `base_dir`.

    Args:
        model: a trained stacked hourglass.
        base_dir: the model's folder in TF Serving's layout (e.g. saved_models/hourglass).
        skeleton: the `Skeleton` the model predicts (saved with it); default: the model's own.
        version: the version number; the next free one by default.
        flip_test: average with the horizontally flipped image inside the graph.
        max_pixels: refuse encoded images above this many pixels (from their header).

    Returns:
        the path of the version folder. Two exports at once into one folder both succeed: the
        one that finishes second takes the next free version (or fails when `version` was
        given and is taken).
    """
    server = PoseServer(model, skeleton, flip_test, max_pixels)
    chosen = version
    version = next_version(base_dir) if version is None else int(version)
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    target = os.path.join(base_dir, str(version))
    if os.path.exists(target):
        raise FileExistsError(f"{target} already exists; choose another --version.")
    os.makedirs(base_dir, exist_ok=True)
    _remove_stale_staging(base_dir)

    archive = keras.export.ExportArchive()
    archive.track(model)
    for name in SIGNATURES:
        function = getattr(server, name)
        archive.add_endpoint(name, function, input_signature=function.input_signature)
    staging = files.temporary_folder(prefix=f".export-{os.getpid()}-", dir=base_dir)
    try:
        archive.write_out(staging, verbose=False)
        os.makedirs(os.path.join(staging, "assets"), exist_ok=True)
        warmup = warmup_requests(server, os.path.basename(os.path.abspath(base_dir)))
        if warmup is not None:
            os.makedirs(os.path.join(staging, "assets.extra"), exist_ok=True)
            with tf.io.TFRecordWriter(
                os.path.join(staging, "assets.extra", "tf_serving_warmup_requests")
            ) as writer:
                for record in warmup:
                    writer.write(record)
        while True:
            files.write_json(
                os.path.join(staging, "assets", "hourglass.json"), metadata(server, flip_test)
            )
            try:
                # rename(2) onto an existing non-empty folder fails: the first export to finish
                # gets the version; the other takes the next free one (unless it was asked for).
                os.rename(staging, target)
                break
            except OSError:
                if chosen is not None or not os.path.exists(target):
                    raise FileExistsError(
                        f"{target} appeared while exporting; choose another --version."
                    ) from None
                version = next_version(base_dir)
                target = os.path.join(base_dir, str(version))
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)
    write_models_config(os.path.dirname(os.path.abspath(base_dir)))
    return target


def _remove_stale_staging(base_dir, older_than_s=3600):
    """Removes `.export-<pid>-*` folders of exports that were killed (their process is gone; a
    folder without a process id once it is an hour old), so they do not pile up."""
    for name in os.listdir(base_dir):
        match = re.fullmatch(r"\.export-(\d+)-.*", name)
        path = os.path.join(base_dir, name)
        if not (name.startswith(".export-") and os.path.isdir(path)):
            continue
        alive = False
        if match:
            try:
                os.kill(int(match.group(1)), 0)
                alive = True
            except (ProcessLookupError, ValueError):
                alive = False
            except PermissionError:
                alive = True
        if (match and not alive) or (
            not match and time.time() - os.path.getmtime(path) > older_than_s
        ):
            shutil.rmtree(path, ignore_errors=True)


class ServingModelError(ValueError):
    pass


def load_serving_model(path, need=("serving_default",)):
    """`tf.saved_model.load(path)` and its metadata, after checking the signatures in `need`
    exist with their documented inputs and outputs.

    Returns:
        (loaded SavedModel, metadata dict from assets/hourglass.json).
    """
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise ServingModelError(
            f"{path!r} is not a SavedModel version folder (no saved_model.pb); "
            "pass e.g. saved_models/hourglass/1"
        )
    loaded = tf.saved_model.load(path)
    missing = [n for n in need if n not in loaded.signatures]
    if missing:
        raise ServingModelError(
            f"The SavedModel {path!r} lacks the signature(s) {missing} (it has "
            f"{sorted(loaded.signatures)}); export the model with train/export.py."
        )
    for name in need:
        outputs = set(loaded.signatures[name].structured_outputs)
        if not set(OUTPUTS) <= outputs:
            raise ServingModelError(
                f"The SavedModel {path!r}: signature {name!r} returns {sorted(outputs)}, not "
                f"{list(OUTPUTS)}; export the model with train/export.py."
            )
    meta_path = os.path.join(path, "assets", "hourglass.json")
    if not os.path.isfile(meta_path):
        raise ServingModelError(
            f"The SavedModel {path!r} has no assets/hourglass.json (skeleton "
            "and settings); export the model with train/export.py."
        )
    with open(meta_path) as f:
        return loaded, json.load(f)


class SavedModelCrops:
    """An exported model's `predict_crops` signature as a crop predictor, like
    `inference.KerasCropPredictor`: NumPy crops in, keypoints in crop pixels and scores out (its flip
    test and codec fixed at export). `inference.predict_people` takes either."""

    def __init__(self, path):
        self.path = path
        self.loaded, self.meta = load_serving_model(path, need=("predict_crops",))
        self.signature = self.loaded.signatures["predict_crops"]
        self.description = ModelDescription.from_dict(self.meta, f"{path!r} (assets)")
        self.codec = HeatmapCodec.from_config(self.description.codec)
        self.skeleton = self.description.skeleton
        self.flip_test = self.description.flip_test
        self.input_size = int(self.codec.input_size[0])
        self.num_joints = self.skeleton.num_joints

    def __call__(self, crops):
        out = self.signature(crops=tf.constant(np.asarray(crops, np.float32)))
        return out["keypoints"].numpy(), out["scores"].numpy()
