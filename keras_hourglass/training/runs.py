"""A training run's folder and its resumable fit.

`RunFolder` owns `runs/<name>/`: the lock that keeps a second training out, the temporaries a
killed write left, `config.json` (and the check that a resumed run asks for the same settings),
`log.csv`, the backups and `summary.json`. `resumable_fit` runs `model.fit` from the global step
a backup reached: it finishes the interrupted epoch with the batches it had left, then goes on.
"""

import csv
import dataclasses
import fcntl
import json
import logging
import os
import shutil
import socket
import tempfile
import time

from keras_hourglass import files
from keras_hourglass.training.callbacks import latest_backup

# Settings a resumed run may change: how long it goes on, what it is called, and what does not
# change its numbers (the numpy executor's thread count, the image size limit).
RESUMABLE_CHANGES = ("epochs", "name", "max_minutes", "workers", "max_image_pixels")


log = logging.getLogger(__name__)


class RunError(ValueError):
    """A run folder that cannot be used as asked (in use, other settings)."""


class RunLock:
    """An exclusive lock on a run folder (`<run>/.lock`, flock), held for the process' life: a
    second training with the same --name stops with a message naming the holder. The kernel
    drops the lock when the holder dies, SIGKILL included, so a killed run resumes at once."""

    def __init__(self, run_dir):
        self.path = os.path.join(run_dir, ".lock")
        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise RunError(
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
    removed = []
    for folder in (run_dir, os.path.join(run_dir, "backup")):
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            if files.is_temporary(name) or name.endswith(".tmp"):
                path = os.path.join(folder, name)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
                removed.append(path)
    return removed


class RunFolder:
    """`runs_dir/name/` of one training run.

    The chief process (process 0; the only one of a single-process run) locks the folder,
    removes stale temporaries and writes config.json and summary.json; every other process of
    a multi-process run writes what callbacks write into a scratch folder of its own, removed
    by `finish`.

    Attributes:
        path: the run folder; out: where this process' callbacks write (the run folder for the
        chief).
    """

    def __init__(self, runs_dir, name, chief=True):
        self.path = os.path.join(os.path.expanduser(runs_dir), name)
        self.chief = chief
        os.makedirs(self.path, exist_ok=True)
        self.lock = None
        if chief:
            self.lock = RunLock(self.path)  # held until the process ends
            stale = remove_stale_temporaries(self.path)
            if stale:
                log.info(
                    f"Removed {len(stale)} temporary file(s) a killed write left in {self.path}"
                )
            self.out = self.path
        else:
            self.out = tempfile.mkdtemp(prefix="hourglass-process-")

    def file(self, name):
        """Where this process writes `name` (the run folder's file for the chief)."""
        return os.path.join(self.out, name)

    @property
    def backup_dir(self):
        return os.path.join(self.path, "backup")

    def latest_backup(self):
        """(model path, state) of the newest complete backup, or None for a new run."""
        return latest_backup(self.backup_dir)

    def save_config(self, config, resuming):
        """Writes config.json; a resumed run must ask for the saved settings (but those in
        `RESUMABLE_CHANGES`), else `RunError` names what differs."""
        path = os.path.join(self.path, "config.json")
        values = dataclasses.asdict(config)
        if resuming and os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                saved = json.load(f)
            different = {
                k: (saved.get(k), v)
                for k, v in values.items()
                if k not in RESUMABLE_CHANGES and saved.get(k, v) != v
            }
            if different:
                raise RunError(
                    f"run {self.path} exists with other settings {different} (saved, asked); "
                    "resume it with the same settings or choose another --name"
                )
        if self.chief:
            files.write_json(path, values)

    def truncate_log(self, epochs_done):
        """Keeps the CSV log's rows of the epochs a resumed run will not repeat (a kill between
        the log's write and the backup's must not leave a duplicate row)."""
        path = os.path.join(self.path, "log.csv")
        if not (self.chief and os.path.isfile(path)):
            return
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            return
        kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) < epochs_done]
        with files.atomic_write(path, newline="") as f:
            csv.writer(f).writerows(kept)

    def finish(self, summary):
        """Writes summary.json (chief) or removes this process' scratch folder."""
        if self.chief:
            files.write_json(os.path.join(self.path, "summary.json"), summary)
        else:
            shutil.rmtree(self.out, ignore_errors=True)


def resumable_fit(model, batches, steps, epochs, global_step, callbacks, verbose=1, stopped=None):
    """`model.fit` for `epochs` epochs of `steps` batches from global step `global_step` on.

    Args:
        model: a compiled model.
        batches: `start_batch -> the training batches from that global batch on`.
        steps, epochs: batches per epoch, epochs in all.
        global_step: where the run is (0 for a new one, a backup's step for a resumed one): an
            interrupted epoch is finished first with the batches it had left, as an
            uninterrupted run would have trained on them.
        callbacks, verbose: for `fit`.
        stopped: `() -> bool`, whether a callback ended training early (a time budget).

    Returns:
        the history of every `fit` call, one dict of lists.
    """
    history = {}
    epoch, step_in_epoch = divmod(global_step, steps)

    def fit(initial_epoch, last_epoch, steps_per_epoch, start_batch):
        h = model.fit(
            batches(start_batch),
            initial_epoch=initial_epoch,
            epochs=last_epoch,
            steps_per_epoch=steps_per_epoch,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the input pipelines shuffle, deterministically
        )
        for key, values in h.history.items():
            history.setdefault(key, []).extend(values)

    if step_in_epoch and epoch < epochs:
        fit(epoch, epoch + 1, steps - step_in_epoch, global_step)
        epoch += 1
    if epoch < epochs and not (stopped and stopped()):
        fit(epoch, epochs, steps, epoch * steps)
    return history
