"""A crop cache: person-centred crops decoded once and stored as sharded TFRecords.

Each record's crop is centred on the person with enough margin for the largest augmented scale
and rotation (`Augmentation.margin`), at the resolution where the person box is `crop_size` px,
so training reads a small JPEG instead of a full photograph. Keypoints are transformed alongside;
the original centre, scale, keypoints and normaliser are kept for evaluation. `make_dataset`
reads the folder with the same augmentations as raw images.

Written shard by shard, each to a temporary file renamed when complete, and `meta.json` last:
an interrupted run resumes where it stopped and a half-written cache is never read.
"""

import json
import logging
import math
import os

import numpy as np
import tensorflow as tf

from keras_hourglass import files, geometry
from keras_hourglass.inputs.augmentation import Augmentation
from keras_hourglass.inputs.tf_data import (
    crop_transform,
    records_to_columns,
    tf_decode_image,
    tf_warp,
    transform_keypoints,
)
from keras_hourglass.quiet import progress_bar

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # 2: meta.json lists the cached people (record_ids)


def cache_geometry(crop_size, augmentation=None):
    """Side of the cached crops and the scale that makes the person box `crop_size` px in them."""
    margin = (augmentation or Augmentation()).margin
    return int(math.ceil(crop_size * margin)), crop_size / geometry.PERSON_BOX_PX


def _float_feature(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=np.ravel(values).tolist()))


def _int_feature(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=np.ravel(values).tolist()))


def _bytes_feature(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def write_crop_cache(
    records,
    out_dir,
    skeleton,
    crop_size=256,
    augmentation=None,
    shard_size=1000,
    quality=95,
    verbose=True,
):
    """Writes (or resumes) the crop cache of `records` in `out_dir`; returns its metadata."""
    if len(records) == 0:
        raise ValueError("write_crop_cache received no records (an empty dataset).")
    side, cache_scale = cache_geometry(crop_size, augmentation)
    os.makedirs(out_dir, exist_ok=True)
    num_shards = int(math.ceil(len(records) / shard_size))
    meta = {
        "version": CACHE_VERSION,
        "skeleton": skeleton.name,
        "num_joints": skeleton.num_joints,
        "num_records": len(records),
        "num_shards": num_shards,
        "crop_size": crop_size,
        "cache_side": side,
        "source": getattr(records, "source", ""),
        "record_ids": [str(r.record_id) for r in records],
    }
    meta_path = os.path.join(out_dir, "meta.json")
    if os.path.isfile(meta_path):
        with open(meta_path) as f:
            existing = json.load(f)
        if existing != meta:
            raise FileExistsError(
                f"{out_dir} already holds a different cache ({existing}); choose another --out."
            )
        if verbose:
            log.info(f"{out_dir}: cache already complete ({len(records)} records).")
        return meta

    center = tf.constant([(side - 1) / 2.0, (side - 1) / 2.0])

    def crop(path, keypoints, src_center, src_scale):
        image = tf_decode_image(tf.io.read_file(path))
        a, c = crop_transform(src_center, src_scale, side, side / crop_size)
        cropped = tf_warp(image, a, c, side)
        data = tf.io.encode_jpeg(
            tf.cast(tf.round(tf.clip_by_value(cropped, 0.0, 1.0) * 255.0), tf.uint8),
            quality=quality,
            chroma_downsampling=False,
        )
        return data, transform_keypoints(keypoints, a, c, side)

    bar = progress_bar(len(records), "crop") if verbose else None
    for shard in range(num_shards):
        path = os.path.join(out_dir, f"shard-{shard:05d}-of-{num_shards:05d}.tfrecord")
        if os.path.isfile(path):
            continue
        chunk = records[shard * shard_size : (shard + 1) * shard_size]
        columns = records_to_columns(chunk)
        columns["index"] = columns["index"] + shard * shard_size
        ds = tf.data.Dataset.from_tensor_slices(
            (columns["path"], columns["keypoints"], columns["center"], columns["scale"])
        ).map(crop, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        with files.atomic_path(path) as tmp, tf.io.TFRecordWriter(tmp) as writer:
            for i, (data, keypoints) in enumerate(ds):
                features = {
                    "image": _bytes_feature(data.numpy()),
                    "src_keypoints": _float_feature(keypoints.numpy()),
                    "src_center": _float_feature(center.numpy()),
                    "src_scale": _float_feature([cache_scale]),
                    "keypoints": _float_feature(columns["keypoints"][i]),
                    "annotated": _int_feature(columns["annotated"][i].astype(np.int64)),
                    "center": _float_feature(columns["center"][i]),
                    "scale": _float_feature([columns["scale"][i]]),
                    "normalizer": _float_feature([columns["normalizer"][i]]),
                    "index": _int_feature([columns["index"][i]]),
                }
                example = tf.train.Example(features=tf.train.Features(feature=features))
                writer.write(example.SerializeToString())
        if bar is not None:
            bar.update(min((shard + 1) * shard_size, len(records)))
    files.write_json(meta_path, meta)
    return meta
