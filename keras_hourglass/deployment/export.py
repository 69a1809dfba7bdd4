"""The exporters: one `export_model(model, path, format)` and a writer per format (`WRITERS`), each
writing its file and the description every loader reads (`core.describe`), from the Keras model
itself:

| format | file | writer | loaded by `loader.load_predictor` through |
|---|---|---|---|
| "savedmodel" | a version folder in TF Serving's layout | `saved_model.export_for_serving` | TensorFlow (`saved_model.SavedModelCrops`) |
| "openvino" | `.xml` + `.bin` (fp32, fp16 weights, int8) | `export_openvino` | OpenVINO |
| "onnx" | `.onnx` | `export_onnx` (tf2onnx) | OpenVINO (its ONNX reader) |
| "tflite" | `.tflite` | `export_tflite` | OpenVINO (its TFLite reader) |

The crop-level formats (OpenVINO, ONNX, TFLite) hold the crop path of
`inference.keypoints_of_crops` (flip test, last-stack heatmaps, decoding) traced once with
TensorFlow (`runtimes.traced_crop_path`): crops in, keypoints in crop pixels, scores and heatmaps
out; the crop itself (decode, affine resampling) stays with the caller, whose convention the
description's `crop` states. The SavedModel also holds the decoder and the crop (TF Serving).
"""

import contextlib
import io
import logging
import os
import shutil

import numpy as np

from keras_hourglass import files
from keras_hourglass.deployment import runtimes
from keras_hourglass.deployment.core import (
    EXPORT_FORMATS,
    EXPORT_PRECISIONS,
    OpenVINOPredictor,
    crop_description,
)

log = logging.getLogger(__name__)

__all__ = [
    "WRITERS",
    "after_the_network",
    "calibration_crops",
    "export_model",
    "export_onnx",
    "export_openvino",
    "export_saved_model",
    "export_tflite",
    "int8_check",
]


def export_model(model, path, format="savedmodel", skeleton=None, flip_test=True, **options):
    """Writes `model` in `format` through that format's writer (`WRITERS`), with its
    description: the one entry point of every export (`kh.export_model`; train/export.py calls
    it).

    - "savedmodel": `path` the model's folder in TF Serving's layout; options `version`,
      `max_pixels`. Returns the version folder.
    - "openvino": `path` the .xml; options `precision` ("fp32", "fp16", "int8"), `calibration`
      (crops, for int8), `calibration_size`.
    - "onnx": `path` the .onnx file; option `opset`.
    - "tflite": `path` the .tflite file.

    Returns the written path."""
    if format not in WRITERS:
        raise ValueError(f"format must be one of {EXPORT_FORMATS}, got {format!r}")
    return WRITERS[format](model, path, skeleton, flip_test, **options)


def export_saved_model(model, path, skeleton=None, flip_test=True, **options):
    """The SavedModel for TF Serving (`saved_model.export_for_serving`)."""
    from keras_hourglass.deployment.saved_model import export_for_serving

    return export_for_serving(model, path, skeleton, flip_test=flip_test, **options)


def _skeleton_of(model, skeleton):
    """The joints to export (`skeleton`, default the model's own), given to a model saved
    without them."""
    from keras_hourglass.skeletons import model_skeleton

    skeleton = model_skeleton(model, skeleton)
    if getattr(model, "skeleton", None) is None:
        model.skeleton = skeleton
    return skeleton


def _write_file(path, suffix, write, meta):
    """Writes a file with `write(tmp)` and its description `<path>.json`, atomically: neither
    is left half-written (the file itself appears last)."""
    if not str(path).endswith(suffix):
        raise ValueError(f"a {suffix} file is written here: got {path!r}")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    scratch = files.temporary_folder(prefix=".export-", dir=directory)
    try:
        tmp = os.path.join(scratch, "model" + suffix)
        write(tmp)
        files.write_json(str(path) + ".json", meta)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return path


def export_onnx(model, path, skeleton=None, flip_test=True, opset=17):
    """The crop predictor as one ONNX file (tf2onnx, from the traced crop path): input `crops`,
    outputs `keypoints`, `scores`, `heatmaps`; and its description `<path>.json`."""
    import tf2onnx

    skeleton = _skeleton_of(model, skeleton)
    function = runtimes.traced_crop_path(model, flip_test, named=True)
    meta = crop_description(model, model.codec, skeleton, flip_test, "onnx")

    def write(tmp):
        spec = function.input_signature
        tf2onnx.convert.from_function(function, input_signature=spec, opset=opset, output_path=tmp)

    return _write_file(path, ".onnx", write, meta)


def export_tflite(model, path, skeleton=None, flip_test=True):
    """The crop predictor as one TFLite file with its `predict_crops` signature (input `crops`,
    outputs `keypoints`, `scores`, `heatmaps`); and its description `<path>.json`. TFLite's
    converter keeps a signature's name only from a SavedModel, so the traced crop path alone
    (no decoder, no serving signatures) passes through a scratch one."""
    import tensorflow as tf

    skeleton = _skeleton_of(model, skeleton)
    function = runtimes.traced_crop_path(model, flip_test, named=True)
    meta = crop_description(model, model.codec, skeleton, flip_test, "tflite")

    def write(tmp):
        module = tf.Module()
        module.weights_of_the_model = [weight.value for weight in model.weights]
        concrete = function.get_concrete_function()
        tf.saved_model.save(module, tmp + ".saved", signatures={"predict_crops": concrete})
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp + ".saved", ["predict_crops"])
        with open(tmp, "wb") as f:
            f.write(converter.convert())

    return _write_file(path, ".tflite", write, meta)


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

    if precision not in EXPORT_PRECISIONS:
        raise ValueError(f"precision must be one of {EXPORT_PRECISIONS}, got {precision!r}")
    if not str(path).endswith(".xml"):
        raise ValueError(f"an OpenVINO model is an .xml file (and its .bin): got {path!r}")
    skeleton = _skeleton_of(model, skeleton)
    converted = runtimes.openvino_model(model, flip_test)
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
        meta = crop_description(model, model.codec, skeleton, flip_test, "openvino", precision)
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


WRITERS = {
    "savedmodel": export_saved_model,
    "openvino": export_openvino,
    "onnx": export_onnx,
    "tflite": export_tflite,
}
assert tuple(sorted(WRITERS)) == tuple(sorted(EXPORT_FORMATS))
