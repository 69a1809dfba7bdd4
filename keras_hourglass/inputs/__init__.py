"""The input pipelines: crops and heatmap targets from person records, on two executors.

    ds = pose_dataset(records, skeleton, codec, 16, training=True)                # either
    for images, heatmaps, meta in batches(pose_dataset(..., training=False)): ...  # NumPy batches

`executor` is "auto" (the default: "tf.data" when `import tensorflow` works, else "numpy"),
"tf.data" (`inputs.tf_data.make_dataset`) or "numpy" (`inputs.numpy_data.PoseSequence`, a
`keras.utils.PyDataset`). The environment variable KERAS_HOURGLASS_EXECUTOR sets the default for
every command. Both yield the batches `inputs.spec` describes; only the crop resampler differs.
Training also takes "device" (`inputs.device_data`: JAX makes the crops, augmentation and
targets on the accelerator from each person decoded once; training batches only).
Also here: the augmentation's settings and draws (`augmentation`) and the crop cache
(`cache`, sharded TFRecords).

May import: the foundation (`config`'s executor names, `distributed`'s shards, `geometry`)
and `datasets`; no model, training, poses or deployment.
"""

import concurrent.futures
import functools
import logging
import os

import numpy as np

from keras_hourglass.config import EXECUTORS, TRAIN_EXECUTORS  # one list of the choices
from keras_hourglass.inputs.numpy_data import PoseSequence

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=None)
def tensorflow_available():
    """Whether `import tensorflow` works in this process (imports it once if so)."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_executor(executor=None, training=False):
    """ "tf.data" or "numpy" (or, `training`, "device") for `executor` (None:
    $KERAS_HOURGLASS_EXECUTOR, else "auto")."""
    given = executor
    executor = executor or os.environ.get("KERAS_HOURGLASS_EXECUTOR") or "auto"
    choices = TRAIN_EXECUTORS if training else EXECUTORS
    if executor == "device" and not training:
        if not given:  # the environment's choice for training; evaluation reads on the host
            return resolve_executor("auto")
        raise ValueError(
            "the device executor makes training batches only; evaluation and prediction read "
            "with tf.data or numpy"
        )
    if executor not in choices:
        raise ValueError(f"unknown input executor {executor!r}; choose one of {list(choices)}")
    if executor == "device":
        import keras

        if keras.backend.backend() != "jax":
            raise ValueError(
                "the device executor makes the crops with JAX: run with KERAS_BACKEND=jax "
                f"(this is {keras.backend.backend()})"
            )
        return executor
    if executor == "auto":
        chosen = "tf.data" if tensorflow_available() else "numpy"
        log.debug(
            f"input pipeline: {chosen} (auto: TensorFlow {'imports' if chosen == 'tf.data' else 'does not import'})"
        )
        return chosen
    if executor == "tf.data" and not tensorflow_available():
        raise ValueError(
            "the tf.data executor needs TensorFlow, which does not import here; "
            "use the numpy executor"
        )
    return executor


def default_workers():
    """Threads for the NumPy executor: the machine's cores (at least 1)."""
    return max(
        1,
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1),
    )


def pose_dataset(
    source,
    skeleton,
    codec,
    batch_size,
    training,
    executor=None,
    workers=None,
    use_multiprocessing=False,
    **kwargs,
):
    """`tf_data.make_dataset` or `numpy_data.PoseSequence` (or, training on JAX,
    `device_data.DevicePoseSequence` over a new `PersonBank`) with the same arguments (`kwargs`:
    seed, augmentation, repeat, shuffle, with_meta, drop_remainder, start_batch, shard)."""
    executor = resolve_executor(executor, training)
    if executor == "device":
        from keras_hourglass.inputs.device_data import DevicePoseSequence, PersonBank

        bank = PersonBank.build(
            source, codec, kwargs.get("augmentation"), workers or default_workers()
        )
        return DevicePoseSequence(bank, skeleton, codec, batch_size, training, **kwargs)
    if executor == "tf.data":
        from keras_hourglass.inputs.tf_data import make_dataset  # imports TensorFlow

        return make_dataset(source, skeleton, codec, batch_size, training, **kwargs)
    return PoseSequence(
        source,
        skeleton,
        codec,
        batch_size,
        training,
        workers=workers or default_workers(),
        use_multiprocessing=use_multiprocessing,
        **kwargs,
    )


def batches(dataset):
    """Iterates a finite pipeline of either kind as tuples of NumPy arrays (dicts of arrays where
    the pipeline yields dicts); a PyDataset's batches are prepared by its worker threads."""

    def to_numpy(value):
        if isinstance(value, dict):
            return {k: to_numpy(v) for k, v in value.items()}
        return np.asarray(value)

    if isinstance(dataset, PoseSequence):
        n = len(dataset)
        workers = max(1, dataset.workers)
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(dataset.__getitem__, i) for i in range(min(n, 2 * workers))]
            for i in range(n):
                batch = futures[i].result()
                futures[i] = None
                if i + 2 * workers < n:
                    futures.append(pool.submit(dataset.__getitem__, i + 2 * workers))
                yield tuple(to_numpy(part) for part in batch)
        return
    for batch in dataset:
        yield tuple(to_numpy(part) for part in batch)
