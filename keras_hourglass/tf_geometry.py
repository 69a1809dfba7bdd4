"""Person crops in TensorFlow (tf.data pipelines and the SavedModel export).

The crop convention is pose-hg-train's: a person with centre c and scale s is the square of side
200 * s original pixels centred on c, resampled to `size` x `size`; crop pixel (size - 1) / 2
lands on c (see `keras_hourglass.inference.crop_to_original` for the keypoint map).
"""

import tensorflow as tf


def crop_people(images, centers, scales, size):
    """Bilinear crops of people from a batch of images.

    Args:
        images: (B, H, W, C) float images.
        centers: (B, 2) float (x, y) centres in original pixels.
        scales: (B,) float scales (box side = 200 * scale px).
        size: side of the output crops.

    Returns:
        (B, size, size, C) float32 crops; outside the image is 0.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    centers = tf.cast(centers, tf.float32)
    scales = tf.cast(scales, tf.float32)
    shape = tf.shape(images)
    height = tf.cast(shape[1], tf.float32)
    width = tf.cast(shape[2], tf.float32)
    # crop_and_resize samples crop pixel i at y1 * (H - 1) + i * (y2 - y1) * (H - 1) / (size - 1);
    # we want c_y + (i - (size - 1) / 2) * 200 * s / size.
    half = (size - 1) / 2.0 * (200.0 * scales / size)
    y1 = (centers[:, 1] - half) / tf.maximum(height - 1.0, 1.0)
    y2 = (centers[:, 1] + half) / tf.maximum(height - 1.0, 1.0)
    x1 = (centers[:, 0] - half) / tf.maximum(width - 1.0, 1.0)
    x2 = (centers[:, 0] + half) / tf.maximum(width - 1.0, 1.0)
    boxes = tf.stack([y1, x1, y2, x2], axis=1)
    box_indices = tf.range(shape[0])
    return tf.image.crop_and_resize(
        images, boxes, box_indices, (size, size), method="bilinear", extrapolation_value=0.0
    )


def whole_image_boxes(images):
    """Centre and scale of the square box that holds a batch's whole (same-size) images."""
    shape = tf.shape(images)
    height = tf.cast(shape[1], tf.float32)
    width = tf.cast(shape[2], tf.float32)
    center = tf.stack([(width - 1.0) / 2.0, (height - 1.0) / 2.0])
    centers = tf.tile(center[None], [shape[0], 1])
    scales = tf.fill([shape[0]], tf.maximum(height, width) / 200.0)
    return centers, scales
