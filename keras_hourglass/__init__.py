"""keras-hourglass: the Stacked Hourglass Network (Newell et al., ECCV 2016) in Keras 3.

Nothing here imports TensorFlow at import time unless Keras' backend is TensorFlow (the commands
keep its start-up messages out of the terminal, see `quiet`): the model, codec, inference and
metrics run on any Keras backend (TensorFlow on CPU machines and for serving, JAX on GPUs). TensorFlow is
imported only by the tf.data and export functions when they are called.
"""

from keras_hourglass.quiet import quiet_tensorflow_startup

quiet_tensorflow_startup()  # only when a command asked (KERAS_HOURGLASS_QUIET=1): see quiet.py

from keras_hourglass.codec import HeatmapCodec, flip_keypoints, hourglass_codec  # noqa: E402
from keras_hourglass.inference import (  # noqa: E402
    crop_predictor,
    crop_to_original,
    estimate_poses,
    keypoints_of_crops,
)
from keras_hourglass.model import StackedHourglass, build_hourglass, compile_hourglass  # noqa: E402
from keras_hourglass.optimizers import TorchRMSprop  # noqa: E402
from keras_hourglass.pck_metric import HeatmapPCK  # noqa: E402
from keras_hourglass.pretrained import (  # noqa: E402
    default_pretrained,
    list_pretrained,
    load_pretrained,
    pretrained_info,
    pretrained_path,
)
from keras_hourglass.skeletons import (  # noqa: E402
    COCO,
    FLIC,
    LSP,
    MPII,
    SKELETONS,
    Skeleton,
    get_skeleton,
    named_joints,
    read_skeleton,
)
from keras_hourglass.synthetic import render_stick_figure, synthetic_arrays  # noqa: E402

__version__ = "0.1.0"

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
    "flip_keypoints",
    "get_skeleton",
    "hourglass_codec",
    "keypoints_of_crops",
    "list_pretrained",
    "load_pretrained",
    "named_joints",
    "pretrained_info",
    "pretrained_path",
    "read_skeleton",
    "render_stick_figure",
    "synthetic_arrays",
]
