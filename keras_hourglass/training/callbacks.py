"""The callbacks of a training run: checkpoints and backups written atomically (a kill mid-write
never leaves a broken file), a plateau schedule that survives resuming, the per-epoch validation
with the dataset's own protocol, a time budget, and TensorBoard pictures."""

import json
import logging
import math
import os
import shutil
import time

import keras
import numpy as np

from keras_hourglass import files
from keras_hourglass.datasets import ground_truth_from_records
from keras_hourglass.deployment.inference import crop_predictor, predict_people
from keras_hourglass.drawing import draw_pose
from keras_hourglass.evaluation.protocols import evaluate

log = logging.getLogger(__name__)


def atomic_save_model(model, path):
    """Saves `model` to the `.keras` file `path`, atomically."""
    with files.atomic_path(path) as tmp:
        model.save(tmp)


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
                log.info(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5g} to "
                    f"{float(value):.5g}, saving {self.filepath}"
                )
            self.best = float(value)
        atomic_save_model(self.model, self.filepath)

    def get_state(self):
        return {"best": self.best}

    def set_state(self, state):
        self.best = float(state["best"])


class ResumableCheckpoint(keras.callbacks.Callback):
    """Backs a run up every `every_steps` batches and at each epoch end, so that a run killed at
    any point (SIGKILL included) resumes at the epoch and step it reached.

    Each backup is a folder `backup_dir/step-<global step>/` holding the full `.keras` model
    (weights and optimizer state, learning rate included) and `state.json` (epoch, step in the
    epoch, global step, and the states of the callbacks given in `stateful`); `backup_dir/latest`
    names the newest complete one and is replaced atomically, after the folder is complete. Older
    backups are deleted only after that, so there is always a complete one to resume from.

    Args:
        backup_dir: the folder of backups.
        steps_per_epoch: batches per epoch (to place the global step in an epoch).
        every_steps: also back up every this many batches (0: only at epoch ends).
        initial_step: the global step the run (or resumed run) starts at.
        stateful: {name: callback} whose `get_state()`/`set_state()` are saved.
    """

    def __init__(self, backup_dir, steps_per_epoch, every_steps=0, initial_step=0, stateful=None):
        super().__init__()
        self.backup_dir = backup_dir
        self.steps_per_epoch = int(steps_per_epoch)
        self.every_steps = int(every_steps)
        self.global_step = int(initial_step)
        self.stateful = stateful or {}

    def on_train_batch_end(self, batch, logs=None):
        self.global_step += 1
        if self.every_steps and self.global_step % self.every_steps == 0:
            if self.global_step % self.steps_per_epoch:  # epoch ends are saved below
                self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.save()

    def save(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"step-{self.global_step:09d}"
        target = os.path.join(self.backup_dir, name)
        staging = files.temporary_folder(dir=self.backup_dir)
        try:
            self.model.save(os.path.join(staging, "model.keras"))
            state = {
                "global_step": self.global_step,
                "epoch": self.global_step // self.steps_per_epoch,
                "step_in_epoch": self.global_step % self.steps_per_epoch,
                "callbacks": {k: cb.get_state() for k, cb in self.stateful.items()},
            }
            files.write_json(os.path.join(staging, "state.json"), state)
            if os.path.exists(target):
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            if os.path.exists(staging):
                shutil.rmtree(staging)
        files.write_text(os.path.join(self.backup_dir, "latest"), name)
        for other in os.listdir(self.backup_dir):
            if other.startswith("step-") and other != name:
                shutil.rmtree(os.path.join(self.backup_dir, other), ignore_errors=True)


def latest_backup(backup_dir):
    """(model path, state dict) of the newest complete backup, or None."""
    pointer = os.path.join(backup_dir, "latest")
    if not os.path.isfile(pointer):
        return None
    with open(pointer) as f:
        name = f.read().strip()
    folder = os.path.join(backup_dir, name)
    with open(os.path.join(folder, "state.json")) as f:
        state = json.load(f)
    return os.path.join(folder, "model.keras"), state


class ResumableReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
    """`ReduceLROnPlateau` whose progress (best value, patience counter, cooldown) is saved and
    restored with the run, so a resumed run follows the same learning-rate schedule."""

    def get_state(self):
        best = None if self.best is None else float(self.best)
        return {
            "best": best,
            "wait": int(self.wait or 0),
            "cooldown_counter": int(self.cooldown_counter or 0),
        }

    def set_state(self, state):
        self.best, self.wait = state["best"], state["wait"]
        self.cooldown_counter = state["cooldown_counter"]

    def restore(self, state):
        """Takes a backup's `get_state()`; applied at the next `fit`'s start (Keras resets the
        plateau state there)."""
        self._restored = state

    _restored = None
    _started = False

    def on_train_begin(self, logs=None):
        # Keras resets the plateau state at every fit(); keep it across the fits of one run
        # (a resumed run fits the rest of its interrupted epoch first) and across resumes.
        keep = (
            self._restored
            if self._restored is not None
            else (self.get_state() if self._started else None)
        )
        super().on_train_begin(logs)
        if keep is not None:
            self.set_state(keep)
        self._restored, self._started = None, True


class PoseValidation(keras.callbacks.Callback):
    """At each epoch end, scores the validation people with the dataset's own protocol (PCKh
    for MPII, PCK@0.2 of the torso otherwise) through the one inference path
    (`inference.predict_people`: the last stack's keypoints, decoded with the model's codec and
    mapped back to the original images), and adds it to the logs as `val_pckh` / `val_pck` (so
    the progress bar, the CSV log, the best checkpoint and `ReduceLROnPlateau` all see it),
    whatever the number of stacks.

    Flip test is off here (half the cost); `eval/evaluate.py` reports the full protocol.

    Args:
        records: the validation people (`datasets.Records`).
        batch_size: crops per network call.
        normalizer: the PCK normaliser's form when it is not the skeleton's (the synthetic
            figures' torso).
        executor, workers: the input executor that crops them.
    """

    def __init__(self, records, batch_size=16, normalizer=None, executor=None, workers=None):
        super().__init__()
        self.records, self.batch_size = records, batch_size
        self.executor, self.workers = executor, workers
        self.gt = ground_truth_from_records(records, normalizer=normalizer)
        name, self.threshold = self.gt.metric
        self.name = f"val_{name.lower()}"
        self.column = f"{name}@{self.threshold:g}"  # the protocol's own threshold

    def on_epoch_end(self, epoch, logs=None):
        predictor = crop_predictor(self.model, flip_test=False)
        preds, _ = predict_people(
            predictor, self.records, self.batch_size, self.executor, self.workers
        )
        report = evaluate(preds, self.gt)
        value = float(report.summary.set_index("group").loc["Mean", self.column])
        if logs is not None:
            logs[self.name] = value


class TimeBudget(keras.callbacks.Callback):
    """Ends training cleanly once `minutes` have passed since `start` (a `time.time()`): the
    current epoch stops after its batch, validation, checkpoints and backups run as at any epoch
    end, so the best checkpoint and a resumable backup are written. Adds `minutes` (wall clock
    since `start`, i.e. since this process began training) to each epoch's logs, so the CSV log
    shows the curve against time. `minutes=0`: no budget, the clock only."""

    def __init__(self, minutes, start):
        super().__init__()
        self.seconds, self.start = 60.0 * minutes, start
        self.stopped_at = None

    def on_train_batch_end(self, batch, logs=None):
        if self.seconds > 0 and time.time() - self.start >= self.seconds:
            self.model.stop_training = True
            if self.stopped_at is None:
                self.stopped_at = time.time() - self.start

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["minutes"] = round((time.time() - self.start) / 60.0, 2)


class CosineSchedule(keras.callbacks.Callback):
    """Cosine decay of the learning rate from its starting value to 0 over the run: over the
    wall-clock budget when there is one (`minutes` > 0: progress = time since `start` / budget,
    so the rate reaches 0 when `TimeBudget` stops the run, validation time included), else
    over `total_steps` batches. Unlike `ReduceLROnPlateau`, it cannot spend the end of a
    budget at a collapsed rate, nor stop early.

    The rate is set before a batch whenever it has moved by more than `tolerance` (relative)
    since it was last set, so a run sets it a few hundred times; on JAX the trainer's state is
    synced first (its step function holds the optimizer's variables between epochs).

    Args:
        base_rate: the starting learning rate.
        minutes, start: the budget and its clock (as `TimeBudget`'s).
        total_steps: the run's batches, when `minutes` is 0.
        initial_step: the global step a resumed run starts at (step schedules only; a resumed
            budget run starts a new budget, as `TimeBudget` does).
    """

    def __init__(
        self, base_rate, minutes=0.0, start=None, total_steps=0, initial_step=0, tolerance=0.02
    ):
        super().__init__()
        if minutes <= 0 and total_steps <= 0:
            raise ValueError("CosineSchedule needs a budget (minutes > 0) or total_steps > 0")
        self.base_rate = float(base_rate)
        self.seconds = 60.0 * minutes
        self.start = time.time() if start is None else start
        self.total_steps, self.step = total_steps, initial_step
        self.tolerance = tolerance
        self._set = None

    def progress(self):
        if self.seconds > 0:
            fraction = (time.time() - self.start) / self.seconds
        else:
            fraction = self.step / self.total_steps
        return min(max(fraction, 0.0), 1.0)

    def rate(self):
        return self.base_rate * 0.5 * (1.0 + math.cos(math.pi * self.progress()))

    def on_train_batch_begin(self, batch, logs=None):
        rate = self.rate()
        if self._set is not None and abs(rate - self._set) <= self.tolerance * self._set:
            return
        if keras.backend.backend() == "jax" and hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()
        self.model.optimizer.learning_rate = rate
        self._set = rate

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(
                keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
            )


class TensorBoardImages(keras.callbacks.Callback):
    """Writes a few validation crops with the predicted skeleton drawn, and the last stack's
    heatmaps (maximum over joints), to TensorBoard at each epoch end (TensorFlow backend).

    `batch`: predict in batches of this many crops (zeros added), the validation's own batch
    size, so the predictor compiled for validation is used rather than a second compilation for
    a smaller batch (5 s of every run's first epoch on 2 cores for a tiny model)."""

    def __init__(self, log_dir, images, max_images=4, batch=None):
        super().__init__()
        self.log_dir = log_dir
        self.images = np.asarray(images)[:max_images].astype("float32")
        self.batch = max(int(batch or 0), len(self.images))

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf  # TensorBoard's summaries: this callback is for that backend

        predictor = crop_predictor(self.model, flip_test=False)
        count = len(self.images)
        crops = np.pad(self.images, [(0, self.batch - count), (0, 0), (0, 0), (0, 0)])
        keypoints, scores, heatmaps = (
            out[:count] for out in predictor(crops, return_heatmaps=True)
        )
        drawn = np.stack(
            [
                np.asarray(draw_pose(image, kp, predictor.skeleton, scores=sc, threshold=0.1))
                for image, kp, sc in zip(self.images, keypoints, scores)
            ]
        )
        peaks = np.clip(np.asarray(heatmaps).max(axis=-1, keepdims=True), 0.0, 1.0)
        writer = tf.summary.create_file_writer(self.log_dir)
        with writer.as_default():
            tf.summary.image("predictions", drawn, step=epoch, max_outputs=len(drawn))
            tf.summary.image("heatmaps", peaks, step=epoch, max_outputs=len(drawn))
        writer.close()
