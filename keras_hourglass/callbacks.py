"""Callbacks that write files atomically, so a kill mid-write never leaves a broken file."""

import math
import os
import tempfile

import keras


def atomic_save_model(model, path):
    """Saves `model` to the `.keras` file `path` via a temporary file and `os.replace`."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".keras", dir=directory, prefix=".tmp-")
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class AtomicModelCheckpoint(keras.callbacks.Callback):
    """Saves the model to a `.keras` file at the end of each epoch, atomically.

    Args:
        filepath: the `.keras` file to write.
        monitor: the log to watch when `save_best_only` (e.g. "val_loss").
        mode: "min" or "max".
        save_best_only: write only when `monitor` improves.
        verbose: print a line when a file is written.
    """

    def __init__(self, filepath, monitor="val_loss", mode="min", save_best_only=False, verbose=1):
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"`mode` must be 'min' or 'max'. Received: mode={mode!r}")
        self.filepath = filepath
        self.monitor = monitor
        self.mode = mode
        self.save_best_only = save_best_only
        self.verbose = verbose
        self.best = math.inf if mode == "min" else -math.inf

    def _improved(self, value):
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None:
                raise KeyError(
                    f"AtomicModelCheckpoint monitors {self.monitor!r}, which is not in the epoch "
                    f"logs {sorted(logs)}. Pass validation data or monitor another value."
                )
            if not self._improved(float(value)):
                return
            if self.verbose:
                print(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5g} to "
                    f"{float(value):.5g}, saving {self.filepath}"
                )
            self.best = float(value)
        atomic_save_model(self.model, self.filepath)
