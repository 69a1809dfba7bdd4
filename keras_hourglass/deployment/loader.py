"""The one loader: a model file of any format, or a shipped model's name, to its crop predictor
and what every command reads of it (issue #39 item 1; docs/layers.md: an application of the
runtimes, export and deploy layers).

    loaded = load_model("runs/demo/best.keras", runtime="openvino")
    loaded.predictor            # a deploy.CropPredictor: crops -> keypoints, scores
    loaded.skeleton, loaded.input_size, loaded.runtime, loaded.precision

Formats: a `.keras` file (on the chosen runtime: Keras, or OpenVINO converted once and read back
from the conversion cache by later processes without loading Keras), and every format
`export.export_model` writes: an OpenVINO `.xml`, an `.onnx` or a `.tflite` crop predictor (all
three read by OpenVINO, without Keras), a SavedModel version folder (its `predict_crops`, on TensorFlow; the
loaded SavedModel is kept in `.serving` for callers that use its other signatures). Every
error is one `ModelLoadError` line naming the file. `hourglass-predict`, `hourglass-evaluate`,
`keras_hourglass.poses.estimator.PoseEstimator` and `keras_hourglass.load_predictor` all load here.
"""

import dataclasses
import os

__all__ = ["FORMATS", "LoadedModel", "ModelLoadError", "load_model", "load_predictor"]

FORMATS = ("keras", "openvino", "onnx", "tflite", "savedmodel")
CROP_FILES = {".xml": "openvino", ".onnx": "onnx", ".tflite": "tflite"}  # read by OpenVINO
NAMES = {"openvino": "OpenVINO", "onnx": "ONNX", "tflite": "TFLite"}


class ModelLoadError(ValueError):
    """A model that cannot be loaded as asked: one line naming the file."""


def _first_line(error):
    return str(error).splitlines()[0] if str(error) else type(error).__name__


@dataclasses.dataclass
class LoadedModel:
    """One loaded model file. `skeleton` is None only for a `.keras` file saved before models
    carried their joints (give them with `use_skeleton`); `model` is the Keras model when it was
    loaded (not when the conversion cache answered), `serving` the loaded SavedModel."""

    path: str
    format: str
    skeleton: object
    input_size: int
    flip_test: bool
    runtime: str
    precision: str
    shift: bool = True
    skeleton_name: str = None
    asked_flip: bool = True  # what the caller asked (an exported model's are fixed at export)
    asked_shift: bool = True
    model: object = None
    serving: object = None
    _predictor: object = None

    @property
    def exported(self):
        """An exported model (OpenVINO `.xml` or SavedModel): flip test and shift fixed."""
        return self.format != "keras"

    def use_skeleton(self, skeleton):
        """The joints of a `.keras` file saved without them (the data's, or --skeleton's)."""
        if self.skeleton is None:
            self.skeleton = skeleton
            self.model.skeleton = skeleton

    @property
    def predictor(self):
        """The crop predictor (`deploy.CropPredictor`), made on first use for a Keras model."""
        if self._predictor is None:
            self._predictor = self._keras_predictor()
        return self._predictor

    def _keras_predictor(self):
        from keras_hourglass.deployment import runtimes

        if self.skeleton is None and self.flip_test:
            raise ModelLoadError(
                f"--model {self.path!r}: the model was saved without its skeleton (made before "
                "models described themselves): give the skeleton it was trained with (--skeleton)"
            )
        model = self.model
        codec = model.codec if self.shift else model.codec.replace(shift=False)
        try:
            made = runtimes.predictor(model, self.flip_test, self.runtime, self.precision, codec)
        except runtimes.RuntimeChoiceError as error:
            raise ModelLoadError(f"--runtime/--precision: {error}") from None
        if self.runtime == "openvino" and self.shift:  # the next process finds it without Keras
            runtimes.note_file_conversion(
                self.path, model, self.flip_test, self.skeleton_name, self.skeleton
            )
        return made


def load_model(
    path,
    runtime="auto",
    precision="auto",
    flip_test=True,
    shift=True,
    skeleton=None,
):
    """Loads `path` (a `.keras` file, an exported `.xml`, `.onnx` or `.tflite`, a SavedModel
    version folder, or a shipped model's name; None: the default shipped model) as a
    `LoadedModel`.

    runtime: "auto", "keras", "openvino" (a `.keras` file's; an exported model runs on its own:
        OpenVINO for `.xml`, `.onnx` and `.tflite`, TensorFlow for a SavedModel, and another
        choice is an error);
        None: the file's own (Keras, float32, for a `.keras` file: evaluation's reference).
    precision: OpenVINO's, "auto", "fp32" or "bf16".
    flip_test, shift: the inference's (a `.keras` file's; an exported model's are fixed at export).
    skeleton: a skeleton name the model must have (or, for a file saved without one, has).
    """
    from keras_hourglass.presets import PretrainedError, resolve_model

    try:
        path, _ = resolve_model(None if path is None else os.path.expanduser(str(path)))
    except PretrainedError as error:
        raise ModelLoadError(str(error)) from None
    if os.path.isdir(path):
        loaded = _saved_model(path, runtime)
    elif not os.path.isfile(path):
        raise ModelLoadError(
            f"--model {path!r}: no such .keras file, exported .xml/.onnx/.tflite or SavedModel "
            "folder"
        )
    elif os.path.splitext(path)[1] in CROP_FILES:
        loaded = _openvino(path, runtime, precision, CROP_FILES[os.path.splitext(path)[1]])
    elif path.endswith(".keras"):
        runtime = "keras" if runtime is None else runtime
        loaded = _cached(path, runtime, precision, flip_test, shift, skeleton) or _keras(
            path, runtime, precision, flip_test, shift, skeleton
        )
    else:
        raise ModelLoadError(
            f"--model {path!r}: expected a .keras file from train/train.py, an .xml, .onnx or "
            ".tflite file from train/export.py or a SavedModel version folder"
        )
    loaded.asked_flip, loaded.asked_shift = bool(flip_test), bool(shift)
    return loaded


def load_predictor(path, runtime="auto", precision="auto", flip_test=True):
    """A crop predictor (`deploy.CropPredictor`) from a file or a shipped model's name
    (`load_model(...).predictor`)."""
    return load_model(path, runtime, precision, flip_test).predictor


def _saved_model(path, runtime):
    """A SavedModel version folder: its `predict_crops`, on TensorFlow."""
    if runtime not in ("auto", "tensorflow", None):
        raise ModelLoadError(
            f"--model {path!r} is a SavedModel, which runs on TensorFlow: for --runtime "
            f"{runtime} pass the .keras file or its export (train/export.py --format openvino)"
        )
    from keras_hourglass.quiet import quiet_tensorflow_startup

    quiet_tensorflow_startup()
    from keras_hourglass.deployment.core import DescriptionError
    from keras_hourglass.deployment.saved_model import SavedModelCrops, ServingModelError

    try:
        crops = SavedModelCrops(path)
    except (ServingModelError, DescriptionError) as error:
        raise ModelLoadError(f"--model: {error}") from None
    except Exception as error:  # a corrupt SavedModel
        raise ModelLoadError(
            f"--model {path!r}: cannot load the SavedModel ({_first_line(error)})"
        ) from None
    return LoadedModel(
        path,
        "savedmodel",
        crops.skeleton,
        crops.input_size,
        crops.flip_test,
        "tensorflow",
        "fp32",
        shift=crops.codec.shift,
        serving=crops.loaded,
        _predictor=crops,
    )


def _openvino(path, runtime, precision, format="openvino"):
    """An exported crop predictor OpenVINO reads (`.xml`, `.onnx`, `.tflite`, each with its
    `.json` description), without Keras."""
    from keras_hourglass.deployment import core as deploy

    if runtime not in ("auto", "openvino", None):
        raise ModelLoadError(
            f"--model {path!r} is an {NAMES[format]} model: it runs on --runtime openvino (or "
            f"auto), not {runtime}"
        )
    try:
        deploy.require_openvino()
        made = deploy.OpenVINOPredictor.from_file(path, precision)
    except deploy.RuntimeChoiceError as error:
        raise ModelLoadError(f"--model: {error}") from None
    except Exception as error:  # a corrupt .xml or .bin
        raise ModelLoadError(
            f"--model {path!r}: cannot load the {NAMES[format]} model ({_first_line(error)})"
        ) from None
    codec = made._codec  # a config (dict) until Keras is loaded
    shift = codec.get("shift", True) if isinstance(codec, dict) else codec.shift
    return _of_openvino(path, made, made.flip_test, shift, format)


def _of_openvino(path, made, flip_test, shift, format):
    return LoadedModel(
        path,
        format,
        made.skeleton,
        made.input_size,
        flip_test,
        "openvino",
        made.precision,
        shift=shift,
        _predictor=made,
    )


def _cached(path, runtime, precision, flip_test, shift, skeleton):
    """A `.keras` file's OpenVINO conversion that an earlier process recorded in the conversion
    cache (`deploy.cached_file_predictor`): no Keras loaded. None when there is none."""
    from keras_hourglass.deployment import core as deploy

    if not shift:  # the cache holds the default (shifted) decoding only
        return None
    try:
        if not deploy.openvino_for(runtime):
            return None
        made = deploy.cached_file_predictor(path, flip_test, skeleton, precision)
    except deploy.RuntimeChoiceError as error:
        raise ModelLoadError(f"--runtime/--precision: {error}") from None
    if made is None:
        return None
    return _of_openvino(path, made, bool(flip_test), True, "keras")


def _keras(path, runtime, precision, flip_test, shift, skeleton_name):
    """A `.keras` file loaded with Keras; its predictor is made on first use."""
    from keras_hourglass.quiet import quiet_tensorflow_startup

    quiet_tensorflow_startup()
    # Every class a .keras file of this project may name, registered with Keras.
    import keras_hourglass.network.codec  # noqa: F401
    import keras_hourglass.network.model  # noqa: F401
    import keras_hourglass.network.optimizers  # noqa: F401
    import keras_hourglass.network.pck_metric  # noqa: F401
    from keras_hourglass.deployment import runtimes
    from keras_hourglass.network.model import load_model_file
    from keras_hourglass.skeletons import model_skeleton

    try:
        model = load_model_file(path)
    except ValueError as error:
        raise ModelLoadError(f"--model {error}") from None
    skeleton = getattr(model, "skeleton", None)
    if skeleton_name is not None or skeleton is not None:
        try:
            skeleton = model_skeleton(model, skeleton_name)
        except ValueError as error:
            raise ModelLoadError(f"--model {path!r}: {error}") from None
        if model.skeleton is None:  # a file saved before models carried their skeleton
            model.skeleton = skeleton
    try:
        runtime = runtimes.resolve_runtime(runtime)
        precision = runtimes.resolve_precision(precision, runtime)
    except runtimes.RuntimeChoiceError as error:
        raise ModelLoadError(f"--runtime/--precision: {error}") from None
    return LoadedModel(
        path,
        "keras",
        skeleton,
        int(model.inputs[0].shape[1]),
        bool(flip_test),
        runtime,
        precision,
        shift=shift,
        skeleton_name=skeleton_name,
        model=model,
    )
