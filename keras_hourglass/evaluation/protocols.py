"""Evaluation protocols (PCKh, PCK), ground truth and prediction files, and their tables.

Pure NumPy and pandas. Shapes: N people, K joints.

- MPII PCKh (the official protocol, Tompson et al.'s `eval_PCKh.m` as used for the published
  tables): head size = 0.6 x the head-box diagonal; a joint is correct when its distance to the
  truth divided by the head size is below the threshold (0.5); unannotated joints are left out;
  the report columns average left and right joints; Mean is the unweighted mean of the 14 joints
  other than pelvis and thorax. Also reported: the count-weighted Mean (HRNet, mmpose) and
  PCKh@0.1.
- PCK (LSP, FLIC, COCO, custom): normalised by the torso, the distance between the left shoulder
  and the right hip of the ground truth (Tompson et al., NIPS 2014, as the stacked hourglass
  paper reports FLIC), threshold 0.2; also PCK@0.1.
"""

import dataclasses
import functools
import os
import warnings

import h5py
import numpy as np
import pandas as pd
from scipy.io import loadmat, savemat

from keras_hourglass import files, geometry
from keras_hourglass.datasets import (
    DatasetError,
    GroundTruth,
    get_dataset,
    ground_truth_from_records,
    load_mpii_official,
    read_image_floats,
)
from keras_hourglass.drawing import draw_pose, grid
from keras_hourglass.evaluation.metrics import normalized_errors, pck_per_joint

__all__ = [
    "EvaluationError",
    "GroundTruth",
    "Report",
    "evaluate",
    "format_summary",
    "ground_truth_from_records",
    "load_annotations",
    "load_mpii_official",
    "load_predictions",
    "write_prediction_file",
    "write_prediction_sheet",
    "write_report",
]


class EvaluationError(ValueError):
    """Predictions and ground truth that do not fit together; the message says what disagrees."""


def _load_annotations(path, dataset, image_dir=None, skeleton=None):
    """Ground truth from an annotation file of the `DATASETS` entry `dataset`, read by the
    entry's reader for the file's suffix (MPII: the official `.mat`, pose-hg-train's `.h5`, the
    JSON; LSP: joints.mat; FLIC: examples.mat, its test split; COCO: the keypoints JSON; custom:
    its JSON or CSV with the skeleton file beside it, or `skeleton`). The images are looked for
    in `image_dir` (default: the file's folder)."""
    if not os.path.isfile(path):
        raise EvaluationError(f"Annotation file {path!r} does not exist.")
    entry = get_dataset(dataset)
    read = entry.annotations(
        path, image_dir or os.path.dirname(path), check_images=False, skeleton=skeleton
    )
    if isinstance(read, GroundTruth):
        return read
    gt = ground_truth_from_records(read, normalizer=entry.normalizer, dataset=entry.name)
    return gt


def _load_predictions(path):
    """(N, K, 2) predictions from a `.mat` or `.h5` with `preds`, or a CSV.

    `.h5` files written by Lua/Torch sometimes hold `preds` as (2, K, N) (Tompson's); that layout
    is recognised and transposed. The CSV has columns `record, joint, x, y` (one row per record
    and joint, records and joints in order) or `x0, y0, x1, y1, ...` (one row per record).
    """
    if not os.path.isfile(path):
        raise EvaluationError(f"Prediction file {path!r} does not exist.")
    lower = path.lower()
    if lower.endswith(".mat"):
        data = loadmat(path)
        if "preds" not in data:
            raise EvaluationError(
                f"{path}: no `preds` variable (found {sorted(k for k in data if not k.startswith('__'))})"
            )
        preds = np.asarray(data["preds"], np.float64)
    elif lower.endswith((".h5", ".hdf5")):
        with h5py.File(path, "r") as f:
            if "preds" not in f:
                raise EvaluationError(f"{path}: no `preds` dataset (found {sorted(f)})")
            preds = np.asarray(f["preds"], np.float64)
        if preds.ndim == 3 and preds.shape[0] == 2 and preds.shape[-1] != 2:
            preds = np.transpose(preds, (2, 1, 0))
    elif lower.endswith(".csv"):
        table = pd.read_csv(path)
        if {"record", "joint", "x", "y"} <= set(table.columns):
            n = table["record"].nunique()
            k = table["joint"].nunique()
            if len(table) != n * k:
                raise EvaluationError(
                    f"{path}: {len(table)} rows is not records x joints = {n} x {k}"
                )
            preds = table[["x", "y"]].to_numpy(np.float64).reshape(n, k, 2)
        else:
            columns = [c for c in table.columns if c[:1] in "xy" and c[1:].isdigit()]
            if not columns:
                raise EvaluationError(
                    f"{path}: expected columns record, joint, x, y or x0, y0, x1, ..."
                )
            k = len(columns) // 2
            cols = [c for j in range(k) for c in (f"x{j}", f"y{j}")]
            preds = table[cols].to_numpy(np.float64).reshape(len(table), k, 2)
    else:
        raise EvaluationError(f"{path}: predictions must be .mat, .h5 or .csv")
    if preds.ndim != 3 or preds.shape[-1] != 2:
        raise EvaluationError(f"{path}: `preds` must be (N, K, 2), got shape {preds.shape}")
    return preds


def write_prediction_file(preds, path, base=1):
    """Writes `preds` (N, K, 2, 0-based pixels) as a MATLAB file holding `preds` (N x K x 2,
    float32) in the `base` convention: 1 for MATLAB-made datasets (the MPII evaluation tools'
    `eval_PCKh.m` and the published MPII prediction files), 0 for COCO and custom data. What
    `--preds` reads back (with `--preds-base auto`, the dataset's own base)."""
    preds = np.asarray(preds, np.float64)
    if preds.ndim != 3 or preds.shape[-1] != 2:
        raise EvaluationError(f"predictions must be (N, K, 2), got {preds.shape}")
    with files.atomic_path(path) as tmp:
        savemat(tmp, {"preds": (preds + base).astype(np.float32)})
    return path


def check_predictions(preds, gt, source="predictions"):
    """Checks shapes against the ground truth; warns about NaN predictions (counted as wrong)."""
    n, k = gt.keypoints.shape[:2]
    if preds.shape != (n, k, 2):
        what = "rows (people)" if preds.shape[0] != n else "joints"
        raise EvaluationError(
            f"{source} has shape {preds.shape} but the ground truth {gt.source or ''} has "
            f"{n} people x {k} joints ({gt.skeleton.name}): the number of {what} disagrees."
        )
    nan = ~np.all(np.isfinite(preds), axis=-1)
    counted = nan & gt.annotated
    if counted.any():
        warnings.warn(
            f"{source}: {int(counted.sum())} annotated joints (in {int(counted.any(axis=1).sum())} "
            "people) have NaN or infinite predictions; they count as wrong.",
            stacklevel=2,
        )
    if gt.metric[0] == "PCKh" and not np.all(np.isfinite(gt.normalizers)):
        bad = int((~np.isfinite(gt.normalizers)).sum())
        raise EvaluationError(
            f"The ground truth {gt.source} has no head boxes for {bad} people: PCKh needs them "
            "(use the .h5 or the official .mat, not the JSON)."
        )


@dataclasses.dataclass
class Report:
    """The tables of one evaluation (pandas DataFrames)."""

    summary: object
    per_joint: object
    curve: object
    predictions: object
    errors: np.ndarray
    metric: str


def evaluate(preds, gt, scores=None, thresholds=None):
    """Computes every table for predictions `preds` (N, K, 2) in the ground truth's coordinates.

    Args:
        preds: (N, K, 2) predictions.
        gt: a `GroundTruth`.
        scores: optional (N, K) confidences for the predictions table.
        thresholds: the two reported thresholds (default (0.5, 0.1) for PCKh, (0.2, 0.1) for PCK).

    Returns:
        a `Report`.
    """
    check_predictions(preds, gt)
    name, main = gt.metric
    thresholds = thresholds or (main, 0.1)
    skeleton = gt.skeleton
    usable = np.isfinite(gt.normalizers) & (gt.normalizers > 0)
    annotated = gt.annotated & usable[:, None]
    errors = normalized_errors(preds, gt.keypoints, np.where(usable, gt.normalizers, 1.0))
    errors = np.where(annotated, errors, np.nan)

    per_joint = pd.DataFrame({"joint": list(skeleton.joint_names)})
    per_joint["count"] = annotated.sum(axis=0)
    columns = [f"{name}@{t:g}" for t in thresholds]
    pck = {}
    for t, column in zip(thresholds, columns):
        pck[column], counts = pck_per_joint(np.nan_to_num(errors, nan=np.inf), annotated, t)
        per_joint[column] = np.round(pck[column], 2)

    keep = np.array([j not in skeleton.mean_excludes for j in skeleton.joint_names])
    rows = []
    for group, joints in skeleton.group_index:
        row = {"group": group}
        for column in columns:
            row[column] = float(np.mean(pck[column][list(joints)]))
            c = counts[list(joints)]
            row[f"{column} weighted"] = float(
                np.sum(pck[column][list(joints)] * c) / max(c.sum(), 1)
            )
        rows.append(row)
    mean_row = {"group": "Mean"}
    valid = keep & (counts > 0)
    for column in columns:
        mean_row[column] = float(np.mean(pck[column][valid]))
        mean_row[f"{column} weighted"] = float(
            np.sum(pck[column][valid] * counts[valid]) / counts[valid].sum()
        )
    rows.append(mean_row)
    summary = pd.DataFrame(rows)
    summary = summary[["group"] + columns + [f"{c} weighted" for c in columns]].round(2)

    top = 0.5 if name == "PCKh" else 0.2
    grid = np.round(np.arange(0.0, top + 1e-9, 0.01), 2)
    curve_rows = []
    finite = np.nan_to_num(errors, nan=np.inf)
    for t in grid:
        values, _ = pck_per_joint(finite, annotated, t)
        row = {"threshold": t}
        for group, joints in skeleton.group_index:
            row[group] = float(np.mean(values[list(joints)]))
        row["Mean"] = float(np.mean(values[valid]))
        curve_rows.append(row)
    curve = pd.DataFrame(curve_rows).round(2)

    n, k = gt.keypoints.shape[:2]
    base = 1.0 if gt.one_based else 0.0  # predictions.csv is 0-based whatever the ground truth
    predictions = pd.DataFrame(
        {
            "record": np.repeat(gt.record_ids, k),
            "joint": np.tile(skeleton.joint_names, n),
            "x": preds[..., 0].ravel() - base,
            "y": preds[..., 1].ravel() - base,
            "confidence": np.full(n * k, np.nan) if scores is None else np.asarray(scores).ravel(),
            "gt_x": gt.keypoints[..., 0].ravel() - base,
            "gt_y": gt.keypoints[..., 1].ravel() - base,
            "annotated": gt.annotated.ravel(),
            "error": errors.ravel(),
        }
    )
    return Report(summary, per_joint, curve, predictions, errors, name)


def write_report(report, out_dir):
    """Writes summary.csv, per_joint.csv, curve.csv, predictions.csv and curve.png."""
    os.makedirs(out_dir, exist_ok=True)
    files.write_csv(report.summary, os.path.join(out_dir, "summary.csv"))
    files.write_csv(report.per_joint, os.path.join(out_dir, "per_joint.csv"))
    files.write_csv(report.curve, os.path.join(out_dir, "curve.csv"))
    files.write_csv(report.predictions, os.path.join(out_dir, "predictions.csv"))
    plot_curve(report, os.path.join(out_dir, "curve.png"))


def plot_curve(report, path):
    """PCK(h) against the threshold, one line per joint group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = report.curve
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    for column in curve.columns[1:]:
        ax.plot(
            curve["threshold"],
            curve[column],
            label=column,
            linewidth=2.5 if column == "Mean" else 1.2,
        )
    ax.set_xlabel(
        f"normalised distance threshold ({'head size' if report.metric == 'PCKh' else 'torso size'})"
    )
    ax.set_ylabel(f"{report.metric} (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def write_prediction_sheet(report, gt, preds, path, count=6, size=192):
    """A PNG sheet: the `count` worst (top row) and best (bottom row) people by mean error,
    predictions drawn on a crop of each image. Uses the people whose image file is at hand;
    returns False (and writes nothing) when there are none."""
    if gt.image_paths is None or gt.centers is None:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # people with no annotated joint
        mean_error = np.nanmean(np.where(np.isfinite(report.errors), report.errors, 10.0), axis=1)
    have_image = np.array([os.path.isfile(p) for p in gt.image_paths])
    mean_error = np.where(have_image, mean_error, np.nan)
    order = np.argsort(np.where(np.isnan(mean_error), -1, mean_error))
    valid = order[~np.isnan(mean_error[order])]
    count = min(count, len(valid) // 2) if len(valid) > 1 else len(valid)
    picks = list(valid[::-1][:count]) + list(valid[:count])
    tiles = []
    offset = 1.0 if gt.one_based else 0.0
    for i in picks:
        # The evaluation crop itself (geometry's, anti-aliased) and the same map for the points.
        a, center = geometry.crop_matrix(np.asarray(gt.centers[i], np.float64), gt.scales[i], size)
        image = read_image_floats(gt.image_paths[i])
        crop = np.round(255.0 * geometry.warp(image, a, center, size)).astype(np.uint8)
        keypoints = geometry.source_to_crop_points(preds[i] - offset, a, center, size)
        tiles.append(
            draw_pose(
                crop,
                keypoints,
                gt.skeleton,
                visible=np.all(np.isfinite(preds[i]), axis=-1),
            )
        )
    if not tiles:
        return False
    sheet = grid(tiles, count)
    with files.atomic_path(path) as tmp:
        sheet.save(tmp)
    return True


def format_summary(report):
    """The summary table as text for the terminal."""
    return report.summary.to_string(index=False, float_format=lambda v: f"{v:.2f}")


def _readable(load, kind):
    """`load` with the errors of the file libraries (SciPy, h5py, pandas, json) turned into an
    EvaluationError naming the file: a file that is not what its name says is not a traceback."""

    @functools.wraps(load)
    def wrapper(path, *args, **kwargs):
        try:
            return load(path, *args, **kwargs)
        except EvaluationError:
            raise
        except Exception as error:  # scipy/h5py/pandas/json/readers each raise their own kinds
            if isinstance(error, DatasetError):
                raise EvaluationError(str(error)) from None
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise EvaluationError(
                f"{kind} {path!r} cannot be read ({type(error).__name__}: {detail})"
            ) from None

    return wrapper


load_predictions = _readable(_load_predictions, "prediction file")
load_annotations = _readable(_load_annotations, "annotation file")
