"""The settings of a training run (`TrainConfig`): one table that train.py's flags, their help,
config files and the demo's values come from. Light to import (no Keras, no TensorFlow), so
`train.py --help` and a bad flag answer at once; `training.make_config` resolves and checks a
config against the machine.
"""

import dataclasses
import json
import math
import os
import sys
import time

from keras_hourglass import datasets

# The input pipelines (`keras_hourglass.inputs`): tf.data, the TensorFlow-free numpy executor, or
# auto (tf.data when TensorFlow imports); training also takes "device" (JAX: crops made on the
# accelerator from a bank of person cuts, `inputs.device_data`).
EXECUTORS = ("auto", "tf.data", "numpy")
TRAIN_EXECUTORS = (*EXECUTORS, "device")

__all__ = [
    "DEMO",
    "EXECUTORS",
    "TRAIN_EXECUTORS",
    "ConfigError",
    "TrainConfig",
    "check_run_name",
    "keras_backend",
    "load_config_file",
    "make_config",
    "setting_help",
    "stem_widths",
]


def keras_backend():
    """The Keras backend this process uses, without importing Keras when it is not imported yet:
    Keras' own rule (KERAS_BACKEND, else the "backend" of $KERAS_HOME/keras.json, else
    TensorFlow)."""
    if "keras" in sys.modules:
        import keras

        return keras.backend.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as f:
            return json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def _setting(default, help, demo=None, choices=None):
    """A `TrainConfig` field: its default (the paper's recipe), what it means (the flag's help),
    the demo's value on the synthetic data, and the values it may take."""
    return dataclasses.field(
        default=default, metadata={"help": help, "demo": demo, "choices": choices}
    )


@dataclasses.dataclass
class TrainConfig:
    """The settings of one training run (what config.json holds): the one table that the flags
    of `train/train.py`, their help, config files and the demo's values come from. The defaults
    are the paper's recipe; `make_config` fills the demo's for the synthetic data and checks
    every value."""

    name: str = _setting(
        "", "run name; files go to <runs-dir>/<name>/ (default: <dataset>-<date>-<time>)"
    )
    runs_dir: str = _setting("runs", "folder holding the runs")
    dataset: str = _setting(
        "synthetic",
        "training data: synthetic (embedded, rendered on first use, no download), mpii, lsp, "
        "lspet, coco, flic, or custom (a folder with skeleton.yaml and train.json/.csv)",
        choices=tuple(datasets.DATASETS),
    )
    data_dir: str = _setting(
        "",
        "the dataset's folder (its usual layout; synthetic: a folder in ~/.keras by default); "
        "with --annotations, the folder its image paths are relative to (custom data: by "
        "default the annotation file's folder)",
    )
    annotations: str = _setting(
        "",
        "train on this annotation file instead of the folder's training split (custom: a .json "
        "or .csv of named joints, docs/datasets.md; others: a file their reader takes)",
    )
    val_annotations: str = _setting(
        "",
        "validate on this annotation file (default: the people --val-count holds out of "
        "--annotations)",
    )
    skeleton: str = _setting(
        "",
        "custom data: the skeleton file (YAML or JSON: joint names, flip pairs, limbs, PCK "
        "normaliser; default: skeleton.yaml beside the annotations); the model carries it",
    )
    cache: str = _setting(
        "",
        "decode the training images once into this crop cache folder (written on the first run, "
        "reused after; it must hold exactly this run's training people) and train from it "
        "(tf.data pipeline); worth it for large photos such as MPII's",
    )
    val_count: int = _setting(
        0,
        "people held out for validation from the end of the training list (0: the dataset's "
        "own validation split; lsp/lspet: the last 1000; else a tenth)",
    )
    skip_bad: bool = _setting(False, "skip unusable records (listed) instead of stopping")
    stacks: int = _setting(8, "hourglass stacks (paper: 8)", demo=2)
    filters: int = _setting(256, "features inside the hourglasses (paper: 256)", demo=64)
    depth: int = _setting(4, "down-samplings per hourglass (paper: 4)", demo=4)
    input_size: int = _setting(
        256, "side of the square input crop; heatmaps are a quarter (paper: 256)", demo=64
    )
    stem: str = _setting(
        "",
        "widths of the layers before the first hourglass as 'a,b,c': the 7x7 convolution and "
        "the first two residuals (the third is --filters; default: the paper's 64,128,128). A "
        "narrower stem makes a small model cheaper: at 128 px the stem's 64x64 layers are 61%% "
        "of the 2-stack 64-feature model's multiply-adds",
    )
    sigma: float = _setting(1.0, "Gaussian sigma of the targets in heatmap pixels (paper: 1)")
    batch_size: int = _setting(
        6, "global batch size, split over replicas (reference code: 6)", demo=16
    )
    epochs: int = _setting(100, "epochs (paper recipe: 100)", demo=12)
    steps_per_epoch: int = _setting(
        0, "batches per epoch (0: one pass over the training people)", demo=100
    )
    learning_rate: float = _setting(2.5e-4, "RMSprop learning rate (paper: 2.5e-4)", demo=1e-3)
    plateau_patience: int = _setting(
        5, "epochs without improvement before the rate is divided by 5", demo=3
    )
    lr_schedule: str = _setting(
        "plateau",
        "plateau: divide the rate by 5 after --plateau-patience epochs without improvement "
        "(the paper's); cosine: decay it to 0 over the --max-minutes budget (or over "
        "--epochs without one), which spends a fixed budget without a collapsed rate at its end",
        choices=("plateau", "cosine"),
    )
    train_samples: int = _setting(0, "train on the first N training people only (0: all)")
    val_samples: int = _setting(0, "validate on the first N validation people only (0: all)")
    mixed_precision: str = _setting(
        "float32",
        "Keras dtype policy: float32, mixed_float16 or mixed_bfloat16",
        choices=("float32", "mixed_float16", "mixed_bfloat16"),
    )
    onednn_bf16: bool = _setting(
        False,
        "TensorFlow on a CPU with native bfloat16 (AMX or AVX512-BF16): let oneDNN's graph "
        "rewrite run the training step's convolutions and their gradients in bfloat16 (the "
        "weights, the optimizer and the saved model stay float32); a step 1.41x faster on a "
        "Xeon with AMX, 1.18-1.48x on an AMD EPYC, as fast as --mixed-precision "
        "mixed_bfloat16 there: measure yours with benchmarks/cpu_train_step.py",
    )
    remat: bool = _setting(
        False,
        "recompute each stack in the backward pass instead of keeping its activations: 2.4x "
        "less memory per image for the paper's 8-stack model, for about one more forward pass "
        "a step (the same numbers; docs/training.md)",
    )
    seed: int = _setting(0, "random seed (weights, data order, augmentation)")
    aug_scale: str = _setting(
        "0.75,1.25",
        "the augmentation's zoom range lo,hi (paper: 0.75,1.25; drawn from a Gaussian around 1 "
        "of a quarter of the range, clamped to it); wider ranges train for detectors' boxes",
    )
    aug_rotation: float = _setting(
        30.0, "the augmentation's largest rotation in degrees (paper: 30; half of it is sigma)"
    )
    aug_shift: float = _setting(
        0.0,
        "move each crop's centre by a Gaussian of this sigma, as a fraction of the crop's side, "
        "per axis (clamped at 2 sigma): trains for detectors' off-centre boxes (0: off, the "
        "paper's; tf.data and numpy executors)",
    )
    init_weights: str = _setting(
        "",
        "start from the weights of this .keras model (same architecture) instead of random "
        "ones: fine-tuning a shipped model with new augmentation",
    )
    strategy: str = _setting(
        "auto",
        "auto (MirroredStrategy when several GPUs are visible), none, or mirrored",
        choices=("auto", "none", "mirrored"),
    )
    backup_every: int = _setting(
        500, "back the run up every this many batches (and at every epoch end)", demo=50
    )
    executor: str = _setting(
        "auto",
        "input pipeline: tf.data, numpy (keras PyDataset with Pillow/OpenCV; no TensorFlow "
        "needed), or device (JAX backend: each person decoded once, crops, augmentation and "
        "targets made on the accelerator; the numpy executor's draws); auto takes tf.data when "
        "TensorFlow imports (config.json records the one used: tf.data's draws differ)",
        choices=TRAIN_EXECUTORS,
    )
    workers: int = _setting(
        0, "threads preparing batches for the numpy executor (0: the machine's cores)"
    )
    max_image_pixels: int = _setting(
        0,
        "refuse images above this many pixels, read from their headers before training "
        "(0: 50,000,000)",
    )
    max_minutes: float = _setting(
        0.0,
        "wall-clock budget in minutes: once spent, training ends cleanly after the current "
        "batch (validation, best checkpoint, backup); 0: no budget",
    )


# The demo's values where --dataset synthetic and neither a flag nor the config file set them.
DEMO = {
    f.name: f.metadata["demo"]
    for f in dataclasses.fields(TrainConfig)
    if f.metadata["demo"] is not None
}


def setting_help(field):
    """A setting's help with its defaults, as `train.py --help` shows it."""
    default = field.default
    demo = field.metadata["demo"]
    return f"{field.metadata['help']} (default: {default!r}" + (
        f"; synthetic: {demo!r})" if demo is not None else ")"
    )


class ConfigError(ValueError):
    pass


def augmentation_of(config):
    """The `augmentation.Augmentation` of `config`'s --aug-* settings; `ConfigError` for values
    that are not ranges."""
    from keras_hourglass.inputs.augmentation import Augmentation

    try:
        lo, hi = (float(v) for v in str(config.aug_scale).split(","))
    except ValueError:
        raise ConfigError(
            f"--aug-scale {config.aug_scale!r}: expected lo,hi, e.g. 0.75,1.25"
        ) from None
    if not (0 < lo <= 1.0 <= hi and math.isfinite(hi)):
        raise ConfigError(f"--aug-scale {config.aug_scale!r}: needs 0 < lo <= 1 <= hi")
    rotation, shift = float(config.aug_rotation), float(config.aug_shift)
    if not (0 <= rotation <= 180):
        raise ConfigError(f"--aug-rotation must be in [0, 180] degrees, got {rotation}")
    if not (0 <= shift <= 0.5):
        raise ConfigError(f"--aug-shift must be in [0, 0.5] (of the crop's side), got {shift}")
    return Augmentation(
        scale_sigma=(hi - lo) / 4.0,
        scale_range=(lo, hi),
        rotation_sigma=rotation / 2.0,
        rotation_max=rotation,
        shift_sigma=shift,
    )


def load_config_file(path):
    """The settings of a YAML (`.yaml`, `.yml`) or JSON config file, checked against the
    table: unknown names and values of the wrong type raise `ConfigError`."""
    if not os.path.isfile(path):
        raise ConfigError(f"--config {path!r}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"--config {path!r}: cannot read it as text ({error})") from None
    is_yaml = path.lower().endswith((".yaml", ".yml"))
    try:
        if is_yaml:
            import yaml  # only for YAML files

            values = yaml.safe_load(text) or {}
        else:
            values = json.loads(text)
    except Exception as error:  # yaml.YAMLError, json.JSONDecodeError, RecursionError
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(
            f"--config {path!r}: not valid {'YAML' if is_yaml else 'JSON'} ({problem})"
        ) from None
    if not isinstance(values, dict):
        raise ConfigError(
            f"--config {path!r}: expected a mapping of settings, got {type(values).__name__}"
        )
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"--config {path!r}: unknown setting(s) {unknown}; known settings: {sorted(known)} "
            "(write them with underscores, e.g. batch_size)"
        )
    kinds = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}
    types = {f.name: type(f.default) for f in dataclasses.fields(TrainConfig)}
    for key, value in values.items():
        want = types[key]
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            values[key] = float(value)
        elif not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ConfigError(
                f"--config {path!r}: {key} must be {kinds[want]}, got {value!r} "
                f"({type(value).__name__})"
            )
    return values


def make_config(values):
    """A checked `TrainConfig` from a dict of settings (a config file's, with flags over it):
    what `values` leaves out comes from the demo's defaults for the synthetic data and from the
    paper's recipe otherwise. Raises `ConfigError` naming the setting that is wrong."""
    values = dict(values)
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown setting(s) {unknown}; known settings: {sorted(fields)}")
    dataset = values.get("dataset", "synthetic")
    if dataset not in datasets.DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; choose one of {list(datasets.DATASETS)}")
    if dataset == "synthetic":
        for key, value in DEMO.items():
            values.setdefault(key, value)
    config = TrainConfig(**values)
    for name, field in fields.items():
        choices = field.metadata["choices"]
        if choices and getattr(config, name) not in choices:
            raise ConfigError(
                f"{name} must be one of {list(choices)}, got {getattr(config, name)!r}"
            )
    for name in ("stacks", "filters", "depth", "input_size", "batch_size", "epochs"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be a positive integer, got {getattr(config, name)}")
    for name in (
        "steps_per_epoch",
        "val_count",
        "backup_every",
        "train_samples",
        "val_samples",
        "workers",
        "max_image_pixels",
    ):
        if getattr(config, name) < 0:
            raise ConfigError(f"{name} must not be negative, got {getattr(config, name)}")
    for name in ("learning_rate", "sigma"):
        value = getattr(config, name)
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{name} must be a positive finite number, got {value}")
    if not math.isfinite(config.max_minutes) or config.max_minutes < 0:
        raise ConfigError(f"max_minutes must be a finite number >= 0, got {config.max_minutes}")
    if config.onednn_bf16 and keras_backend() != "tensorflow":
        raise ConfigError(
            "onednn_bf16 is TensorFlow's graph rewrite (oneDNN): run on the TensorFlow backend, "
            f"or leave it off on {keras_backend()} (on JAX, XLA:CPU gained nothing from "
            "bfloat16 here: docs/BENCHMARKS.md)"
        )
    if config.input_size % (4 * 2**config.depth):
        raise ConfigError(f"input_size must be a multiple of 4 * 2**depth = {4 * 2**config.depth}")
    stem_widths(config)  # checks --stem
    entry = datasets.get_dataset(dataset)
    if not config.data_dir and not config.annotations and entry.default_data_dir is None:
        raise ConfigError(
            f"--dataset {dataset} needs --data-dir (the dataset's folder)"
            + (" or --annotations (a file of named joints)" if entry.skeleton is None else "")
        )
    if config.data_dir and not os.path.isdir(os.path.expanduser(config.data_dir)):
        raise ConfigError(f"--data-dir {config.data_dir!r} does not exist")
    for name in ("annotations", "val_annotations", "skeleton"):
        path = getattr(config, name)
        if path and not os.path.isfile(os.path.expanduser(path)):
            raise ConfigError(f"--{name.replace('_', '-')} {path!r}: no such file")
    if config.cache and config.executor in ("numpy", "device"):
        raise ConfigError(
            "--cache is read by the tf.data pipeline: use --executor tf.data (the numpy and "
            "device executors decode the images themselves)"
        )
    augmentation_of(config)  # checks --aug-scale, --aug-rotation, --aug-shift
    if config.aug_shift and config.executor == "device":
        raise ConfigError(
            "--aug-shift is drawn by the tf.data and numpy executors, not the device executor"
        )
    if config.init_weights and not os.path.isfile(os.path.expanduser(config.init_weights)):
        raise ConfigError(f"--init-weights {config.init_weights!r}: no such file")
    if config.executor == "device" and keras_backend() != "jax":
        raise ConfigError(
            "--executor device makes the crops with JAX on the accelerator: run with "
            f"KERAS_BACKEND=jax (this is {keras_backend()})"
        )
    if config.skeleton and entry.skeleton is not None:
        raise ConfigError(
            f"--skeleton is for custom data: {dataset} has its own joints ({entry.skeleton.name})"
        )
    if not config.name:
        config.name = time.strftime(f"{dataset}-%Y%m%d-%H%M%S")
    check_run_name(config.name)
    return config


def check_run_name(name):
    """A run name is one folder name inside --runs-dir: no separators, not '.' or '..'."""
    bad = (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or os.path.isabs(name)
        or (os.altsep and os.altsep in name)
    )
    if bad:
        raise ConfigError(
            f"--name {name!r}: a run name must be a single folder name inside "
            "--runs-dir (no '/', not '.' or '..')"
        )


def stem_widths(config):
    """The model's `stem_widths` from --stem ('a,b,c'; '' is the paper's), checked."""
    if not config.stem:
        return None
    try:
        widths = tuple(int(w) for w in config.stem.split(","))
    except ValueError:
        widths = ()
    if len(widths) != 3 or any(w < 1 for w in widths) or widths[1] % 2 or widths[2] % 2:
        raise ConfigError(
            f"stem must be three positive widths 'a,b,c' (the 7x7 convolution's, then two even "
            f"residual widths), got {config.stem!r}"
        )
    return widths + (config.filters,)
