"""The published PyTorch stacked hourglasses as self-describing Keras models.

    model, report = convert_checkpoint("checkpoint.pt")   # the source told by the keys
    model.save("hourglass.keras")                          # predicts, evaluates and serves

Two sources (docs/pretrained.md has where to download them and their published accuracy):

- `psh`, princeton-vl/pytorch_stacked_hourglass (`checkpoint.pt`): the paper's network
  (`PoseNet`: pre, hgs, features, outs, merge_features, merge_preds), keys prefixed
  `model.module.`; every Residual holds a `skip_layer`, used only where the width changes.
  Inputs: RGB in [0, 1]. Decoding: arg-max +-0.25, +0.5, x4 to input pixels: this project's
  convention (offset 0).
- `bearpaw`, bearpaw/pytorch-pose (`model_best.pth.tar`, hg_s2_b1 / hg_s8_b1; also the plain
  state dicts republished by anibali): the same hourglass with another stem (its second
  residual projects 128 -> 256, its third is an identity), keys prefixed `module.`. Inputs:
  RGB in [0, 1] minus the MPII mean colour (subtracted inside the converted model). Decoding:
  its 1-based arg-max + 0.5 reads one heatmap pixel further than this project's (offset 1).

Every Keras weight is filled exactly once; every tensor of the checkpoint is used or on a named
ignore list (batch-norm step counters, PSH's unused skip layers); anything missing, extra or of
another shape raises `ConversionError` naming the tensor. Batch norm keeps PyTorch's epsilon
(1e-5) and momentum (0.1, i.e. 0.9 in Keras' convention), which the model's layers use.
"""

import dataclasses
import re

import numpy as np

from keras_hourglass.checkpoints import CheckpointError, read_torch_checkpoint
from keras_hourglass.network.model import build_hourglass

# bearpaw/pytorch-pose subtracts this mean colour of the MPII training images (no std division).
BEARPAW_MEAN = (0.4404, 0.4440, 0.4327)


class ConversionError(ValueError):
    """A checkpoint that does not fit the source's network; the message names the tensor."""


RESIDUAL = ("bn1", "conv1", "bn2", "conv2", "bn3", "conv3", "skip")  # a Keras residual's layers
STACK = ("res", "lin_conv", "lin_bn", "heatmaps", "merge_features", "merge_heatmaps")


@dataclasses.dataclass
class Source:
    """What one published source's checkpoints hold and how they map onto the Keras model: a
    subclass per source gives its module names (`residual_names`, `stack_names`,
    `hourglass_level`), how its sizes are read (`stack_pattern`, `depth_and_joints`) and which
    of its tensors the Keras model has no use for (`unused`); `SOURCES` is the table of them."""

    name: str
    description: str
    prefixes: tuple
    marker: str  # a key only this source's state dicts have
    stem: tuple  # source names of stem conv, stem bn, stem residuals 1-3
    input_mean: tuple = None
    heatmap_offset: float = 0.0
    stack_pattern = ""  # a regular expression whose group 1 is a tensor's stack
    residual_names = ()  # a residual's modules, in `RESIDUAL` order, below its prefix
    stack_names = ()  # a stack's modules after its hourglass, in `STACK` order ({s}: the stack)

    def residual(self, prefix):
        """{Keras layer suffix: source module} of one pre-activation residual."""
        return {ours: f"{prefix}.{theirs}" for ours, theirs in zip(RESIDUAL, self.residual_names)}

    def hourglass_level(self, stack, level, depth):
        """Source prefixes of the residuals at hourglass `level` (depth .. 1) of `stack`:
        {"up", "low1", "low3", "low2" (innermost only)}."""
        raise NotImplementedError

    def stack(self, s):
        """Source names of stack s's modules after its hourglass."""
        return {ours: theirs.format(s=s) for ours, theirs in zip(STACK, self.stack_names)}

    def depth_and_joints(self, state, path):
        """(hourglass depth, joints) read from the state dict's names and shapes."""
        raise NotImplementedError

    def unused(self, name):
        """Why tensor `name` has no place in the Keras model, or None when it should have one."""
        if name.endswith(".num_batches_tracked"):
            return "batch-norm step counters"
        return None


class PshSource(Source):
    """princeton-vl/pytorch_stacked_hourglass: nested `low2` hourglasses, `Conv` wrappers."""

    stack_pattern = r"hgs\.(\d+)\."
    residual_names = (
        "bn1", "conv1.conv", "bn2", "conv2.conv", "bn3", "conv3.conv", "skip_layer.conv",
    )  # fmt: skip
    stack_names = (
        "features.{s}.0", "features.{s}.1.conv", "features.{s}.1.bn", "outs.{s}.conv",
        "merge_features.{s}.conv.conv", "merge_preds.{s}.conv.conv",
    )  # fmt: skip

    def hourglass_level(self, stack, level, depth):
        at = f"hgs.{stack}.0" + ".low2" * (depth - level)
        names = {"up": f"{at}.up1", "low1": f"{at}.low1", "low3": f"{at}.low3"}
        if level == 1:
            names["low2"] = f"{at}.low2"
        return names

    def depth_and_joints(self, state, path):
        depth = max(k.count(".low2") for k in state if k.startswith("hgs.0.0."))
        return depth, _shape(state, "outs.0.conv.weight", path)[0]

    def unused(self, name):
        if ".skip_layer." in name:
            return "skip layers of same-width residuals, never applied"
        return super().unused(name)


class BearpawSource(Source):
    """bearpaw/pytorch-pose: an indexed `hg` list per level, one residual per position."""

    stack_pattern = r"hg\.(\d+)\."
    residual_names = ("bn1", "conv1", "bn2", "conv2", "bn3", "conv3", "downsample.0")
    stack_names = ("res.{s}.0", "fc.{s}.0", "fc.{s}.1", "score.{s}", "fc_.{s}", "score_.{s}")

    def hourglass_level(self, stack, level, depth):
        at = f"hg.{stack}.hg.{level - 1}"
        names = {"up": f"{at}.0.0", "low1": f"{at}.1.0", "low3": f"{at}.2.0"}
        if level == 1:
            names["low2"] = f"{at}.3.0"
        return names

    def depth_and_joints(self, state, path):
        levels = {int(m.group(1)) for k in state if (m := re.match(r"hg\.0\.hg\.(\d+)\.", k))}
        blocks = {int(m.group(1)) for k in state if (m := re.match(r"hg\.0\.hg\.0\.0\.(\d+)\.", k))}
        if blocks != {0}:
            raise ConversionError(
                f"{path}: {len(blocks)} residuals per hourglass position (hg_s*_b{len(blocks)}); "
                "the stacked hourglass here has one (bearpaw's published hg_s2_b1, hg_s8_b1)"
            )
        return len(levels), _shape(state, "score.0.weight", path)[0]


SOURCES = {
    "psh": PshSource(
        "psh",
        "princeton-vl/pytorch_stacked_hourglass (PoseNet)",
        ("model.module.", "module."),
        "pre.0.conv.weight",
        ("pre.0.conv", "pre.0.bn", "pre.1", "pre.3", "pre.4"),
    ),
    "bearpaw": BearpawSource(
        "bearpaw",
        "bearpaw/pytorch-pose (HourglassNet, one residual per hourglass position)",
        ("module.",),
        "layer1.0.conv1.weight",
        ("conv1", "bn1", "layer1.0", "layer2.0", "layer3.0"),
        input_mean=BEARPAW_MEAN,
        heatmap_offset=1.0,
    ),
}


@dataclasses.dataclass
class ConversionReport:
    """What a conversion read and did (printed by train/convert.py)."""

    path: str
    file_format: str
    source: str
    prefix: str
    stacks: int
    filters: int
    depth: int
    joints: int
    stem_widths: tuple
    parameters: int = 0
    mapped: int = 0
    ignored: dict = dataclasses.field(default_factory=dict)
    other_entries: tuple = ()

    def lines(self):
        yield f"read {self.path}: {self.file_format} PyTorch checkpoint"
        if self.other_entries:
            yield f"  besides the weights (not used): {', '.join(self.other_entries)}"
        yield f"source: {SOURCES[self.source].description}" + (
            f", keys prefixed {self.prefix!r}" if self.prefix else ""
        )
        yield (
            f"network: {self.stacks} stacks, {self.filters} features, depth {self.depth}, "
            f"{self.joints} joints, stem {self.stem_widths}; {self.parameters:,} parameters"
        )
        yield f"tensors: {self.mapped} mapped onto the Keras model"
        for reason, names in self.ignored.items():
            yield f"  ignored {len(names)} ({reason}): {', '.join(names[:3])}" + (
                " ..." if len(names) > 3 else ""
            )


def state_dict_of(obj, path):
    """The weights of a checkpoint object: its 'state_dict' entry, or the object itself when
    it is a plain state dict. Returns (state dict, the other top-level entries' names)."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        return obj["state_dict"], tuple(str(k) for k in obj if k != "state_dict")
    if isinstance(obj, dict) and obj and all(isinstance(v, np.ndarray) for v in obj.values()):
        return obj, ()
    raise ConversionError(
        f"{path}: neither a state dict nor a checkpoint with one under 'state_dict' (found "
        f"{sorted(map(str, obj))[:8] if isinstance(obj, dict) else type(obj).__name__})"
    )


def detect_source(state, path=""):
    """The source whose parameter names the state dict has (its prefix stripped)."""
    for source in SOURCES.values():
        for prefix in source.prefixes + ("",):
            if prefix + source.marker in state:
                return source.name
    raise ConversionError(
        f"{path}: the tensor names are none of the known sources' ({', '.join(SOURCES)}); the "
        f"first ones are {list(state)[:4]}"
    )


def _strip(state, source, path):
    for prefix in source.prefixes + ("",):
        if prefix + source.marker in state:
            stripped = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            others = [k for k in state if not k.startswith(prefix)]
            if others:
                raise ConversionError(
                    f"{path}: tensor {others[0]!r} lacks the prefix {prefix!r} the others have"
                )
            return stripped, prefix
    raise ConversionError(
        f"{path}: not a {source.name} checkpoint: no tensor {source.marker!r} (its stem); "
        f"the first names are {list(state)[:4]}"
    )


def _shape(state, name, path):
    if name not in state:
        raise ConversionError(f"{path}: the checkpoint has no tensor {name!r}")
    return state[name].shape


def _sizes(state, source, path):
    """(stacks, filters, depth, joints, stem widths) read from the tensors' names and shapes."""
    pattern = source.stack_pattern
    stacks = 1 + max((int(m.group(1)) for k in state if (m := re.match(pattern, k))), default=-1)
    if stacks < 1:
        raise ConversionError(f"{path}: no hourglass tensors ({pattern!r})")
    conv, _, res1, res2, res3 = source.stem
    convs = source.residual("x")
    widths = [
        _shape(state, f"{conv}.weight", path)[0],
        *(
            _shape(state, convs["conv3"].replace("x", r, 1) + ".weight", path)[0]
            for r in (res1, res2, res3)
        ),
    ]
    filters = widths[3]
    depth, joints = source.depth_and_joints(state, path)
    return stacks, int(filters), int(depth), int(joints), tuple(int(w) for w in widths)


def _layer_sources(model, source):
    """{Keras layer name: source module name} for every layer with weights."""
    names = {"stem_conv": source.stem[0], "stem_bn": source.stem[1]}
    for ours, theirs in zip(("stem_res1", "stem_res2", "stem_res3"), source.stem[2:]):
        names.update({f"{ours}_{k}": v for k, v in source.residual(theirs).items()})
    for s in range(model.num_stacks):
        prefix = f"hg{s}"
        for level in range(model.depth, 0, -1):
            for part, theirs in source.hourglass_level(s, level, model.depth).items():
                names.update(
                    {f"{prefix}_{part}_{k}": v for k, v in source.residual(theirs).items()}
                )
            prefix += "_inner"
        after = source.stack(s)
        names.update({f"hg{s}_res_{k}": v for k, v in source.residual(after["res"]).items()})
        for part in ("lin_conv", "lin_bn", "heatmaps", "merge_features", "merge_heatmaps"):
            names[f"hg{s}_{part}"] = after[part]
    return names


def _fill(model, state, source, path):
    """Assigns every weight of `model` from `state`; returns (tensors used, ignored by reason)."""
    import keras

    sources = _layer_sources(model, source)
    used = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in sources:
            raise ConversionError(f"no {source.name} tensor maps onto Keras layer {layer.name!r}")
        theirs = sources[layer.name]
        if isinstance(layer, keras.layers.Conv2D):
            pairs = [("weight", lambda w: np.transpose(w, (2, 3, 1, 0))), ("bias", None)]
        elif isinstance(layer, keras.layers.BatchNormalization):
            pairs = [
                ("weight", None),
                ("bias", None),
                ("running_mean", None),
                ("running_var", None),
            ]
        else:
            raise ConversionError(f"Keras layer {layer.name!r} has weights of no known kind")
        values = []
        for (suffix, transform), weight in zip(pairs, layer.weights):
            name = f"{theirs}.{suffix}"
            if name not in state:
                raise ConversionError(
                    f"{path}: the checkpoint has no tensor {name!r} (for Keras weight "
                    f"{weight.path}): not a {source.name} checkpoint of this shape?"
                )
            value = np.asarray(state[name], np.float32)
            value = transform(value) if transform else value
            if tuple(value.shape) != tuple(weight.shape):
                raise ConversionError(
                    f"{path}: tensor {name!r} has shape {tuple(state[name].shape)}, but Keras "
                    f"weight {weight.path} needs {tuple(weight.shape)}"
                )
            if not np.all(np.isfinite(value)):
                raise ConversionError(f"{path}: tensor {name!r} holds NaN or infinite values")
            values.append(value)
            used.add(name)
        layer.set_weights(values)
    ignored = {}
    for name in state:
        if name in used:
            continue
        reason = source.unused(name)
        if reason is None:
            raise ConversionError(
                f"{path}: tensor {name!r} has no place in the Keras model (a {source.name} "
                "network of another shape, or another network?)"
            )
        ignored.setdefault(reason, []).append(name)
    return used, ignored


def convert_checkpoint(path, source=None, skeleton="mpii", input_size=256):
    """A Keras `StackedHourglass` holding a published PyTorch checkpoint's weights.

    Args:
        path: the checkpoint file (either PyTorch serialization; read without PyTorch).
        source: "psh" or "bearpaw"; None tells it from the tensor names.
        skeleton: the joints it predicts (both sources: MPII's 16, in MPII's order).
        input_size: the input crop side (256 for both published models).

    Returns:
        (model, `ConversionReport`). The model carries the source's stem, input mean, decoding offset,
        skeleton and crop convention in its config, so its `.keras` file rebuilds itself.
    """
    try:
        obj = read_torch_checkpoint(path)
    except CheckpointError as error:
        raise ConversionError(str(error)) from None
    file_format = "zip (PyTorch >= 1.6)" if _is_zip(path) else "legacy (PyTorch <= 1.5)"
    state, others = state_dict_of(obj, path)
    model, report = convert_state_dict(state, source, skeleton, input_size, str(path))
    report.file_format, report.other_entries = file_format, others
    return model, report


def convert_state_dict(state, source=None, skeleton="mpii", input_size=256, path="state dict"):
    """`convert_checkpoint` for a state dict already read ({name: NumPy array})."""
    state = {str(k): v for k, v in state.items()}
    name = source or detect_source(state, path)
    if name not in SOURCES:
        raise ConversionError(f"unknown source {name!r}; known: {list(SOURCES)}")
    spec = SOURCES[name]
    state, prefix = _strip(state, spec, path)
    stacks, filters, depth, joints, widths = _sizes(state, spec, path)
    try:
        model = build_hourglass(
            num_stacks=stacks,
            num_keypoints=joints,
            filters=filters,
            depth=depth,
            input_shape=(input_size, input_size, 3),
            skeleton=skeleton,
            stem_widths=widths,
            input_mean=spec.input_mean,
            heatmap_offset=spec.heatmap_offset,
        )
    except ValueError as error:
        raise ConversionError(f"{path}: {error}") from None
    used, ignored = _fill(model, state, spec, path)
    report = ConversionReport(
        path=path,
        file_format="state dict",
        source=name,
        prefix=prefix,
        stacks=stacks,
        filters=filters,
        depth=depth,
        joints=joints,
        stem_widths=widths,
        parameters=model.count_params(),
        mapped=len(used),
        ignored=ignored,
    )
    return model, report


def _is_zip(path):
    import zipfile

    return zipfile.is_zipfile(path)
