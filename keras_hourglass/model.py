"""The stacked hourglass network (Newell, Yang, Deng, ECCV 2016) as a Keras 3 functional model.

The architecture follows the reference Lua code (princeton-vl/pose-hg-train `src/models/hg.lua`):

    stem:   7x7/2 conv(64) + BN + ReLU -> residual(128) -> max-pool/2 -> residual(128)
            -> residual(filters)
    stack:  hourglass(depth) -> residual -> 1x1 conv + BN + ReLU -> 1x1 conv to K heatmaps
    merge:  next = x + conv1x1(features) + conv1x1(heatmaps)      (between stacks)

Every stack's heatmaps are a model output (`heatmaps_0` ... `heatmaps_{n-1}`), so `compile()`
applies the loss to each of them: the paper's intermediate supervision.

Only `keras.layers` is used, so the model runs on every Keras backend (TensorFlow for the data
pipeline and serving, JAX on the GPU machines).
"""

import keras
from keras import layers

# Batch norm settings of the reference code (Torch's nn.SpatialBatchNormalization defaults:
# momentum 0.1 there is 0.9 in Keras' convention, eps 1e-5).
_BN_MOMENTUM = 0.9
_BN_EPSILON = 1e-5


def _batch_norm(name):
    return layers.BatchNormalization(momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON, name=name)


def apply_residual(x, filters, name):
    """Pre-activation bottleneck residual module (`Residual.lua`).

    BN-ReLU-conv1x1(f/2) -> BN-ReLU-conv3x3(f/2) -> BN-ReLU-conv1x1(f), plus an identity skip,
    or a 1x1 conv skip when the number of channels changes.
    """
    in_channels = x.shape[-1]
    half = filters // 2
    y = _batch_norm(f"{name}_bn1")(x)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(half, 1, name=f"{name}_conv1")(y)
    y = _batch_norm(f"{name}_bn2")(y)
    y = layers.ReLU(name=f"{name}_relu2")(y)
    y = layers.Conv2D(half, 3, padding="same", name=f"{name}_conv2")(y)
    y = _batch_norm(f"{name}_bn3")(y)
    y = layers.ReLU(name=f"{name}_relu3")(y)
    y = layers.Conv2D(filters, 1, name=f"{name}_conv3")(y)
    if in_channels == filters:
        skip = x
    else:
        skip = layers.Conv2D(filters, 1, name=f"{name}_skip")(x)
    return layers.Add(name=f"{name}_add")([skip, y])


def apply_hourglass(x, depth, filters, name):
    """One hourglass of the given depth, built recursively as in the paper.

    At each level an upper branch keeps the resolution (one residual) while the lower branch
    max-pools, runs residual -> (inner hourglass | residual) -> residual, and upsamples by
    nearest neighbour; the two are added element-wise.
    """
    upper = apply_residual(x, filters, name=f"{name}_up")
    lower = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    lower = apply_residual(lower, filters, name=f"{name}_low1")
    if depth > 1:
        lower = apply_hourglass(lower, depth - 1, filters, name=f"{name}_inner")
    else:
        lower = apply_residual(lower, filters, name=f"{name}_low2")
    lower = apply_residual(lower, filters, name=f"{name}_low3")
    lower = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_upsample")(lower)
    return layers.Add(name=f"{name}_add")([upper, lower])


@keras.saving.register_keras_serializable(package="keras_hourglass")
class StackedHourglass(keras.Model):
    """Stacked hourglass network with one heatmap output per stack.

    Args:
        num_stacks: number of hourglass stacks (8 in the paper).
        num_keypoints: number of heatmaps (joints) each stack predicts.
        filters: feature channels inside the hourglasses (256 in the paper).
        depth: number of 2x down-samplings inside each hourglass (4 in the paper).
        input_shape: (height, width, channels) of the input crop; height and width must be
            divisible by 4 * 2**depth. The heatmaps are a quarter of the input size.

    Inputs are float images in [0, 1] (the reference code does no mean subtraction). Outputs
    are a dict of `num_stacks` float32 tensors of shape (batch, H/4, W/4, num_keypoints), keyed
    and named `heatmaps_0` ... `heatmaps_{num_stacks-1}`; the last one is the prediction. (A dict
    keeps targets, losses and metrics matched to outputs by name, for one stack as for eight.)
    """

    def __init__(
        self,
        num_stacks=8,
        num_keypoints=16,
        filters=256,
        depth=4,
        input_shape=(256, 256, 3),
        **kwargs,
    ):
        _check_arguments(num_stacks, num_keypoints, filters, depth, input_shape)
        input_shape = tuple(int(d) for d in input_shape)

        # === Functional model ===
        images = keras.Input(shape=input_shape, name="images")
        x = layers.ZeroPadding2D(3, name="stem_pad")(images)
        x = layers.Conv2D(64, 7, strides=2, name="stem_conv")(x)
        x = _batch_norm("stem_bn")(x)
        x = layers.ReLU(name="stem_relu")(x)
        x = apply_residual(x, 128, name="stem_res1")
        x = layers.MaxPooling2D(2, name="stem_pool")(x)
        x = apply_residual(x, 128, name="stem_res2")
        x = apply_residual(x, filters, name="stem_res3")

        outputs = {}
        for s in range(num_stacks):
            features = apply_hourglass(x, depth, filters, name=f"hg{s}")
            features = apply_residual(features, filters, name=f"hg{s}_res")
            features = layers.Conv2D(filters, 1, name=f"hg{s}_lin_conv")(features)
            features = _batch_norm(f"hg{s}_lin_bn")(features)
            features = layers.ReLU(name=f"hg{s}_lin_relu")(features)
            # The heads start at zero, the all-background prediction, so early training is not
            # spent shrinking random outputs (the model's mathematics are unchanged).
            heatmaps = layers.Conv2D(
                num_keypoints, 1, kernel_initializer="zeros", name=f"hg{s}_heatmaps"
            )(features)
            # Heatmaps leave the model in float32 whatever the dtype policy.
            outputs[f"heatmaps_{s}"] = layers.Activation(
                "linear", dtype="float32", name=f"heatmaps_{s}"
            )(heatmaps)
            if s < num_stacks - 1:
                merged_features = layers.Conv2D(filters, 1, name=f"hg{s}_merge_features")(features)
                merged_heatmaps = layers.Conv2D(filters, 1, name=f"hg{s}_merge_heatmaps")(heatmaps)
                x = layers.Add(name=f"hg{s}_merge")([x, merged_features, merged_heatmaps])

        kwargs.setdefault("name", "stacked_hourglass")
        super().__init__(inputs=images, outputs=outputs, **kwargs)

        # === Config ===
        self.num_stacks = num_stacks
        self.num_keypoints = num_keypoints
        self.filters = filters
        self.depth = depth
        self.image_shape = input_shape

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "num_stacks": self.num_stacks,
            "num_keypoints": self.num_keypoints,
            "filters": self.filters,
            "depth": self.depth,
            "input_shape": list(self.image_shape),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _check_arguments(num_stacks, num_keypoints, filters, depth, input_shape):
    for arg_name, value in (
        ("num_stacks", num_stacks),
        ("num_keypoints", num_keypoints),
        ("filters", filters),
        ("depth", depth),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(
                f"`{arg_name}` must be a positive integer. Received: {arg_name}={value!r}"
            )
    if filters % 2:
        raise ValueError(
            "`filters` must be even (the bottleneck uses filters / 2 channels). "
            f"Received: filters={filters}"
        )
    if len(input_shape) != 3:
        raise ValueError(
            "`input_shape` must be (height, width, channels). "
            f"Received: input_shape={input_shape!r}"
        )
    multiple = 4 * 2**depth
    height, width = input_shape[0], input_shape[1]
    if height is None or width is None or height % multiple or width % multiple:
        raise ValueError(
            f"The input height and width must be multiples of 4 * 2**depth = {multiple} so that "
            f"every hourglass level can be halved and restored. Received: "
            f"input_shape={tuple(input_shape)!r}, depth={depth}"
        )


def build_hourglass(
    num_stacks=8, num_keypoints=16, filters=256, depth=4, input_shape=(256, 256, 3), name=None
):
    """Builds a stacked hourglass network; the defaults are the paper's 8-stack model.

    See `StackedHourglass` for the arguments. Returns a functional `keras.Model` with one
    output per stack.
    """
    kwargs = {"name": name} if name else {}
    return StackedHourglass(
        num_stacks=num_stacks,
        num_keypoints=num_keypoints,
        filters=filters,
        depth=depth,
        input_shape=input_shape,
        **kwargs,
    )
