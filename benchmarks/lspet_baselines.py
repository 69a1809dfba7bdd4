"""Baselines for a training run on LSPET's held-out split, next to the run's validation curve.

    python benchmarks/lspet_baselines.py --run runs/lspet-small

Reads the run's config.json (same data, split, input size), then scores on the held-out people
with the same protocol as training (PCK@0.2 of the torso, no flip test): (1) the mean pose of the
training people, in crop coordinates, placed in each validation crop; (2) the untrained model of
the run's architecture; and prints them with the run's per-epoch `val_pck` from log.csv.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True, help="a run folder of train/train.py on lsp/lspet")
    args = parser.parse_args(argv)
    import pandas as pd

    import keras_hourglass as kh
    from keras_hourglass import geometry
    from keras_hourglass.evaluation.protocols import evaluate, ground_truth_from_records
    from keras_hourglass.training import loop as training
    from keras_hourglass.training.callbacks import PoseValidation

    with open(os.path.join(args.run, "config.json")) as f:
        config = training.TrainConfig(**json.load(f))
    data = training.load_data(config)
    train_records, val_records, skeleton = data.train, data.val, data.skeleton
    size = config.input_size

    # (1) Mean pose of the training people in crop coordinates.
    crops, masks = [], []
    for r in train_records:
        a, center = geometry.crop_matrix(r.center, r.scale, size)
        crops.append(geometry.source_to_crop_points(r.keypoints, a, center, size))
        masks.append(r.annotated)
    crops, masks = np.stack(crops), np.stack(masks)
    mean_pose = (crops * masks[..., None]).sum(0) / np.maximum(masks.sum(0), 1)[:, None]
    centers = np.stack([r.center for r in val_records])
    scales = np.array([r.scale for r in val_records])
    preds = np.asarray(
        kh.crop_to_original(np.repeat(mean_pose[None], len(val_records), 0), centers, scales, size)
    )
    gt = ground_truth_from_records(val_records, skeleton)
    mean_pose_pck = float(evaluate(preds, gt).summary.set_index("group").loc["Mean", "PCK@0.2"])

    # (2) The untrained model (the run's architecture and seed).
    import keras

    keras.utils.set_random_seed(config.seed)
    model = training.build_model(config, skeleton)
    validation = PoseValidation(val_records, 32)
    validation.set_model(model)
    logs = {}
    validation.on_epoch_end(0, logs)
    untrained = logs["val_pck"]

    log = pd.read_csv(os.path.join(args.run, "log.csv"))
    with open(os.path.join(args.run, "summary.json")) as f:
        summary = json.load(f)
    print(
        f"held-out: {len(val_records)} people (the last of {len(train_records) + len(val_records)}); "
        f"PCK@0.2 of the torso, no flip test"
    )
    print(f"mean pose of the training set: {mean_pose_pck:.2f}")
    print(f"untrained model: {untrained:.2f}")
    print("epoch, val_pck, learning_rate:")
    for _, row in log.iterrows():
        print(f"  {int(row.epoch) + 1:>3}  {row.val_pck:6.2f}  {row.learning_rate:.2e}")
    print(
        f"best: {log.val_pck.max():.2f}; training time: {summary['train_seconds_this_session'] / 60:.1f} min"
    )


if __name__ == "__main__":
    sys.exit(main())
