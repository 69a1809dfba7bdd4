"""Train a stacked hourglass with `model.fit`, as the paper does, resumably.

    python train/train.py                                   # the demo (synthetic data, ~5 min on 2 CPU cores)
    python train/train.py --dataset custom --data-dir ~/data/hands       # your own keypoints
    python train/train.py --dataset lspet --data-dir ~/data/lspet --skip-bad --stacks 2 --filters 64
    python train/train.py --dataset mpii --data-dir ~/data/mpii   # the paper's recipe
    python train/train.py --config run.yaml --batch-size 12       # flags override the file

Defaults: with --dataset synthetic the small demo (2 stacks, 64 features, 64x64 input, RMSprop
1e-3); with a real dataset the paper's recipe (8 stacks, 256 features, depth 4, 256x256 input,
64x64 heatmaps, sigma 1, RMSprop 2.5e-4, batch 6 as the reference code, MSE on every stack,
ReduceLROnPlateau(factor=0.2)). A run folder runs/<name>/ gets config.json (the resolved config),
best.keras, last.keras, log.csv, TensorBoard logs and backups; running the same command again
resumes a killed run at the epoch and step it reached.
"""

import argparse
import dataclasses
import os
import sys

from keras_hourglass.cli import add_logging, configure_logging, ready
from keras_hourglass.config import (
    ConfigError,
    TrainConfig,
    load_config_file,
    make_config,
    setting_help,
)
from keras_hourglass.quiet import progress_verbosity


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config",
        help="a YAML or JSON file of settings (the names below with underscores); flags override it",
    )
    # One flag per setting of the table (keras_hourglass.training.loop.TrainConfig): its help, default,
    # demo value and choices are the table's.
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        if isinstance(field.default, bool):
            parser.add_argument(flag, action="store_true", default=None, help=setting_help(field))
            continue
        parser.add_argument(
            flag,
            type=type(field.default),
            default=None,
            choices=field.metadata["choices"],
            help=setting_help(field),
        )
    parser.add_argument(
        "--logical-cpus",
        type=int,
        default=0,
        help="split the CPU into this many logical devices (to try MirroredStrategy without GPUs)",
    )
    cluster = parser.add_argument_group(
        "several processes or machines (JAX backend; every process runs the same command with "
        "its own --process-id; or set KERAS_DISTRIBUTION_JOB_ADDRESSES, "
        "KERAS_DISTRIBUTION_NUM_PROCESSES and KERAS_DISTRIBUTION_PROCESS_ID)"
    )
    cluster.add_argument(
        "--coordinator",
        default=None,
        help="host:port of process 0, which every process connects to",
    )
    cluster.add_argument(
        "--num-processes",
        type=int,
        default=None,
        help="number of processes in the job (default: 1)",
    )
    cluster.add_argument(
        "--process-id",
        type=int,
        default=None,
        help="this process' number, 0 .. num-processes - 1; process 0 writes "
        "the run folder (default: 0)",
    )
    parser.add_argument(
        "--verbose",
        type=int,
        default=None,
        choices=[0, 1, 2],
        help="Keras fit verbosity (default: 1, a progress bar, on a terminal; 2, a line per "
        "epoch, when the output is redirected; 0 with -q)",
    )
    add_logging(parser)
    args = parser.parse_args(argv)
    configure_logging(args.quiet, args.debug)
    try:
        config = resolve_config(args)
    except ConfigError as error:
        parser.error(str(error))
    return config, args


def resolve_config(args):
    """Config file, then flags over it; `make_config` adds the demo's or the paper's defaults."""
    values = load_config_file(args.config) if args.config else {}
    for field in dataclasses.fields(TrainConfig):
        flag_value = getattr(args, field.name)
        if flag_value is not None:
            values[field.name] = flag_value
    return make_config(values)


def main(argv=None):
    config, args = parse_args(argv)
    ready()
    from keras_hourglass.distributed import DistributedConfigError, settings_from

    try:
        cluster = settings_from(args.coordinator, args.num_processes, args.process_id)
    except DistributedConfigError as error:
        raise SystemExit(f"error: {error}") from None
    from keras_hourglass.training.loop import train

    try:
        verbose = progress_verbosity() if args.verbose is None else args.verbose
        train(config, verbose, args.logical_cpus, cluster)
    except ConfigError as error:
        raise SystemExit(f"error: {error}") from None
    except OSError as error:
        # A full disk or a failing file system: say so and exit at once (input threads and
        # TensorFlow's runtime could otherwise keep the process from ending). The last complete
        # backup is untouched: the same command resumes from it.
        import errno

        what = {
            errno.ENOSPC: "no space left on the device",
            errno.EDQUOT: "the disk quota is exceeded",
            errno.EFBIG: "a file grew larger than allowed",
        }.get(error.errno, error.strerror)
        print(
            f"error: writing {error.filename or 'a file'} failed: {what} ({error}). The last "
            f"complete backup in {os.path.join(config.runs_dir, config.name, 'backup')} is "
            "intact: free space and run the same command again to resume.",
            file=sys.stderr,
            flush=True,
        )
        sys.stdout.flush()
        os._exit(1)
