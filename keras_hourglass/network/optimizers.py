"""RMSprop as the reference code computes it (Torch7 `optim.rmsprop`, PyTorch `torch.optim.RMSprop`).

Why not `keras.optimizers.RMSprop`: Keras puts epsilon inside the square root,

    Keras:     w -= lr * g / sqrt(v + eps)
    reference: w -= lr * g / (sqrt(v) + eps)        v = rho * v + (1 - rho) * g**2, v0 = 0

The two agree only while v >> eps. Heatmap-MSE gradients are tiny: on LSPET the median per-weight
RMS gradient is 1.5e-6 to 5e-6, and over 91% of weights have sqrt(v) below sqrt(1e-8) = 1e-4,
where Keras' denominator is stuck at 1e-4. There Keras' step is about 2% of the reference's and
RMSprop degenerates into SGD at lr x 1e4. Trained on the same 600 LSPET batches, our model reached
9.1% held-out PCK@0.2 with Keras' formula and 19.3% with this one; an independent PyTorch
implementation went from 12.8% to 7.5% when given Keras' formula (issue #11, README "Training").
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_hourglass")
class TorchRMSprop(keras.optimizers.Optimizer):
    """RMSprop with epsilon outside the square root, as Torch7 and PyTorch compute it.

    Per variable, with the squared-gradient average `v` starting at zero:

        v <- rho * v + (1 - rho) * g**2
        w <- w - lr * g / (sqrt(v) + epsilon)

    This is `optim.rmsprop` of Torch7 (which pose-hg-train trains the paper's model with: learning
    rate 2.5e-4, alpha 0.99, epsilon 1e-8) and `torch.optim.RMSprop(alpha=rho, eps=epsilon)`
    without momentum or centering. The defaults are the paper's. It is a plain Keras optimizer:
    it saves and loads with `.keras` files and runs on every backend, under mixed precision
    (variables and `v` stay float32; the update is computed in the variable's dtype),
    `MirroredStrategy` and Keras' distribution API. The base optimizer's keyword arguments
    (`weight_decay`, `clipnorm`, `gradient_accumulation_steps`, ...) are accepted as usual.

    Args:
        learning_rate: a float or a `keras.optimizers.schedules.LearningRateSchedule`.
        rho: decay of the squared-gradient average (Torch's `alpha`).
        epsilon: added to the square root of the average (not inside it).
    """

    def __init__(
        self, learning_rate=2.5e-4, rho=0.99, epsilon=1e-8, name="torch_rmsprop", **kwargs
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"TorchRMSprop: rho must be in [0, 1), got {rho}")
        if not epsilon >= 0.0:
            raise ValueError(f"TorchRMSprop: epsilon must be >= 0, got {epsilon}")
        self.rho = float(rho)
        self.epsilon = float(epsilon)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._velocities = self.add_optimizer_variables(var_list, "velocity")

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        velocity = self._velocities[self._get_variable_index(variable)]
        self.assign(
            velocity,
            ops.add(
                ops.multiply(self.rho, velocity), ops.multiply(1.0 - self.rho, ops.square(gradient))
            ),
        )
        denominator = ops.add(ops.sqrt(velocity), self.epsilon)
        self.assign_sub(variable, ops.divide(ops.multiply(lr, gradient), denominator))

    def get_config(self):
        config = super().get_config()
        config.update({"rho": self.rho, "epsilon": self.epsilon})
        return config
