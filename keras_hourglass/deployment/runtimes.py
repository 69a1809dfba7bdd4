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
  (`note_file_conversion`), so the next process runs it through `keras_hourglass.deployment.core`
  without loading Keras at all. `deploy` holds the Keras-free half (the OpenVINO predictor,
  runtime and precision choices, the pose loop); this module re-exports it.
- `traced_crop_path`: the crop path as a TensorFlow function, which the OpenVINO conversion
  here and the exporters (`deployment.export`: OpenVINO, ONNX, TFLite files) start from.
"""

import json
import logging
import os
import shutil
import time
import weakref

import keras
import numpy as np

from keras_hourglass import files
from keras_hourglass.deployment.core import (
    CONVERSION_FORMAT,
    OUTPUTS,
    PRECISIONS,
    RUNTIMES,
    OpenVINOPredictor,
    RuntimeChoiceError,
    conversion_cache,
    cpu_has_bf16,
    crop_description,
    openvino_installed,
    remember_file_conversion,
    require_openvino,
    resolve_precision,
    setting_from_environment,
)
from keras_hourglass.deployment.inference import crop_predictor, flip_index_of, keypoints_of_crops

log = logging.getLogger(__name__)

__all__ = [
    "OUTPUTS",
    "PRECISIONS",
    "RUNTIMES",
    "OpenVINOPredictor",
    "RuntimeChoiceError",
    "cpu_has_bf16",
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


def traced_crop_path(model, flip_test=True, codec=None, named=False):
    """`keypoints_of_crops` of a Keras model as a `tf.function` of float32 crops [batch, S, S,
    3] in [0, 1] ("crops") returning (keypoints, scores, heatmaps), or with `named` a dict of
    them by `OUTPUTS`' names. Needs the TensorFlow backend."""
    if not _tensorflow_backend():
        raise RuntimeChoiceError(
            "converting a .keras model to OpenVINO, ONNX or TFLite traces it with TensorFlow: "
            "run on the TensorFlow backend, or export it once (train/export.py --format "
            "openvino) and load the .xml file on any backend"
        )
    import tensorflow as tf

    codec = codec or model.codec
    flip_index = flip_index_of(model, flip_test)
    size = int(codec.input_size[0])
    spec = tf.TensorSpec([None, size, size, 3], tf.float32, name="crops")

    @tf.function(input_signature=[spec], autograph=False)
    def predict_crops(crops):
        outputs = keypoints_of_crops(model, crops, codec, flip_index)
        return dict(zip(OUTPUTS, outputs)) if named else outputs

    return predict_crops


def openvino_model(model, flip_test=True, codec=None):
    """`keypoints_of_crops` of a Keras model (TensorFlow backend) as an `openvino.Model`: input
    `crops` [batch, S, S, 3] float32 in [0, 1]; outputs `keypoints` [batch, K, 2] in crop
    pixels, `scores` [batch, K], `heatmaps` [batch, S/4, S/4, K]."""
    import openvino as ov

    run = traced_crop_path(model, flip_test, codec)
    converted = ov.convert_model(run.get_concrete_function())
    for output, name in zip(converted.outputs, OUTPUTS):
        output.get_tensor().set_names({name})
    converted.inputs[0].get_tensor().set_names({"crops"})
    return converted


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
    return made[precision]


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
    description = crop_description(model, codec, skeleton, flip_test, "openvino", "fp32")
    return remember_file_conversion(path, flip_test, skeleton_name, xml, description)
