"""Export a stacked hourglass as a TF Serving SavedModel with pre- and post-processing inside.

The `serving_default` signature takes a uint8 image batch (any size; the whole image is the
person box), and returns keypoints in the input images' pixels, their scores and the last
stack's heatmaps. Preprocessing, flip test and decoding run inside the graph through the same
codec and inference code as evaluation.
"""

import json
import os
import re
import shutil
import tempfile

import keras
import tensorflow as tf

from keras_hourglass.codec import HeatmapCodec
from keras_hourglass.inference import crop_to_original, predict_keypoints
from keras_hourglass.tf_geometry import crop_people, whole_image_boxes


def next_version(base_dir):
    """The next free TF Serving version number under `base_dir` (1 when empty)."""
    if not os.path.isdir(base_dir):
        return 1
    versions = [int(n) for n in os.listdir(base_dir) if re.fullmatch(r"\d+", n)]
    return max(versions, default=0) + 1


def export_for_serving(model, base_dir, skeleton, version=None, flip_test=True, sigma=1.0):
    """Writes `base_dir/<version>/`, a SavedModel for TF Serving, atomically.

    Args:
        model: a trained stacked hourglass.
        base_dir: the model's folder in TF Serving's layout (e.g. saved_models/hourglass).
        skeleton: the `Skeleton` the model predicts (joint names and flip pairs are saved with it).
        version: the version number; the next free one by default.
        flip_test: average with the horizontally flipped image inside the graph.
        sigma: the Gaussian sigma the model was trained with (recorded in the metadata).

    Returns:
        the path of the version folder.
    """
    if model.outputs[-1].shape[-1] != skeleton.num_joints:
        raise ValueError(
            f"The model predicts {model.outputs[-1].shape[-1]} joints but skeleton "
            f"{skeleton.name!r} has {skeleton.num_joints}."
        )
    version = next_version(base_dir) if version is None else int(version)
    target = os.path.join(base_dir, str(version))
    if os.path.exists(target):
        raise FileExistsError(f"{target} already exists; choose another --version.")
    size = int(model.inputs[0].shape[1])
    codec = HeatmapCodec(size, size // 4, sigma)
    flip_index = skeleton.flip_index if flip_test else None

    def serve(images):
        floats = tf.cast(images, tf.float32) / 255.0
        centers, scales = whole_image_boxes(floats)
        crops = crop_people(floats, centers, scales, size)
        keypoints, scores, heatmaps = predict_keypoints(model, crops, codec, flip_index)
        return {
            "keypoints": crop_to_original(keypoints, centers, scales, size),
            "scores": scores,
            "heatmaps": heatmaps,
        }

    def predict_crops(crops):
        keypoints, scores, heatmaps = predict_keypoints(model, crops, codec, flip_index)
        return {"keypoints": keypoints, "scores": scores, "heatmaps": heatmaps}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        serve,
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")],
    )
    # Person crops already made (evaluation uses it with the tf.data pipeline's crops).
    archive.add_endpoint(
        "predict_crops",
        predict_crops,
        input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name="crops")],
    )
    os.makedirs(base_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=base_dir)
    try:
        archive.write_out(staging, verbose=False)
        metadata = {
            "model_config": model.get_config(),
            "codec": codec.get_config(),
            "skeleton": {
                "name": skeleton.name,
                "joint_names": list(skeleton.joint_names),
                "flip_pairs": [list(p) for p in skeleton.flip_pairs],
                "limbs": [list(p) for p in skeleton.limbs],
            },
            "flip_test": flip_test,
            "signatures": {
                "serving_default": {
                    "inputs": {"images": "uint8 [batch, height, width, 3]"},
                    "outputs": {
                        "keypoints": "float32 [batch, K, 2] (x, y) in input-image pixels",
                        "scores": "float32 [batch, K] heatmap peak values",
                        "heatmaps": "float32 [batch, size/4, size/4, K] last stack",
                    },
                },
                "predict_crops": {
                    "inputs": {"crops": f"float32 [batch, {size}, {size}, 3] in [0, 1]"},
                    "outputs": {
                        "keypoints": "float32 [batch, K, 2] (x, y) in crop pixels",
                        "scores": "float32 [batch, K]",
                        "heatmaps": "float32 [batch, size/4, size/4, K] last stack",
                    },
                },
            },
        }
        os.makedirs(os.path.join(staging, "assets"), exist_ok=True)
        with open(os.path.join(staging, "assets", "hourglass.json"), "w") as f:
            json.dump(metadata, f, indent=2)
        os.replace(staging, target)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)
    return target
