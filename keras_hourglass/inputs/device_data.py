"""The input executor on the accelerator (JAX): crops, augmentation and heatmap targets are made
on the device from a bank of person cuts decoded once, so the GPU's step, not the host's cores,
bounds training.

    bank = PersonBank.build(records, codec, augmentation, workers=16)  # once: decode, one warp
    ds = DevicePoseSequence(bank, skeleton, codec, batch_size=64, training=True, seed=0)
    model.fit(ds, steps_per_epoch=200, epochs=100)  # the batches are jax.Arrays on the device

Why: the numpy executor decodes a JPEG and warps it on the host for every sample; with 16
threads it fed about 530-800 crops/s on the 2026-12-04 H200 machine, below the 8-stack model's
step (docs/BENCHMARKS.md). Here the host decodes each person once and then only draws the
augmentation (a few NumPy numbers per sample); the device does the pixel work.

Per person, once (host, `workers` threads): the un-augmented crop at the crop's resolution but
`Augmentation.margin` wider - a square "cut" of side C = ceil(margin (S - 1)) + 3 (439 px for
S = 256), the person box filling S of its pixels - made by `geometry.warp` (the numpy executor's
warp, with its anti-aliased shrink of large people), stored as uint8, and the keypoints in the
cut's pixels. C holds every crop the augmentation can draw (scale up to 1.25 at 30 degrees).

Per batch (device, one jitted function): the numpy executor's draws for the same elements
(`Augmentation.draw_numpy(seed, counter)`, the same order and resume rule), each crop one
bilinear sample of its cut through f R(angle) diag(-1 if flip else 1, 1) around the cut's centre
(zero outside, as OpenCV's BORDER_CONSTANT), the colour gains, clip to [0, 1], the keypoints
through the inverse map, the joint swap when flipped, and the codec's Gaussian targets
(`HeatmapCodec.encode_numpy` run by jax.numpy).

Given the same draws the keypoints and heatmaps equal the numpy executor's to float32 rounding;
the crops are resampled twice (the cut, then the augmentation) and stored as 8 bits in between,
so they are a little smoother than the numpy executor's single warp (tests/device_cases.py
measures the difference on LSPET photos). Evaluation keeps reading with numpy or tf.data: the
bank serves training batches (images, heatmaps) only.

Memory: N C^2 3 bytes on the device (5.2 GB for LSPET's 8,999 people at 256 px; 0.3 GB at
64 px), plus the batch.
"""

import concurrent.futures
import math
import time

import numpy as np

from keras_hourglass import geometry
from keras_hourglass.datasets.images import read_image_floats
from keras_hourglass.inputs import spec
from keras_hourglass.inputs.augmentation import Augmentation
from keras_hourglass.inputs.numpy_data import PoseSequence


def cut_side(size, augmentation):
    """Side C of the square cut that holds every augmented crop of side `size`: the crop's corner
    lies margin (size - 1) / 2 from the centre at most, plus a bilinear tap and rounding."""
    return int(math.ceil(augmentation.margin * (size - 1))) + 3


def _cut(record, size, side):
    """One person's cut (side, side, 3) uint8 and keypoints (K, 2) float32 in its pixels."""
    # k = 200 s / size: one cut pixel is one crop pixel at scale factor 1.
    a, center = geometry.crop_matrix(
        np.asarray(record.center, np.float64), float(record.scale), side, side / size
    )
    image = read_image_floats(record.image_path)
    cut = geometry.warp(image, a, center, side)
    cut = np.clip(np.rint(cut * 255.0), 0, 255).astype(np.uint8)
    keypoints = geometry.source_to_crop_points(record.keypoints, a, center, side)
    return cut, keypoints.astype(np.float32)


class PersonBank:
    """Every training person's cut on the device: `images` (N, C, C, 3) uint8, `keypoints`
    (N, K, 2) float32 in cut pixels, `annotated` (N, K) bool, for crops of side `size`."""

    build_seconds = None  # how long `build` took

    def __init__(self, records, size, augmentation, images, keypoints, annotated):
        import jax

        self.records, self.size, self.augmentation = list(records), int(size), augmentation
        self.side = int(images.shape[1])
        self.images = jax.device_put(images)
        self.keypoints = jax.device_put(keypoints)
        self.annotated = jax.device_put(annotated)

    @property
    def nbytes(self):
        return int(self.images.size) + int(self.keypoints.size) * 4 + int(self.annotated.size)

    @classmethod
    def build(cls, records, codec, augmentation=None, workers=1, progress=None):
        """Decodes and cuts every record once with `workers` threads (OpenCV and Pillow release
        the GIL). `progress(done, total)` is called about every tenth of them when given."""
        records = list(records)
        if not records:
            raise ValueError("the input pipeline received an empty dataset.")
        if codec.input_size[0] != codec.input_size[1]:
            raise ValueError(f"Crops are square; received codec={codec!r}")
        augmentation = augmentation or Augmentation()
        size = int(codec.input_size[0])
        side = cut_side(size, augmentation)
        count, joints = len(records), len(records[0].annotated)
        images = np.empty((count, side, side, 3), np.uint8)
        keypoints = np.empty((count, joints, 2), np.float32)
        annotated = np.stack([np.asarray(r.annotated, bool) for r in records])
        started, every = time.time(), max(500, -(-count // 10))

        def one(i):
            images[i], keypoints[i] = _cut(records[i], size, side)
            return i

        with concurrent.futures.ThreadPoolExecutor(max(1, int(workers))) as pool:
            for done, _ in enumerate(pool.map(one, range(count)), 1):
                if progress and (done % every == 0 or done == count):
                    progress(done, count)
        bank = cls(records, size, augmentation, images, keypoints, annotated)
        bank.build_seconds = time.time() - started
        return bank

    def __str__(self):
        return (
            f"person bank: {len(self.records):,} people as {self.side} px cuts, "
            f"{self.nbytes / 2**30:.2f} GiB on {self.images.devices().pop()}"
        )


def _augment_fn(side, size, codec, flip_index):
    """The jitted batch maker: (bank images, keypoints, annotated, index (B,), scale factor (B,),
    angle (B,) radians, flip (B,) bool, gains (B, 3)) -> crops (B, S, S, 3), heatmaps."""
    import jax
    import jax.numpy as jnp

    m, mc = (size - 1) / 2.0, (side - 1) / 2.0
    flip_index = jnp.asarray(flip_index, jnp.int32)

    def make(images, keypoints, annotated, index, factor, angle, flip, gains):
        batch = index.shape[0]
        cos, sin = jnp.cos(angle) * factor, jnp.sin(angle) * factor
        sign = jnp.where(flip, -1.0, 1.0)
        # cut = M (crop - m) + mc, M = f R(angle) diag(sign, 1): crop_matrix's map relative
        # to the cut, whose pixel is the crop's at scale factor 1.
        mat = jnp.stack([jnp.stack([cos * sign, -sin], -1), jnp.stack([sin * sign, cos], -1)], -2)
        grid = jnp.arange(size, dtype=jnp.float32) - m
        gx, gy = jnp.meshgrid(grid, grid)  # (S, S): x along columns
        x = mat[:, 0, 0, None, None] * gx + mat[:, 0, 1, None, None] * gy + mc
        y = mat[:, 1, 0, None, None] * gx + mat[:, 1, 1, None, None] * gy + mc
        x0, y0 = jnp.floor(x), jnp.floor(y)
        wx, wy = x - x0, y - y0
        flat = images.reshape(images.shape[0], side * side, 3)
        crop = jnp.zeros((batch, size, size, 3), jnp.float32)
        for dy, dx, weight in (
            (0, 0, (1 - wy) * (1 - wx)),
            (0, 1, (1 - wy) * wx),
            (1, 0, wy * (1 - wx)),
            (1, 1, wy * wx),
        ):
            xi, yi = (x0 + dx).astype(jnp.int32), (y0 + dy).astype(jnp.int32)
            inside = (xi >= 0) & (xi < side) & (yi >= 0) & (yi < side)
            lin = jnp.clip(yi, 0, side - 1) * side + jnp.clip(xi, 0, side - 1)
            taps = flat[index[:, None], lin.reshape(batch, -1)].reshape(batch, size, size, 3)
            crop = crop + taps.astype(jnp.float32) * (weight * inside)[..., None]
        crop = jnp.clip(crop * (gains[:, None, None, :] / 255.0), 0.0, 1.0)
        # Keypoints: crop = M^-1 (cut - mc) + m, then the joint swap of flipped crops.
        inverse = jnp.linalg.inv(mat)
        points = jnp.einsum("bij,bkj->bki", inverse, keypoints[index] - mc) + m
        visible = annotated[index]
        points = jnp.where(flip[:, None, None], points[:, flip_index], points)
        visible = jnp.where(flip[:, None], visible[:, flip_index], visible)
        return crop, codec.encode_numpy(points, visible, xp=jnp)

    return jax.jit(make)


class DevicePoseSequence(PoseSequence):
    """`PoseSequence`'s batches (the same elements, order, draws, shards and `start_batch`) made
    on the device from a `PersonBank`: (images, heatmaps) as jax.Arrays. Training batches only
    (no metadata)."""

    def __init__(self, bank, skeleton, codec, batch_size, training, with_meta=None, **kwargs):
        if with_meta:
            raise ValueError(
                "the device executor makes training batches (images, heatmaps) only; evaluation "
                "reads with the numpy or tf.data executor"
            )
        if tuple(codec.input_size) != (bank.size, bank.size):
            raise ValueError(
                f"the person bank was cut for {bank.size} px crops, the codec makes "
                f"{codec.input_size[0]} px ones"
            )
        kwargs.setdefault("workers", 1)
        kwargs.setdefault("augmentation", bank.augmentation)
        if kwargs["augmentation"] and kwargs["augmentation"].margin > bank.augmentation.margin:
            raise ValueError("the augmentation reaches beyond the bank's cuts: rebuild the bank")
        super().__init__(
            bank.records, skeleton, codec, batch_size, training, with_meta=False, **kwargs
        )
        self.bank = bank
        self._make = _augment_fn(bank.side, bank.size, codec, skeleton.flip_index)

    def __getitem__(self, index):
        if not self.repeat and index >= len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        counters = self.counters(index)
        positions = np.array([self.order(c) for c in counters], np.int32)
        draws = [self.params(c) or (1.0, 0.0, False, np.ones(3, np.float32)) for c in counters]
        images, heatmaps = self._make(
            self.bank.images,
            self.bank.keypoints,
            self.bank.annotated,
            positions,
            np.array([d[0] for d in draws], np.float32),
            np.array([d[1] for d in draws], np.float32),
            np.array([d[2] for d in draws], bool),
            np.stack([d[3] for d in draws]).astype(np.float32),
        )
        return spec.batch(images, heatmaps, None, False)
