"""COCO's keypoint metric: AP and AR over OKS thresholds, computed by the official `pycocotools`.

    results = coco_results(records, keypoints, scores, "person_keypoints_val2017.json")
    write_results(results, "results/coco_results.json")
    stats = evaluate_keypoints("person_keypoints_val2017.json", results)   # {"AP": ..., ...}

Object keypoint similarity (OKS) of a prediction and a ground-truth person:
`mean over the labelled joints of exp(-d_i^2 / (2 s^2 k_i^2))`, with d_i the distance, s^2 the
person's segment area and k_i = 2 sigma_i COCO's per-joint constants (`COCO_SIGMAS`). AP is the
mean over OKS thresholds 0.50:0.05:0.95 of the 101-point interpolated precision; AR the mean
recall (COCO's own definitions, as pycocotools computes them; we do not reimplement them).

This project predicts one person per box (single-person, top-down). Two protocols:
- ground-truth boxes (`coco_results`): each ground-truth person gets one prediction from its own
  box, the "GT boxes" rows of published tables; a prediction's `score` is the mean of its
  joints' confidences (heatmap peaks).
- detector boxes (`detection_results`), the published top-down COCO protocol as SimpleBaseline
  and HRNet compute it (leoxiaobin/deep-high-resolution-net.pytorch: `COCODataset.evaluate` in
  lib/dataset/coco.py, `oks_nms` in lib/nms/nms.py; mmpose's top-down COCO dataset does the
  same): one prediction per detected box (boxes below a score threshold left out, 0.0 there),
  the person's score = box score x the mean of its joint confidences above 0.2, then per image
  a greedy OKS non-maximum suppression at OKS 0.9 (the box area, (200 x scale)^2, is the area).
"""

import contextlib
import io
import json
import os

import numpy as np

from keras_hourglass import files

# COCO's per-joint OKS constants sigma_i (pycocotools' `kpt_oks_sigmas`), in COCO's joint order.
COCO_SIGMAS = (
    np.array(
        [
            0.26,
            0.25,
            0.25,
            0.35,
            0.35,
            0.79,
            0.79,
            0.72,
            0.72,
            0.62,
            0.62,
            1.07,
            1.07,
            0.87,
            0.87,
            0.89,
            0.89,
        ]
    )
    / 10.0
)

STATS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


class CocoEvalError(ValueError):
    """A results list or annotation file that COCO's evaluation cannot take; the message says
    which entry and why."""


def _annotation_images(annotation_path):
    with open(annotation_path, encoding="utf-8") as f:
        data = json.load(f)
    return {
        a["id"]: a["image_id"]
        for a in data.get("annotations", [])
        if isinstance(a, dict) and "id" in a and "image_id" in a
    }


def coco_results(records, keypoints, scores, annotation_path, category_id=1):
    """COCO results entries, one per record of `read_coco(annotation_path, ...)`.

    Args:
        records: the records (record_id = the COCO annotation id).
        keypoints: (N, 17, 2) predictions in original-image pixels.
        scores: (N, 17) joint confidences.
        annotation_path: the COCO annotation file (for each annotation's image_id).

    Returns:
        a list of {"image_id", "category_id", "keypoints": [x, y, s] * 17, "score"}.
    """
    keypoints, scores = np.asarray(keypoints, np.float64), np.asarray(scores, np.float64)
    if keypoints.shape != (len(records), 17, 2) or scores.shape != (len(records), 17):
        raise CocoEvalError(
            f"COCO results need 17 joints for each of the {len(records)} people; "
            f"got keypoints {keypoints.shape} and scores {scores.shape}"
        )
    images = _annotation_images(annotation_path)
    results = []
    for record, kp, sc in zip(records, keypoints, scores):
        key = (
            int(record.record_id)
            if str(record.record_id).lstrip("-").isdigit()
            else record.record_id
        )
        if key not in images:
            raise CocoEvalError(
                f"record {record.record_id} is not an annotation of {annotation_path}"
            )
        triplets = np.concatenate([kp, sc[:, None]], axis=1)
        results.append(
            {
                "image_id": images[key],
                "category_id": int(category_id),
                "keypoints": [round(float(v), 3) for v in triplets.reshape(-1)],
                "score": round(float(np.mean(sc)), 6),
            }
        )
    return results


def oks(a, b, area_a, area_b, sigmas=COCO_SIGMAS):
    """Object keypoint similarity of poses `b` (M, K, 2) to pose `a` (K, 2) for non-maximum
    suppression, over all joints (the reference's `oks_iou` without a visibility threshold):
    mean_i exp(-d_i^2 / (2 (2 sigma_i)^2 (area_a + area_b) / 2))."""
    variances = (2 * np.asarray(sigmas, np.float64)) ** 2
    d2 = np.sum((np.asarray(b, np.float64) - np.asarray(a, np.float64)) ** 2, axis=-1)
    scale = (area_a + np.asarray(area_b, np.float64))[:, None] / 2 + np.spacing(1)
    return np.mean(np.exp(-d2 / variances / scale / 2), axis=-1)


def oks_nms(keypoints, scores, areas, threshold=0.9, sigmas=COCO_SIGMAS):
    """Greedy OKS non-maximum suppression: take the best-scoring pose, drop every other pose
    whose OKS with it is above `threshold`, repeat. Returns the kept indices, best first.

    Args:
        keypoints: (P, K, 2) poses of one image; scores: (P,); areas: (P,) their box areas.
    """
    keypoints = np.asarray(keypoints, np.float64)
    areas = np.asarray(areas, np.float64)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        overlap = oks(keypoints[best], keypoints[rest], areas[best], areas[rest], sigmas)
        order = rest[overlap <= threshold]
    return keep


def detection_results(
    image_ids,
    keypoints,
    scores,
    box_scores,
    areas,
    oks_threshold=0.9,
    joint_threshold=0.2,
    category_id=1,
):
    """COCO results of predictions from detector boxes, rescored and OKS-suppressed per image as
    the published top-down pipelines do (see the module's docstring).

    Args:
        image_ids: (P,) the COCO image id of each detection.
        keypoints: (P, 17, 2) predictions in image pixels; scores: (P, 17) joint confidences.
        box_scores: (P,) the detector's scores; areas: (P,) the crop boxes' areas in px^2.
        oks_threshold: OKS above which the lower-scoring pose is dropped (None: no NMS).

    Returns:
        the results list (`image_id`, `category_id`, `keypoints`, `score`), images in order of
        first appearance, people best first.
    """
    from keras_hourglass.evaluation.metrics import person_scores

    keypoints = np.asarray(keypoints, np.float64)
    scores = np.asarray(scores, np.float64)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (17, 2) or scores.shape != keypoints.shape[:2]:
        raise CocoEvalError(
            f"COCO results need 17 joints per person; got keypoints {keypoints.shape} and "
            f"scores {scores.shape}"
        )
    person = person_scores(scores, box_scores, joint_threshold)
    by_image = {}
    for i, image_id in enumerate(image_ids):
        by_image.setdefault(image_id, []).append(i)
    results = []
    for image_id, members in by_image.items():
        members = np.array(members)
        if oks_threshold is None:
            kept = members[np.argsort(-person[members], kind="stable")]
        else:
            kept = members[
                oks_nms(
                    keypoints[members], person[members], np.asarray(areas)[members], oks_threshold
                )
            ]
        for i in kept:
            triplets = np.concatenate([keypoints[i], scores[i][:, None]], axis=1)
            results.append(
                {
                    "image_id": image_id,
                    "category_id": int(category_id),
                    "keypoints": [round(float(v), 3) for v in triplets.reshape(-1)],
                    "score": round(float(person[i]), 6),
                }
            )
    return results


def annotation_images(annotation_path):
    """{image id: file name} of a COCO annotation file, ids in the file's order."""
    with open(annotation_path, encoding="utf-8") as f:
        data = json.load(f)
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise CocoEvalError(f"{annotation_path}: no 'images' list (not a COCO annotation file)")
    table = {}
    for i, image in enumerate(images):
        if not (
            isinstance(image, dict) and "id" in image and isinstance(image.get("file_name"), str)
        ):
            raise CocoEvalError(f"{annotation_path}, images[{i}]: needs 'id' and 'file_name'")
        table[image["id"]] = image["file_name"]
    return table


def write_results(results, path):
    """Writes the results list as COCO's results JSON, atomically."""
    files.write_json(path, results, indent=None)


def check_results(results, image_ids, num_joints=17):
    """Refuses a results list COCO's evaluation would misread: not a non-empty list of objects,
    an unknown image_id, a keypoints list that is not `num_joints` x (x, y, score), non-finite
    values, a missing or non-finite score."""
    if not isinstance(results, list) or not results:
        raise CocoEvalError("COCO results must be a non-empty list of objects")
    for i, r in enumerate(results):
        if not isinstance(r, dict):
            raise CocoEvalError(f"result {i}: expected an object, got {r!r:.60}")
        if r.get("image_id") not in image_ids:
            raise CocoEvalError(
                f"result {i}: image_id {r.get('image_id')!r} is not in the annotation file"
            )
        values = r.get("keypoints")
        if not isinstance(values, list) or len(values) != 3 * num_joints:
            got = len(values) if isinstance(values, list) else type(values).__name__
            raise CocoEvalError(
                f"result {i}: 'keypoints' must be {num_joints} joints x (x, y, score) = "
                f"{3 * num_joints} numbers (COCO's joints), got {got}"
                + (f" ({got // 3} joints?)" if isinstance(got, int) and got % 3 == 0 else "")
            )
        array = np.asarray(values, np.float64)
        if not np.all(np.isfinite(array)):
            raise CocoEvalError(f"result {i}: 'keypoints' has NaN or infinite values")
        score = r.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not np.isfinite(score):
            raise CocoEvalError(f"result {i}: 'score' must be a finite number, got {score!r}")


def evaluate_keypoints(annotation_path, results, evaluated_ids=None, image_ids=None):
    """AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl (fractions in [0, 1]) of `results` (a
    list as `coco_results` makes, or the path of a results JSON) on a COCO keypoint annotation
    file, with pycocotools' COCOeval(iouType="keypoints").

    `evaluated_ids`: the annotation ids of the people that were predicted (None: all). Only their
    images are scored, and the other people of those images (skipped as malformed, held out,
    left out by --samples) are marked as crowd, COCO's "ignore": a person never predicted is
    not a miss. `scope(annotation_path, evaluated_ids)` says how many of each.
    `image_ids`: score these images (every person in them; detector-box mode) instead of all.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if isinstance(results, (str, os.PathLike)):
        try:
            with open(results, encoding="utf-8") as f:
                results = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CocoEvalError(f"{results}: not a readable COCO results JSON ({error})") from None
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        gt = COCO(annotation_path)
    if image_ids is not None:
        image_ids = sorted(image_ids)
    else:
        image_ids = sorted(gt.getImgIds())
    if evaluated_ids is not None:
        image_ids, ignored = _scope(gt, evaluated_ids)
        for annotation_id in ignored:
            gt.anns[annotation_id]["iscrowd"] = 1  # COCOeval ignores crowd regions
    check_results(results, set(image_ids))
    with contextlib.redirect_stdout(quiet):
        dt = gt.loadRes([dict(r) for r in results])  # loadRes adds fields to its input
        evaluator = COCOeval(gt, dt, "keypoints")
        evaluator.params.imgIds = image_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return dict(zip(STATS, (float(v) for v in evaluator.stats)))


def _scope(gt, evaluated_ids):
    """(sorted image ids of the evaluated people, ids of the other people in those images)."""
    evaluated = {_annotation_key(i) for i in evaluated_ids}
    unknown = sorted(map(str, evaluated - set(gt.anns)))
    if unknown:
        raise CocoEvalError(f"people {unknown[:5]} are not annotations of the file")
    images = sorted({gt.anns[i]["image_id"] for i in evaluated})
    others = [a for i in images for a in gt.getAnnIds(imgIds=[i]) if a not in evaluated]
    return images, others


def _annotation_key(record_id):
    text = str(record_id)
    return int(text) if text.lstrip("-").isdigit() else record_id


def scope(annotation_path, evaluated_ids):
    """(people scored, images scored, other people of those images ignored) of an evaluation."""
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(annotation_path)
    images, others = _scope(gt, evaluated_ids)
    return len(set(map(_annotation_key, evaluated_ids))), len(images), len(others)
