"""PCK as a Keras metric, computed from heatmaps during `fit` (keras.ops only).

A training-time monitor on crops (the demo's `val_pck`): every reported figure (the commands'
CSVs, `PoseValidation`'s `val_pck`/`val_pckh` on real data) comes from
`keras_hourglass.evaluation.protocols.evaluate` in original-image pixels.
"""

import keras
from keras import ops

from keras_hourglass.network.codec import HeatmapCodec


@keras.saving.register_keras_serializable(package="keras_hourglass")
class HeatmapPCK(keras.metrics.Metric):
    """Percentage of correct keypoints, decoded from predicted and target heatmaps.

    The ground-truth keypoints are decoded from the target heatmaps (a target Gaussian decodes
    to within stride / 4 input pixels of the keypoint, see `HeatmapCodec`), so the metric needs
    nothing but (y_true, y_pred) and works as a plain `compile(metrics=...)` entry. Joints with an
    all-zero target (unannotated or outside the crop) are not counted. The normalising size is the
    distance between two joints of the target (torso: left shoulder to right hip); samples where
    either is missing are skipped.

    Args:
        codec: the `HeatmapCodec` (or its config) used for decoding.
        normalizer_joints: (a, b) joint indices whose distance normalises the error.
        threshold: a joint is correct when error / size < threshold (0.2 for PCK@0.2).
    """

    def __init__(self, codec, normalizer_joints, threshold=0.2, name="pck", **kwargs):
        super().__init__(name=name, **kwargs)
        self.codec = codec if isinstance(codec, HeatmapCodec) else HeatmapCodec(**codec)
        self.normalizer_joints = tuple(int(j) for j in normalizer_joints)
        self.threshold = float(threshold)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        true_kp, true_peak = self.codec.decode(y_true)
        pred_kp, _ = self.codec.decode(y_pred)
        annotated = ops.cast(true_peak > 0.0, "float32")
        a, b = self.normalizer_joints
        size = ops.sqrt(ops.sum(ops.square(true_kp[:, a] - true_kp[:, b]), axis=-1))
        usable = ops.cast(
            annotated[:, a] * annotated[:, b] * ops.cast(size > 0, "float32"), "float32"
        )
        error = ops.sqrt(ops.sum(ops.square(pred_kp - true_kp), axis=-1))
        error = error / ops.maximum(size, 1e-6)[:, None]
        counted = annotated * usable[:, None]
        if sample_weight is not None:
            counted = counted * ops.reshape(ops.cast(sample_weight, "float32"), (-1, 1))
        correct = ops.cast(error < self.threshold, "float32") * counted
        self.correct.assign_add(ops.sum(correct))
        self.total.assign_add(ops.sum(counted))

    def result(self):
        return 100.0 * self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)

    def get_config(self):
        return {
            **super().get_config(),
            "codec": self.codec.get_config(),
            "normalizer_joints": list(self.normalizer_joints),
            "threshold": self.threshold,
        }
