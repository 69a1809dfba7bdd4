"""Keeps TensorFlow's start-up noise out of the commands' output.

On a machine without a GPU, `import tensorflow` and its first device query print oneDNN notices,
"Could not find cuda drivers" and a `cuInit` error through C++ logging before any setting can
silence them (TF_CPP_MIN_LOG_LEVEL does not cover the messages logged before absl is
initialised). The commands set KERAS_HOURGLASS_QUIET=1 before importing anything; the package's
`__init__` then calls `quiet_tensorflow_startup()` before Keras imports TensorFlow: it imports
TensorFlow and lists its devices with the process' standard error pointed at /dev/null, then
restores it, so everything the command itself prints (and TensorFlow's later warnings and
errors) still shows. A plain `import keras_hourglass` does nothing of the kind (no side effects
on import unless asked). Set KERAS_HOURGLASS_TF_LOGS=1 to see the start-up messages anyway.
"""

import importlib.util
import os
import sys

# Progress bars: Keras draws its bar with ANSI escapes on any POSIX system, a terminal or not, so
# a log redirected to a file fills with them. `progress_verbosity` is what every bar and
# `fit(verbose=...)` of the commands and the library takes instead.
_PROGRESS = {"quiet": False}


def set_quiet_progress(quiet):
    """-q: no progress bar at all (`cli.configure_logging` calls it)."""
    _PROGRESS["quiet"] = bool(quiet)


def progress_verbosity(stream=None):
    """Keras' verbosity for a progress bar: 0 (none) after `set_quiet_progress(True)`; 1 (the
    live bar) when `stream` (default stdout) is a terminal; else 2 (one plain line at the end,
    no escape codes)."""
    if _PROGRESS["quiet"]:
        return 0
    stream = sys.stdout if stream is None else stream
    return 1 if hasattr(stream, "isatty") and stream.isatty() else 2


def progress_bar(target, unit_name):
    """A `keras.utils.Progbar` at `progress_verbosity()`, or None when quiet."""
    verbosity = progress_verbosity()
    if not verbosity:
        return None
    import keras

    return keras.utils.Progbar(target, unit_name=unit_name, verbose=verbosity)


class TextProgress:
    """A progress line without Keras (the video loop needs no TensorFlow): `done/total unit`
    and the rate, rewritten in place on `stream` (stderr) as `update(done)` is called, at most
    ten times a second, ended by `close()`."""

    def __init__(self, total, unit_name, stream=None):
        import time

        self.total, self.unit, self.stream = total, unit_name, stream or sys.stderr
        self.start, self.shown, self.clock = time.time(), 0.0, time.time

    def update(self, done):
        now = self.clock()
        if now - self.shown < 0.1 and done != self.total:
            return
        self.shown = now
        rate = done / max(now - self.start, 1e-9)
        of = f"/{self.total}" if self.total else ""
        self.stream.write(f"\r{done}{of} {self.unit}s, {rate:.1f} {self.unit}s/s ")
        self.stream.flush()

    def close(self):
        self.stream.write("\n")
        self.stream.flush()


def text_progress(total, unit_name, stream=None):
    """A `TextProgress` on a terminal; None when quiet (-q) or when `stream` (default stderr)
    is not a terminal (a redirected log gets no escape codes and no bar)."""
    stream = sys.stderr if stream is None else stream
    if _PROGRESS["quiet"] or not (hasattr(stream, "isatty") and stream.isatty()):
        return None
    return TextProgress(total, unit_name, stream)


def quiet_tensorflow_startup():
    """Imports TensorFlow silently when KERAS_HOURGLASS_QUIET=1 and the backend is TensorFlow (or
    unset); a no-op when it is already imported, not installed, another backend is chosen, or
    KERAS_HOURGLASS_TF_LOGS=1."""
    if os.environ.get("KERAS_HOURGLASS_QUIET") != "1" or "tensorflow" in sys.modules:
        return
    if os.environ.get("KERAS_HOURGLASS_TF_LOGS") == "1":
        return
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    try:
        if importlib.util.find_spec("tensorflow") is None:
            return
    except (ImportError, ValueError):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the cuInit attempt happens here
        except Exception:  # noqa: BLE001 - a broken install shows itself at the real import
            pass
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
