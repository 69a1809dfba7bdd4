"""Compiling a stacked hourglass as the paper trains it."""

import keras

from keras_hourglass.optimizers import TorchRMSprop


def compile_hourglass(
    model,
    learning_rate=2.5e-4,
    optimizer=None,
    jit_compile="auto",
    steps_per_execution=1,
    metrics=None,
):
    """Compiles `model` with RMSprop and MSE on every stack output (intermediate supervision).

    The optimizer is the reference code's RMSprop, `TorchRMSprop` (rho 0.99, epsilon 1e-8 outside
    the square root, no momentum, no weight decay), unless `optimizer` is given. Not
    `keras.optimizers.RMSprop`: its epsilon sits inside the square root, which makes its steps
    about 2% of the reference's on heatmap losses (see `keras_hourglass.optimizers`). Each output `heatmaps_i` gets its own mean squared error
    with weight 1, so `fit` reports `heatmaps_i_loss` for every stack and `loss` is their sum.

    Args:
        model: a model from `build_hourglass` (outputs named `heatmaps_0` ...).
        learning_rate: RMSprop learning rate (2.5e-4 in the paper).
        optimizer: a Keras optimizer to use instead of the paper's RMSprop.
        jit_compile, steps_per_execution: passed to `Model.compile`.
        metrics: optional dict {output name: [metrics]}, e.g. PCK on the last stack.

    Returns:
        the model, compiled.
    """
    names = list(model.output_names)
    if not names or any(not n.startswith("heatmaps_") for n in names):
        raise ValueError(
            "compile_hourglass expects a model whose outputs are named heatmaps_0, heatmaps_1, "
            f"... (as build_hourglass makes). Received output names: {names}"
        )
    if optimizer is None:
        optimizer = TorchRMSprop(learning_rate=learning_rate, rho=0.99, epsilon=1e-8)
    model.compile(
        optimizer=optimizer,
        loss={name: keras.losses.MeanSquaredError(name=f"mse_{name}") for name in names},
        loss_weights={name: 1.0 for name in names},
        metrics=metrics,
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model
