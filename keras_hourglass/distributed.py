"""Training on several processes or machines with Keras 3's distribution API (JAX backend).

Every process runs the same script with the same settings; they meet at the coordinator
(`host:port` of process 0), each builds the same global `tf.data` pipeline and keeps its own
slice of every global batch (`shard`), and `keras.distribution.DataParallel` makes the weights
a replicated global array and the gradient an all-reduce over all processes' devices.

Why not TensorFlow's `MultiWorkerMirroredStrategy`: Keras 3's `fit` under it fails in TF 2.21
/ Keras 3.15 ("Attempt to convert a value (PerReplica...)", keras-team/keras#20585).

Why the pipeline shards itself instead of Keras' `auto_shard_dataset`: Keras reads the batch
size of a dataset from its last `batch` op and gives up when a `map` follows it (ours shapes the
batch after batching), and the NumPy executor is no `tf.data.Dataset` at all; so
`DataParallel(auto_shard_dataset=False)` is used and each process feeds its local part
(`shard_of`, used by both executors), as `jax.make_array_from_process_local_data` expects.
"""

import hashlib
import os

import keras
import numpy as np

ENV = {
    "coordinator": "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "num_processes": "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "process_id": "KERAS_DISTRIBUTION_PROCESS_ID",
}


class DistributedConfigError(ValueError):
    pass


def settings_from(coordinator=None, num_processes=None, process_id=None, environ=None):
    """(coordinator, num_processes, process_id) from the arguments, else Keras' environment
    variables, else a single process: ("", 1, 0). Checks that they make sense together."""
    environ = os.environ if environ is None else environ
    coordinator = coordinator or environ.get(ENV["coordinator"], "")
    try:
        if num_processes is None:
            num_processes = int(environ.get(ENV["num_processes"], "1"))
        if process_id is None:
            process_id = int(environ.get(ENV["process_id"], "0"))
    except ValueError as error:
        raise DistributedConfigError(
            f"{ENV['num_processes']} and {ENV['process_id']} must be integers: {error}"
        ) from None
    if num_processes < 1:
        raise DistributedConfigError(f"--num-processes must be at least 1, got {num_processes}")
    if not 0 <= process_id < num_processes:
        raise DistributedConfigError(
            f"--process-id must be in 0..{num_processes - 1} for --num-processes {num_processes}, "
            f"got {process_id}"
        )
    if num_processes > 1:
        address = coordinator.split(",")[0]
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise DistributedConfigError(
                f"--coordinator must be host:port of process 0 (e.g. 10.0.0.1:1234) when "
                f"--num-processes is {num_processes}, got {coordinator!r}"
            )
    return coordinator, num_processes, process_id


def shard_of(batch_size, shard):
    """(num_shards, index) of a `shard` = (number of processes, this process' id) after checking
    that it splits `batch_size` evenly; (1, 0) for none. Process `index` keeps the elements
    index, index + num_shards, ... of every global batch."""
    if not shard or shard[0] == 1:
        return 1, 0
    num_shards, index = (int(v) for v in shard)
    if batch_size % num_shards:
        raise ValueError(
            f"batch_size {batch_size} does not divide over {num_shards} processes; "
            f"use a multiple of {num_shards}"
        )
    if not 0 <= index < num_shards:
        raise ValueError(f"shard index {index} is not in 0..{num_shards - 1}")
    return num_shards, index


def initialize(coordinator, num_processes, process_id):
    """Joins the cluster and sets a data-parallel distribution over every device of every
    process. Call it before anything else touches a JAX device. No-op for one process."""
    if num_processes == 1:
        return
    if keras.backend.backend() != "jax":
        raise DistributedConfigError(
            "training on several processes uses Keras' distribution API, which needs the JAX "
            f"backend: run with KERAS_BACKEND=jax (this run has {keras.backend.backend()!r})"
        )
    import jax

    # CPU devices all-reduce through gloo (no effect on GPU/TPU collectives).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize(
        job_addresses=coordinator, num_processes=num_processes, process_id=process_id
    )
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
    )


def num_devices():
    """Devices over all processes that the data-parallel distribution splits a batch over."""
    distribution = keras.distribution.distribution()
    if distribution is None:
        return 1
    return int(distribution.device_mesh.devices.size)


def local_weights(variables):
    """The values of `variables` as arrays on this process' first device.

    Under a multi-process distribution the weights are global arrays that a jitted function on
    one process cannot mix with local data; each process holds a full replica, so copying it
    out is exact and needs no communication."""
    import jax

    values = [v.value for v in variables]
    if jax.process_count() == 1:
        return values
    device = jax.local_devices()[0]
    return [jax.device_put(np.asarray(value), device) for value in values]


def weights_digest(model):
    """SHA-256 of all the model's weights in order: equal digests mean identical weights."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(np.asarray(weight.value)).tobytes())
    return digest.hexdigest()
