"""Pose metrics as pure NumPy functions with stated shapes; `keras_hourglass.evaluation.protocols`
builds every report table from them."""

import numpy as np


def normalized_errors(predictions, ground_truth, normalizers):
    """Euclidean errors divided by each sample's normalising size.

    Args:
        predictions: (N, K, 2) predicted (x, y).
        ground_truth: (N, K, 2) true (x, y).
        normalizers: (N,) positive normalising sizes (head size for PCKh, torso size for PCK).

    Returns:
        (N, K) float64 normalised errors; NaN predictions give +inf (counted as wrong).
    """
    predictions = np.asarray(predictions, np.float64)
    ground_truth = np.asarray(ground_truth, np.float64)
    normalizers = np.asarray(normalizers, np.float64)
    if predictions.shape != ground_truth.shape or predictions.shape[-1] != 2:
        raise ValueError(
            "predictions and ground_truth must both be (N, K, 2). Received: "
            f"{predictions.shape} and {ground_truth.shape}"
        )
    if normalizers.shape != predictions.shape[:1]:
        raise ValueError(
            f"normalizers must be (N,) = ({predictions.shape[0]},). Received: {normalizers.shape}"
        )
    errors = np.linalg.norm(predictions - ground_truth, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        errors = errors / normalizers[:, None]
    return np.where(np.isnan(errors), np.inf, errors)


def pck_per_joint(errors, annotated, threshold):
    """Per-joint PCK in percent.

    Args:
        errors: (N, K) normalised errors.
        annotated: (N, K) bool, joints that count.
        threshold: a joint is correct when its error is below this.

    Returns:
        (pck (K,) percent, NaN where a joint is never annotated; counts (K,) annotated joints).
    """
    errors = np.asarray(errors, np.float64)
    annotated = np.asarray(annotated, bool)
    correct = (errors < threshold) & annotated
    counts = annotated.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pck = 100.0 * correct.sum(axis=0) / counts
    return np.where(counts > 0, pck, np.nan), counts


def person_scores(scores, box_scores=1.0, joint_threshold=0.2):
    """Each person's score, as the published top-down COCO pipelines rescore their detections
    (SimpleBaseline/HRNet `COCODataset.evaluate`, mmpose's top-down datasets): the mean of the
    joint confidences above `joint_threshold` (0 where none is), times the box's score.

    Args:
        scores: (P, K) joint confidences.
        box_scores: (P,) or a number, the detector's scores (1 for given boxes).
    """
    scores = np.asarray(scores, np.float64)
    if scores.size == 0:  # no person (an image without a box above the threshold)
        return np.zeros(len(scores))
    scores = scores.reshape(len(scores), -1)
    confident = scores > joint_threshold
    mean = np.where(
        confident.any(axis=1),
        (scores * confident).sum(axis=1) / np.maximum(confident.sum(axis=1), 1),
        0.0,
    )
    return mean * np.asarray(box_scores, np.float64)
