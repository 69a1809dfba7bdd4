"""Where the network runs on a CPU: Keras (any backend, float32) or OpenVINO (bfloat16 on
processors with native bfloat16, int8 from a quantised export).

The crop predictors here have `inference.CropPredictor`'s interface (NumPy crops in [0, 1] ->
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
  `<cache>/openvino/<key>.xml` (`pretrained.cache_dir()`: ~/.cache/keras_hourglass or
  $KERAS_HOURGLASS_CACHE; `KERAS_HOURGLASS_CACHE=off` keeps nothing), keyed by a hash of the
  weights, the model and codec settings, the flip test and the Keras and OpenVINO versions: the
  next process that predicts with the same file reads it back instead of converting again.
- `load_predictor(path, ...)`: a crop predictor from a file: `.keras`, an exported OpenVINO
  model (`.xml`, `train/export.py --format openvino`), a SavedModel version folder, or a shipped
  model's name.
- `export_openvino`: writes the OpenVINO model (float32, float16 weights, or int8 quantised
  with NNCF on calibration crops) and its description (`<path>.json`).
"""

import contextlib
import functools
import importlib.util
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
from keras_hourglass.codec import HeatmapCodec
from keras_hourglass.inference import crop_predictor, flip_index_of, keypoints_of_crops

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
    "export_openvino",
    "load_predictor",
    "openvino_model",
    "predictor",
    "resolve_precision",
    "resolve_runtime",
]

RUNTIMES = ("auto", "keras", "openvino")
PRECISIONS = ("auto", "fp32", "bf16")
EXPORT_PRECISIONS = ("fp32", "fp16", "int8")
OUTPUTS = ("keypoints", "scores", "heatmaps")
_OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}


class RuntimeChoiceError(ValueError):
    """A runtime or precision that cannot be used here (not installed, no conversion path)."""


def openvino_installed():
    return importlib.util.find_spec("openvino") is not None


def _tensorflow_backend():
    return keras.backend.backend() == "tensorflow"


@functools.lru_cache(maxsize=1)
def cpu_has_bf16():
    """True when this CPU computes bfloat16 natively (AMX-BF16 or AVX512-BF16), as OpenVINO's
    CPU plugin reports it; False without OpenVINO."""
    if not openvino_installed():
        return False
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def _from_environment(name, allowed):
    chosen = os.environ.get(name, "auto")
    if chosen not in allowed:
        raise RuntimeChoiceError(f"{name} must be one of {allowed}, got {chosen!r}")
    return chosen


def resolve_runtime(runtime="auto"):
    """The runtime "auto" means here: the environment's `KERAS_HOURGLASS_RUNTIME` when set,
    else "openvino" when OpenVINO is installed and the model can be converted here (the
    TensorFlow backend traces it), else "keras". An explicit runtime is checked."""
    if runtime not in RUNTIMES:
        raise RuntimeChoiceError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    if runtime == "auto":
        chosen = _from_environment("KERAS_HOURGLASS_RUNTIME", RUNTIMES)
        if chosen != "auto":
            return resolve_runtime(chosen)
        return "openvino" if openvino_installed() and _tensorflow_backend() else "keras"
    if runtime == "openvino":
        if not openvino_installed():
            raise RuntimeChoiceError(
                "runtime 'openvino': OpenVINO is not installed (pip install "
                "'keras-hourglass[openvino]', or the pinned openvino in requirements.txt)"
            )
    return runtime


def resolve_precision(precision, runtime):
    """The precision "auto" means on `runtime`: the environment's `KERAS_HOURGLASS_PRECISION`
    when set, else "bf16" on OpenVINO where the CPU computes bfloat16 natively, else "fp32";
    the keras runtime predicts in float32."""
    if precision not in PRECISIONS:
        raise RuntimeChoiceError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if runtime == "keras":
        if precision == "bf16":
            raise RuntimeChoiceError(
                "precision 'bf16' is for the openvino runtime (the keras runtime predicts in "
                "float32)"
            )
        return "fp32"
    if precision == "auto":
        chosen = _from_environment("KERAS_HOURGLASS_PRECISION", PRECISIONS)
        if chosen != "auto":
            return resolve_precision(chosen, runtime)
        return "bf16" if cpu_has_bf16() else "fp32"
    if precision == "bf16" and not cpu_has_bf16():
        raise RuntimeChoiceError(
            "precision 'bf16': this CPU has no native bfloat16 (AMX or AVX512-BF16); use fp32"
        )
    return precision


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
    size = int(codec.input_size[0])
    box = getattr(model, "person_box_px", geometry.PERSON_BOX_PX)
    return {
        "model_config": model.get_config(),
        "codec": codec.get_config(),
        "skeleton": skeleton.get_config(),
        "person_box_px": box,
        "export": {
            "format": "openvino",
            "precision": precision,
            "flip_test": bool(flip_test),
            "keras_version": keras.__version__,
        },
        "inputs": {"crops": f"float32 [batch, {size}, {size}, 3] in [0, 1]"},
        "outputs": {
            "keypoints": f"float32 [batch, {skeleton.num_joints}, 2] crop pixels",
            "scores": f"float32 [batch, {skeleton.num_joints}] heatmap peak values",
            "heatmaps": f"float32 [batch, {size // 4}, {size // 4}, {skeleton.num_joints}]",
        },
        "crop": (
            f"person centre c, scale s (box side {box:g} * s px): crop pixel (i, j) samples the "
            f"image at c + ((j, i) - ({size} - 1) / 2) * {box:g} * s / {size} (bilinear, 0 "
            f"outside), values / 255; keypoints map back the same way"
        ),
    }


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

    from keras_hourglass.export import model_skeleton

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


class OpenVINOPredictor:
    """A crop predictor on OpenVINO's CPU plugin: NumPy crops in, keypoints in crop pixels and
    scores out (and heatmaps with `return_heatmaps`), as `inference.CropPredictor`.

    Args:
        converted: an `openvino.Model` (`openvino_model`) or the path of an exported .xml.
        codec, skeleton, flip_test: what the graph decodes with (from the .xml's description
            when loading a file).
        precision: "fp32" or "bf16": the CPU plugin's inference precision (bf16 needs a CPU
            with native bfloat16; an int8 file computes its quantised convolutions in int8
            either way).
        threads: CPU threads (0: OpenVINO's default, the machine's cores).
    """

    def __init__(self, converted, codec, skeleton, flip_test, precision="fp32", threads=0):
        import openvino as ov

        precision = resolve_precision(precision, "openvino")  # checks bf16 against the CPU
        self.codec, self.skeleton, self.flip_test = codec, skeleton, bool(flip_test)
        self.precision = precision
        self.input_size = int(codec.input_size[0])
        self.num_joints = skeleton.num_joints
        config = {
            "INFERENCE_PRECISION_HINT": _OV_PRECISION[precision],
            "PERFORMANCE_HINT": "LATENCY",
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        core = ov.Core()
        model = core.read_model(converted) if isinstance(converted, str) else converted
        names = [set(output.get_names()) for output in model.outputs]
        missing = [n for n in OUTPUTS if not any(n in s for s in names)]
        if missing:
            raise RuntimeChoiceError(f"the OpenVINO model has no output(s) {missing}")
        self._compiled = core.compile_model(model, "CPU", config)
        self._outputs = [self._compiled.output(name) for name in OUTPUTS]
        self._request = self._compiled.create_infer_request()

    @classmethod
    def from_file(cls, path, precision="auto", threads=0):
        """An exported .xml (`export_openvino`) with its `.json` description."""
        meta_path = str(path) + ".json"
        if not os.path.isfile(path):
            raise RuntimeChoiceError(f"{path!r}: no such OpenVINO model file")
        if not os.path.isfile(meta_path):
            raise RuntimeChoiceError(
                f"{path!r} has no description {meta_path!r} (skeleton, codec): export it with "
                "train/export.py --format openvino"
            )
        from keras_hourglass.skeletons import Skeleton

        with open(meta_path) as f:
            meta = json.load(f)
        try:
            codec = HeatmapCodec.from_config(meta["codec"])
            skeleton = Skeleton.from_config(meta["skeleton"])
            flip_test = bool(meta["export"]["flip_test"])
        except (KeyError, TypeError, ValueError) as error:
            raise RuntimeChoiceError(
                f"{meta_path!r}: not an OpenVINO export's description ({error})"
            ) from None
        predictor = cls(
            str(path),
            codec,
            skeleton,
            flip_test,
            resolve_precision(precision, "openvino"),
            threads,
        )
        predictor.person_box_px = float(meta.get("person_box_px", geometry.PERSON_BOX_PX))
        predictor.meta = meta
        return predictor

    def __call__(self, crops, return_heatmaps=False):
        crops = np.asarray(crops, np.float32)
        size = self.input_size
        if crops.ndim != 4 or crops.shape[1:] != (size, size, 3):
            raise ValueError(f"crops must be (N, {size}, {size}, 3), got {crops.shape}")
        if len(crops) == 0:
            k, h = self.num_joints, self.codec.heatmap_size
            empty = (np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32))
            return empty + ((np.zeros((0, *h, k), np.float32),) if return_heatmaps else ())
        results = self._request.infer({0: np.ascontiguousarray(crops)})
        outputs = [np.array(results[output]) for output in self._outputs]
        return tuple(outputs if return_heatmaps else outputs[:2])


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
CONVERSION_FORMAT = 1  # bump when what openvino_model writes changes


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


def _conversion_cache():
    """The folder of cached conversions, or None when the cache is off."""
    from keras_hourglass.pretrained import cache_dir

    if os.environ.get("KERAS_HOURGLASS_CACHE", "").lower() in ("off", "0", "none"):
        return None
    return os.path.join(cache_dir(), "openvino")


def cached_openvino_model(model, flip_test, codec):
    """`openvino_model(...)`, read from the disk cache when this model, settings and weights
    were converted before (by any process), else converted and saved there (atomically; a cache
    that cannot be written is only logged). Returns an `openvino.Model` or the cached .xml's
    path."""
    import openvino as ov

    folder = _conversion_cache()
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


def load_predictor(path, runtime="auto", precision="auto", flip_test=True):
    """A crop predictor from a file: a `.keras` model (on `runtime`), an exported OpenVINO
    `.xml`, a SavedModel version folder (its `predict_crops`, TensorFlow), or a shipped model's
    name (`keras_hourglass.pretrained`). Returns the predictor; `.person_box_px` is set on it."""
    path = os.path.expanduser(str(path))
    if not os.path.exists(path):
        from keras_hourglass.pretrained import resolve_model

        path, _ = resolve_model(path, "load_predictor:")
    if os.path.isdir(path):
        from keras_hourglass.export import SavedModelCrops

        if runtime not in ("auto", "tensorflow"):
            raise RuntimeChoiceError(
                f"{path!r} is a SavedModel: it runs on TensorFlow (export the .keras model with "
                "--format openvino for OpenVINO)"
            )
        made = SavedModelCrops(path)
        made.person_box_px = float(made.meta.get("person_box_px", geometry.PERSON_BOX_PX))
        return made
    if path.endswith(".xml"):
        if runtime not in ("auto", "openvino"):
            raise RuntimeChoiceError(f"{path!r} is an OpenVINO model: runtime must be openvino")
        resolve_runtime("openvino")
        return OpenVINOPredictor.from_file(path, precision)
    model = keras.saving.load_model(path, compile=False)
    made = predictor(model, flip_test, runtime, precision)
    return made
