"""The crop geometry, written once for every executor: NumPy, TensorFlow and `keras.ops`.

Convention (pose-hg-train): a person is described by a centre (x, y) in image pixels and a scale
s; the person box is the square of side `PERSON_BOX_PX * s` = 200 s px centred on the centre. A
crop of side S px shows that box: crop pixel centre (S - 1) / 2 lands on the person centre.
Pixel centres are at integers (0-based).

Every function takes the array namespace to compute with as `xp`: `numpy`, `tensorflow` (inside
`tf.data` and the SavedModel) or `keras.ops` (any Keras backend). Only `cos`, `sin`, `where`,
`stack`, arithmetic and broadcasting are used, which the three spell alike. So the tf.data
pipeline, the TensorFlow-free pipeline, inference and export all call the same lines.
"""

import math

import cv2
import numpy as np
from PIL import Image

# Side of the person box at scale 1, in pixels (MPII's and pose-hg-train's convention).
PERSON_BOX_PX = 200.0


def crop_matrix(center, scale, size, scale_factor=1.0, angle=0.0, flip=False, xp=np):
    """The affine map from crop pixels to source-image pixels, as (A (2, 2), centre (2,)):

        source = A @ (crop - m) + centre,  m = (size - 1) / 2,
        A = k R(angle) diag(-1 if flip else 1, 1),  k = 200 * scale * scale_factor / size.

    So the crop centre lands on the person centre, the person box fills the crop at scale factor
    1, a positive angle turns the content of the crop clockwise on screen (image y points down)
    and a flipped crop is the mirror image (x -> size - 1 - x) of the unflipped one.

    Args:
        center: (2,) person centre (x, y) in source pixels.
        scale: person scale (box side / 200 px).
        size: crop side in pixels.
        scale_factor: augmentation zoom (> 1 shows more of the image).
        angle: rotation in radians.
        flip: mirror horizontally.
        xp: the array namespace (numpy, tensorflow or keras.ops).
    """
    k = PERSON_BOX_PX * scale * scale_factor / size
    cos, sin = xp.cos(angle) * k, xp.sin(angle) * k
    sign = xp.where(flip, -1.0, 1.0)
    a = xp.stack([xp.stack([cos * sign, -sin]), xp.stack([sin * sign, cos])])
    return a, center


def whole_image_box(height, width, xp=np):
    """(centre (2,), scale) of the person box that is the whole image: the square of side
    max(H, W) centred on the image (what serving and `estimate_poses` use without a box)."""
    return xp.stack([(width - 1.0) / 2.0, (height - 1.0) / 2.0]), (
        xp.maximum(height, width) / PERSON_BOX_PX
    )


def crop_to_source_rows(a, center, size):
    """The 2x3 matrix M with source = M @ (crop x, crop y, 1), from `crop_matrix`'s (A, centre):
    what `ImageProjectiveTransformV3` and `cv2.warpAffine(..., WARP_INVERSE_MAP)` take. NumPy."""
    a = np.asarray(a, np.float64)
    m = (size - 1) / 2.0
    b = np.asarray(center, np.float64) - a @ np.array([m, m])
    return np.concatenate([a, b[:, None]], axis=1)


def source_to_crop_points(points, a, center, size):
    """Source-image points (..., K, 2) -> crop points through the inverse of (A, centre). NumPy
    float64 (the TensorFlow pipeline has its own two lines with `tf.linalg.inv`)."""
    a = np.asarray(a, np.float64)
    m = (size - 1) / 2.0
    inv = np.linalg.inv(a)
    return (np.asarray(points, np.float64) - np.asarray(center, np.float64)) @ inv.T + m


def crop_to_original(keypoints, centers, scales, crop_size):
    """Maps keypoints (B, K, 2) from crop pixels of un-augmented crops to original pixels, for
    centres (B, 2) and scales (B,): `centre + (p - (S - 1) / 2) * 200 s / S`. `keras.ops` (runs
    on any backend, in the serving graph, and on NumPy inputs)."""
    from keras import ops  # here, so that importing geometry (the person box) needs no Keras

    factor = ops.reshape(PERSON_BOX_PX * ops.cast(scales, "float32") / crop_size, (-1, 1, 1))
    centers = ops.reshape(ops.cast(centers, "float32"), (-1, 1, 2))
    return centers + (keypoints - (crop_size - 1) / 2.0) * factor


def shrink_factor(a, max_downscale=1.5):
    """Integer factor to shrink the source image by (anti-aliased) before sampling a crop through
    `a`: when one crop pixel spans more than `max_downscale` source pixels, floor of that span;
    else 1. NumPy (the TensorFlow pipeline computes the same with tf ops)."""
    k = math.sqrt(abs(float(np.linalg.det(np.asarray(a, np.float64)))))
    return math.floor(k) if k > max_downscale else 1


def _shrink(image, factor, window=None):
    """Shrinks (H, W, 3) by an integer factor to round(shape / factor) with PIL's anti-aliased
    bilinear (triangle) filter, TensorFlow's `resize(antialias=True)` filter; returns the image
    and the (y, x) ratio new / old. `window` (x0, y0, x1, y1), in the shrunk image's pixels:
    only that part of the shrunk image (the same pixels as the whole one's, from only the
    source pixels under the filter: a person's crop costs its own area, not the photo's)."""
    h, w = image.shape[:2]
    new_h, new_w = max(int(round(h / factor)), 1), max(int(round(w / factor)), 1)
    ry, rx = new_h / h, new_w / w
    x0, y0, x1, y1 = (0, 0, new_w, new_h) if window is None else window
    # The source pixels the triangle filter reaches (1 / r either side), and one more.
    sx0, sy0 = max(0, math.floor((x0 - 1) / rx) - 1), max(0, math.floor((y0 - 1) / ry) - 1)
    sx1, sy1 = min(w, math.ceil((x1 + 1) / rx) + 1), min(h, math.ceil((y1 + 1) / ry) + 1)
    part = image[sy0:sy1, sx0:sx1]
    box = (
        max(0.0, x0 / rx - sx0),
        max(0.0, y0 / ry - sy0),
        min(sx1 - sx0, x1 / rx - sx0),
        min(sy1 - sy0, y1 / ry - sy0),
    )
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(part[..., c]), mode="F").resize(
                (x1 - x0, y1 - y0), Image.BILINEAR, box=box
            )
        )
        for c in range(3)
    ]
    return np.stack(channels, axis=-1), (ry, rx)


def warp(image, a, center, size, max_downscale=1.5):
    """`pipeline.warp` in NumPy/OpenCV (no TensorFlow): (H, W, 3) float -> (size, size, 3)
    through (A, centre), shrinking first (anti-aliased) where `shrink_factor` says: only the
    part of the photo under the crop (`_shrink`'s window), so a person costs its crop's area."""
    factor = shrink_factor(a, max_downscale)
    rows = crop_to_source_rows(a, center, size)
    if factor > 1:
        h, w = image.shape[:2]
        new_h, new_w = max(int(round(h / factor)), 1), max(int(round(w / factor)), 1)
        ry, rx = new_h / h, new_w / w
        # The shrink's half-pixel map: s' = (s + 0.5) * r - 0.5.
        rows[0] = rows[0] * rx + np.array([0.0, 0.0, 0.5 * rx - 0.5])
        rows[1] = rows[1] * ry + np.array([0.0, 0.0, 0.5 * ry - 0.5])
        corners = np.array([[0, 0, 1], [size - 1, 0, 1], [0, size - 1, 1], [size - 1, size - 1, 1]])
        reach = corners @ rows.T  # the crop's corners in the shrunk image
        x0 = min(max(0, math.floor(reach[:, 0].min()) - 2), new_w - 1)
        y0 = min(max(0, math.floor(reach[:, 1].min()) - 2), new_h - 1)
        x1 = max(min(new_w, math.ceil(reach[:, 0].max()) + 3), x0 + 1)
        y1 = max(min(new_h, math.ceil(reach[:, 1].max()) + 3), y0 + 1)
        image, _ = _shrink(image, factor, (x0, y0, x1, y1))
        rows[:, 2] -= (x0, y0)
    return cv2.warpAffine(
        np.ascontiguousarray(image, np.float32),
        rows,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0.0, 0.0, 0.0),
    )


def crop_person(image, center, scale, size):
    """The un-augmented person crop of evaluation (NumPy): (H, W, 3) float -> (size, size, 3)."""
    a, center = crop_matrix(np.asarray(center, np.float64), float(scale), size)
    return warp(image, a, center, size)
