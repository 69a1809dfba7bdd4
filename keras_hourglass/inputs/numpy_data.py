"""The input executor without TensorFlow: the same samples as `tf_data.make_dataset`, served by
`keras.utils.PyDataset` with Pillow, OpenCV and NumPy (the JAX backend on the GPU machines).

    ds = PoseSequence(records, skeleton, codec, batch_size=16, training=True, workers=8)
    model.fit(ds, steps_per_epoch=1000, epochs=100)

Per sample, as the tf.data pipeline: decode the JPEG/PNG (grayscale and RGBA become RGB), shrink
large people by an integer factor with an anti-aliasing filter, one affine warp (bilinear, 0
outside) through `geometry.crop_matrix` (crop, scale, rotation, flip), keypoints through the same
matrix, the joint swap when flipped, colour gains clipped to [0, 1], and the codec's targets
(`HeatmapCodec.encode_numpy`). Given the same augmentation parameters the two executors give the
same keypoints, heatmaps and, up to the two libraries' resampling, the same images (tested).

Determinism: the order is a permutation per epoch from NumPy's generator seeded (seed, epoch),
and every random draw of element `counter` comes from (seed, counter) (`Augmentation.draw_numpy`),
so batch i is the same whatever the number of workers, threads or processes, and `start_batch`
resumes exactly. The draws and the order are NOT the tf.data pipeline's numbers (TensorFlow's
stateless generator cannot be reproduced without TensorFlow); their distributions are the same.
"""

import math

import keras
import numpy as np

from keras_hourglass import geometry
from keras_hourglass.datasets.images import read_image_floats
from keras_hourglass.distributed import shard_of
from keras_hourglass.inputs import spec
from keras_hourglass.inputs.augmentation import Augmentation


def transform_sample(image, record, skeleton, codec, params=None):
    """One sample as the pipelines make it.

    Args:
        image: (H, W, 3) float32 source image in [0, 1].
        record: a `datasets.PersonRecord`.
        skeleton: its `Skeleton` (flip permutation).
        codec: the `HeatmapCodec` (crop side = its input size).
        params: (scale factor, angle in radians, flip, gains (3,)[, centre shift (2,) as a
            fraction of the crop's side]), or None for none.

    Returns:
        crop (S, S, 3) float32, heatmaps (S/4, S/4, K) float32, metadata dict (as `make_dataset`'s
        evaluation metadata, NumPy, without the batch axis).
    """
    size = codec.input_size[0]
    scale_factor, angle, flip, gains = (params or (1.0, 0.0, False, np.ones(3, np.float32)))[:4]
    shift = np.asarray(params[4] if params and len(params) > 4 else (0.0, 0.0), np.float64)
    side = geometry.PERSON_BOX_PX * float(record.scale) * scale_factor
    a, center = geometry.crop_matrix(
        np.asarray(record.center, np.float64) + shift * side,
        float(record.scale), size, scale_factor, angle, flip,
    )  # fmt: skip
    crop = np.clip(geometry.warp(image, a, center, size) * np.asarray(gains, np.float32), 0.0, 1.0)
    keypoints = geometry.source_to_crop_points(record.keypoints, a, center, size)
    annotated = np.asarray(record.annotated, bool)
    if flip:
        keypoints = keypoints[list(skeleton.flip_index)]
        annotated = annotated[list(skeleton.flip_index)]
    keypoints = keypoints.astype(np.float32)
    heatmaps = codec.encode_numpy(keypoints, annotated)
    with np.errstate(invalid="ignore"):
        inside = np.all((keypoints >= -0.5) & (keypoints < size - 0.5), axis=-1)
    meta = {
        "center": np.asarray(record.center, np.float32),
        "scale": np.float32(record.scale),
        "keypoints": np.asarray(record.keypoints, np.float32),
        "annotated": np.asarray(record.annotated, bool),
        "normalizer": np.float32(record.normalizer),
        "crop_keypoints": keypoints,
        "crop_visible": annotated & inside,
        "flip": bool(flip),
        "angle": np.float32(math.degrees(angle)),
        "scale_factor": np.float32(scale_factor),
        "gains": np.asarray(gains, np.float32),
    }
    return crop.astype(np.float32, copy=False), heatmaps, meta


class _Order:
    """Element counter -> position in the list: a fresh permutation per epoch (seed, epoch) when
    shuffling, the list order otherwise. Remembers the last two epochs' permutations."""

    def __init__(self, count, seed, shuffle):
        self.count, self.seed, self.shuffle = count, seed, shuffle
        self._cache = {}

    def __call__(self, counter):
        epoch, position = divmod(int(counter), self.count)
        if not self.shuffle:
            return position
        if epoch not in self._cache:
            if len(self._cache) >= 2:
                self._cache.pop(min(self._cache))
            rng = np.random.default_rng([int(self.seed) & 0xFFFFFFFF, epoch, 0x6F72646572])
            self._cache[epoch] = rng.permutation(self.count)
        return int(self._cache[epoch][position])


class PoseSequence(keras.utils.PyDataset):
    """`tf_data.make_dataset` as a `keras.utils.PyDataset`: the same arguments and batches
    (images, heatmaps[, metadata]), NumPy arrays; records only (a crop cache is TFRecord,
    TensorFlow's format). `workers` threads (or processes with `use_multiprocessing=True`)
    prepare batches ahead; OpenCV and Pillow release the GIL.

    Batches count elements from 0: local batch i holds this shard's elements of global batch
    `start_batch + i`.
    """

    def __init__(
        self,
        source,
        skeleton,
        codec,
        batch_size,
        training,
        seed=0,
        augmentation=None,
        repeat=None,
        shuffle=None,
        with_meta=None,
        drop_remainder=None,
        start_batch=0,
        shard=None,
        workers=1,
        use_multiprocessing=False,
        max_queue_size=10,
    ):
        super().__init__(
            workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size
        )
        if isinstance(source, str) or not hasattr(source, "__len__"):
            raise ValueError(
                f"The TensorFlow-free pipeline reads records, not a crop cache ({source!r} is "
                "TFRecord files, which need TensorFlow): pass the dataset's records."
            )
        if codec.input_size[0] != codec.input_size[1]:
            raise ValueError(f"Crops are square; received codec={codec!r}")
        count = len(source)
        if count < 1:
            raise ValueError("the input pipeline received an empty dataset.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if augmentation is None:
            augmentation = Augmentation()
        self.records = list(source)
        self.skeleton, self.codec = skeleton, codec
        self.augmentation = augmentation if training and augmentation is not False else None
        self.count, self.batch_size = count, int(batch_size)
        self.seed = int(seed)
        self.repeat = training if repeat is None else repeat
        self.with_meta = (not training) if with_meta is None else with_meta
        self.drop_remainder = training if drop_remainder is None else drop_remainder
        self.start_batch = int(start_batch)
        self.num_shards, self.shard_index = shard_of(self.batch_size, shard)
        self.order = _Order(count, seed, training if shuffle is None else shuffle)

    @property
    def num_batches(self):
        if self.repeat:
            return None
        whole, rest = divmod(self.count, self.batch_size)
        total = whole + (1 if rest and not self.drop_remainder else 0)
        return max(total - self.start_batch, 0)

    def __len__(self):
        n = self.num_batches
        if n is None:
            raise TypeError("an endless (repeating) pipeline has no length")
        return n

    def counters(self, index):
        first = (self.start_batch + int(index)) * self.batch_size
        last = first + self.batch_size
        if not self.repeat:
            last = min(last, self.count)
        return list(range(first + self.shard_index, last, self.num_shards))

    def __getitem__(self, index):
        if not self.repeat and index >= len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        elements = [self.element(c, self.order(c)) for c in self.counters(index)]
        images = np.stack([e[0] for e in elements])
        heatmaps = np.stack([e[1] for e in elements])
        meta = None
        if self.with_meta:
            meta = {key: np.stack([e[2][key] for e in elements]) for key in elements[0][2]}
        return spec.batch(images, heatmaps, meta, self.with_meta)

    def params(self, counter):
        """The augmentation drawn for element `counter` (None when not training)."""
        if self.augmentation is None:
            return None
        drawn = self.augmentation.draw_numpy(self.seed, counter)
        if self.augmentation.shift_sigma:
            drawn = (*drawn, self.augmentation.draw_shift_numpy(self.seed, counter))
        return drawn

    def element(self, counter, position):
        record = self.records[position]
        crop, heatmaps, meta = transform_sample(
            read_image_floats(record.image_path),
            record,
            self.skeleton,
            self.codec,
            self.params(counter),
        )
        meta["index"] = position
        return crop, heatmaps, spec.numpy_meta(meta, self.skeleton.num_joints)
