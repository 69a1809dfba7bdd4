"""Rematerialisation at stack granularity: a memory knob for training (`train.py --remat`).

Training keeps every layer's output of the forward pass for the backward pass; for the paper's
8-stack model at 256 px that is most of a GPU's memory. With `model.remat = True` the training
forward pass runs the network in segments, the stem and then each stack, each one checkpointed:
only a segment's inputs and outputs are kept, and its inside is computed again during the
backward pass, once the gradients of its outputs exist (a `jax.custom_vjp` on JAX, a
`tf.custom_gradient` on TensorFlow). Measured on the 8-stack model
(docs/BENCHMARKS.md): 753 -> 313 MiB per image in XLA's plan of the step, for about one more
forward pass.

Why not `keras.RematScope`: it wraps each layer's call, and in this functional model every
layer's output is the next layer's saved input, so per-layer remat keeps almost everything; it
also failed inside Keras 3.15 here on both backends (TensorFlow's `custom_gradient` refuses the
batch norms' `training=` keyword in graph mode; on JAX a tracer reaches a Python boolean while
the model is built), and `tf.recompute_grad` runs the call again in the backward pass, batch
norm's update of its moving statistics included. Here each segment is a pure function of its
variables' values and its inputs that returns its outputs and its new moving statistics (run
inside a `keras.StatelessScope`); the statistics are assigned once, after the segment, so
training computes what it computes without remat (tests/test_remat.py: the same step to 4e-7
on TensorFlow and JAX; other backends take `keras.remat` and are untested).

The model's layers, weights and files are unchanged: remat is how a training step runs, not part
of the architecture, so it is not saved in the `.keras` file.
"""

import re

import keras
from keras.src.backend.common.stateless_scope import get_stateless_scope
from keras.src.backend.common.variables import AutocastScope
from keras.src.models.functional import operation_fn

_STACK_LAYER = re.compile(r"^(?:hg(\d+)_|heatmaps_(\d+)$)")


def segment_of(layer_name):
    """The segment a layer belongs to: -1 for the stem (and the input mean), s for stack s
    (the hourglass `hg{s}_*`, its head and merge, its output `heatmaps_{s}`)."""
    match = _STACK_LAYER.match(layer_name)
    if not match:
        return -1
    return int(match.group(1) if match.group(1) is not None else match.group(2))


class _Segment:
    """The nodes of one segment in execution order, the tensors it takes from earlier
    segments, the tensors later segments (or the model's outputs) take from it, and the
    variables its layers use."""

    def __init__(self, key, nodes):
        self.key = key
        self.nodes = nodes
        produced = {id(t) for node in nodes for t in node.outputs}
        self.input_ids = []
        for node in nodes:
            for tensor in node.input_tensors:
                if id(tensor) not in produced and id(tensor) not in self.input_ids:
                    self.input_ids.append(id(tensor))
        self.produced = produced
        self.output_ids = []
        self.variables = []
        seen = set()
        for node in nodes:
            for variable in node.operation.variables:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    self.variables.append(variable)
        self.states = [v for v in self.variables if not v.trainable]


def _plan(model):
    """The model's graph cut into segments (cached on the model)."""
    plan = getattr(model, "_remat_plan", None)
    if plan is not None:
        return plan
    order = []
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.operation is not None and not node.is_input:
                order.append(node)
    by_key = {}
    for node in order:
        by_key.setdefault(segment_of(node.operation.name), []).append(node)
    segments = [_Segment(key, by_key[key]) for key in sorted(by_key)]
    # A segment's outputs: what a later segment reads, and the model's outputs.
    wanted = {id(t) for t in model.outputs}
    for segment in segments:
        wanted.update(segment.input_ids)
    available = {id(t) for t in model.inputs}
    for segment in segments:
        missing = [i for i in segment.input_ids if i not in available]
        if missing:
            raise ValueError(
                f"Cannot rematerialise model {model.name!r} by stacks: segment {segment.key} "
                "reads tensors no earlier segment makes (layer names other than stem_*, "
                "hg<s>_* and heatmaps_<s>?)."
            )
        segment.output_ids = [i for i in wanted if i in segment.produced]
        segment.output_ids.sort(key=lambda i: _position(segment, i))
        available.update(segment.output_ids)
    model._remat_plan = segments
    return segments


def _position(segment, tensor_id):
    for n, node in enumerate(segment.nodes):
        for k, tensor in enumerate(node.outputs):
            if id(tensor) == tensor_id:
                return (n, k)
    return (len(segment.nodes), 0)


def _current_value(variable):
    """The variable's value as the step sees it (the trainer's stateless value on JAX), never
    autocast: the segment casts as the layers do."""
    scope = get_stateless_scope()
    if scope is not None:
        value = scope.get_current_value(variable)
        if value is not None:
            return value
    with AutocastScope(None):
        return keras.ops.convert_to_tensor(variable.value)


def _segment_function(segment, training):
    """The pure function of a segment: (variable values, inputs) -> (outputs, new states)."""

    def run(values, inputs):
        mapping = list(zip(segment.variables, values))
        with keras.StatelessScope(state_mapping=mapping, initialize_variables=False) as scope:
            tensors = dict(zip(segment.input_ids, inputs))
            for node in segment.nodes:
                args, kwargs = node.arguments.fill_in(tensors)
                outputs = operation_fn(node.operation, training=training)(*args, **kwargs)
                for tensor, value in zip(node.outputs, keras.tree.flatten(outputs)):
                    tensors[id(tensor)] = value
            states = [scope.get_current_value(v) for v in segment.states]
        return [tensors[i] for i in segment.output_ids], states

    return run


def _recompute_in_backward(f, num_states):
    """Checkpoints f(values, inputs) -> (outputs, states) like `keras.remat`, with the recomputation
    made to wait for the gradient of f's outputs: a scheduler could otherwise run it as soon as
    its inputs exist (during the forward pass), which keeps everything alive again."""
    backend = keras.backend.backend()
    if backend == "jax":
        return _recompute_jax(f)
    if backend == "tensorflow":
        return _recompute_tf(f, num_states)
    return keras.remat(f)


def _recompute_jax(f):
    import jax

    @jax.custom_vjp
    def run(values, inputs):
        return f(values, inputs)

    def forward(values, inputs):
        return f(values, inputs), (values, inputs)

    def backward(saved, gradients):
        # The recomputation must wait for the gradients, and must not be merged with the
        # forward pass's copy: XLA's CPU compiler removes `jax.checkpoint`'s optimization
        # barriers and then merges the two (measured: a toy chain compiled to as many matrix
        # products as without remat, the model's step to no less memory). Adding 0 x an element of every incoming gradient
        # to the inputs makes them a new value that exists only once all those gradients do
        # (a stack's heatmap gradient comes straight from the loss; its features' gradient
        # only after the next stack's backward pass).
        values, inputs = saved
        zero = sum(0 * g.ravel()[0].astype("float32") for g in jax.tree.leaves(gradients))
        inputs = [x + zero.astype(x.dtype) for x in inputs]
        _, pullback = jax.vjp(f, values, inputs)
        return pullback(gradients)

    run.defvjp(forward, backward)
    return run


def _recompute_tf(f, num_states):
    import tensorflow as tf

    def run(values, inputs):
        n = len(values)

        @tf.custom_gradient
        def checkpointed(*args):
            result = f(list(args[:n]), list(args[n:]))
            flat = keras.tree.flatten(result)

            def backward(*gradients):
                gradients = [tf.zeros_like(y) if g is None else g for y, g in zip(flat, gradients)]
                with tf.control_dependencies(gradients):
                    again = [tf.identity(a) for a in args]
                with tf.GradientTape() as tape:
                    tape.watch(again)
                    recomputed = keras.tree.flatten(f(again[:n], again[n:]))
                return tape.gradient(recomputed, again, output_gradients=gradients)

            return flat, backward

        flat = checkpointed(*values, *inputs)
        split = len(flat) - num_states
        return list(flat[:split]), list(flat[split:])

    return run


def call_rematerialised(model, inputs, training):
    """The model's forward pass (training mode) with each segment recomputed in the backward
    pass (`_recompute_in_backward`)."""
    segments = _plan(model)
    flat = keras.tree.flatten(inputs)
    tensors = {id(t): x for t, x in zip(model.inputs, flat)}
    for segment in segments:
        values = [_current_value(v) for v in segment.variables]
        run = _recompute_in_backward(_segment_function(segment, training), len(segment.states))
        outputs, states = run(values, [tensors[i] for i in segment.input_ids])
        for variable, value in zip(segment.states, states):
            variable.assign(value)
        tensors.update(zip(segment.output_ids, outputs))
    results = [tensors[id(t)] for t in model.outputs]
    return keras.tree.pack_sequence_as(model._outputs_struct, results)
