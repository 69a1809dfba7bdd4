"""Training as the paper does it, in the library: compiling a stacked hourglass
(`compile_hourglass`) and a whole resumable training run (`TrainConfig`, `train`).

`train/train.py` parses flags into a `TrainConfig` and calls `train`; tests and benchmarks call
the same functions:

    from keras_hourglass.training import make_config, train
    summary = train(make_config({"dataset": "lspet", "data_dir": "data/lspet", "stacks": 2}))

A run folder runs/<name>/ gets config.json (the resolved config), best.keras, last.keras,
log.csv, TensorBoard logs (TensorFlow backend) and backups; training the same config again
resumes a killed run at the epoch and step it reached.
"""

import dataclasses
import json
import math
import os
import time

import keras

from keras_hourglass.datasets import DATASETS
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


@dataclasses.dataclass
class TrainConfig:
    """The settings of one training run (what config.json holds); `train/train.py --help`
    says what each means. The defaults are the paper's recipe; `make_config` fills the demo's
    (`DEMO`) for the synthetic data and checks every value."""

    name: str = ""
    runs_dir: str = "runs"
    dataset: str = "synthetic"
    data_dir: str = ""
    val_count: int = 0
    skip_bad: bool = False
    stacks: int = 8
    filters: int = 256
    depth: int = 4
    input_size: int = 256
    sigma: float = 1.0
    batch_size: int = 6
    epochs: int = 100
    steps_per_epoch: int = 0
    learning_rate: float = 2.5e-4
    plateau_patience: int = 5
    train_samples: int = 20000
    val_samples: int = 256
    mixed_precision: str = "float32"
    seed: int = 0
    strategy: str = "auto"
    backup_every: int = 500
    max_minutes: float = 0.0


# The demo's values where --dataset synthetic and neither a flag nor the config file set them.
DEMO = dict(
    stacks=2,
    filters=64,
    depth=4,
    input_size=64,
    batch_size=16,
    epochs=12,
    steps_per_epoch=100,
    learning_rate=1e-3,
    plateau_patience=3,
    backup_every=50,
)


class ConfigError(ValueError):
    pass


def load_config_file(path):
    if not os.path.isfile(path):
        raise ConfigError(f"--config {path!r}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"--config {path!r}: cannot read it as text ({error})") from None
    try:
        if path.lower().endswith((".yaml", ".yml")):
            import yaml

            values = yaml.safe_load(text) or {}
        else:
            values = json.loads(text)
    except Exception as error:  # yaml.YAMLError, json.JSONDecodeError, RecursionError
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(
            f"--config {path!r}: not valid {'YAML' if path.lower().endswith(('.yaml', '.yml')) else 'JSON'} ({problem})"
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
    types = {f.name: type(f.default) for f in dataclasses.fields(TrainConfig)}
    for key, value in values.items():
        want = types[key]
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            values[key] = float(value)
        elif not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ConfigError(
                f"--config {path!r}: {key} must be {'a whole number' if want is int else 'a number' if want is float else 'true or false' if want is bool else 'text'}, "
                f"got {value!r} ({type(value).__name__})"
            )
    return values


def make_config(values):
    """A checked `TrainConfig` from a dict of settings (a config file's, with flags over it):
    what `values` leaves out comes from the demo's defaults for the synthetic data and from the
    paper's recipe otherwise. Raises `ConfigError` naming the setting that is wrong."""
    values = dict(values)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s) {unknown}; known settings: {sorted(known)}")
    dataset = values.get("dataset", "synthetic")
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; choose one of {list(DATASETS)}")
    if dataset == "synthetic":
        for key, value in DEMO.items():
            values.setdefault(key, value)
    config = TrainConfig(**values)
    for name in (
        "stacks",
        "filters",
        "depth",
        "input_size",
        "batch_size",
        "epochs",
        "train_samples",
        "val_samples",
    ):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be a positive integer, got {getattr(config, name)}")
    if config.steps_per_epoch < 0 or config.val_count < 0 or config.backup_every < 0:
        raise ConfigError("steps_per_epoch, val_count and backup_every must not be negative")
    for name in ("learning_rate", "sigma"):
        value = getattr(config, name)
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{name} must be a positive finite number, got {value}")
    if not math.isfinite(config.max_minutes) or config.max_minutes < 0:
        raise ConfigError(f"max_minutes must be a finite number >= 0, got {config.max_minutes}")
    if config.input_size % (4 * 2**config.depth):
        raise ConfigError(f"input_size must be a multiple of 4 * 2**depth = {4 * 2**config.depth}")
    if dataset != "synthetic":
        if not config.data_dir:
            raise ConfigError(f"--dataset {dataset} needs --data-dir (the dataset's folder)")
        if not os.path.isdir(config.data_dir):
            raise ConfigError(f"--data-dir {config.data_dir!r} does not exist")
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


class RunLock:
    """An exclusive lock on a run folder (`<run>/.lock`, flock), held for the process' life: a
    second training with the same --name stops with a message naming the holder. The kernel
    drops the lock when the holder dies, SIGKILL included, so a killed run resumes at once."""

    def __init__(self, run_dir):
        import fcntl
        import socket

        self.path = os.path.join(run_dir, ".lock")
        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise ConfigError(
                f"run {run_dir} is in use by {holder}; wait for it to finish, "
                "or choose another --name"
            ) from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(
            f"process {os.getpid()} on {socket.gethostname()} since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}"
        )
        self.file.flush()


def remove_stale_temporaries(run_dir):
    """Files and folders that writes killed half-way leave behind (`.tmp-*`, `*.tmp`): with the
    run's lock held nobody else writes here, so they are stale. Returns what was removed."""
    import shutil

    removed = []
    for folder in (run_dir, os.path.join(run_dir, "backup")):
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            if name.startswith(".tmp-") or name.endswith(".tmp"):
                path = os.path.join(folder, name)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
                removed.append(path)
    return removed


def load_data(config, max_pixels=None):
    """(training records, validation records, skeleton) of a dataset with files, by its
    `DATASETS` entry: its validation split, or (none, or the same file as the training split)
    the last `val_count` people (default: the entry's `held_out`, else a tenth) held out."""
    from keras_hourglass import datasets

    entry = datasets.get_dataset(config.dataset)
    cache_meta = os.path.join(config.data_dir, "meta.json")
    try:
        if os.path.isfile(cache_meta):
            raise ConfigError(
                f"{config.data_dir} is a crop cache: pass the dataset folder (validation needs the "
                "original images); use the cache with make_dataset directly for now"
            )
        train = entry.records(config.data_dir, entry.train_split, skip_bad=config.skip_bad)
        val = None
        if entry.val_split and not config.val_count:
            val = entry.records(config.data_dir, entry.val_split, skip_bad=config.skip_bad)
            if val.source == train.source:  # e.g. COCO given as one .json: hold out instead
                val = None
        if val is None:
            held_out = config.val_count or entry.held_out or max(1, len(train) // 10)
            if held_out >= len(train):
                raise ConfigError(f"val_count {held_out} leaves no training people of {len(train)}")
            train, val = (
                datasets.Records(train[:-held_out], train.skipped, train.source),
                datasets.Records(train[-held_out:], {}, train.source),
            )
        datasets.check_image_files(train, max_pixels)
        datasets.check_image_files(val, max_pixels)
    except datasets.DatasetError as error:
        raise ConfigError(str(error)) from None
    print(f"train: {train.summary()}\nvalidation: {len(val)} people")
    return train, val, entry.skeleton


def make_strategy(config, logical_cpus=0):
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    if logical_cpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus
        )
    gpus = tf.config.list_logical_devices("GPU")
    if config.strategy == "none" or (config.strategy == "auto" and len(gpus) < 2):
        return None
    if gpus:
        devices = [d.name for d in gpus]
    else:
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices)
    if config.batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(
            f"batch_size {config.batch_size} does not divide over {strategy.num_replicas_in_sync} "
            f"replicas; use a multiple of {strategy.num_replicas_in_sync}"
        )
    return strategy


def build_and_compile(config, skeleton, codec):
    import keras_hourglass as kh
    from keras_hourglass.pck_metric import HeatmapPCK

    model = kh.build_hourglass(
        num_stacks=config.stacks,
        filters=config.filters,
        depth=config.depth,
        input_shape=(config.input_size, config.input_size, 3),
        skeleton=skeleton,
        sigma=config.sigma,
    )
    metrics = None
    entry = DATASETS[config.dataset]
    if entry.read is None:  # synthetic: PCK of its normaliser (the torso) in-graph, on crops
        torso = tuple(skeleton.index(j) for j in entry.normalizer[1])
        metrics = {model.output_names[-1]: [HeatmapPCK(codec, torso, 0.2, name="pck")]}
    kh.compile_hourglass(model, learning_rate=config.learning_rate, metrics=metrics)
    return model


def check_resumable(model, config, path):
    shape = (
        model.num_stacks,
        model.filters,
        model.depth,
        model.image_shape[0],
        model.num_keypoints,
    )
    want = (config.stacks, config.filters, config.depth, config.input_size)
    if shape[:4] != want:
        raise ConfigError(
            f"the backup {path} is a model with stacks, filters, depth, input size = {shape[:4]}, "
            f"but this run asks for {want}: resume with the run's own settings (its config.json) "
            "or choose another --name"
        )


def _truncate_log(path, epochs_done):
    """Keeps the CSV log's rows of the epochs a resumed run will not repeat (a kill between the
    log's write and the backup's must not leave a duplicate row)."""
    import csv

    if not os.path.isfile(path):
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) < epochs_done]
    with open(path + ".tmp", "w", newline="") as f:
        csv.writer(f).writerows(kept)
    os.replace(path + ".tmp", path)


class _RunData:
    """The data of one run, by the dataset's `DATASETS` entry: the training batches, the
    validation (synthetic figures scored in-graph, or people scored with their dataset's protocol
    by `PoseValidation`) and a few crops for TensorBoard."""

    def __init__(self, config, codec, executor, workers, shard, max_pixels):
        from keras_hourglass.datasets import get_dataset

        self.config, self.codec, self.shard = config, codec, shard
        self.executor, self.workers = executor, workers
        self.entry = get_dataset(config.dataset)
        self.synthetic = self.entry.read is None
        if self.synthetic:
            self.skeleton, self.train_count = self.entry.skeleton, config.train_samples
            self.train_records = self.val_records = None
        else:
            self.train_records, self.val_records, self.skeleton = load_data(config, max_pixels)
            self.train_count = len(self.train_records)
        self.validation_data = None

    def training(self, start_batch):
        from keras_hourglass import inputs

        c = self.config
        common = dict(
            executor=self.executor,
            workers=self.workers,
            start_batch=start_batch,
            seed=c.seed,
            shard=self.shard,
        )
        if self.synthetic:
            return inputs.synthetic_data(
                c.train_samples, self.codec, c.batch_size, c.stacks, repeat=True, **common
            )
        return inputs.pose_dataset(
            self.train_records,
            self.skeleton,
            self.codec,
            c.batch_size,
            training=True,
            num_stacks=c.stacks,
            **common,
        )

    def validation(self, model):
        """(callbacks, validation_data for fit, the monitored log name)."""
        from keras_hourglass import inputs
        from keras_hourglass.callbacks import PoseValidation

        c = self.config
        if self.synthetic:
            self.validation_data = inputs.synthetic_data(
                c.val_samples,
                self.codec,
                c.batch_size,
                c.stacks,
                executor=self.executor,
                workers=self.workers,
                seed=c.seed + 1_000_003,
                shuffle=False,
                shard=self.shard,
            )
            last = model.output_names[-1]
            return [], self.validation_data, f"val_{last}_pck" if c.stacks > 1 else "val_pck"
        validation = PoseValidation(
            self.val_records,
            self.skeleton,
            self.codec,
            max(c.batch_size, 16),
            executor=self.executor,
            workers=self.workers,
        )
        return [validation], None, validation.name

    def sample(self):
        """Four validation crops (for TensorBoard's images)."""
        if self.synthetic:
            return next(iter(self.validation_data))[0]
        from keras_hourglass.pipeline import make_dataset

        crops = make_dataset(
            self.val_records[:4], self.skeleton, self.codec, 4, training=False, num_stacks=1
        )
        return next(iter(crops))[0]


def train(
    config,
    verbose=1,
    logical_cpus=0,
    cluster=("", 1, 0),
    executor=None,
    workers=None,
    max_pixels=None,
):
    """Trains as `config` says. `cluster` = (coordinator host:port, number of processes, this
    process' id) for multi-process training on JAX; process 0 writes the run folder, the others
    write the same files to a scratch folder they delete at the end. `executor`, `workers`: the
    input pipeline (`keras_hourglass.inputs`; "auto" takes tf.data when TensorFlow imports)."""
    started = time.time()
    import contextlib
    import shutil
    import tempfile

    import keras_hourglass as kh
    from keras_hourglass import distributed, inputs
    from keras_hourglass.callbacks import (  # noqa: I001
        AtomicModelCheckpoint,
        ResumableCheckpoint,
        ResumableReduceLROnPlateau,
        TimeBudget,
        latest_backup,
    )

    try:
        executor = inputs.resolve_executor(executor)
    except ValueError as error:
        raise ConfigError(str(error)) from None

    coordinator, num_processes, process_id = cluster
    if config.batch_size % num_processes:
        raise ConfigError(
            f"batch_size {config.batch_size} does not divide over {num_processes} "
            f"processes; use a multiple of {num_processes}"
        )
    try:
        distributed.initialize(coordinator, num_processes, process_id)
    except distributed.DistributedConfigError as error:
        raise ConfigError(str(error)) from None
    chief = process_id == 0
    shard = (num_processes, process_id) if num_processes > 1 else None
    if shard:
        devices = distributed.num_devices()
        if config.batch_size % devices:
            raise ConfigError(
                f"batch_size {config.batch_size} does not divide over the {devices} devices of "
                f"{num_processes} processes; use a multiple of {devices}"
            )
        if DATASETS[config.dataset].read is None and config.val_samples % config.batch_size:
            raise ConfigError(
                f"val_samples {config.val_samples} must be a multiple of batch_size "
                f"{config.batch_size} on several processes (each validates equal batches)"
            )
        if not chief:
            verbose = 0

    run_dir = os.path.join(config.runs_dir, config.name)
    os.makedirs(run_dir, exist_ok=True)
    if chief:
        lock = RunLock(run_dir)  # noqa: F841  (held until the process ends)
        stale = remove_stale_temporaries(run_dir)
        if stale:
            print(f"Removed {len(stale)} temporary file(s) a killed write left in {run_dir}")
    config_path = os.path.join(run_dir, "config.json")
    backup_dir = os.path.join(run_dir, "backup")
    resume = latest_backup(backup_dir)
    # Every process runs every callback (saving reads the replicated weights on each), but only
    # process 0 writes into the run folder: the others write into a scratch folder.
    out_dir = run_dir if chief else tempfile.mkdtemp(prefix=f"hourglass-process{process_id}-")
    if resume and os.path.isfile(config_path):
        with open(config_path) as f:
            saved = json.load(f)
        different = {
            k: (saved.get(k), v)
            for k, v in dataclasses.asdict(config).items()
            if k not in ("epochs", "name", "max_minutes") and saved.get(k, v) != v
        }
        if different:
            raise ConfigError(
                f"run {run_dir} exists with other settings {different} (saved, asked); resume it "
                "with the same settings or choose another --name"
            )
    if chief:
        with open(config_path + ".tmp", "w") as f:
            json.dump(dataclasses.asdict(config), f, indent=2)
        os.replace(config_path + ".tmp", config_path)

    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_dtype_policy(config.mixed_precision)
    strategy = make_strategy(config, logical_cpus)
    scope = strategy.scope() if strategy else contextlib.nullcontext()
    codec = kh.HeatmapCodec(config.input_size, config.input_size // 4, config.sigma)

    data = _RunData(config, codec, executor, workers, shard, max_pixels)
    skeleton = data.skeleton
    steps = config.steps_per_epoch or math.ceil(data.train_count / config.batch_size)

    state = None
    with scope:
        if resume:
            model_path, state = resume
            model = keras.saving.load_model(model_path)
            check_resumable(model, config, model_path)
            print(
                f"Resuming {run_dir} at epoch {state['epoch'] + 1}, step {state['step_in_epoch']} "
                f"(global step {state['global_step']})"
            )
        else:
            model = build_and_compile(config, skeleton, codec)
    print(
        f"Model: {config.stacks} stacks, {config.filters} features, depth {config.depth}, "
        f"{config.input_size}x{config.input_size} -> {config.input_size // 4}x"
        f"{config.input_size // 4}x{skeleton.num_joints}, {model.count_params():,} parameters; "
        f"{steps} steps of {config.batch_size} per epoch"
        + (f", {strategy.num_replicas_in_sync} replicas" if strategy else "")
        + (
            f", process {process_id} of {num_processes} ({distributed.num_devices()} devices)"
            if shard
            else ""
        )
    )

    global_step = state["global_step"] if state else 0

    callbacks, validation_data, monitor = data.validation(model)
    best = AtomicModelCheckpoint(
        os.path.join(out_dir, "best.keras"),
        monitor=monitor,
        mode="max",
        save_best_only=True,
        verbose=verbose,
    )
    plateau = ResumableReduceLROnPlateau(
        monitor=monitor, mode="max", factor=0.2, patience=config.plateau_patience, verbose=verbose
    )
    if state:
        best.set_state(state["callbacks"]["best"])
        plateau.restore(state["callbacks"]["plateau"])
        if chief:
            _truncate_log(os.path.join(run_dir, "log.csv"), global_step // steps)
    backup = ResumableCheckpoint(
        os.path.join(out_dir, "backup"),
        steps,
        config.backup_every,
        global_step,
        stateful={"best": best, "plateau": plateau},
    )
    budget = TimeBudget(config.max_minutes, started)
    callbacks += [
        budget,
        plateau,
        best,
        AtomicModelCheckpoint(os.path.join(out_dir, "last.keras"), verbose=0),
        keras.callbacks.CSVLogger(os.path.join(out_dir, "log.csv"), append=bool(state)),
        backup,
    ]
    if keras.backend.backend() != "tensorflow":
        print(
            f"TensorBoard logs are written on the TensorFlow backend only (this run: "
            f"{keras.backend.backend()}, input pipeline: {executor}); log.csv has every epoch."
        )
    else:
        from keras_hourglass.callbacks import TensorBoardImages

        callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard")))
        callbacks.append(
            TensorBoardImages(
                os.path.join(run_dir, "tensorboard", "images"), data.sample(), skeleton, codec
            )
        )

    start = time.time()
    epoch, step_in_epoch = divmod(global_step, steps)
    history = {}

    def fit(initial_epoch, epochs, steps_per_epoch, start_batch):
        h = model.fit(
            data.training(start_batch),
            initial_epoch=initial_epoch,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            validation_data=validation_data,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,
        )  # the tf.data pipeline shuffles, deterministically
        for key, values in h.history.items():
            history.setdefault(key, []).extend(values)

    if step_in_epoch and epoch < config.epochs:
        # Finish the interrupted epoch with the batches it had left, then go on.
        fit(epoch, epoch + 1, steps - step_in_epoch, global_step)
        epoch += 1
    if epoch < config.epochs and budget.stopped_at is None:
        fit(epoch, config.epochs, steps, epoch * steps)
    elapsed = time.time() - start
    if budget.stopped_at is not None:
        print(
            f"\nThe --max-minutes budget ({config.max_minutes:g} min) was spent after "
            f"{budget.stopped_at / 60:.1f} min at global step {backup.global_step}: stopped "
            "cleanly; running the same command again resumes from there."
        )

    monitored = history.get(monitor, [])
    summary = {
        "run_dir": run_dir,
        "best_model": os.path.join(run_dir, "best.keras"),
        "last_model": os.path.join(run_dir, "last.keras"),
        "monitor": monitor,
        "best": round(float(best.best), 2) if monitored or state else None,
        "epochs": config.epochs,
        "global_step": backup.global_step,
        "train_seconds_this_session": round(elapsed, 1),
        "stopped_by_budget": budget.stopped_at is not None,
        "input_pipeline": executor,
        "weights_sha256": distributed.weights_digest(model),
    }
    if chief:
        with open(os.path.join(run_dir, ".summary.json.tmp"), "w") as f:
            json.dump(summary, f, indent=2)
        os.replace(
            os.path.join(run_dir, ".summary.json.tmp"), os.path.join(run_dir, "summary.json")
        )
    else:
        shutil.rmtree(out_dir, ignore_errors=True)
    print(
        f"\nDone in {elapsed / 60:.1f} min. Best {monitor}: {summary['best']}\n"
        f"Best model: {summary['best_model']}\nLogs: {run_dir}/log.csv, {run_dir}/tensorboard\n"
        f"Weights SHA-256: {summary['weights_sha256']}"
        + (f" (process {process_id} of {num_processes})" if shard else "")
    )
    return summary
