"""Inference as the paper does it: flip test, quarter-pixel decoding, back to the original image.

Only `keras.ops`, so it runs on every backend and inside an exported SavedModel.
"""

from keras import ops

from keras_hourglass.codec import HeatmapCodec


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
        heatmaps = 0.5 * (heatmaps + HeatmapCodec.flip_heatmaps(flipped, flip_index))
    return ops.cast(heatmaps, "float32")


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


def crop_to_original(keypoints, centers, scales, crop_size):
    """Maps keypoints from crop pixels to original-image pixels.

    A crop of side `crop_size` px shows the square of side 200 * scale px centred on `center`
    (the pose-hg-train convention); the crop's centre (crop_size - 1) / 2 maps to `center`.

    Args:
        keypoints: (B, K, 2) crop coordinates.
        centers: (B, 2) person centres (x, y) in original pixels.
        scales: (B,) person scales.
        crop_size: side of the crop in pixels.
    """
    factor = ops.reshape(200.0 * ops.cast(scales, "float32") / crop_size, (-1, 1, 1))
    centers = ops.reshape(ops.cast(centers, "float32"), (-1, 1, 2))
    return centers + (keypoints - (crop_size - 1) / 2.0) * factor


def original_to_crop(keypoints, centers, scales, crop_size):
    """The inverse of `crop_to_original`."""
    factor = ops.reshape(200.0 * ops.cast(scales, "float32") / crop_size, (-1, 1, 1))
    centers = ops.reshape(ops.cast(centers, "float32"), (-1, 1, 2))
    return (keypoints - centers) / factor + (crop_size - 1) / 2.0
