"""Inference as the paper does it, written once: flip test, quarter-pixel decoding, back to the
original image. Every consumer calls these: `StackedHourglass.estimate_poses`, the SavedModel's
signatures (`export.PoseServer`), `eval/predict.py`, `eval/evaluate.py` and the validation
callback; only the crop resampler differs between them (NumPy/OpenCV or TensorFlow).

- `keypoints_of_crops`: the core in `keras.ops` (traced into SavedModels, jitted on JAX,
  `tf.function` on TensorFlow): crops -> keypoints in crop pixels, scores, heatmaps.
- `KerasCropPredictor` (`crop_predictor(model)`): the core compiled once per model and settings,
  NumPy in and out; a jitted function is reused for every call of the same batch size, and
  batch sizes are padded to powers of two so that a stream of calls compiles a few times.
- `estimate_keypoints` (from `deploy`, NumPy): whole images (and person boxes) through any crop
  predictor -> keypoints in image pixels; `runtimes.estimate_poses` names them and picks the
  runtime (this module does not import the runtimes: docs/layers.md).
- `predict_people`: dataset records -> keypoints in image pixels, through either input executor.

Decoding uses the model's own codec (`model.codec`) and the flip test its skeleton's flip
permutation: a model whose codec differs decodes with its own rule everywhere.
"""

import logging
import weakref

import keras
import numpy as np
from keras import ops

from keras_hourglass import distributed
from keras_hourglass.deployment.core import estimate_keypoints
from keras_hourglass.geometry import crop_to_original
from keras_hourglass.network.codec import HeatmapCodec
from keras_hourglass.network.model import LENT
from keras_hourglass.quiet import progress_bar

log = logging.getLogger(__name__)

__all__ = [
    "KerasCropPredictor",
    "average_with_flipped",
    "crop_predictor",
    "crop_to_original",
    "estimate_keypoints",
    "keypoints_of_crops",
    "last_stack",
    "predict_people",
]


def last_stack(outputs):
    """The last stack's heatmaps of a model's outputs (a dict `heatmaps_i`, a list or a tensor)."""
    if isinstance(outputs, dict):
        return outputs[max(outputs, key=lambda n: int(n.rsplit("_", 1)[1]))]
    if isinstance(outputs, (list, tuple)):
        return outputs[-1]
    return outputs


def average_with_flipped(heatmaps, flipped_heatmaps, flip_index):
    """The flip test: the mean of the heatmaps and the mirror image's heatmaps flipped back
    (mirrored, left/right joints swapped; no pixel shift under this project's convention)."""
    heatmaps = ops.cast(heatmaps, "float32")
    flipped_heatmaps = ops.cast(flipped_heatmaps, "float32")
    return 0.5 * (heatmaps + HeatmapCodec.flip_heatmaps(flipped_heatmaps, flip_index))


def keypoints_of_crops(model, crops, codec, flip_index=None):
    """The paper's inference on person crops, in `keras.ops`.

    With `flip_index` (the skeleton's flip permutation) the crops and their mirror images go
    through the network as one batch of 2B, and the mirror's last-stack heatmaps are flipped
    back and averaged with the crops'; `codec` decodes them (arg-max, quarter-pixel shift).

    Args:
        model: a stacked hourglass (per-stack outputs; the last stack is used).
        crops: (B, S, S, 3) float crops in [0, 1].
        codec: the model's `HeatmapCodec` (`model.codec`).
        flip_index: the flip permutation, or None for no flip test.

    Returns:
        keypoints (B, K, 2) float32 in crop pixels, scores (B, K) (heatmap peaks), heatmaps
        (B, S/4, S/4, K) float32.
    """
    batch = ops.shape(crops)[0]
    inputs = crops if flip_index is None else ops.concatenate([crops, ops.flip(crops, axis=2)], 0)
    heatmaps = ops.cast(last_stack(model(inputs, training=False)), "float32")
    if flip_index is not None:
        heatmaps = average_with_flipped(heatmaps[:batch], heatmaps[batch:], flip_index)
    keypoints, scores = codec.decode(heatmaps)
    return keypoints, scores, heatmaps


def flip_index_of(model, flip_test):
    """The model's flip permutation for the flip test, or None without it."""
    if not flip_test:
        return None
    skeleton = getattr(model, "skeleton", None)
    if skeleton is None:
        raise ValueError(
            "The flip test needs the model's skeleton (its left/right joints), and this model "
            "was saved without one: rebuild it with `skeleton=` or switch the flip test off."
        )
    return skeleton.flip_index


class KerasCropPredictor:
    """`keypoints_of_crops` compiled for one model: NumPy crops in, NumPy keypoints out.

    On JAX a `jax.jit` of the model's `stateless_call` with the weights as arguments (read at
    every call, so a predictor made before training predicts with the trained weights); on
    TensorFlow an XLA-compiled `tf.function`; eager elsewhere. Use `crop_predictor(model)`,
    which keeps one per model and settings.

    Attributes:
        model, codec, skeleton, flip_test, input_size: what it predicts with.
    """

    def __init__(self, model, flip_test=True, codec=None):
        self.model = model
        self.codec = codec or model.codec
        self.skeleton = getattr(model, "skeleton", None)
        self.flip_test = bool(flip_test)
        self.flip_index = flip_index_of(model, flip_test)
        self.input_size = int(self.codec.input_size[0])
        self.num_joints = int(model.outputs[-1].shape[-1])
        self._run = self._compile()

    def _compile(self):
        model, codec, flip_index = self.model, self.codec, self.flip_index
        backend = keras.backend.backend()
        if backend == "jax":
            import jax

            @jax.jit
            def run(trainable, non_trainable, crops):
                mapping = list(zip(model.trainable_variables, trainable))
                mapping += list(zip(model.non_trainable_variables, non_trainable))
                with keras.StatelessScope(state_mapping=mapping):
                    return keypoints_of_crops(model, crops, codec, flip_index)

            def call(crops):
                trainable = distributed.local_weights(model.trainable_variables)
                non_trainable = distributed.local_weights(model.non_trainable_variables)
                return run(trainable, non_trainable, crops)

            return call
        if backend == "tensorflow":
            import tensorflow as tf

            return tf.function(
                lambda crops: keypoints_of_crops(model, crops, codec, flip_index),
                jit_compile=True,
                reduce_retracing=True,
                autograph=False,
            )
        return lambda crops: keypoints_of_crops(model, crops, codec, flip_index)

    def __call__(self, crops, return_heatmaps=False):
        """(N, S, S, 3) crops in [0, 1] -> keypoints (N, K, 2) in crop pixels and scores (N, K)
        (and heatmaps (N, S/4, S/4, K) with `return_heatmaps`), NumPy float32. Crops may be a
        NumPy array or a backend tensor already on the device (not copied back to the host)."""
        if not hasattr(crops, "shape") or not hasattr(crops, "dtype"):
            crops = np.asarray(crops, np.float32)
        size = self.input_size
        if len(crops.shape) != 4 or tuple(crops.shape[1:]) != (size, size, 3):
            raise ValueError(f"crops must be (N, {size}, {size}, 3), got {tuple(crops.shape)}")
        count = int(crops.shape[0])
        if count == 0:
            k, h = self.num_joints, self.codec.heatmap_size
            empty = (np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32))
            return empty + ((np.zeros((0, *h, k), np.float32),) if return_heatmaps else ())
        # Pad to a power of two: a compiled function per batch-size bucket, not per size.
        bucket = 1 << (count - 1).bit_length()
        if isinstance(crops, np.ndarray):
            crops = crops.astype(np.float32, copy=False)
            if bucket != count:
                crops = np.pad(crops, [(0, bucket - count), (0, 0), (0, 0), (0, 0)])
        else:
            crops = ops.cast(crops, "float32")
            if bucket != count:
                crops = ops.pad(crops, [(0, bucket - count), (0, 0), (0, 0), (0, 0)])
        outputs = self._run(crops)
        outputs = outputs if return_heatmaps else outputs[:2]
        return tuple(np.asarray(o)[:count] for o in outputs)


_PREDICTORS = weakref.WeakKeyDictionary()


def crop_predictor(model, flip_test=True, codec=None):
    """The `KerasCropPredictor` of `model` with these settings, made once and kept with the model
    (so repeated `estimate_poses` calls compile once per input shape)."""
    codec = codec or model.codec
    key = (bool(flip_test), repr(codec.get_config()), keras.backend.backend())
    cache = _PREDICTORS.setdefault(model, {})
    if key not in cache:
        log.debug(
            f"crop predictor for {model.name}: flip test {'on' if flip_test else 'off'}, "
            f"{codec.input_size} px crops, {keras.backend.backend()} backend (compiled once)"
        )
        cache[key] = KerasCropPredictor(model, flip_test, codec)
    return cache[key]


def predict_people(predictor, records, batch_size=16, executor=None, workers=None, progress=False):
    """The paper's inference on a dataset's people: keypoints (N, K, 2) in original-image
    pixels (0-based) and scores (N, K), in the records' order.

    Args:
        predictor: a `KerasCropPredictor` (or an exported model's, `export.SavedModelCrops`).
        records: `datasets.Records` (their skeleton must be the predictor's).
        batch_size: crops per network call.
        executor, workers: the input executor that crops (`inputs.pose_dataset`).
        progress: show Keras' progress bar (people and people per second).
    """
    skeleton = records.skeleton or predictor.skeleton
    if skeleton.num_joints != predictor.num_joints:
        raise ValueError(
            f"The model predicts {predictor.num_joints} joints, but {skeleton.name} has "
            f"{skeleton.num_joints}."
        )
    size = predictor.input_size
    # Here, not at the top: the network's inference must import without the data readers
    # (datasets: h5py, SciPy; the input pipelines), which only dataset-scale prediction needs.
    from keras_hourglass.inputs import batches, pose_dataset

    ds = pose_dataset(
        records,
        skeleton,
        predictor.codec,
        batch_size,
        training=False,
        executor=executor,
        workers=workers,
    )
    keypoints = np.zeros((len(records), skeleton.num_joints, 2))
    scores = np.zeros((len(records), skeleton.num_joints))
    bar = progress_bar(len(records), "person") if progress else None
    done = 0
    for crops, _, meta in batches(ds):
        kp, sc = predictor(crops)
        index = meta["index"]
        keypoints[index] = np.asarray(crop_to_original(kp, meta["center"], meta["scale"], size))
        scores[index] = sc
        done += len(index)
        if bar is not None:
            bar.update(done)
    return keypoints, scores


LENT["crop_predictor"] = crop_predictor  # StackedHourglass.predict_keypoints
