"""Where the network runs on a CPU: Keras (any backend, float32) or OpenVINO (bfloat16 on
processors with native bfloat16, int8 from a quantised export).

The crop predictors here have `inference.KerasCropPredictor`'s interface (NumPy crops in [0, 1] ->
keypoints in crop pixels and scores; `input_size`, `num_joints`, `skeleton`, `codec`,
`flip_test`), so `estimate_keypoints`, `estimate_poses`, `predict_people` and the commands take
any of them. The OpenVINO graph is the whole crop path of `inference.keypoints_of_crops` (flip
test, last-stack heatmaps, the model's codec), converted from the TensorFlow trace of that
function: the same computation as the SavedModel's `predict_crops`, compiled by OpenVINO's CPU
plugin (oneDNN), which runs the convolutions in bfloat16 on AMX/AVX512-BF16 processors when
asked to (`precision="bf16"`; float32 accumulation) and in int8 for a quantised file.

- `resolve_runtime` / `resolve_precision`: what "auto" means on this machine (docs/runtimes.md).
- `predictor(model, ...)`: a `.keras` model's crop predictor on the chosen runtime (kept with
  the model; rebuilt when its weights change). The OpenVINO conversion (a TensorFlow trace, 5 s
  for a small model, minutes for the paper's) is also kept on disk, in
  `<cache>/openvino/<key>.xml` (`files.cache_dir()`: ~/.cache/keras_hourglass or
  $KERAS_HOURGLASS_CACHE; `KERAS_HOURGLASS_CACHE=off` keeps nothing), keyed by a hash of the
  weights, the model and codec settings, the flip test and the Keras and OpenVINO versions: the
  next process that predicts with the same file reads it back instead of converting again.
  A `.keras` file's conversion is also recorded under the file's own key
  (`note_file_conversion`), so the next process runs it through `keras_hourglass.deploy`
  without loading Keras at all. `deploy` holds the Keras-free half (the OpenVINO predictor,
  runtime and precision choices, the pose loop); this module re-exports it.
- `export_openvino`: writes the OpenVINO model (float32, float16 weights, or int8 quantised
  with NNCF on calibration crops) and its description (`<path>.json`).
"""

import contextlib
import io
import json
import logging
import os
import shutil
import time
import weakref

import keras
import numpy as np

from keras_hourglass import files, geometry
from keras_hourglass.deploy import (
    CONVERSION_FORMAT,
    EXPORT_FORMATS,
    EXPORT_PRECISIONS,
    OUTPUTS,
    PRECISIONS,
    RUNTIMES,
    OpenVINOPredictor,
    RuntimeChoiceError,
    conversion_cache,
    cpu_has_bf16,
    describe,
    estimate_keypoints,
    openvino_installed,
    remember_file_conversion,
    require_openvino,
    resolve_precision,
    setting_from_environment,
)
from keras_hourglass.inference import crop_predictor, flip_index_of, keypoints_of_crops
from keras_hourglass.model import LENT
from keras_hourglass.skeletons import named_joints

log = logging.getLogger(__name__)

__all__ = [
    "OUTPUTS",
    "PRECISIONS",
    "RUNTIMES",
    "OpenVINOPredictor",
    "RuntimeChoiceError",
    "after_the_network",
    "calibration_crops",
    "cpu_has_bf16",
    "estimate_poses",
    "EXPORT_FORMATS",
    "export_model",
    "export_openvino",
    "note_file_conversion",
    "openvino_model",
    "predictor",
    "resolve_precision",
    "resolve_runtime",
]


def _tensorflow_backend():
    return keras.backend.backend() == "tensorflow"


def resolve_runtime(runtime="auto"):
    """The runtime "auto" means here: the environment's `KERAS_HOURGLASS_RUNTIME` when set,
    else "openvino" when OpenVINO is installed and the model can be converted here (the
    TensorFlow backend traces it), else "keras". An explicit runtime is checked."""
    if runtime not in RUNTIMES:
        raise RuntimeChoiceError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    if runtime == "auto":
        chosen = setting_from_environment("KERAS_HOURGLASS_RUNTIME", RUNTIMES)
        if chosen != "auto":
            return resolve_runtime(chosen)
        return "openvino" if openvino_installed() and _tensorflow_backend() else "keras"
    if runtime == "openvino":
        require_openvino()
    return runtime


# --- conversion ------------------------------------------------------------------------------


def openvino_model(model, flip_test=True, codec=None):
    """`keypoints_of_crops` of a Keras model (TensorFlow backend) as an `openvino.Model`: input
    `crops` [batch, S, S, 3] float32 in [0, 1]; outputs `keypoints` [batch, K, 2] in crop
    pixels, `scores` [batch, K], `heatmaps` [batch, S/4, S/4, K]."""
    if not _tensorflow_backend():
        raise RuntimeChoiceError(
            "converting a .keras model to OpenVINO traces it with TensorFlow: run on the "
            "TensorFlow backend, or export it once (train/export.py --format openvino) and "
            "load the .xml file on any backend"
        )
    import openvino as ov
    import tensorflow as tf

    codec = codec or model.codec
    flip_index = flip_index_of(model, flip_test)
    size = int(codec.input_size[0])
    spec = tf.TensorSpec([None, size, size, 3], tf.float32, name="crops")

    @tf.function(input_signature=[spec], autograph=False)
    def run(crops):
        return keypoints_of_crops(model, crops, codec, flip_index)

    converted = ov.convert_model(run.get_concrete_function())
    for output, name in zip(converted.outputs, OUTPUTS):
        output.get_tensor().set_names({name})
    converted.inputs[0].get_tensor().set_names({"crops"})
    return converted


def _description(model, codec, skeleton, flip_test, precision):
    """The OpenVINO file's description (`deploy.describe`, with the crop's inputs and outputs)."""
    size = int(codec.input_size[0])
    box = getattr(model, "person_box_px", geometry.PERSON_BOX_PX)
    k = skeleton.num_joints
    return describe(
        model,
        codec,
        skeleton,
        flip_test,
        "openvino",
        precision,
        inputs={"crops": f"float32 [batch, {size}, {size}, 3] in [0, 1]"},
        outputs={
            "keypoints": f"float32 [batch, {k}, 2] crop pixels",
            "scores": f"float32 [batch, {k}] heatmap peak values",
            "heatmaps": f"float32 [batch, {size // 4}, {size // 4}, {k}]",
        },
        crop=(
            f"person centre c, scale s (box side {box:g} * s px): crop pixel (i, j) samples the "
            f"image at c + ((j, i) - ({size} - 1) / 2) * {box:g} * s / {size} (bilinear, 0 "
            f"outside), values / 255; keypoints map back the same way"
        ),
    )


def calibration_crops(model, records, count=300, batch_size=32):
    """The first `count` people of `records` cropped as the model sees them at test time
    (float32 (N, S, S, 3) in [0, 1], no augmentation): int8 calibration data."""
    from keras_hourglass import inputs

    people = records.subset(None, min(count, len(records)))
    crops = []
    for batch in inputs.batches(
        inputs.pose_dataset(people, people.skeleton, model.codec, batch_size, False)
    ):
        crops.append(np.asarray(batch[0], np.float32))
        if sum(len(c) for c in crops) >= len(people):
            break
    return np.concatenate(crops)[: len(people)]


def export_openvino(
    model,
    path,
    skeleton=None,
    flip_test=True,
    precision="fp32",
    calibration=None,
    calibration_size=300,
):
    """Writes the model's crop predictor as an OpenVINO model (`path` .xml + .bin) and its
    description (`path`.json: skeleton, codec, crop convention, precision).

    Args:
        model: a stacked hourglass (TensorFlow backend for the conversion).
        path: the .xml file to write (the .bin beside it).
        skeleton: default the model's own.
        flip_test: the flip test inside the graph.
        precision: "fp32" (weights and computation in float32; the runtime may still compute
            in bfloat16 where asked), "fp16" (weights stored in float16: half the file, the
            same computation after loading), or "int8" (NNCF post-training quantisation of the
            network, calibrated on `calibration`; the flip average and the decoding stay in
            float: `after_the_network`).
        calibration: int8 only: float32 crops (N, S, S, 3) in [0, 1] of real people (e.g.
            `calibration_crops` of the training data); N >= 1.
        calibration_size: crops NNCF reads for its statistics (at most N).
    """
    import openvino as ov

    from keras_hourglass.skeletons import model_skeleton

    if precision not in EXPORT_PRECISIONS:
        raise ValueError(f"precision must be one of {EXPORT_PRECISIONS}, got {precision!r}")
    if not str(path).endswith(".xml"):
        raise ValueError(f"an OpenVINO model is an .xml file (and its .bin): got {path!r}")
    skeleton = model_skeleton(model, skeleton)
    if getattr(model, "skeleton", None) is None:
        model.skeleton = skeleton
    converted = openvino_model(model, flip_test)
    if precision == "int8":
        if calibration is None or len(calibration) == 0:
            raise ValueError("precision 'int8' needs calibration crops of real people")
        import nncf

        quiet = log.getEffectiveLevel() > logging.INFO
        if quiet:  # -q: NNCF's ~100 INFO lines too
            nncf.set_log_level(logging.WARNING)
        crops = np.asarray(calibration, np.float32)
        dataset = nncf.Dataset(list(crops), lambda crop: crop[None])
        full = converted
        # NNCF's progress bars (rich, on the process's stdout) have no switch of their own.
        with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
            converted = nncf.quantize(
                converted,
                dataset,
                subset_size=min(calibration_size, len(crops)),
                ignored_scope=nncf.IgnoredScope(names=after_the_network(converted), validate=False),
            )
        check = int8_check(full, converted, model.codec, skeleton, flip_test, crops[:64])
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    scratch = files.temporary_folder(prefix=".export-", dir=directory)
    try:
        tmp = os.path.join(scratch, "model.xml")
        ov.save_model(converted, tmp, compress_to_fp16=precision == "fp16")
        meta = _description(model, model.codec, skeleton, flip_test, precision)
        if precision == "int8":
            meta["export"]["calibration_crops"] = int(min(calibration_size, len(calibration)))
            meta["export"]["int8_check"] = check
        files.write_json(str(path) + ".json", meta)
        os.replace(os.path.join(scratch, "model.bin"), str(path)[: -len(".xml")] + ".bin")
        os.replace(tmp, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return path


def after_the_network(converted):
    """The friendly names of the operations of an OpenVINO crop predictor that no convolution
    depends on: the flip test's average and the codec (arg-max, quarter-pixel shift, mapping to
    crop pixels). int8 quantisation leaves them in float: NNCF's defaults otherwise put
    quantisers on the decoding's comparisons and gathers (the arg-max compares the heatmaps with
    their quantised maximum), which made the keypoints disagree with the heatmaps (held-out
    PCK 32.16 -> 1.44 on the small LSPET model; docs/BENCHMARKS.md)."""
    convolutions = [op for op in converted.get_ordered_ops() if op.get_type_name() == "Convolution"]
    needed, stack = set(), list(convolutions)
    while stack:
        for port in stack.pop().inputs():
            source = port.get_source_output().get_node()
            if source.get_friendly_name() not in needed:
                needed.add(source.get_friendly_name())
                stack.append(source)
    kept = {"Convolution", "Parameter", "Constant", "Result"}
    return [
        op.get_friendly_name()
        for op in converted.get_ordered_ops()
        if op.get_friendly_name() not in needed and op.get_type_name() not in kept
    ]


def int8_check(full, quantised, codec, skeleton, flip_test, crops):
    """How far the quantised model's keypoints move from the float32 model's on `crops` (the
    calibration people), in heatmap pixels: {"median", "p90", "within_1px"}; logs a warning
    when fewer than 90% stay within one heatmap pixel (post-training int8 does not suit every
    model: docs/runtimes.md)."""
    a = OpenVINOPredictor(full, codec, skeleton, flip_test, "fp32")(crops)[0]
    b = OpenVINOPredictor(quantised, codec, skeleton, flip_test, "fp32")(crops)[0]
    stride = codec.input_size[0] / codec.heatmap_size[0]
    moved = np.linalg.norm(a - b, axis=-1).ravel() / stride
    check = {
        "people": int(len(crops)),
        "median": round(float(np.median(moved)), 3),
        "p90": round(float(np.percentile(moved, 90)), 3),
        "within_1px": round(float(np.mean(moved <= 1.0)), 4),
    }
    message = (
        f"int8: on {len(crops)} calibration people, {check['within_1px']:.0%} of the keypoints "
        f"stay within one heatmap pixel of float32's (median shift {check['median']} px)"
    )
    if check["within_1px"] < 0.9:
        log.warning(
            f"{message}: this model loses accuracy in int8; measure it on held-out people "
            "(eval) or use bf16/fp32 (docs/runtimes.md)"
        )
    else:
        log.info(message)
    return check


# --- predictors ------------------------------------------------------------------------------


def _weights_fingerprint(model):
    """A cheap fingerprint of the weights (every 61st value of each, and the whole of small
    ones): training or loading weights changes it, so a converted copy is rebuilt."""
    import hashlib

    digest = hashlib.sha1()
    for weight in model.weights:
        values = np.asarray(keras.ops.convert_to_numpy(weight.value)).ravel()
        digest.update(np.ascontiguousarray(values if values.size < 4096 else values[::61]))
    return digest.hexdigest()


_CONVERTED = weakref.WeakKeyDictionary()


def conversion_key(model, flip_test, codec):
    """The disk cache's key of a conversion: a SHA-256 of every weight's bytes, the model's and
    codec's settings, the flip test and the Keras and OpenVINO versions."""
    import hashlib

    import openvino as ov

    digest = hashlib.sha256()
    for weight in model.weights:
        values = np.asarray(keras.ops.convert_to_numpy(weight.value))
        digest.update(weight.path.encode() + str(values.dtype).encode())
        digest.update(np.ascontiguousarray(values).tobytes())
    settings = [
        model.get_config(),
        codec.get_config(),
        bool(flip_test),
        keras.__version__,
        ov.__version__,
        CONVERSION_FORMAT,
    ]
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:32]


def cached_openvino_model(model, flip_test, codec):
    """`openvino_model(...)`, read from the disk cache when this model, settings and weights
    were converted before (by any process), else converted and saved there (atomically; a cache
    that cannot be written is only logged). Returns an `openvino.Model` or the cached .xml's
    path."""
    import openvino as ov

    folder = conversion_cache()
    path = None
    if folder is not None:
        path = os.path.join(folder, conversion_key(model, flip_test, codec) + ".xml")
        if os.path.isfile(path) and os.path.isfile(path[: -len(".xml")] + ".bin"):
            log.debug(f"OpenVINO conversion of {model.name} read from {path}")
            return path
    start = time.perf_counter()
    converted = openvino_model(model, flip_test, codec)
    note = ""
    if path is not None:
        try:
            os.makedirs(folder, exist_ok=True)
            scratch = files.temporary_folder(prefix=".convert-", dir=folder)
            try:
                ov.save_model(converted, os.path.join(scratch, "model.xml"), compress_to_fp16=False)
                os.replace(os.path.join(scratch, "model.bin"), path[: -len(".xml")] + ".bin")
                os.replace(os.path.join(scratch, "model.xml"), path)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            note = f"; kept in {folder} for the next run"
        except OSError as error:
            note = f"; not kept ({error})"
    log.info(
        f"Converted {model.name} to OpenVINO in {time.perf_counter() - start:.0f} s (once per "
        f"model and weights{note})"
    )
    return converted


def predictor(model, flip_test=True, runtime="auto", precision="auto", codec=None):
    """`model`'s crop predictor on `runtime` ("auto", "keras" or "openvino") at `precision`
    ("auto", "fp32", "bf16"): the Keras one is `inference.crop_predictor`; the OpenVINO one is
    converted once per model, settings and weights (a model trained further is converted
    again)."""
    runtime = resolve_runtime(runtime)
    precision = resolve_precision(precision, runtime)
    if runtime == "keras":
        return crop_predictor(model, flip_test, codec)
    codec = codec or model.codec
    skeleton = getattr(model, "skeleton", None)
    if flip_test and skeleton is None:
        flip_index_of(model, flip_test)  # raises the flip test's own message
    key = (bool(flip_test), repr(codec.get_config()))
    fingerprint = _weights_fingerprint(model)
    cache = _CONVERTED.setdefault(model, {})
    if key not in cache or cache[key][0] != fingerprint:
        cache[key] = (fingerprint, cached_openvino_model(model, flip_test, codec), {})
    made = cache[key][2]
    if precision not in made:
        log.debug(
            f"OpenVINO predictor for {model.name}: flip test {'on' if flip_test else 'off'}, "
            f"{precision}"
        )
        made[precision] = OpenVINOPredictor(cache[key][1], codec, skeleton, flip_test, precision)
        made[precision].person_box_px = getattr(model, "person_box_px", geometry.PERSON_BOX_PX)
    return made[precision]


def export_model(model, path, format="savedmodel", skeleton=None, flip_test=True, **options):
    """Writes `model` in `format`, with its description (`deploy.describe`), through that
    format's writer: the one entry point of every export (train/export.py calls it).

    - "savedmodel": `export.export_for_serving(model, path, ...)`, `path` the model's folder in
      TF Serving's layout; options `version`, `max_pixels`.
    - "onnx", "tflite": `export.export_edge` (the crop predictor); option `opset`.
    - "openvino": `export_openvino` (.xml + .bin); options `precision` ("fp32", "fp16",
      "int8"), `calibration` (crops, for int8), `calibration_size`.

    Returns the written path (a SavedModel's version folder, or the file)."""
    from keras_hourglass import export

    writers = {
        "savedmodel": lambda: export.export_for_serving(
            model, path, skeleton, flip_test=flip_test, **options
        ),
        "onnx": lambda: export.export_edge(model, path, skeleton, "onnx", flip_test, **options),
        "tflite": lambda: export.export_edge(model, path, skeleton, "tflite", flip_test, **options),
        "openvino": lambda: export_openvino(model, path, skeleton, flip_test, **options),
    }
    if format not in writers:
        raise ValueError(f"format must be one of {EXPORT_FORMATS}, got {format!r}")
    return writers[format]()


def _model_predictor(model, flip_test, runtime, precision):
    return predictor(model, flip_test, runtime, precision)  # (estimate_poses' argument hides it)


def estimate_poses(
    model,
    images,
    boxes=None,
    flip_test=True,
    batch_size=16,
    predictor=None,
    runtime="auto",
    precision="auto",
    whole_image=False,
):
    """Named keypoints of the people in each image, in the image's own pixels.

    Each person is cropped as in training (NumPy/OpenCV, anti-aliased when shrinking), the crops
    go through `KerasCropPredictor` (flip test, the model's codec) and the keypoints are mapped back
    to the image. Runs on any Keras backend, without TensorFlow.

    Args:
        model: a stacked hourglass that knows its skeleton (`model.skeleton`).
        images: an image or a list of them: (H, W, 3) uint8 (or [0, 1] float) RGB arrays, or
            paths of photo files (read upright: `media.read_image`).
        boxes: the people, per image (one entry per image; for a single image, its entry):
            - None (default): found: the person detector's people (mediapipe's wheel; without
              it the whole image), each re-framed from its pose as the model was trained
              (`framing.search_people`); people whose pose is not confident are left out;
            - a list of boxes: `boxes.Box` (x, y, w, h in pixels, as `Box.around(cx, cy,
              side)` for a crop given by its centre), or [x, y, w, h] (COCO's), each person
              re-framed from its pose and reported;
            - (centre x, centre y, scale): one person whose crop is the square of side
              `model.person_box_px * scale` (MPII's convention), predicted once, as given.
        whole_image: with boxes None, the whole image is one person, predicted once (the
            behaviour before people were found).
        flip_test: average with the mirrored crop.
        batch_size: crops per network call.
        predictor: a crop predictor to use (default: `runtimes.predictor(model, flip_test,
            runtime, precision)`).
        runtime: where the network runs: "keras" (this backend, float32: `crop_predictor`),
            "openvino" (converted once per model and weights; the fastest on CPUs), or "auto"
            (default): the environment's `KERAS_HOURGLASS_RUNTIME` if set, else openvino when
            it is installed and the backend is TensorFlow, else keras (docs/runtimes.md).
        precision: OpenVINO's: "bf16", "fp32", or "auto" (`KERAS_HOURGLASS_PRECISION` if set,
            else bf16 where the CPU computes it natively).

    Returns:
        a list, per image: for people found or a list of boxes, a list of people, each
        {joint name: {"x", "y", "confidence"}} (`skeletons.named_joints`), the most confident
        first; for a (centre x, centre y, scale) box or `whole_image`, that one person's dict.
    """
    skeleton = getattr(model, "skeleton", None)
    if skeleton is None:
        raise ValueError(
            "This model was saved without its skeleton: rebuild it with `skeleton=` (or use the "
            "commands' --skeleton) to name its keypoints."
        )
    if predictor is None:
        predictor = _model_predictor(model, flip_test, runtime, precision)
    person_box_px = getattr(model, "person_box_px", geometry.PERSON_BOX_PX)
    single = isinstance(images, (str, os.PathLike)) or (
        isinstance(images, np.ndarray) and images.ndim == 3
    )
    images = (
        [_image_array(images, 0)]
        if single
        else [_image_array(image, i) for i, image in enumerate(images)]
    )
    if boxes is not None:
        boxes = [boxes] if single else list(boxes)
        if len(boxes) != len(images):
            raise ValueError(f"boxes: {len(boxes)} boxes for {len(images)} images")
    if boxes is None and whole_image or boxes is not None and all(map(_is_crop, boxes)):
        keypoints, scores = estimate_keypoints(predictor, images, boxes, person_box_px, batch_size)
        return [named_joints(skeleton.joint_names, kp, sc) for kp, sc in zip(keypoints, scores)]
    poses = []
    for i, image in enumerate(images):
        given = None if boxes is None else _person_boxes(boxes[i], i)
        keypoints, scores = _people_of(predictor, image, given, skeleton, person_box_px, i)
        poses.append(
            [named_joints(skeleton.joint_names, kp, sc) for kp, sc in zip(keypoints, scores)]
        )
    return poses


def _image_array(image, index):
    """An image argument as an (H, W, 3) array: a path is read upright (`media.read_image`)."""
    if isinstance(image, (str, os.PathLike)):
        from keras_hourglass.media import read_image

        return read_image(os.fspath(image))[1]
    return np.asarray(image)


def _is_crop(box):
    """Whether one image's `boxes` entry is MPII's (centre x, centre y, scale) triple."""
    from keras_hourglass.boxes import Box  # the data layer's: not imported with the model

    return (
        box is not None and not isinstance(box, (list, Box)) and np.ndim(box) == 1 and len(box) == 3
    )


def _person_boxes(entry, index):
    """One image's list of boxes (`Box` or [x, y, w, h]) as `Box`es; a `BoxError` naming the
    image's index otherwise."""
    from keras_hourglass.boxes import Box, BoxError, to_box

    if entry is None:
        return None
    if isinstance(entry, Box):
        entry = [entry]
    if not isinstance(entry, (list, tuple)):
        raise BoxError(
            f"boxes[{index}]: expected a list of Box or [x, y, w, h], or (cx, cy, scale); got "
            f"{type(entry).__name__}"
        )
    return [to_box(box, f"boxes[{index}][{j}]") for j, box in enumerate(entry)]


_DETECTOR = {}


def _people_of(predictor, image, boxes, skeleton, person_box_px, index):
    """One image's people: given `boxes` refined, or (None) found; (keypoints, scores)."""
    from keras_hourglass import framing

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or min(image.shape[:2]) < 1:
        raise ValueError(f"images[{index}]: expected (H, W, 3) RGB, got {image.shape}")
    if image.dtype == np.uint8:
        pixels, floats = image, image.astype(np.float32) / 255.0
    else:
        floats = np.asarray(image, np.float32)
        pixels = np.clip(np.round(floats * 255.0), 0, 255).astype(np.uint8)
    if boxes is not None:
        height, width = image.shape[:2]
        for box in boxes:
            box.check_inside(width, height, f"images[{index}]")
        framings = [framing.Framing.of_box(box, person_box_px) for box in boxes]
        refined = framing.refine(predictor, floats, framings, skeleton)
        return refined.keypoints, refined.scores
    if "detector" not in _DETECTOR:
        from keras_hourglass.detect import DetectorError, PersonDetector

        try:
            _DETECTOR["detector"] = PersonDetector()
        except DetectorError as error:
            log.warning(f"{error}; without it the whole image is the first box")
            _DETECTOR["detector"] = None
    found = framing.search_people(
        predictor, floats, pixels, skeleton, _DETECTOR["detector"], person_box_px
    )
    return found.people.keypoints, found.people.scores


def note_file_conversion(path, model, flip_test, skeleton_name=None, skeleton=None):
    """After `predictor(model, ...)` converted (or found) the OpenVINO model of the `.keras`
    file at `path`: records it under the file's key too (`deploy.cached_file_predictor`), so the
    next process predicts with that file without loading Keras. `skeleton`: the joints the
    caller names (`skeleton_name`'s; default the model's)."""
    folder = conversion_cache()
    if folder is None:
        return None
    codec = model.codec
    xml = os.path.join(folder, conversion_key(model, flip_test, codec) + ".xml")
    skeleton = skeleton or model.skeleton
    description = _description(model, codec, skeleton, flip_test, "fp32")
    return remember_file_conversion(path, flip_test, skeleton_name, xml, description)


LENT["estimate_poses"] = estimate_poses  # StackedHourglass.estimate_poses
