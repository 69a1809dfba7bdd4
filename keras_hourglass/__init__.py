"""keras-hourglass: the Stacked Hourglass Network (Newell et al., ECCV 2016) in Keras 3.

Nothing here imports TensorFlow at import time unless Keras' backend is TensorFlow (the commands
keep its start-up messages out of the terminal, see `quiet`): the model, codec, inference and
metrics run on any Keras backend (TensorFlow on CPU machines and for serving, JAX on GPUs). TensorFlow is
imported only by the tf.data and export functions when they are called.
"""

import importlib
import os

__version__ = "0.1.0"

# name -> module of everything `import keras_hourglass as kh` offers.
_EXPORTS = {
    "HeatmapCodec": "network.codec",
    "flip_keypoints": "network.codec",
    "hourglass_codec": "network.codec",
    "crop_predictor": "deployment.inference",
    "crop_to_original": "deployment.inference",
    "estimate_poses": "poses.estimate",
    "export_model": "deployment.export",
    "load_predictor": "deployment.loader",
    "keypoints_of_crops": "deployment.inference",
    "StackedHourglass": "network.model",
    "build_hourglass": "network.model",
    "compile_hourglass": "network.model",
    "TorchRMSprop": "network.optimizers",
    "HeatmapPCK": "network.pck_metric",
    "default_pretrained": "pretrained",
    "list_pretrained": "pretrained",
    "load_pretrained": "pretrained",
    "pretrained_info": "pretrained",
    "pretrained_path": "pretrained",
    "COCO": "skeletons",
    "FLIC": "skeletons",
    "LSP": "skeletons",
    "MPII": "skeletons",
    "SKELETONS": "skeletons",
    "Skeleton": "skeletons",
    "get_skeleton": "skeletons",
    "named_joints": "skeletons",
    "read_skeleton": "skeletons",
    "render_stick_figure": "synthetic",
    "synthetic_arrays": "synthetic",
}


def load():
    """Imports the whole library (Keras with it) and registers the model class, so that
    `keras.saving.load_model` reads this project's `.keras` files. `import keras_hourglass`
    does this at once, except in the commands, which parse their flags first (see below)."""
    from keras_hourglass.quiet import quiet_tensorflow_startup

    quiet_tensorflow_startup()  # only when a command asked (KERAS_HOURGLASS_QUIET=1): quiet.py
    for name, module in _EXPORTS.items():
        globals()[name] = getattr(importlib.import_module(f"keras_hourglass.{module}"), name)


def __getattr__(name):
    if name in _EXPORTS:
        load()
        return globals()[name]
    raise AttributeError(f"module 'keras_hourglass' has no attribute {name!r}")


# The commands set KERAS_HOURGLASS_LAZY=1 while they import themselves, so that `--help` and a bad
# flag answer before Keras and TensorFlow load (seconds); `cli.configure_logging`, which every
# command calls once its flags are parsed, then calls `load()`. Everyone else gets the library
# whole on import, as always.
if os.environ.get("KERAS_HOURGLASS_LAZY") != "1":
    load()


__all__ = [
    "COCO",
    "FLIC",
    "HeatmapCodec",
    "HeatmapPCK",
    "LSP",
    "MPII",
    "SKELETONS",
    "Skeleton",
    "StackedHourglass",
    "TorchRMSprop",
    "build_hourglass",
    "compile_hourglass",
    "crop_predictor",
    "crop_to_original",
    "default_pretrained",
    "estimate_poses",
    "export_model",
    "flip_keypoints",
    "get_skeleton",
    "hourglass_codec",
    "keypoints_of_crops",
    "list_pretrained",
    "load_predictor",
    "load_pretrained",
    "named_joints",
    "pretrained_info",
    "pretrained_path",
    "read_skeleton",
    "render_stick_figure",
    "synthetic_arrays",
]
