"""The stacked hourglass network (Newell, Yang, Deng, ECCV 2016) as a Keras 3 functional model.

The architecture follows the reference Lua code (princeton-vl/pose-hg-train `src/models/hg.lua`):

    stem:   7x7/2 conv(64) + BN + ReLU -> residual(128) -> max-pool/2 -> residual(128)
            -> residual(filters)
    stack:  hourglass(depth) -> residual -> 1x1 conv + BN + ReLU -> 1x1 conv to K heatmaps
    merge:  next = x + conv1x1(features) + conv1x1(heatmaps)      (between stacks)

Every stack's heatmaps are a model output (`heatmaps_0` ... `heatmaps_{n-1}`), and the model
supervises each of them with the one target the data gives (`compute_loss`): the paper's
intermediate supervision, with the per-stack losses in the logs. `compile()` with no arguments
is the paper's recipe (the reference RMSprop at 2.5e-4, MSE on every stack).

Only `keras.layers` is used, so the model runs on every Keras backend (TensorFlow for the data
pipeline and serving, JAX on the GPU machines).
"""

import os

import keras
import numpy as np
from keras import layers

from keras_hourglass.geometry import PERSON_BOX_PX
from keras_hourglass.network import remat
from keras_hourglass.network.codec import hourglass_codec
from keras_hourglass.network.optimizers import TorchRMSprop
from keras_hourglass.skeletons import get_skeleton

# Batch norm settings of the reference code (Torch's nn.SpatialBatchNormalization defaults:
# momentum 0.1 there is 0.9 in Keras' convention, eps 1e-5).
_BN_MOMENTUM = 0.9
_BN_EPSILON = 1e-5


# What the floors above the model lend it (docs/layers.md: the model is the bottom of the
# network's stack and imports nothing above it). `inference` lends "crop_predictor" and
# `runtimes` "estimate_poses" when they load, which `import keras_hourglass` does.
LENT = {}


def lent(name):
    """The function a floor above lent the model as `name` (`LENT`); a one-line error when it has
    not loaded (a command that has not called `cli.ready()`)."""
    if name not in LENT:
        raise RuntimeError(
            f"StackedHourglass needs {name!r} from the library's upper floors: import "
            "keras_hourglass (which loads them) before calling it"
        )
    return LENT[name]


def _batch_norm(name):
    return layers.BatchNormalization(momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON, name=name)


@keras.saving.register_keras_serializable(package="keras_hourglass")
class SubtractMean(layers.Layer):
    """Subtracts a per-channel mean from the input images, inside the model (bearpaw's models
    were trained on images in [0, 1] minus the MPII mean colour). Before the stem's zero padding,
    so the padding stays zero as it was in training: folding the mean into the first
    convolution's bias would be wrong at the padded border."""

    def __init__(self, mean, **kwargs):
        super().__init__(**kwargs)
        self.mean = [float(v) for v in mean]

    def call(self, images):
        return images - keras.ops.cast(keras.ops.convert_to_tensor(self.mean), images.dtype)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean}


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
        num_keypoints: number of heatmaps (joints) each stack predicts (default: the skeleton's
            joint count, else 16).
        filters: feature channels inside the hourglasses (256 in the paper).
        depth: number of 2x down-samplings inside each hourglass (4 in the paper).
        input_shape: (height, width, channels) of the input crop; height and width must be
            divisible by 4 * 2**depth. The heatmaps are a quarter of the input size.
        skeleton: the joints it predicts: a `Skeleton`, a skeleton name ("mpii", "lsp", "flic",
            "coco") or a skeleton config; None for a model that does not say (then the commands
            need `--skeleton`).
        sigma: the Gaussian sigma of its training targets, in heatmap pixels (1 in the paper).
        person_box_px: its crop convention: a crop shows the square person box of side
            `person_box_px * scale` centred on the person centre (200, pose-hg-train's).
        stem_widths: the widths of the stem's 7x7 convolution and its three residuals; default
            the paper's (64, 128, 128, filters); bearpaw/pytorch-pose's models have
            (64, 128, filters, filters): a projecting second residual, an identity third.
        input_mean: a per-channel mean subtracted from the [0, 1] input images inside the model
            (`SubtractMean`), or None (the paper and the reference code subtract none).
        heatmap_offset: the decoding convention of a model trained elsewhere: heatmap pixels
            added to each decoded keypoint (and taken off targets) relative to this project's
            pixel convention (`HeatmapCodec`'s `offset`; 0 for models trained here).

    The model describes itself: skeleton, codec (`model.codec`: input size, heatmap size, sigma)
    and crop convention are in its config, so they travel inside the `.keras` file and
    `keras.saving.load_model(path)` is all that export, prediction and evaluation need;
    `estimate_poses(images, boxes)` goes from whole images to named keypoints.

    Inputs are float images in [0, 1] (the reference code does no mean subtraction). Outputs
    are a dict of `num_stacks` float32 tensors of shape (batch, H/4, W/4, num_keypoints), keyed
    and named `heatmaps_0` ... `heatmaps_{num_stacks-1}`; the last one is the prediction. (A dict
    keeps losses and metrics matched to outputs by name, for one stack as for eight.)

    Training data gives one target per image, (batch, H/4, W/4, num_keypoints): `compute_loss`
    applies it to every stack (a dict of per-stack targets is used as given).
    """

    def __init__(
        self,
        num_stacks=8,
        num_keypoints=None,
        filters=256,
        depth=4,
        input_shape=(256, 256, 3),
        skeleton=None,
        sigma=1.0,
        person_box_px=PERSON_BOX_PX,
        stem_widths=None,
        input_mean=None,
        heatmap_offset=0.0,
        **kwargs,
    ):
        skeleton = None if skeleton is None else get_skeleton(skeleton)
        if num_keypoints is None:
            num_keypoints = skeleton.num_joints if skeleton else 16
        if skeleton and num_keypoints != skeleton.num_joints:
            raise ValueError(
                f"`num_keypoints` ({num_keypoints}) disagrees with skeleton {skeleton.name!r} "
                f"({skeleton.num_joints} joints); give one or make them agree."
            )
        _check_arguments(num_stacks, num_keypoints, filters, depth, input_shape)
        for arg_name, value in (("sigma", sigma), ("person_box_px", person_box_px)):
            if not (isinstance(value, (int, float)) and 0 < value < float("inf")):
                raise ValueError(
                    f"`{arg_name}` must be a positive number. Received: {arg_name}={value!r}"
                )
        input_shape = tuple(int(d) for d in input_shape)
        stem_widths = _check_stem(stem_widths, filters)
        if input_mean is not None:
            input_mean = [float(v) for v in input_mean]
            if len(input_mean) != input_shape[-1] or not all(abs(v) < 1e3 for v in input_mean):
                raise ValueError(
                    f"`input_mean` must be one finite number per input channel. Received: "
                    f"input_mean={input_mean!r}"
                )
        if not (isinstance(heatmap_offset, (int, float)) and abs(heatmap_offset) < 1e3):
            raise ValueError(
                f"`heatmap_offset` must be a number of heatmap pixels. Received: "
                f"heatmap_offset={heatmap_offset!r}"
            )

        # === Functional model ===
        images = keras.Input(shape=input_shape, name="images")
        x = images
        if input_mean is not None:
            x = SubtractMean(input_mean, name="input_mean")(x)
        x = layers.ZeroPadding2D(3, name="stem_pad")(x)
        x = layers.Conv2D(stem_widths[0], 7, strides=2, name="stem_conv")(x)
        x = _batch_norm("stem_bn")(x)
        x = layers.ReLU(name="stem_relu")(x)
        x = apply_residual(x, stem_widths[1], name="stem_res1")
        x = layers.MaxPooling2D(2, name="stem_pool")(x)
        x = apply_residual(x, stem_widths[2], name="stem_res2")
        x = apply_residual(x, stem_widths[3], name="stem_res3")

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
        self.skeleton = skeleton
        self.sigma = float(sigma)
        self.person_box_px = float(person_box_px)
        self.stem_widths = stem_widths
        self.input_mean = input_mean
        self.heatmap_offset = float(heatmap_offset)
        self._remat = False

    @property
    def remat(self):
        """Whether training recomputes each stack in the backward pass instead of keeping its
        activations (`keras_hourglass.network.remat`: about one stack's activation memory, for about one
        more forward pass). A training setting, not saved with the model."""
        return self._remat

    @remat.setter
    def remat(self, value):
        if not isinstance(value, bool):
            raise ValueError(f"`remat` must be True or False. Received: remat={value!r}")
        if value != self._remat:
            # Keras compiled its step functions with the other forward pass.
            self.train_function = None
        self._remat = value

    def call(self, inputs, training=None, mask=None, **kwargs):
        if self._remat and training:
            return remat.call_rematerialised(self, inputs, training)
        return super().call(inputs, training=training, mask=mask, **kwargs)

    @property
    def codec(self):
        """The `HeatmapCodec` of its inputs and targets (input size, heatmaps a quarter of it,
        sigma; decoding with the paper's quarter-pixel shift): what every consumer decodes with."""
        return hourglass_codec(self.image_shape[:2], self.sigma, self.heatmap_offset)

    # === Training: one target for every stack, the paper's compile defaults ===
    def compile(
        self, optimizer="auto", loss="auto", *, loss_weights="auto", learning_rate=2.5e-4, **kwargs
    ):
        """`keras.Model.compile` with the paper's recipe as defaults.

        Args:
            optimizer: "auto" is the reference code's RMSprop, `TorchRMSprop(learning_rate,
                rho=0.99, epsilon=1e-8)` (epsilon outside the square root, unlike
                `keras.optimizers.RMSprop`, whose steps are about 2% of the reference's on
                heatmap losses: see `keras_hourglass.network.optimizers`).
            loss: "auto" is a mean squared error on every stack output (weight 1 each), so
                `fit` logs `heatmaps_i_loss` per stack and `loss` is their sum.
            loss_weights: "auto" weighs every stack 1 (with the "auto" loss).
            learning_rate: of the "auto" optimizer (2.5e-4 in the paper).
            **kwargs: the rest of `keras.Model.compile` (metrics, jit_compile, ...).
        """
        names = list(self.output_names)
        if optimizer == "auto":
            optimizer = TorchRMSprop(learning_rate=learning_rate, rho=0.99, epsilon=1e-8)
        if loss == "auto":
            loss = {name: keras.losses.MeanSquaredError(name=f"mse_{name}") for name in names}
        if loss_weights == "auto":
            loss_weights = {name: 1.0 for name in names} if isinstance(loss, dict) else None
        super().compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights, **kwargs)

    def compile_from_config(self, config):
        # `compile` is overridden, so Keras leaves restoring it (and the optimizer state of a
        # saved model) to us: the same as Keras' own for a plain compile.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def make_train_function(self, force=False):
        if self.train_function is None or force:  # train_on_batch asks at every batch
            self._build_training_state()
        return super().make_train_function(force)

    def make_test_function(self, force=False):
        if self.test_function is None or force:
            self._build_training_state()
        return super().make_test_function(force)

    def _build_training_state(self):
        """Creates the loss trackers, metrics and optimizer slots before the step is traced.

        On TensorFlow without a distribution strategy Keras defers this to the first trace of
        the step; variables created inside a `tf.function`'s first trace make TensorFlow trace
        it a second time, so every `fit` started by tracing the whole training step twice (12 s
        of a 35 s tiny fit on 2 cores; docs/BENCHMARKS.md). Keras builds the same
        state up front under a strategy (`_symbolic_build` with a data batch); here it is built
        from the model's own input and target shapes (one target, as `compute_loss` takes it).
        Other backends already build it before tracing."""
        if keras.backend.backend() != "tensorflow" or self._distribute_strategy is not None:
            return
        x = keras.KerasTensor((None, *self.inputs[0].shape[1:]), dtype=self.inputs[0].dtype)
        y = keras.KerasTensor((None, *self.outputs[-1].shape[1:]), dtype="float32")
        self._symbolic_build(data_batch=(x, y))

    def targets_per_stack(self, y):
        """One target (batch, H/4, W/4, K) for every stack output; targets already given per
        output (a dict or list) are used as they are."""
        if y is None or isinstance(y, (dict, list, tuple)):
            return y
        return {name: y for name in self.output_names}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y = self.targets_per_stack(y)
        return super().compute_loss(x, y, y_pred, sample_weight, training=training)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return super().compute_metrics(x, self.targets_per_stack(y), y_pred, sample_weight)

    # === Inference: lent by the floors above (`LENT`), the one copy there ===
    def predict_keypoints(self, crops, flip_test=True, batch_size=32):
        """Keypoints of person crops: (N, S, S, 3) crops in [0, 1] -> keypoints (N, K, 2) in
        crop pixels and scores (N, K), NumPy; with the flip test and the model's codec. Compiled
        once per model and batch size (`inference.crop_predictor`)."""
        predictor = lent("crop_predictor")(self, flip_test)
        parts = [predictor(crops[i : i + batch_size]) for i in range(0, len(crops), batch_size)]
        if not parts:
            return predictor(crops)
        return tuple(np.concatenate(p) for p in zip(*parts))

    def estimate_poses(
        self,
        images,
        boxes=None,
        flip_test=True,
        batch_size=16,
        runtime="auto",
        precision="auto",
        whole_image=False,
    ):
        """Named keypoints of the people in each image, in the image's own pixels.

        The paper's inference on any Keras backend (NumPy crops, no TensorFlow needed), the
        network on the fastest runtime installed (`runtime`, `precision`: OpenVINO in bfloat16
        where the CPU has it, docs/runtimes.md): see `keras_hourglass.deployment.runtimes.estimate_poses`
        for the arguments.

        Returns:
            a list, per image: its people found (boxes None) or in its list of boxes, each
            {joint name: {"x": x, "y": y, "confidence": score}}; one person's dict for MPII's
            (centre x, centre y, scale) box or `whole_image`.
        """
        return lent("estimate_poses")(
            self, images, boxes, flip_test, batch_size, runtime=runtime, precision=precision,
            whole_image=whole_image,
        )  # fmt: skip

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "num_stacks": self.num_stacks,
            "num_keypoints": self.num_keypoints,
            "filters": self.filters,
            "depth": self.depth,
            "input_shape": list(self.image_shape),
            "skeleton": self.skeleton.get_config() if self.skeleton else None,
            "sigma": self.sigma,
            "person_box_px": self.person_box_px,
            "stem_widths": list(self.stem_widths),
            "input_mean": self.input_mean,
            "heatmap_offset": self.heatmap_offset,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _check_stem(stem_widths, filters):
    widths = (64, 128, 128, filters) if stem_widths is None else tuple(stem_widths)
    if (
        len(widths) != 4
        or any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in widths)
        or any(w % 2 for w in widths[1:])
        or widths[3] != filters
    ):
        raise ValueError(
            "`stem_widths` must be the 7x7 convolution's width and three even residual widths, "
            f"the last one `filters`. Received: stem_widths={stem_widths!r}, filters={filters}"
        )
    return widths


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
    num_stacks=8,
    num_keypoints=None,
    filters=256,
    depth=4,
    input_shape=(256, 256, 3),
    name=None,
    skeleton=None,
    sigma=1.0,
    person_box_px=PERSON_BOX_PX,
    stem_widths=None,
    input_mean=None,
    heatmap_offset=0.0,
):
    """Builds a stacked hourglass network; the defaults are the paper's 8-stack model.

    See `StackedHourglass` for the arguments. Returns a functional `keras.Model` with one
    output per stack that knows its skeleton, codec and crop convention.
    """
    kwargs = {"name": name} if name else {}
    return StackedHourglass(
        num_stacks=num_stacks,
        num_keypoints=num_keypoints,
        filters=filters,
        depth=depth,
        input_shape=input_shape,
        skeleton=skeleton,
        sigma=sigma,
        person_box_px=person_box_px,
        stem_widths=stem_widths,
        input_mean=input_mean,
        heatmap_offset=heatmap_offset,
        **kwargs,
    )


def compile_hourglass(model, learning_rate=2.5e-4, optimizer=None, **kwargs):
    """`model.compile()` with the paper's defaults (the reference RMSprop at `learning_rate`,
    MSE on every stack); `optimizer` replaces the RMSprop, `kwargs` go to `compile` (metrics,
    jit_compile, steps_per_execution, ...). Returns the model."""
    names = list(model.output_names)
    if not names or any(not n.startswith("heatmaps_") for n in names):
        raise ValueError(
            "compile_hourglass expects a model whose outputs are named heatmaps_0, heatmaps_1, "
            f"... (as build_hourglass makes). Received output names: {names}"
        )
    model.compile(optimizer=optimizer or "auto", learning_rate=learning_rate, **kwargs)
    return model


def load_model_file(path):
    """`keras.saving.load_model(path, compile=False)` with one clear error (ValueError) for a
    file that is not a `.keras` model: a `.keras` file is a zip archive, so a text file or a
    truncated download named `.keras` is said to be what it is, not "File not found"."""
    import zipfile

    if not os.path.isfile(path):
        raise ValueError(f"{path!r}: no such file")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(4)
        what = "a truncated zip archive" if head == b"PK\x03\x04" else "not a zip archive"
        raise ValueError(
            f"{path!r} is not a .keras model: a .keras file is a zip archive (config and "
            f"weights), this file is {what}"
        )
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # a zip of something else, an unknown class, damaged weights
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{path!r} is not a loadable .keras model ({problem})") from None
