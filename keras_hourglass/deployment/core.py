"""The part of deployment that needs neither Keras nor TensorFlow: running an exported (or
converted) model on OpenVINO, choosing its precision, and the pose loop around it (crop each
person as in training, predict, map the keypoints back to the image).

An exported OpenVINO `.xml` and a `.keras` file converted once before (by any process: the
file-keyed entries of the conversion cache below) predict through this module alone, so
`hourglass-predict` on them starts without importing Keras or TensorFlow (a second or two
instead of 8 s; docs/BENCHMARKS.md). `runtimes` (conversion, export, the Keras runtime)
re-exports everything here.

The conversion cache, `<cache>/openvino/` (`files.cache_dir()`: $KERAS_HOURGLASS_CACHE or
~/.cache/keras_hourglass; KERAS_HOURGLASS_CACHE=off turns it off): `<weights key>.xml/.bin`
(`runtimes.cached_openvino_model`, keyed by the weights' bytes, so any Keras model with the same
weights and settings finds it) and `file-<file key>.json` (this module: the key of a `.keras`
file's bytes and the settings, naming the `.xml` it converts to and its description).
"""

import dataclasses
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import typing

import numpy as np

from keras_hourglass import files, geometry

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "keras", "openvino")
PRECISIONS = ("auto", "fp32", "bf16")
EXPORT_PRECISIONS = ("fp32", "fp16", "int8")
EXPORT_FORMATS = ("savedmodel", "onnx", "tflite", "openvino")  # export.WRITERS' keys
# One spelling per format: "saved_model" (or no format) is what SavedModels exported before said.
OLD_SPELLINGS = {"saved_model": "savedmodel"}
OUTPUTS = ("keypoints", "scores", "heatmaps")
_OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}
CONVERSION_FORMAT = 1  # bump when what runtimes.openvino_model writes changes


class RuntimeChoiceError(ValueError):
    """A runtime or precision that cannot be used here (not installed, no conversion path)."""


@typing.runtime_checkable
class CropPredictor(typing.Protocol):
    """What every runtime's predictor is, and all the pose loop (`estimate_keypoints`),
    `inference.predict_people` and the commands ask of it: float32 crops (N, S, S, 3) in [0, 1]
    in; keypoints (N, K, 2) in crop pixels and scores (N, K) out (NumPy). Implemented by
    `inference.KerasCropPredictor` (Keras), `OpenVINOPredictor` and `export.SavedModelCrops`; a
    new runtime implements it in one file and is chosen in `runtimes` (docs/layers.md)."""

    input_size: int  # S
    num_joints: int  # K
    skeleton: object  # skeletons.Skeleton: the joints' names and flip pairs
    flip_test: bool

    def __call__(self, crops): ...


class DescriptionError(ValueError):
    """A description file that is not one (missing or malformed fields)."""


@dataclasses.dataclass(frozen=True)
class ModelDescription:
    """What using an exported model takes, whatever its format: the JSON written beside an
    OpenVINO `.xml` (`<file>.xml.json`) and inside a SavedModel (`assets/hourglass.json`), by
    `describe` for both. The file may hold more (the model's config, the signatures, the
    versions that wrote it): `fields` keeps the whole of it.

    Attributes:
        skeleton: the joints (`skeletons.Skeleton`).
        codec: the heatmap codec's config (input size, heatmap size, sigma, decoding rule).
        flip_test: whether the exported graph averages the mirrored crop.
        person_box_px: the side, in pixels, of a person box of scale 1 (the crop convention).
        format: "savedmodel", "openvino", "onnx", "tflite" (`EXPORT_FORMATS`; exports before
            one spelling said "saved_model", read as "savedmodel").
        precision: "fp32", "fp16" or "int8" (what the file stores).
    """

    skeleton: object
    codec: dict
    flip_test: bool
    person_box_px: float = geometry.PERSON_BOX_PX
    format: str = "savedmodel"
    precision: str = "fp32"
    fields: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @property
    def input_size(self):
        return _codec_sizes(self.codec)[0]

    @property
    def heatmap_size(self):
        return _codec_sizes(self.codec)[1]

    @classmethod
    def from_dict(cls, meta, where="the description"):
        """A description from its JSON; older SavedModel exports, which saved the skeleton's
        name and joints only, name a built-in skeleton. Raises `DescriptionError` naming
        `where`."""
        from keras_hourglass.skeletons import Skeleton, get_skeleton

        try:
            table = meta["skeleton"]
            if {"groups", "normalizer"} <= set(table):
                skeleton = Skeleton.from_config(table)
            else:
                skeleton = get_skeleton(table["name"])
            codec = dict(meta["codec"])
            _codec_sizes(codec)
            export = meta["export"]
            return cls(
                skeleton=skeleton,
                codec=codec,
                flip_test=bool(export["flip_test"]),
                person_box_px=float(meta.get("person_box_px", geometry.PERSON_BOX_PX)),
                format=_spelled(export.get("format", "savedmodel")),
                precision=str(export.get("precision", "fp32")),
                fields=meta,
            )
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
            raise DescriptionError(
                f"{where}: not an exported model's description ({type(error).__name__}: {error})"
            ) from None

    @classmethod
    def from_file(cls, path):
        try:
            with open(path) as f:
                meta = json.load(f)
        except (OSError, ValueError) as error:
            raise DescriptionError(f"{path!r}: cannot read it ({error})") from None
        return cls.from_dict(meta, repr(str(path)))


def _spelled(format):
    return OLD_SPELLINGS.get(str(format), str(format))


def describe(model, codec, skeleton, flip_test, format, precision="fp32", **extra):
    """The description every exporter writes (`ModelDescription`'s fields, the model's config
    and the versions), plus the format's own `extra` fields (its inputs, outputs, signatures)."""
    meta = {
        "model_config": model.get_config(),
        "codec": codec.get_config(),
        "skeleton": skeleton.get_config(),
        "person_box_px": float(getattr(model, "person_box_px", geometry.PERSON_BOX_PX)),
        "export": {
            "format": format,
            "precision": precision,
            "flip_test": bool(flip_test),
            "keras_version": _version("keras"),
        },
    }
    for key, value in extra.items():
        if key == "export":
            meta["export"].update(value)
        else:
            meta[key] = value
    return meta


def crop_description(model, codec, skeleton, flip_test, format, precision="fp32", **extra):
    """The description of a crop-level file (OpenVINO, ONNX, TFLite: crops in, keypoints in crop
    pixels out; `describe`'s fields plus the crop's input and outputs, its `predict_crops`
    signature and the crop convention a caller must follow)."""
    size = int(codec.input_size[0])
    box = float(getattr(model, "person_box_px", geometry.PERSON_BOX_PX))
    k = skeleton.num_joints
    inputs = {"crops": f"float32 [batch, {size}, {size}, 3] in [0, 1]"}
    outputs = {
        "keypoints": f"float32 [batch, {k}, 2] crop pixels",
        "scores": f"float32 [batch, {k}] heatmap peak values",
        "heatmaps": f"float32 [batch, {size // 4}, {size // 4}, {k}]",
    }
    return describe(
        model,
        codec,
        skeleton,
        flip_test,
        format,
        precision,
        inputs=inputs,
        outputs=outputs,
        signatures={"predict_crops": {"inputs": inputs, "outputs": outputs}},
        crop=(
            f"person centre c, scale s (box side {box:g} * s px): crop pixel (i, j) samples the "
            f"image at c + ((j, i) - ({size} - 1) / 2) * {box:g} * s / {size} (bilinear, 0 "
            f"outside), values / 255; keypoints map back the same way"
        ),
        **extra,
    )


def openvino_installed():
    return importlib.util.find_spec("openvino") is not None


@functools.lru_cache(maxsize=1)
def cpu_has_bf16():
    """True when this CPU computes bfloat16 natively (AMX-BF16 or AVX512-BF16), as OpenVINO's
    CPU plugin reports it; False without OpenVINO."""
    if not openvino_installed():
        return False
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def setting_from_environment(name, allowed):
    """The environment variable `name` ("auto" when unset), one of `allowed`, else a
    `RuntimeChoiceError` naming it."""
    chosen = os.environ.get(name, "auto")
    if chosen not in allowed:
        raise RuntimeChoiceError(f"{name} must be one of {allowed}, got {chosen!r}")
    return chosen


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
        chosen = setting_from_environment("KERAS_HOURGLASS_PRECISION", PRECISIONS)
        if chosen != "auto":
            return resolve_precision(chosen, runtime)
        return "bf16" if cpu_has_bf16() else "fp32"
    if precision == "bf16" and not cpu_has_bf16():
        raise RuntimeChoiceError(
            "precision 'bf16': this CPU has no native bfloat16 (AMX or AVX512-BF16); use fp32"
        )
    return precision


def require_openvino():
    """Raises `RuntimeChoiceError` (naming the pip extra) when OpenVINO is not installed."""
    if not openvino_installed():
        raise RuntimeChoiceError(
            "runtime 'openvino': OpenVINO is not installed (pip install "
            "'keras-hourglass[openvino]', or the pinned openvino in requirements.txt)"
        )


def _keras_backend():
    """Keras' backend as Keras will choose it ($KERAS_BACKEND, else keras.json's, else
    tensorflow), read without importing Keras."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as f:
            return json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def openvino_for(runtime):
    """Whether `runtime` ("auto", "keras", "openvino") runs an already converted model on
    OpenVINO, as `runtimes.resolve_runtime` decides, without importing Keras: "openvino", or
    "auto" with KERAS_HOURGLASS_RUNTIME unset (or openvino), OpenVINO installed and Keras'
    backend TensorFlow."""
    if runtime == "auto":
        runtime = os.environ.get("KERAS_HOURGLASS_RUNTIME", "auto")
        if runtime == "auto":
            return openvino_installed() and _keras_backend() == "tensorflow"
    return runtime == "openvino" and openvino_installed()


def _codec_sizes(codec):
    """(input size, heatmap size (h, w)) of a HeatmapCodec or of its config dict."""
    if isinstance(codec, dict):
        return int(codec["input_size"][0]), tuple(int(v) for v in codec["heatmap_size"])
    return int(codec.input_size[0]), tuple(int(v) for v in codec.heatmap_size)


RANK_OF_OUTPUT = {"scores": 2, "keypoints": 3, "heatmaps": 4}  # [batch, K], [.., 2], [.., K]


def _name_outputs_by_rank(model):
    """Names a crop predictor's outputs `OUTPUTS` by their rank where the file lost the names
    (a TFLite file read by OpenVINO names them after the TensorFlow call that made them)."""
    named = {name for output in model.outputs for name in output.get_names()}
    if set(OUTPUTS) <= named or len(model.outputs) != len(OUTPUTS):
        return
    by_rank = {rank: name for name, rank in RANK_OF_OUTPUT.items()}
    ranks = [output.get_partial_shape().rank.get_length() for output in model.outputs]
    if sorted(ranks) == sorted(by_rank):
        for output, rank in zip(model.outputs, ranks):
            output.get_tensor().add_names({by_rank[rank]})


class OpenVINOPredictor:
    """A crop predictor on OpenVINO's CPU plugin: NumPy crops in, keypoints in crop pixels and
    scores out (and heatmaps with `return_heatmaps`), as `inference.KerasCropPredictor`.

    Args:
        converted: an `openvino.Model` (`runtimes.openvino_model`) or the path of a file
            OpenVINO reads: an .xml, or an .onnx or .tflite crop predictor (`export`).
        codec: what the graph decodes with: a `HeatmapCodec` or its config (from the .xml's
            description; `.codec` makes the HeatmapCodec, with Keras, when first asked).
        skeleton, flip_test: the joints and whether the graph averages the mirrored crop.
        precision: "fp32" or "bf16": the CPU plugin's inference precision (bf16 needs a CPU
            with native bfloat16; an int8 file computes its quantised convolutions in int8
            either way).
        threads: CPU threads (0: OpenVINO's default, the machine's cores).
    """

    def __init__(self, converted, codec, skeleton, flip_test, precision="fp32", threads=0):
        import openvino as ov

        precision = resolve_precision(precision, "openvino")  # checks bf16 against the CPU
        self._codec = codec
        self.skeleton, self.flip_test = skeleton, bool(flip_test)
        self.precision = precision
        self.input_size, self.heatmap_size = _codec_sizes(codec)
        self.num_joints = skeleton.num_joints
        config = {
            "INFERENCE_PRECISION_HINT": _OV_PRECISION[precision],
            "PERFORMANCE_HINT": "LATENCY",
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        core = ov.Core()
        model = core.read_model(converted) if isinstance(converted, str) else converted
        _name_outputs_by_rank(model)
        names = [set(output.get_names()) for output in model.outputs]
        missing = [n for n in OUTPUTS if not any(n in s for s in names)]
        if missing:
            raise RuntimeChoiceError(f"the OpenVINO model has no output(s) {missing}")
        self._compiled = core.compile_model(model, "CPU", config)
        self._outputs = [self._compiled.output(name) for name in OUTPUTS]
        self._request = self._compiled.create_infer_request()

    @property
    def codec(self):
        """The `HeatmapCodec` the graph decodes with (imports Keras when it was given as a
        config)."""
        if isinstance(self._codec, dict):
            from keras_hourglass.network.codec import HeatmapCodec

            self._codec = HeatmapCodec.from_config(self._codec)
        return self._codec

    @classmethod
    def from_description(cls, path, meta, precision="auto", threads=0, where=None):
        """The .xml at `path` with its description `meta` (a `ModelDescription` or its JSON:
        `export.export_openvino`'s `.json`); `where` names the description in errors."""
        where = where or f"{path}.json"
        if not isinstance(meta, ModelDescription):
            try:
                meta = ModelDescription.from_dict(meta, repr(where))
            except DescriptionError as error:
                raise RuntimeChoiceError(str(error)) from None
        predictor = cls(
            str(path),
            meta.codec,
            meta.skeleton,
            meta.flip_test,
            resolve_precision(precision, "openvino"),
            threads,
        )
        predictor.description = meta
        predictor.meta = meta.fields
        return predictor

    @classmethod
    def from_file(cls, path, precision="auto", threads=0):
        """An exported crop predictor (`export.export_openvino`'s .xml, `export_onnx`'s .onnx,
        `export_tflite`'s .tflite) with its `<path>.json` description."""
        meta_path = str(path) + ".json"
        if not os.path.isfile(path):
            raise RuntimeChoiceError(f"{path!r}: no such model file")
        if not os.path.isfile(meta_path):
            raise RuntimeChoiceError(
                f"{path!r} has no description {meta_path!r} (skeleton, codec): export it with "
                "train/export.py --format openvino (or onnx, tflite)"
            )
        try:
            with open(meta_path) as f:
                meta = json.load(f)
        except (OSError, ValueError) as error:
            raise RuntimeChoiceError(f"{meta_path!r}: cannot read it ({error})") from None
        return cls.from_description(path, meta, precision, threads, where=meta_path)

    def __call__(self, crops, return_heatmaps=False):
        crops = np.asarray(crops, np.float32)
        size = self.input_size
        if crops.ndim != 4 or crops.shape[1:] != (size, size, 3):
            raise ValueError(f"crops must be (N, {size}, {size}, 3), got {crops.shape}")
        if len(crops) == 0:
            k, h = self.num_joints, self.heatmap_size
            empty = (np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32))
            return empty + ((np.zeros((0, *h, k), np.float32),) if return_heatmaps else ())
        results = self._request.infer({0: np.ascontiguousarray(crops)})
        outputs = [np.array(results[output]) for output in self._outputs]
        return tuple(outputs if return_heatmaps else outputs[:2])


# --- the pose loop ---------------------------------------------------------------------------


def image_box(image, square, index):
    """(centre, scale in 200 px boxes) of one image's crop: `square` (centre x, centre y, side)
    in pixels or, for None, the whole image."""
    height, width = image.shape[:2]
    if square is None:
        return geometry.whole_image_box(float(height), float(width))
    cx, cy, side = (float(v) for v in square)
    if not (side > 0 and np.isfinite([cx, cy, side]).all()):
        raise ValueError(f"boxes[{index}] = {tuple(square)}: needs finite values, a positive scale")
    return np.array([cx, cy]), side / geometry.PERSON_BOX_PX


def numpy_crop_to_original(keypoints, centers, scales, crop_size):
    """`geometry.crop_to_original` in NumPy (float32, the same operations in the same order):
    keypoints (B, K, 2) in crop pixels -> original pixels, `centre + (p - (S - 1) / 2) * 200 s
    / S`."""
    keypoints = np.asarray(keypoints, np.float32)
    factor = (geometry.PERSON_BOX_PX * np.asarray(scales, np.float32) / crop_size).reshape(-1, 1, 1)
    centers = np.asarray(centers, np.float32).reshape(-1, 1, 2)
    return centers + (keypoints - np.float32((crop_size - 1) / 2.0)) * factor


def estimate_keypoints(predictor, images, squares=None, batch_size=16):
    """One person per image, through any crop predictor (Keras, OpenVINO, a SavedModel's
    `predict_crops`): keypoints (N, K, 2) in image pixels and scores (N, K). `squares`: per
    image the crop's (centre x, centre y, side) in pixels (`boxes.Box.square()`), or None for
    the whole image. The crops are made as in training (NumPy/OpenCV, anti-aliased when
    shrinking) and the keypoints mapped back the same way."""
    boxes = squares
    single = isinstance(images, np.ndarray) and images.ndim == 3
    images = [images] if single else list(images)
    if boxes is not None:
        boxes = [boxes] if single else list(boxes)
        if len(boxes) != len(images):
            raise ValueError(f"boxes: {len(boxes)} boxes for {len(images)} images")
    size = predictor.input_size
    keypoints, scores = [], []
    last = (None, None)  # (image, its floats): the people of one image share one float copy
    for start in range(0, len(images), batch_size):
        crops, centers, scales = [], [], []
        for i in range(start, min(start + batch_size, len(images))):
            image = np.asarray(images[i])
            if image.ndim != 3 or image.shape[-1] != 3 or min(image.shape[:2]) < 1:
                raise ValueError(f"images[{i}]: expected (H, W, 3) RGB, got {image.shape}")
            center, scale = image_box(image, None if boxes is None else boxes[i], i)
            if last[0] is not images[i]:
                scale_to_1 = 255.0 if image.dtype == np.uint8 else 1.0
                last = (images[i], image.astype(np.float32) / scale_to_1)
            floats = last[1]
            crops.append(geometry.crop_person(floats, center, scale, size))
            centers.append(center)
            scales.append(scale)
        kp, sc = predictor(np.stack(crops))
        keypoints.append(numpy_crop_to_original(kp, np.stack(centers), np.array(scales), size))
        scores.append(np.asarray(sc))
    if not keypoints:
        return np.zeros((0, predictor.num_joints, 2), np.float32), np.zeros(
            (0, predictor.num_joints)
        )
    return np.concatenate(keypoints), np.concatenate(scores)


# --- a .keras file's conversion, found again without Keras -----------------------------------


def conversion_cache():
    """The folder of cached conversions, or None when the cache is off."""
    if os.environ.get("KERAS_HOURGLASS_CACHE", "").lower() in ("off", "0", "none"):
        return None
    return os.path.join(files.cache_dir(), "openvino")


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def file_key(path, flip_test, skeleton_name=None):
    """The cache key of a `.keras` file's conversion: a SHA-256 of the file's bytes, the flip
    test, the skeleton asked for, and the Keras and OpenVINO versions that convert it."""
    from keras_hourglass.presets import file_sha256

    digest = hashlib.sha256(file_sha256(path).encode())
    settings = [
        bool(flip_test),
        skeleton_name,
        _version("keras"),
        _version("openvino"),
        CONVERSION_FORMAT,
    ]
    digest.update(json.dumps(settings).encode())
    return digest.hexdigest()[:32]


def _file_entry(path, flip_test, skeleton_name):
    folder = conversion_cache()
    if folder is None:
        return None
    return os.path.join(folder, f"file-{file_key(path, flip_test, skeleton_name)}.json")


def cached_file_predictor(path, flip_test=True, skeleton_name=None, precision="auto"):
    """The OpenVINO predictor of a `.keras` file converted before (by any process), read from
    the conversion cache without Keras; None when it was not (or the cache is off, or its
    entry is unreadable: the caller converts again)."""
    if not openvino_installed():
        return None
    entry = _file_entry(path, flip_test, skeleton_name)
    if entry is None or not os.path.isfile(entry):
        return None
    try:
        with open(entry) as f:
            meta = json.load(f)
        xml = os.path.join(os.path.dirname(entry), meta["xml"])
        if not (os.path.isfile(xml) and os.path.isfile(xml[: -len(".xml")] + ".bin")):
            return None
        predictor = OpenVINOPredictor.from_description(xml, meta, precision, where=entry)
    except RuntimeChoiceError as error:
        if "precision" in str(error):
            raise
        log.debug(f"conversion cache entry {entry} not used: {error}")
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.debug(f"conversion cache entry {entry} not used: {error}")
        return None
    log.debug(f"{path}: its OpenVINO conversion read from {xml}")
    return predictor


def remember_file_conversion(path, flip_test, skeleton_name, xml, description):
    """Records in the cache that the `.keras` file at `path` converts to the cached `xml`
    (described by `description`), so later processes predict without Keras; a cache that
    cannot be written is only logged."""
    entry = _file_entry(path, flip_test, skeleton_name)
    if entry is None or xml is None or not os.path.isfile(xml):
        return None
    if os.path.dirname(os.path.abspath(xml)) != os.path.dirname(os.path.abspath(entry)):
        return None
    try:
        files.write_json(entry, {**description, "xml": os.path.basename(xml)})
    except OSError as error:
        log.debug(f"conversion cache entry {entry} not written: {error}")
        return None
    return entry
