"""The tf.data input executor: decode, crop, augment (one affine per sample), render targets.

    ds = make_dataset(records, skeleton, codec, batch_size=16, training=True)

Training elements are (images, heatmaps); evaluation elements add a third element of metadata
(`inputs.spec.META`: centre, scale, original keypoints, annotated mask, normaliser, record
index, ...) to map predictions back to the original image. The source is either a list of records
from `keras_hourglass.datasets` (raw JPEG/PNG files) or the folder of a crop cache written by
`train/prepare.py`; both go through the same transform with the same random parameters.

Augmentation (`Augmentation`, defaults below) follows the reference code's shape, with the
paper's ranges. Every random draw is a stateless function of (seed, element counter), so a
pipeline is deterministic for a given seed, also when parallel.
"""

import glob
import json
import math
import os

import numpy as np
import tensorflow as tf

from keras_hourglass import geometry
from keras_hourglass.distributed import shard_of
from keras_hourglass.inputs import spec
from keras_hourglass.inputs.augmentation import Augmentation

# --- sources -----------------------------------------------------------------------------------


def records_to_columns(records):
    if len(records) == 0:
        raise ValueError("make_dataset received no records (an empty dataset).")
    return {
        "path": np.array([r.image_path for r in records]),
        "keypoints": np.stack([r.keypoints for r in records]).astype(np.float32),
        "annotated": np.stack([r.annotated for r in records]),
        "center": np.stack([r.center for r in records]).astype(np.float32),
        "scale": np.array([r.scale for r in records], np.float32),
        "normalizer": np.array([r.normalizer for r in records], np.float32),
        "index": np.arange(len(records), dtype=np.int64),
    }


def _raw_source(records):
    columns = records_to_columns(records)
    ds = tf.data.Dataset.from_tensor_slices(columns)

    def load(e):
        return {
            "image": tf.io.read_file(e["path"]),
            "src_keypoints": e["keypoints"],
            "src_center": e["center"],
            "src_scale": e["scale"],
            "keypoints": e["keypoints"],
            "annotated": e["annotated"],
            "center": e["center"],
            "scale": e["scale"],
            "normalizer": e["normalizer"],
            "index": e["index"],
        }

    return ds, load, len(records)


def cache_files(cache_dir):
    """The shard files and metadata of a crop cache folder (see train/prepare.py)."""
    meta_path = os.path.join(cache_dir, "meta.json")
    if not os.path.isfile(meta_path):
        raise FileNotFoundError(
            f"{cache_dir!r} is not a finished crop cache (no meta.json); run train/prepare.py."
        )
    with open(meta_path) as f:
        meta = json.load(f)
    files = sorted(glob.glob(os.path.join(cache_dir, "shard-*.tfrecord")))
    if len(files) != meta["num_shards"]:
        raise FileNotFoundError(
            f"{cache_dir!r}: expected {meta['num_shards']} shards, found {len(files)}."
        )
    return files, meta


def _cache_features(k):
    f = tf.io.FixedLenFeature
    return {
        "image": f([], tf.string),
        "src_keypoints": f([k * 2], tf.float32),
        "src_center": f([2], tf.float32),
        "src_scale": f([], tf.float32),
        "keypoints": f([k * 2], tf.float32),
        "annotated": f([k], tf.int64),
        "center": f([2], tf.float32),
        "scale": f([], tf.float32),
        "normalizer": f([], tf.float32),
        "index": f([], tf.int64),
    }


def _cache_source(cache_dir, skeleton):
    files, meta = cache_files(cache_dir)
    if meta["num_joints"] != skeleton.num_joints:
        raise ValueError(
            f"Crop cache {cache_dir!r} holds {meta['num_joints']} joints, but skeleton "
            f"{skeleton.name!r} has {skeleton.num_joints}."
        )
    k = skeleton.num_joints
    features = _cache_features(k)
    ds = tf.data.TFRecordDataset(files)

    def load(serialized):
        e = tf.io.parse_single_example(serialized, features)
        e["src_keypoints"] = tf.reshape(e["src_keypoints"], (k, 2))
        e["keypoints"] = tf.reshape(e["keypoints"], (k, 2))
        e["annotated"] = e["annotated"] > 0
        return e

    return ds, load, meta["num_records"]


# --- geometry ----------------------------------------------------------------------------------


def _sample_params(seed, augmentation, batch_shape=()):
    """Scale factor, rotation (radians), flip flag and colour gains from a stateless seed."""
    seeds = tf.random.experimental.stateless_split(seed, 6)
    a = augmentation
    scale = tf.clip_by_value(
        1.0 + a.scale_sigma * tf.random.stateless_normal(batch_shape, seeds[0]), *a.scale_range
    )
    angle = tf.clip_by_value(
        a.rotation_sigma * tf.random.stateless_normal(batch_shape, seeds[1]),
        -a.rotation_max,
        a.rotation_max,
    )
    rotate = tf.random.stateless_uniform(batch_shape, seeds[2]) < a.rotation_prob
    angle = tf.where(rotate, angle, 0.0) * (math.pi / 180.0)
    flip = tf.random.stateless_uniform(batch_shape, seeds[3]) < a.flip_prob
    gains = tf.random.stateless_uniform(
        batch_shape + (3,), seeds[4], minval=a.colour_range[0], maxval=a.colour_range[1]
    )
    return scale, angle, flip, gains


def _sample_shift(seed, augmentation):
    """The crop centre's shift (2,) as a fraction of the crop's side (`Augmentation`'s shift),
    from a seed of its own derived from the element's."""
    seed = tf.random.experimental.stateless_split(seed, 7)[6]
    sigma = augmentation.shift_sigma
    return tf.clip_by_value(sigma * tf.random.stateless_normal([2], seed), -2 * sigma, 2 * sigma)


def crop_transform(center, scale, size, scale_factor=1.0, angle=0.0, flip=False):
    """`geometry.crop_matrix` in TensorFlow: (A (2x2), centre) with source = A (crop - m) + centre."""
    return geometry.crop_matrix(
        tf.cast(center, tf.float32),
        tf.cast(scale, tf.float32),
        size,
        tf.cast(scale_factor, tf.float32),
        tf.cast(angle, tf.float32),
        tf.convert_to_tensor(flip),
        xp=tf,
    )


def tf_warp(image, a, center, size, max_downscale=1.5):
    """Resamples `image` (H, W, 3 float) into a size x size crop through the affine (a, center).

    Bilinear sampling; outside the image is 0. When one crop pixel spans more than
    `max_downscale` source pixels the image is first shrunk with an anti-aliasing filter by an
    integer factor, so large people are not aliased.
    """
    m = (size - 1) / 2.0
    k = tf.sqrt(tf.abs(tf.linalg.det(a)))
    factor = tf.where(k > max_downscale, tf.floor(k), 1.0)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)

    def shrink():
        new = tf.maximum(tf.round(shape / factor), 1.0)
        small = tf.image.resize(image, tf.cast(new, tf.int32), method="bilinear", antialias=True)
        return small, new / shape

    def keep():
        return image, tf.ones([2])

    image, ratio = tf.cond(factor > 1.0, shrink, keep)
    ry, rx = ratio[0], ratio[1]
    # src = a @ (o - m) + center, then the resize's half-pixel map: s' = (s + 0.5) * r - 0.5.
    b = center - tf.linalg.matvec(a, tf.fill([2], m))
    row_x = tf.stack([a[0, 0] * rx, a[0, 1] * rx, (b[0] + 0.5) * rx - 0.5])
    row_y = tf.stack([a[1, 0] * ry, a[1, 1] * ry, (b[1] + 0.5) * ry - 0.5])
    transform = tf.concat([row_x, row_y, tf.zeros([2])], axis=0)[None]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform,
        output_shape=tf.constant([size, size]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return out[0]


def tf_crop_person(image, center, scale, size):
    """The un-augmented person crop of evaluation and serving: (H, W, 3) float image, centre
    (2,) and scale -> (size, size, 3), the box of side 200 * scale px filling the crop."""
    a, center = crop_transform(center, scale, size)
    return tf_warp(image, a, center, size)


def transform_keypoints(keypoints, a, center, size):
    """Source keypoints (K, 2) -> crop keypoints through the inverse of (a, center)."""
    m = (size - 1) / 2.0
    inv = tf.linalg.inv(a)
    return tf.linalg.matvec(inv[None], keypoints - center[None]) + m


def tf_decode_image(data):
    """JPEG/PNG bytes -> (H, W, 3) float32 in [0, 1]; grayscale and RGBA become RGB."""
    image = tf.io.decode_image(data, channels=3, expand_animations=False, dtype=tf.uint8)
    return tf.cast(image, tf.float32) / 255.0


# --- the dataset -------------------------------------------------------------------------------


def _shard(ds, batch_size, shard):
    """(dataset of this shard's elements, local batch size): element j goes to shard
    j % num_shards, so each global batch splits into equal local batches."""
    num_shards, index = shard_of(batch_size, shard)
    if num_shards == 1:
        return ds, batch_size
    return ds.shard(num_shards, index), batch_size // num_shards


def make_dataset(
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
):
    """A `tf.data.Dataset` of crops and heatmap targets.

    Args:
        source: records from `keras_hourglass.datasets` (raw images) or a crop cache folder.
        skeleton: the dataset's `Skeleton` (flip pairs for the joint swap).
        codec: the `HeatmapCodec` (crop size = codec.input_size).
        batch_size: batch size.
        training: augment (with `augmentation`), shuffle and repeat.
        seed: seed of every random draw (order and augmentation).
        augmentation: an `Augmentation` (default `Augmentation()`), or False for none (data
            that needs none, such as the synthetic figures); ignored when not training.
        repeat, shuffle: default to `training`.
        with_meta: add a third element of evaluation metadata; defaults to `not training` (pass
            False for `fit(validation_data=...)`).
        drop_remainder: default to `training`.
        start_batch: skip this many batches (to resume an interrupted run exactly).
        shard: (num_shards, index) to keep only this process' part of every global batch of
            `batch_size` (multi-process training): the elements index, index + num_shards, ...
            of each global batch, so batches of `batch_size // num_shards`. Augmentation draws
            depend on the global element counter, so the shards together are exactly the
            unsharded batches.

    Returns:
        batches of (images (B, S, S, 3) float32 in [0, 1], heatmaps (B, S/4, S/4, K)) and, with
        `with_meta`, the metadata dict of `inputs.spec.META` (each field with a batch axis).
    """
    if codec.input_size[0] != codec.input_size[1]:
        raise ValueError(f"Crops are square; received codec={codec!r}")
    size = codec.input_size[0]
    repeat = training if repeat is None else repeat
    shuffle = training if shuffle is None else shuffle
    with_meta = (not training) if with_meta is None else with_meta
    drop_remainder = training if drop_remainder is None else drop_remainder
    if augmentation is None:
        augmentation = Augmentation()
    augmentation = augmentation if training and augmentation is not False else None
    meta_spec = spec.meta_spec(skeleton.num_joints)
    flip_index = tf.constant(skeleton.flip_index)

    if isinstance(source, (str, os.PathLike)):
        ds, load, count = _cache_source(os.fspath(source), skeleton)
    else:
        ds, load, count = _raw_source(source)
    if count == 0:
        raise ValueError("make_dataset received an empty dataset.")
    if shuffle:
        # The list holds paths and a few numbers per person: shuffle all of it (a uniform order).
        ds = ds.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.enumerate()
    if start_batch:
        # Resuming: skip what was already trained on. The order and every random draw depend
        # only on (seed, element counter), so the rest is what an uninterrupted run would see;
        # skipping happens before files are read or decoded.
        ds = ds.skip(int(start_batch) * batch_size)

    transform = _transform(load, seed, augmentation, size, codec, flip_index, meta_spec)
    ds, batch_size = _shard(ds, batch_size, shard)
    ds = ds.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(lambda images, heatmaps, meta: spec.batch(images, heatmaps, meta, with_meta))
    return ds.prefetch(tf.data.AUTOTUNE)


def _transform(load, seed, augmentation, size, codec, flip_index, meta_spec):
    """`make_dataset`'s per-person step: (element counter, element) -> (crop, heatmaps, meta):
    read and decode, draw the augmentation from (seed, counter), warp, encode."""

    def transform(counter, e):
        e = load(e)
        image = tf_decode_image(e["image"])
        if augmentation is not None:
            element_seed = tf.stack([tf.cast(seed, tf.int64), counter])
            scale_factor, angle, flip, gains = _sample_params(element_seed, augmentation)
        else:
            scale_factor, angle, flip, gains = 1.0, 0.0, tf.constant(False), tf.ones([3])
        src_center = tf.cast(e["src_center"], tf.float32)
        if augmentation is not None and augmentation.shift_sigma:
            src_center += _sample_shift(element_seed, augmentation) * (
                geometry.PERSON_BOX_PX * tf.cast(e["src_scale"], tf.float32) * scale_factor
            )
        a, center = crop_transform(src_center, e["src_scale"], size, scale_factor, angle, flip)
        crop = tf_warp(image, a, center, size)
        crop = tf.clip_by_value(crop * gains, 0.0, 1.0)
        keypoints = transform_keypoints(e["src_keypoints"], a, center, size)
        annotated = e["annotated"]
        keypoints = tf.where(flip, tf.gather(keypoints, flip_index), keypoints)
        annotated = tf.where(flip, tf.gather(annotated, flip_index), annotated)
        heatmaps = codec.encode(keypoints, annotated)
        inside = tf.reduce_all((keypoints >= -0.5) & (keypoints < size - 0.5), axis=-1)
        meta = {
            "center": e["center"],
            "scale": e["scale"],
            "keypoints": e["keypoints"],
            "annotated": e["annotated"],
            "normalizer": e["normalizer"],
            "index": e["index"],
            "crop_keypoints": keypoints,
            "crop_visible": annotated & inside,
            "flip": flip,
            "angle": tf.cast(angle, tf.float32) * (180.0 / math.pi),
            "scale_factor": scale_factor,
            "gains": gains,
        }
        meta = {
            name: tf.ensure_shape(tf.cast(meta[name], dtype), shape)
            for name, (dtype, shape) in meta_spec.items()
        }
        return tf.ensure_shape(crop, (size, size, 3)), heatmaps, meta

    return transform
