"""Shared helpers for the GPU benchmarks (JAX backend; also runnable on CPU with tiny configs)."""

import json
import os
import statistics
import time


def device_description():
    import keras

    if keras.backend.backend() == "jax":
        import jax

        d = jax.devices()[0]
        return f"{d.platform}:{getattr(d, 'device_kind', d)} (JAX {jax.__version__}, Keras {keras.__version__})"
    return f"{keras.backend.backend()} backend, Keras {keras.__version__}"


def peak_memory_gib():
    """Peak device memory of this process so far (JAX on GPU), or None."""
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else peak / 2**30


def block(value):
    """Waits for device work behind `value` (a pytree of arrays)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        jax.block_until_ready(value)
    return value


def time_windows(step, windows, steps_per_window):
    """Runs `step` in windows and returns the per-window seconds per step."""
    times = []
    for _ in range(windows):
        start = time.perf_counter()
        out = None
        for _ in range(steps_per_window):
            out = step()
        block(out)
        times.append((time.perf_counter() - start) / steps_per_window)
    return times


def median(values):
    return statistics.median(values)


def write_results(name, rows):
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, f"{name}.json"), "w") as f:
            json.dump(rows, f, indent=2)
