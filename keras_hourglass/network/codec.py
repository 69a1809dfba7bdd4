"""The heatmap codec: one object renders training targets and decodes predictions.

Pixel convention (used everywhere in the project): a coordinate is in pixel-index units with
pixel centres at integers, 0-based, x to the right and y down; pixel i covers [i - 0.5, i + 0.5).
A heatmap pixel j covers input pixels [stride * j, stride * (j + 1)), so its centre is at input
coordinate stride * j + (stride - 1) / 2. Written as maps:

    heatmap = (input + 0.5) / stride - 0.5          input = (heatmap + 0.5) * stride - 0.5

Under this convention mirroring an image (x -> W - 1 - x) mirrors its heatmaps exactly
(h -> W_h - 1 - h), so flip testing needs no one-pixel shift.

`encode` uses TensorFlow ops (it runs inside `tf.data` graphs; TensorFlow is imported when it is
called, not when this module is imported); `encode_numpy` is the same in NumPy for the
TensorFlow-free pipeline. `decode` and `flip_heatmaps` use `keras.ops` only, so
they run in a SavedModel and on the JAX backend.
"""

import keras
import numpy as np
from keras import ops

# The stacked hourglass' heatmaps are a quarter of its input crop (the stem's stride-2
# convolution and its max-pool).
HOURGLASS_STRIDE = 4


def _pair(value, arg_name):
    if isinstance(value, int):
        value = (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2 or min(value) < 1:
        raise ValueError(
            f"`{arg_name}` must be a positive int or (height, width). Received: {arg_name}={value!r}"
        )
    return value


@keras.saving.register_keras_serializable(package="keras_hourglass")
class HeatmapCodec:
    """Encodes keypoints into Gaussian heatmaps and decodes heatmaps into keypoints.

    Args:
        input_size: side (or (height, width)) of the network input crop, in pixels.
        heatmap_size: side (or (height, width)) of the heatmaps; the input size divided by an
            integer stride (4 for the hourglass).
        sigma: standard deviation of the Gaussian in heatmap pixels (1.0 in the paper).
        shift: apply the paper's quarter-pixel shift toward the higher neighbour when decoding.
        offset: the decoding convention of a model trained elsewhere, in heatmap pixels: a
            heatmap position h means the input position `(h + offset + 0.5) * stride - 0.5`,
            and targets are drawn `offset` heatmap pixels lower (0 for this project's models;
            1 for bearpaw/pytorch-pose's, whose decoder reads arg-max + 1.5 where we read
            arg-max + 0.5: see docs/pretrained.md).

    Encoding draws, for every annotated joint inside the crop, an un-normalised Gaussian
    `exp(-d^2 / (2 sigma^2))` centred on the joint's exact (sub-pixel) heatmap position, so its
    peak value 1.0 sits at the keypoint. Joints that are not annotated, not finite, or outside
    the crop get an all-zero heatmap. (The reference Lua code rounds the centre to an integer
    pixel; the sub-pixel centre removes that up-to-half-pixel bias from the targets.)

    Decoding takes the arg-max of each heatmap, moves it a quarter pixel toward the higher of the
    two neighbours on each axis (where both neighbours exist), and maps it to input pixels. The
    confidence is the heatmap's peak value. For a target heatmap the round trip
    `decode(encode(k))` is within a quarter heatmap pixel of k per axis: with d the offset of k
    from its nearest heatmap pixel (|d| <= 0.5), arg-max finds that pixel and the shift moves
    0.25 toward k, leaving |d| - 0.25 <= 0.25, i.e. `stride / 4` input pixels (1 px for the
    paper's 256 -> 64).
    """

    def __init__(self, input_size=256, heatmap_size=64, sigma=1.0, shift=True, offset=0.0):
        self.input_size = _pair(input_size, "input_size")
        self.heatmap_size = _pair(heatmap_size, "heatmap_size")
        strides = []
        for i, o in zip(self.input_size, self.heatmap_size):
            if i % o:
                raise ValueError(
                    "`input_size` must be an integer multiple of `heatmap_size`. Received: "
                    f"input_size={self.input_size}, heatmap_size={self.heatmap_size}"
                )
            strides.append(i // o)
        self.stride = tuple(strides)
        sigma = float(sigma)
        if not sigma > 0:
            raise ValueError(f"`sigma` must be positive. Received: sigma={sigma}")
        self.sigma = sigma
        self.shift = bool(shift)
        offset = float(offset)
        if not abs(offset) < 1e3:
            raise ValueError(f"`offset` must be a finite number. Received: offset={offset}")
        self.offset = offset

    def get_config(self):
        return {
            "input_size": list(self.input_size),
            "heatmap_size": list(self.heatmap_size),
            "sigma": self.sigma,
            "shift": self.shift,
            "offset": self.offset,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def replace(self, **changes):
        """A copy with some settings changed, e.g. `codec.replace(shift=False)`."""
        return HeatmapCodec.from_config({**self.get_config(), **changes})

    def __repr__(self):
        return (
            f"HeatmapCodec(input_size={self.input_size}, heatmap_size={self.heatmap_size}, "
            f"sigma={self.sigma}, shift={self.shift}, offset={self.offset})"
        )

    # --- coordinate maps -------------------------------------------------------------------
    def to_heatmap_coords(self, keypoints):
        """Input-pixel (x, y) -> heatmap-pixel (x, y); works on any array type."""
        sx, sy = self.stride[1], self.stride[0]
        x = (keypoints[..., 0] + 0.5) / sx - 0.5 - self.offset
        y = (keypoints[..., 1] + 0.5) / sy - 0.5 - self.offset
        return x, y

    def to_input_coords(self, x, y):
        """Heatmap-pixel x, y -> input-pixel (..., 2) keypoints (keras.ops)."""
        sx, sy = self.stride[1], self.stride[0]
        o = self.offset
        return ops.stack([(x + o + 0.5) * sx - 0.5, (y + o + 0.5) * sy - 0.5], axis=-1)

    # --- encode (tf.data) ------------------------------------------------------------------
    def encode(self, keypoints, visible):
        """Renders target heatmaps inside a TensorFlow graph (e.g. a `tf.data` map).

        Args:
            keypoints: (..., K, 2) float keypoints (x, y) in input-crop pixels.
            visible: (..., K) annotated flags (bool or numeric, > 0 means annotated).

        Returns:
            (..., H, W, K) float32 heatmaps.
        """
        import tensorflow as tf

        keypoints = tf.convert_to_tensor(keypoints, tf.float32)
        visible = tf.cast(visible, tf.float32) > 0
        height, width = self.heatmap_size
        in_h, in_w = self.input_size
        mx, my = self.to_heatmap_coords(keypoints)
        inside = (
            tf.math.is_finite(keypoints[..., 0])
            & tf.math.is_finite(keypoints[..., 1])
            & (keypoints[..., 0] >= -0.5)
            & (keypoints[..., 0] < in_w - 0.5)
            & (keypoints[..., 1] >= -0.5)
            & (keypoints[..., 1] < in_h - 0.5)
        )
        valid = tf.cast(visible & inside, tf.float32)
        # Non-finite centres would poison the exp below even though they are masked out.
        mx = tf.where(tf.math.is_finite(mx), mx, 0.0)
        my = tf.where(tf.math.is_finite(my), my, 0.0)
        xs = tf.range(width, dtype=tf.float32)
        ys = tf.range(height, dtype=tf.float32)
        inv = 1.0 / (2.0 * self.sigma**2)
        gx = tf.exp(-tf.square(xs - mx[..., None]) * inv)  # (..., K, W)
        gy = tf.exp(-tf.square(ys - my[..., None]) * inv)  # (..., K, H)
        gx = gx * valid[..., None]
        heatmaps = gy[..., :, None] * gx[..., None, :]  # (..., K, H, W)
        rank = len(heatmaps.shape)
        perm = list(range(rank - 3)) + [rank - 2, rank - 1, rank - 3]
        return tf.transpose(heatmaps, perm)

    def encode_numpy(self, keypoints, visible, xp=np):
        """`encode` in NumPy (float32), for the TensorFlow-free input pipeline: the same rules
        (annotated, finite and inside the crop, else an all-zero map) and the same arithmetic.
        `xp=jax.numpy` runs the same lines in JAX (the device executor's targets).

        Args:
            keypoints: (..., K, 2) keypoints (x, y) in input-crop pixels.
            visible: (..., K) annotated flags.
            xp: the array namespace (numpy, or one spelled alike: jax.numpy).

        Returns:
            (..., H, W, K) float32 heatmaps.
        """
        keypoints = xp.asarray(keypoints, xp.float32)
        visible = xp.asarray(visible, xp.float32) > 0
        height, width = self.heatmap_size
        in_h, in_w = self.input_size
        with np.errstate(invalid="ignore"):
            mx, my = self.to_heatmap_coords(keypoints)
            x, y = keypoints[..., 0], keypoints[..., 1]
            inside = (
                xp.isfinite(x)
                & xp.isfinite(y)
                & (x >= -0.5)
                & (x < in_w - 0.5)
                & (y >= -0.5)
                & (y < in_h - 0.5)
            )
        valid = (visible & inside).astype(xp.float32)
        mx = xp.where(xp.isfinite(mx), mx, 0.0).astype(xp.float32)
        my = xp.where(xp.isfinite(my), my, 0.0).astype(xp.float32)
        inv = np.float32(1.0 / (2.0 * self.sigma**2))
        xs = xp.arange(width, dtype=xp.float32)
        ys = xp.arange(height, dtype=xp.float32)
        gx = xp.exp(-xp.square(xs - mx[..., None]) * inv) * valid[..., None]  # (..., K, W)
        gy = xp.exp(-xp.square(ys - my[..., None]) * inv)  # (..., K, H)
        heatmaps = gy[..., :, None] * gx[..., None, :]  # (..., K, H, W)
        return xp.moveaxis(heatmaps, -3, -1).astype(xp.float32)

    # --- decode (keras.ops) ----------------------------------------------------------------
    def decode(self, heatmaps):
        """Decodes a batch of heatmaps into keypoints and confidences.

        Args:
            heatmaps: (B, H, W, K) heatmaps (any backend tensor or NumPy array).

        Returns:
            keypoints: (B, K, 2) float32 (x, y) in input-crop pixels.
            scores: (B, K) float32, each heatmap's peak value.
        """
        heatmaps = ops.convert_to_tensor(heatmaps)
        heatmaps = ops.cast(heatmaps, "float32")
        height, width = heatmaps.shape[1], heatmaps.shape[2]
        if height is None or width is None:
            height, width = self.heatmap_size
        num_keypoints = heatmaps.shape[3]
        flat = ops.reshape(
            ops.transpose(heatmaps, (0, 3, 1, 2)), (-1, num_keypoints, height * width)
        )
        # The first position of the maximum (argmax's rule), written with min/where rather than
        # ops.argmax: TensorFlow's Keras argmax adds Bitcast/BitwiseAnd ops (a flush-to-zero
        # fix) that ONNX and TFLite cannot convert.
        scores = ops.max(flat, axis=-1)
        size = height * width
        positions = ops.arange(size, dtype="int32")
        index = ops.min(ops.where(flat == scores[..., None], positions, size), axis=-1)
        index = ops.minimum(index, size - 1)
        row = index // width
        col = index % width
        x = ops.cast(col, "float32")
        y = ops.cast(row, "float32")
        if self.shift:
            x = x + self._quarter_shift(flat, index, col, 1, width)
            y = y + self._quarter_shift(flat, index, row, width, height)
        return self.to_input_coords(x, y), scores

    @staticmethod
    def _quarter_shift(flat, index, position, step, size):
        """0.25 * sign(next - previous) along one axis; 0 where a neighbour is missing."""
        last = flat.shape[-1] - 1
        after = ops.take_along_axis(flat, ops.minimum(index + step, last)[..., None], axis=-1)
        before = ops.take_along_axis(flat, ops.maximum(index - step, 0)[..., None], axis=-1)
        diff = after[..., 0] - before[..., 0]
        interior = ops.logical_and(position > 0, position < size - 1)
        return ops.where(interior, 0.25 * ops.sign(diff), 0.0)

    # --- flip ------------------------------------------------------------------------------
    @staticmethod
    def flip_heatmaps(heatmaps, flip_index):
        """Heatmaps of a mirrored image -> heatmaps in the original image's frame.

        Mirrors the width axis and swaps left/right joints with the skeleton's `flip_index`.
        Under this project's pixel convention no sub-pixel shift is needed, and the operation
        is its own inverse.

        Args:
            heatmaps: (B, H, W, K).
            flip_index: the skeleton's flip permutation (length K).
        """
        heatmaps = ops.flip(heatmaps, axis=2)
        return ops.take(heatmaps, list(flip_index), axis=3)


def flip_keypoints(keypoints, width, flip_index):
    """Keypoints (..., K, 2) of an image of `width` -> keypoints of its mirror image."""
    x = (width - 1) - keypoints[..., 0]
    mirrored = ops.stack([x, keypoints[..., 1]], axis=-1)
    return ops.take(mirrored, list(flip_index), axis=-2)


def hourglass_codec(input_size, sigma=1.0, offset=0.0):
    """The `HeatmapCodec` of a stacked hourglass whose input crops are `input_size` (an int or
    (height, width)) pixels: heatmaps a quarter of that, Gaussians of `sigma` heatmap pixels.
    A model's own codec is `model.codec`; this is for data without a model (show_batch)."""
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)[:2]
    height, width = (int(v) for v in size)
    return HeatmapCodec(
        (height, width),
        (height // HOURGLASS_STRIDE, width // HOURGLASS_STRIDE),
        sigma,
        offset=offset,
    )
