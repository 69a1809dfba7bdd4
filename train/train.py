"""Train a stacked hourglass with `model.fit`.

With no arguments it trains the demo: a small hourglass (2 stacks, 64 features, 64x64 input)
on the embedded synthetic dataset, for a few minutes on 2 CPU cores, keeping the best checkpoint
by validation PCK@0.2 in runs/<name>/best.keras.

    python train/train.py                      # the demo
    python train/train.py --stacks 8 --filters 256 --input-size 256 --epochs 100   # the paper's model
"""

import argparse
import dataclasses
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclasses.dataclass
class TrainConfig:
    name: str = ""
    runs_dir: str = "runs"
    dataset: str = "synthetic"
    stacks: int = 2
    filters: int = 64
    depth: int = 4
    input_size: int = 64
    sigma: float = 1.0
    batch_size: int = 16
    epochs: int = 12
    steps_per_epoch: int = 100
    learning_rate: float = 1e-3
    train_samples: int = 20000
    val_samples: int = 256
    mixed_precision: str = "float32"
    seed: int = 0


HELP = {
    "name": "run name; files go to <runs-dir>/<name>/ (default: hourglass-<date>-<time>)",
    "runs_dir": "folder holding the runs",
    "dataset": "training data; 'synthetic' is the embedded default (no download)",
    "stacks": "number of hourglass stacks (the paper: 8)",
    "filters": "features inside the hourglasses (the paper: 256)",
    "depth": "down-samplings per hourglass (the paper: 4)",
    "input_size": "side of the square input crop in pixels; heatmaps are a quarter (the paper: 256)",
    "sigma": "Gaussian sigma of the targets in heatmap pixels (the paper: 1)",
    "batch_size": "batch size",
    "epochs": "number of epochs",
    "steps_per_epoch": "training batches per epoch",
    "learning_rate": "RMSprop learning rate (the paper: 2.5e-4; the short demo uses 1e-3)",
    "train_samples": "distinct synthetic training figures",
    "val_samples": "held-out synthetic figures for validation (another seed)",
    "mixed_precision": "Keras dtype policy: float32, mixed_float16 or mixed_bfloat16",
    "seed": "random seed (weights, data order, synthetic figures)",
}


def parse_args(argv=None):
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        default = getattr(defaults, field.name)
        kwargs = {"type": type(default), "default": default, "help": f"{HELP[field.name]} (default: {default!r})"}
        if field.name == "dataset":
            kwargs["choices"] = ["synthetic"]
        if field.name == "mixed_precision":
            kwargs["choices"] = ["float32", "mixed_float16", "mixed_bfloat16"]
        parser.add_argument(flag, **kwargs)
    parser.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2], help="Keras fit verbosity (default: 1, a progress bar)")
    args = parser.parse_args(argv)
    verbose = args.verbose
    del args.verbose
    config = TrainConfig(**vars(args))
    for name in ("stacks", "filters", "depth", "input_size", "batch_size", "epochs", "steps_per_epoch", "train_samples", "val_samples"):
        if getattr(config, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(config, name)}")
    if config.learning_rate <= 0 or config.sigma <= 0:
        parser.error("--learning-rate and --sigma must be positive")
    if not config.name:
        config.name = time.strftime("hourglass-%Y%m%d-%H%M%S")
    return config, verbose


def train(config, verbose=1):
    import keras

    import keras_hourglass as kh
    from keras_hourglass.callbacks import AtomicModelCheckpoint
    from keras_hourglass.pck_metric import HeatmapPCK

    run_dir = os.path.join(config.runs_dir, config.name)
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(dataclasses.asdict(config), f, indent=2)

    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_dtype_policy(config.mixed_precision)
    skeleton = kh.MPII
    heatmap_size = config.input_size // 4
    codec = kh.HeatmapCodec(config.input_size, heatmap_size, config.sigma)
    model = kh.build_hourglass(
        num_stacks=config.stacks,
        num_keypoints=skeleton.num_joints,
        filters=config.filters,
        depth=config.depth,
        input_shape=(config.input_size, config.input_size, 3),
    )
    last = model.output_names[-1]
    torso = (skeleton.index("left_shoulder"), skeleton.index("right_hip"))
    kh.compile_hourglass(
        model,
        learning_rate=config.learning_rate,
        metrics={last: [HeatmapPCK(codec, torso, 0.2, name="pck")]},
    )
    print(
        f"Model: {config.stacks} stacks, {config.filters} features, depth {config.depth}, "
        f"{config.input_size}x{config.input_size} -> {heatmap_size}x{heatmap_size}x"
        f"{skeleton.num_joints}, {model.count_params():,} parameters"
    )

    train_ds = kh.synthetic_dataset(
        config.train_samples, codec, config.batch_size, config.stacks, seed=config.seed, repeat=True
    )
    val_ds = kh.synthetic_dataset(
        config.val_samples, codec, config.batch_size, config.stacks, seed=config.seed + 1_000_003,
        shuffle=False,
    )
    # Keras prefixes metric names with the output name only when the model has several outputs.
    monitor = f"val_{last}_pck" if config.stacks > 1 else "val_pck"
    callbacks = [
        AtomicModelCheckpoint(
            os.path.join(run_dir, "best.keras"), monitor=monitor, mode="max", save_best_only=True,
            verbose=verbose,
        ),
        AtomicModelCheckpoint(os.path.join(run_dir, "last.keras"), verbose=0),
        keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode="max", factor=0.2, patience=3, verbose=verbose),
        keras.callbacks.CSVLogger(os.path.join(run_dir, "log.csv")),
    ]
    start = time.time()
    history = model.fit(
        train_ds,
        epochs=config.epochs,
        steps_per_epoch=config.steps_per_epoch,
        validation_data=val_ds,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # the tf.data pipeline shuffles (deterministically from the seed)
    )
    elapsed = time.time() - start
    best = max(history.history[monitor])
    summary = {
        "run_dir": run_dir,
        "best_model": os.path.join(run_dir, "best.keras"),
        "last_model": os.path.join(run_dir, "last.keras"),
        "best_val_pck@0.2": round(float(best), 2),
        "epochs": config.epochs,
        "train_seconds": round(elapsed, 1),
    }
    tmp = os.path.join(run_dir, ".summary.json.tmp")
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=2)
    os.replace(tmp, os.path.join(run_dir, "summary.json"))
    print(
        f"\nDone in {elapsed / 60:.1f} min. Best validation PCK@0.2 (heatmap-decoded): {best:.2f}%\n"
        f"Best model: {summary['best_model']}\nLogs: {run_dir}/log.csv"
    )
    return summary


def main(argv=None):
    config, verbose = parse_args(argv)
    train(config, verbose)


if __name__ == "__main__":
    sys.exit(main())
