"""Inference as the paper does it: flip test, quarter-pixel decoding, back to the original image.

Only `keras.ops`, so it runs on every backend and inside an exported SavedModel.
"""

from keras import ops

from keras_hourglass.codec import HeatmapCodec
from keras_hourglass.geometry import crop_to_original  # noqa: F401 (re-exported)


def predict_heatmaps(model, images, flip_index=None):
    """Last-stack heatmaps of `model` on `images`, averaged with the flipped image's if asked.

    Args:
        model: a stacked hourglass (per-stack outputs; the last stack is used).
        images: (B, H, W, 3) float images in [0, 1].
        flip_index: the skeleton's flip permutation to flip-test with, or None for no flip test.

    Returns:
        (B, H/4, W/4, K) float32 heatmaps.
    """
    heatmaps = _last(model(images, training=False))
    if flip_index is not None:
        flipped = _last(model(ops.flip(images, axis=2), training=False))
        heatmaps = average_with_flipped(heatmaps, flipped, flip_index)
    return ops.cast(heatmaps, "float32")


def average_with_flipped(heatmaps, flipped_heatmaps, flip_index):
    """The flip test: the mean of the heatmaps and the mirror image's heatmaps flipped back
    (mirrored, left/right joints swapped; no pixel shift under this project's convention)."""
    heatmaps = ops.cast(heatmaps, "float32")
    flipped_heatmaps = ops.cast(flipped_heatmaps, "float32")
    return 0.5 * (heatmaps + HeatmapCodec.flip_heatmaps(flipped_heatmaps, flip_index))


def _last(outputs):
    if isinstance(outputs, dict):
        return outputs[sorted(outputs, key=lambda n: int(n.rsplit("_", 1)[1]))[-1]]
    if isinstance(outputs, (list, tuple)):
        return outputs[-1]
    return outputs


def predict_keypoints(model, images, codec, flip_index=None):
    """Keypoints in crop pixels, scores and heatmaps for a batch of crops.

    Returns:
        keypoints (B, K, 2), scores (B, K), heatmaps (B, H/4, W/4, K).
    """
    heatmaps = predict_heatmaps(model, images, flip_index)
    keypoints, scores = codec.decode(heatmaps)
    return keypoints, scores, heatmaps


def make_predict_function(model, codec, flip_index=None):
    """One compiled function `images -> (keypoints, scores)` for fast repeated inference.

    The image and its mirror go through the network as one batch of 2B (one call instead of
    two), the mirror's heatmaps are flipped back and averaged, and decoding runs on the device.
    On JAX it is a `jax.jit` of the model's `stateless_call` over the current weights (no
    per-call Python overhead of `predict_on_batch`); on TensorFlow a `tf.function`
    (XLA-compiled). Weights are read when the function is made: make a new one after training.

    Returns:
        a function of (B, H, W, 3) float images in [0, 1] -> (keypoints (B, K, 2) in crop
        pixels, scores (B, K)).
    """
    import keras

    def heatmaps_of(outputs):
        return ops.cast(_last(outputs), "float32")

    def combine(heatmaps, batch):
        if flip_index is None:
            return heatmaps
        return average_with_flipped(heatmaps[:batch], heatmaps[batch:], flip_index)

    def inputs_of(images):
        if flip_index is None:
            return images
        return ops.concatenate([images, ops.flip(images, axis=2)], axis=0)

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        from keras_hourglass.distributed import local_weights

        trainable = local_weights(model.trainable_variables)
        non_trainable = local_weights(model.non_trainable_variables)

        @jax.jit
        def run(trainable, non_trainable, images):
            outputs, _ = model.stateless_call(
                trainable, non_trainable, inputs_of(images), training=False
            )
            return codec.decode(combine(heatmaps_of(outputs), images.shape[0]))

        def call(images):
            if not isinstance(images, jax.Array):  # NumPy, or a tf.data batch
                images = jax.numpy.asarray(images.numpy() if hasattr(images, "numpy") else images)
            return run(trainable, non_trainable, images)

        return call
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True, reduce_retracing=True, autograph=False)
        def run(images):
            outputs = model(inputs_of(images), training=False)
            return codec.decode(combine(heatmaps_of(outputs), tf.shape(images)[0]))

        return run

    def run_eager(images):
        outputs = model(inputs_of(images), training=False)
        return codec.decode(combine(heatmaps_of(outputs), images.shape[0]))

    return run_eager
