"""Training as the paper does it, in the library: one settings table (`TrainConfig`), the data of
a run (`load_data`) and a whole resumable training run (`train`).

`train/train.py` parses flags into a `TrainConfig` and calls `train`; tests and benchmarks call
the same functions:

    from keras_hourglass.training.loop import make_config, train
    summary = train(make_config({"dataset": "lspet", "data_dir": "data/lspet", "stacks": 2}))

A run folder runs/<name>/ gets config.json (the resolved config), best.keras, last.keras,
log.csv, TensorBoard logs (TensorFlow backend) and backups; training the same config again
resumes a killed run at the epoch and step it reached (`runs.RunFolder`, `runs.resumable_fit`).
"""

import contextlib
import dataclasses
import functools
import json
import logging
import math
import os
import time

import keras

from keras_hourglass import datasets, distributed, inputs
from keras_hourglass.network.model import build_hourglass, compile_hourglass
from keras_hourglass.training.callbacks import (
    AtomicModelCheckpoint,
    CosineSchedule,
    PoseValidation,
    ResumableCheckpoint,
    ResumableReduceLROnPlateau,
    TensorBoardImages,
    TimeBudget,
)
from keras_hourglass.training.runs import RunError, RunFolder, resumable_fit

# Progress and the end summary, as logging (the commands print INFO to stdout; -q silences it;
# from Python: logging.getLogger("keras_hourglass").setLevel(...)).
log = logging.getLogger(__name__)

__all__ = [
    "DEMO",
    "ConfigError",
    "TrainConfig",
    "TrainData",
    "build_model",
    "compile_hourglass",
    "load_config_file",
    "load_data",
    "make_config",
    "setting_help",
    "train",
]


from keras_hourglass.config import (  # noqa: E402  (the settings table, re-exported here)
    DEMO,
    ConfigError,
    TrainConfig,
    augmentation_of,
    load_config_file,
    make_config,
    setting_help,
    stem_widths,
)


@dataclasses.dataclass
class TrainData:
    """The people of one run, by the dataset's `DATASETS` entry.

    Attributes:
        train, val: `datasets.Records` (each knows its skeleton).
        skeleton: the joints the model learns.
        normalizer: the PCK normaliser's form when it is not the skeleton's (synthetic data).
        augmentation: what the training pipeline gets (None: the default; False: none).
    """

    train: object
    val: object
    skeleton: object
    normalizer: tuple = None
    augmentation: object = None


def load_data(config, max_pixels=None):
    """The training and validation people of `config`'s dataset: the entry's validation split,
    or (none, or the same file as the training split) the last `val_count` people held out
    (default: the entry's `held_out`, else a tenth); `train_samples`/`val_samples` keep the
    first people of each. Every image is checked before training starts."""
    entry = datasets.get_dataset(config.dataset)
    data_dir = os.path.expanduser(config.data_dir) if config.data_dir else ""
    read = functools.partial(
        datasets.load_records,
        config.dataset,
        data_dir,
        skeleton=config.skeleton or None,
        skip_bad=config.skip_bad,
        input_size=config.input_size,
    )
    try:
        if data_dir and os.path.isfile(os.path.join(data_dir, "meta.json")):
            raise ConfigError(
                f"{config.data_dir} is a crop cache: pass the dataset folder as --data-dir "
                "(validation needs the original images) and the cache as --cache"
            )
        if config.val_annotations and not config.annotations:
            raise ConfigError("--val-annotations needs --annotations (the training people)")
        if config.annotations:
            train = read(annotations=config.annotations)
            val = read(annotations=config.val_annotations) if config.val_annotations else None
        else:
            train = read(split=entry.train_split)
            val = None
            if entry.val_split and not config.val_count:
                try:
                    val = read(split=entry.val_split)
                except datasets.MissingSplit:
                    val = None
                if val is not None and val.source == train.source:  # e.g. COCO as one .json
                    val = None
        if val is not None and val.skeleton.joint_names != train.skeleton.joint_names:
            raise ConfigError(
                f"the validation people ({val.source}) have other joints than the training "
                f"people ({train.source})"
            )
        # Before the split, so a record the image checks skip (--skip-bad) is left out as a
        # missing image is: the held-out people are the last ones present and usable.
        train = datasets.check_image_files(train, max_pixels, config.skip_bad)
        if val is not None:
            val = datasets.check_image_files(val, max_pixels, config.skip_bad)
        if val is None:
            held_out = config.val_count or entry.held_out or max(1, len(train) // 10)
            if held_out >= len(train):
                raise ConfigError(f"val_count {held_out} leaves no training people of {len(train)}")
            train, val = train.subset(None, -held_out), train.subset(-held_out, None, False)
        held_out = len(val)
        if config.train_samples:
            train = train.subset(None, config.train_samples)
        if config.val_samples:
            val = val.subset(None, config.val_samples)
    except datasets.DatasetError as error:
        raise ConfigError(str(error)) from None
    kept = f" (the first {len(val)} of {held_out})" if len(val) < held_out else ""
    log.info(f"train: {train.summary()}\nvalidation: {len(val)} people{kept}")
    return TrainData(
        train,
        val,
        train.skeleton,
        entry.normalizer,
        augmentation_of(config) if entry.augment else False,
    )


def make_strategy(config, logical_cpus=0):
    """A `MirroredStrategy` over the GPUs (or `logical_cpus` CPU devices) when asked for or,
    with "auto", when several GPUs are visible; None otherwise (and on other backends)."""
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


@contextlib.contextmanager
def onednn_bfloat16(enabled=True):
    """TensorFlow's oneDNN bfloat16 rewrite (Grappler's `auto_mixed_precision_onednn_bfloat16`)
    for the graphs first run inside: their convolutions, matrix products and the gradients of
    both are computed in bfloat16 where oneDNN has kernels, everything else and every variable
    stay float32. It acts on a graph when a `tf.function` is first run, so the training step
    made inside keeps it; the option is restored on leaving. Nothing on other backends."""
    if not enabled or keras.backend.backend() != "tensorflow":
        yield
        return
    import tensorflow as tf

    key = "auto_mixed_precision_onednn_bfloat16"
    before = tf.config.optimizer.get_experimental_options().get(key, False)
    tf.config.optimizer.set_experimental_options({key: True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({key: before})


def build_model(config, skeleton):
    """The stacked hourglass `config` asks for, compiled with the paper's recipe at its rate."""
    model = build_hourglass(
        num_stacks=config.stacks,
        filters=config.filters,
        depth=config.depth,
        input_shape=(config.input_size, config.input_size, 3),
        skeleton=skeleton,
        sigma=config.sigma,
        stem_widths=stem_widths(config),
    )
    return compile_hourglass(model, learning_rate=config.learning_rate)


def _check_resumable(model, config, path):
    shape = (model.num_stacks, model.filters, model.depth, model.image_shape[0])
    shape += (tuple(model.stem_widths),)
    want = (config.stacks, config.filters, config.depth, config.input_size)
    want += (stem_widths(config) or (64, 128, 128, config.filters),)
    if shape != want:
        raise ConfigError(
            f"the backup {path} is a model with stacks, filters, depth, input size, stem = {shape}, "
            f"but this run asks for {want}: resume with the run's own settings (its config.json) "
            "or choose another --name"
        )


def _join_processes(config, cluster, verbose):
    """(shard or None, chief, verbose) of this process in a cluster (coordinator, number of
    processes, process id); joins it (JAX's distribution API) when there are several."""
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
    if num_processes == 1:
        return None, True, verbose
    devices = distributed.num_devices()
    if config.batch_size % devices:
        raise ConfigError(
            f"batch_size {config.batch_size} does not divide over the {devices} devices of "
            f"{num_processes} processes; use a multiple of {devices}"
        )
    chief = process_id == 0
    return (num_processes, process_id), chief, verbose if chief else 0


def _callbacks(config, run, data, codec, state, steps, started, executor, workers, verbose):
    """The run's callbacks, in the order they see each epoch end, and the three whose state
    the summary reads: (callbacks, best checkpoint, backup, time budget)."""
    validation_batch = max(config.batch_size, 16)
    validation = PoseValidation(data.val, validation_batch, data.normalizer, executor, workers)
    monitor = validation.name
    best = AtomicModelCheckpoint(
        run.file("best.keras"), monitor=monitor, mode="max", save_best_only=True, verbose=verbose
    )
    plateau = ResumableReduceLROnPlateau(
        monitor=monitor, mode="max", factor=0.2, patience=config.plateau_patience, verbose=verbose
    )
    global_step = state["global_step"] if state else 0
    if state:
        best.set_state(state["callbacks"]["best"])
        plateau.restore(state["callbacks"]["plateau"])
        run.truncate_log(global_step // steps)
    backup = ResumableCheckpoint(
        os.path.join(run.out, "backup"),
        steps,
        config.backup_every,
        global_step,
        stateful={"best": best, "plateau": plateau},
    )
    budget = TimeBudget(config.max_minutes, started)
    if config.lr_schedule == "cosine":
        schedule = CosineSchedule(
            config.learning_rate,
            config.max_minutes,
            started,
            total_steps=config.epochs * steps,
            initial_step=global_step,
        )
    else:
        schedule = plateau
    callbacks = [
        validation,
        budget,
        schedule,
        best,
        AtomicModelCheckpoint(run.file("last.keras"), verbose=0),
        keras.callbacks.CSVLogger(run.file("log.csv"), append=bool(state)),
        backup,
    ]
    if keras.backend.backend() == "tensorflow":
        sample = next(
            inputs.batches(
                inputs.pose_dataset(
                    data.val.subset(None, 4), data.skeleton, codec, 4, False, executor=executor
                )
            )
        )[0]
        tensorboard = os.path.join(run.path, "tensorboard")
        callbacks.append(keras.callbacks.TensorBoard(tensorboard))
        # Its crops go through the predictor in the validation's batch size (no second compile).
        images = TensorBoardImages(
            os.path.join(tensorboard, "images"), sample, batch=min(validation_batch, len(data.val))
        )
        callbacks.append(images)
    else:
        log.info(
            f"TensorBoard logs are written on the TensorFlow backend only (this run: "
            f"{keras.backend.backend()}, input pipeline: {executor}); log.csv has every epoch."
        )
    return callbacks, best, backup, budget


def _training_batches(config, data, source, codec, executor, workers, shard):
    """start_batch -> the training pipeline from that global batch on (what `resumable_fit`
    calls after each resume); the device executor's bank is cut once, here."""
    bank = _person_bank(source, data, codec, workers) if executor == "device" else None
    settings = dict(
        training=True,
        seed=config.seed,
        augmentation=data.augmentation,
        shard=shard,
    )

    def batches(start_batch):
        if bank is not None:
            from keras_hourglass.inputs.device_data import DevicePoseSequence

            return DevicePoseSequence(
                bank, data.skeleton, codec, config.batch_size, start_batch=start_batch, **settings
            )
        return inputs.pose_dataset(
            source,
            data.skeleton,
            codec,
            config.batch_size,
            executor=executor,
            workers=workers,
            start_batch=start_batch,
            **settings,
        )

    return batches


def _person_bank(source, data, codec, workers):
    """The device executor's bank of the training people's cuts, built once, with a line of
    progress about every tenth of them."""
    from keras_hourglass.inputs.device_data import PersonBank

    workers = workers or inputs.default_workers()
    log.info(f"Cutting {len(source):,} people for the device executor ({workers} threads)...")

    def progress(done, total):
        log.info(f"  {done:,}/{total:,} people cut")

    bank = PersonBank.build(source, codec, data.augmentation or None, workers, progress)
    log.info(f"{bank}, cut in {bank.build_seconds:.1f} s")
    return bank


def _training_cache(config, data, executor, chief):
    """The crop cache folder of the training people: written on first use (process 0), else
    checked to hold exactly these people, in this order."""
    from keras_hourglass.inputs.cache import write_crop_cache

    if executor != "tf.data":
        raise ConfigError(
            "--cache is read by the tf.data pipeline: use --executor tf.data (the numpy "
            "executor decodes the images itself)"
        )
    folder = os.path.expanduser(config.cache)
    wanted = [str(r.record_id) for r in data.train]
    meta_path = os.path.join(folder, "meta.json")
    if os.path.isfile(meta_path):
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        if meta.get("record_ids") != wanted or meta.get("crop_size") != config.input_size:
            raise ConfigError(
                f"--cache {config.cache}: the cache holds other people or another crop size "
                f"({meta.get('num_records')} people at {meta.get('crop_size')} px; this run trains "
                f"{len(wanted)} at {config.input_size} px): name a new folder"
            )
        log.info(f"Training crops from the cache {folder} ({len(wanted)} people)")
        return folder
    if not chief:
        raise ConfigError(f"--cache {config.cache}: process 0 writes it; run it once first")
    log.info(f"Writing the training crops once into the cache {folder} ({len(wanted)} people)")
    write_crop_cache(
        data.train,
        folder,
        data.skeleton,
        config.input_size,
        augmentation=data.augmentation or None,
    )
    return folder


def train(
    config,
    verbose=1,
    logical_cpus=0,
    cluster=("", 1, 0),
    executor=None,
    workers=None,
    max_pixels=None,
):
    """Trains as `config` says; returns the run's summary (also written to summary.json).

    Args:
        config: a `TrainConfig` (`make_config`).
        verbose: Keras' fit verbosity.
        logical_cpus: split the CPU into this many devices (MirroredStrategy without GPUs).
        cluster: (coordinator host:port, number of processes, this process' id) for training on
            several processes (JAX); process 0 writes the run folder, the others write the
            same files to a scratch folder they delete at the end.
        executor, workers: the input pipeline (`keras_hourglass.inputs`; "auto" takes tf.data
            when TensorFlow imports); default: the config's.
        max_pixels: refuse images above this many pixels (read from their headers); default:
            the config's.
    """
    started = time.time()
    workers = workers or config.workers or None
    max_pixels = max_pixels or config.max_image_pixels or None
    try:
        executor = inputs.resolve_executor(executor or config.executor, training=True)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    config.executor = executor  # config.json records the pipeline used (its draws differ)
    log.debug(f"settings: {json.dumps(dataclasses.asdict(config), sort_keys=True)}")
    shard, chief, verbose = _join_processes(config, cluster, verbose)
    data = load_data(config, max_pixels)  # bad data stops the run before its folder is made
    source = _training_cache(config, data, executor, chief) if config.cache else data.train
    try:
        run = RunFolder(config.runs_dir, config.name, chief)
        resume = run.latest_backup()
        run.save_config(config, resuming=resume is not None)
    except RunError as error:
        raise ConfigError(str(error)) from None

    model, state, strategy = _model_to_train(config, data, run, resume, logical_cpus)
    steps = config.steps_per_epoch or math.ceil(len(data.train) / config.batch_size)
    _say_model(config, data, model, steps, strategy, shard)
    # The device executor's batches come from one bank of person cuts; validation reads with
    # the numpy executor (the bank makes training batches only).
    reader = "numpy" if executor == "device" else executor
    callbacks, best, backup, budget = _callbacks(
        config, run, data, model.codec, state, steps, started, reader, workers, verbose
    )
    batches = _training_batches(config, data, source, model.codec, executor, workers, shard)
    start = time.time()
    with onednn_bfloat16(config.onednn_bf16):
        history = resumable_fit(
            model,
            batches,
            steps,
            config.epochs,
            backup.global_step,
            callbacks,
            verbose,
            stopped=lambda: budget.stopped_at is not None,
        )
    elapsed = time.time() - start
    if budget.stopped_at is not None:
        log.info(
            f"\nThe --max-minutes budget ({config.max_minutes:g} min) was spent after "
            f"{budget.stopped_at / 60:.1f} min at global step {backup.global_step}: stopped "
            "cleanly; running the same command again resumes from there."
        )
    return _finish(
        run, config, best, backup, budget, history, state, elapsed, executor, model, shard
    )


def _start_from(model, path):
    """Sets `model`'s weights to those of the .keras model at `path` (--init-weights); a model
    of another architecture is a `ConfigError`."""
    source = keras.saving.load_model(os.path.expanduser(path), compile=False)
    shapes = [w.shape for w in model.get_weights()]
    theirs = [w.shape for w in source.get_weights()]
    if shapes != theirs:
        raise ConfigError(
            f"--init-weights {path!r}: a model of another architecture ({len(theirs)} weight "
            f"arrays; this run's has {len(shapes)}, or other shapes): give the run its settings"
        )
    model.set_weights(source.get_weights())
    log.info(f"Weights from {path}")


def _model_to_train(config, data, run, resume, logical_cpus):
    """The model, built or read back from the run's backup, under the distribution strategy:
    (model, the backup's state or None, strategy or None)."""
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_dtype_policy(config.mixed_precision)
    strategy = make_strategy(config, logical_cpus)
    with strategy.scope() if strategy else contextlib.nullcontext():
        if resume:
            model_path, state = resume
            model = keras.saving.load_model(model_path)
            _check_resumable(model, config, model_path)
            log.info(
                f"Resuming {run.path} at epoch {state['epoch'] + 1}, step "
                f"{state['step_in_epoch']} (global step {state['global_step']})"
            )
        else:
            model, state = build_model(config, data.skeleton), None
            if config.init_weights:
                _start_from(model, config.init_weights)
        model.remat = config.remat
    return model, state, strategy


def _say_model(config, data, model, steps, strategy, shard):
    log.info(
        f"Model: {config.stacks} stacks, {config.filters} features, depth {config.depth}, "
        f"{config.input_size}x{config.input_size} -> {config.input_size // 4}x"
        f"{config.input_size // 4}x{data.skeleton.num_joints}, {model.count_params():,} "
        f"parameters; {steps} steps of {config.batch_size} per epoch"
        + (f", {strategy.num_replicas_in_sync} replicas" if strategy else "")
        + (
            f", process {shard[1]} of {shard[0]} ({distributed.num_devices()} devices)"
            if shard
            else ""
        )
    )


def _finish(run, config, best, backup, budget, history, state, elapsed, executor, model, shard):
    """The run's summary, written to summary.json and said."""
    summary = {
        "run_dir": run.path,
        "best_model": os.path.join(run.path, "best.keras"),
        "last_model": os.path.join(run.path, "last.keras"),
        "monitor": best.monitor,
        "best": round(float(best.best), 2) if history.get(best.monitor) or state else None,
        "epochs": config.epochs,
        "global_step": backup.global_step,
        "train_seconds_this_session": round(elapsed, 1),
        "stopped_by_budget": budget.stopped_at is not None,
        "input_pipeline": executor,
        "weights_sha256": distributed.weights_digest(model),
    }
    run.finish(summary)
    log.info(
        f"\nDone in {elapsed / 60:.1f} min. Best {best.monitor}: {summary['best']}\n"
        f"Best model: {summary['best_model']}\nLogs: {run.path}/log.csv, {run.path}/tensorboard\n"
        f"Weights SHA-256: {summary['weights_sha256']}"
        + (f" (process {shard[1]} of {shard[0]})" if shard else "")
    )
    return summary
