"""COCO keypoint AP/AR through pycocotools, against an independent OKS computation."""

import json

import numpy as np
import pytest

from keras_hourglass import datasets as D
from keras_hourglass.evaluation.coco_eval import (
    COCO_SIGMAS,
    CocoEvalError,
    coco_results,
    evaluate_keypoints,
    write_results,
)


@pytest.fixture
def coco(shared_data):
    path = shared_data / "coco_samples/test_coco.json"
    return str(path), json.loads(path.read_text())


def _people(data):
    return [a for a in data["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]]


def test_ground_truth_as_results_gives_ap_1(coco, tmp_path):
    path, data = coco
    records = D.read_coco(path, str(tmp_path), check_images=False)
    people = {a["id"]: a for a in _people(data)}
    assert len(records) == len(people) == 12
    keypoints = np.stack(
        [np.reshape(people[int(r.record_id)]["keypoints"], (17, 3))[:, :2] for r in records]
    )
    results = coco_results(records, keypoints, np.ones((len(records), 17)), path)
    write_results(results, str(tmp_path / "results.json"))
    stats = evaluate_keypoints(path, str(tmp_path / "results.json"))
    assert stats["AP"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)
    assert stats["AP50"] == pytest.approx(1.0) and stats["AP75"] == pytest.approx(1.0)


def _oks(shift, annotation):
    """OKS of the ground truth moved by `shift` px in x (COCO's formula, written out here)."""
    flags = np.reshape(annotation["keypoints"], (17, 3))[:, 2]
    k2 = (2 * COCO_SIGMAS) ** 2
    e = shift**2 / k2 / (annotation["area"] + np.spacing(1)) / 2
    return float(np.mean(np.exp(-e[flags > 0])))


def test_a_known_displacement_gives_the_ap_oks_predicts(coco):
    path, data = coco
    people = _people(data)
    shift = 6.0
    oks = np.array([_oks(shift, a) for a in people])
    # Scores in the order of OKS: at each threshold t the people with OKS >= t come first, so
    # precision is 1 up to recall n_t / N and COCO's 101-point AP_t is the share of recall
    # thresholds at or below it. (All 12 people are 'all'-area ground truth.)
    order = np.argsort(-oks)
    results = []
    for rank, i in enumerate(order):
        a = people[i]
        kp = np.reshape(a["keypoints"], (17, 3)).astype(float)
        kp[:, 0] += shift
        kp[:, 2] = 1.0
        results.append(
            {
                "image_id": a["image_id"],
                "category_id": 1,
                "keypoints": kp.reshape(-1).tolist(),
                "score": 1.0 - rank / 100,
            }
        )
    recall_points = np.linspace(0, 1, 101)
    expected = []
    for t in np.linspace(0.5, 0.95, 10):
        recall = np.sum(oks >= t) / len(people)
        expected.append(np.sum(recall_points <= recall + 1e-12) / 101 if recall > 0 else 0.0)
    stats = evaluate_keypoints(path, results)
    assert 0.05 < np.mean(expected) < 0.95  # the displacement separates the thresholds
    assert stats["AP"] == pytest.approx(np.mean(expected), abs=1e-6)
    assert stats["AP50"] == pytest.approx(expected[0], abs=1e-6)
    assert stats["AP75"] == pytest.approx(expected[5], abs=1e-6)
    assert stats["AR"] == pytest.approx(
        np.mean([np.mean(oks >= t) for t in np.linspace(0.5, 0.95, 10)]), abs=1e-6
    )


def test_results_with_the_wrong_number_of_joints_are_refused(coco):
    path, data = coco
    a = _people(data)[0]
    bad = [
        {
            "image_id": a["image_id"],
            "category_id": 1,
            "keypoints": a["keypoints"][:48],
            "score": 1.0,
        }
    ]
    with pytest.raises(
        CocoEvalError,
        match=r"result 0: 'keypoints' must be 17 joints x \(x, y, "
        r"score\) = 51 numbers .*got 48 \(16 joints\?\)",
    ):
        evaluate_keypoints(path, bad)
    with pytest.raises(CocoEvalError, match="image_id 123 is not in the annotation file"):
        evaluate_keypoints(path, [dict(bad[0], image_id=123, keypoints=a["keypoints"])])
    with pytest.raises(CocoEvalError, match="non-empty list"):
        evaluate_keypoints(path, [])


def test_evaluate_py_writes_coco_results_and_ap_rows(coco, tmp_path, python_env, shared_data):
    import subprocess

    import pandas as pd
    from conftest import PYTHON, ROOT

    import keras_hourglass as kh

    path, data = coco
    model = kh.build_hourglass(
        num_stacks=1, skeleton="coco", filters=16, depth=2, input_shape=(64, 64, 3)
    )
    model.save(tmp_path / "coco.keras")
    result = subprocess.run(
        [
            PYTHON,
            str(ROOT / "eval/evaluate.py"),
            "--model",
            str(tmp_path / "coco.keras"),
            "--dataset",
            "coco",
            "--data-dir",
            str(shared_data / "coco_samples"),
            "--out",
            str(tmp_path / "out"),
        ],
        env=python_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "COCO keypoints (pycocotools, OKS" in result.stdout
    results = json.loads((tmp_path / "out/coco_results.json").read_text())
    assert len(results) == 12 and all(len(r["keypoints"]) == 51 for r in results)
    summary = pd.read_csv(tmp_path / "out/summary.csv")
    coco_rows = summary[summary.group.str.startswith("COCO ")]
    assert coco_rows.group.tolist() == [
        f"COCO {k}"
        for k in ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
    ]
    # The rows are pycocotools' figures for the written results file.
    stats = evaluate_keypoints(path, str(tmp_path / "out/coco_results.json"))
    np.testing.assert_allclose(coco_rows["COCO OKS"], [round(100 * v, 2) for v in stats.values()])
    assert "Mean" in summary.group.tolist()


def test_only_the_people_evaluated_are_scored(coco):
    """A person never predicted (held out, skipped, left out) is not a miss: only the images of
    the people evaluated count, and their other people are ignored."""
    path, data = coco
    people = [a for a in data["annotations"] if not a.get("iscrowd") and a["num_keypoints"] > 0]
    image = max(
        {a["image_id"] for a in people}, key=lambda i: sum(a["image_id"] == i for a in people)
    )
    chosen = [a for a in people if a["image_id"] == image][:1]
    assert len([a for a in people if a["image_id"] == image]) > 1  # others share its image
    results = [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in chosen
    ]
    stats = evaluate_keypoints(path, results, [a["id"] for a in chosen])
    assert stats["AP"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)
    # Before: every image of the file scored, every other person a miss.
    assert evaluate_keypoints(path, results)["AR"] < 0.5
    from keras_hourglass.evaluation.coco_eval import scope

    scored, images, ignored = scope(path, [a["id"] for a in chosen])
    assert (scored, images) == (1, 1) and ignored >= 1
    with pytest.raises(CocoEvalError, match="not annotations of the file"):
        evaluate_keypoints(path, results, [123456789])


def _oks_nms_by_loops(keypoints, scores, areas, threshold):
    """An independent float64 loop version of greedy OKS NMS (the reference's algorithm)."""
    variances = (2 * COCO_SIGMAS) ** 2
    remaining = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep = []
    while remaining:
        best = remaining.pop(0)
        keep.append(best)
        survivors = []
        for j in remaining:
            terms = []
            for k in range(17):
                d2 = sum((keypoints[best][k][c] - keypoints[j][k][c]) ** 2 for c in range(2))
                terms.append(np.exp(-d2 / variances[k] / ((areas[best] + areas[j]) / 2) / 2))
            if sum(terms) / 17 <= threshold:
                survivors.append(j)
        remaining = survivors
    return keep


def test_oks_nms_and_rescoring_against_loops():
    from keras_hourglass.evaluation.coco_eval import detection_results, oks_nms

    rng = np.random.default_rng(0)
    base = rng.uniform(0, 200, (4, 17, 2))
    # Each pose twice more: nearly the same (suppressed) and moved by 15 px (kept at 0.9).
    poses = np.concatenate([base, base + rng.normal(0, 0.5, base.shape), base + 15])
    scores = rng.uniform(0.1, 1, len(poses))
    areas = rng.uniform(5000, 20000, len(poses))
    for threshold in (0.9, 0.5, 0.99):
        assert oks_nms(poses, scores, areas, threshold) == _oks_nms_by_loops(
            poses, scores, areas, threshold
        )
    kept = oks_nms(poses, scores, areas, 0.9)
    assert 4 <= len(kept) < 12
    # detection_results: rescored (box x mean of joints above 0.2), per image, NMS'd.
    joint_scores = rng.uniform(0, 1, (len(poses), 17))
    box_scores = rng.uniform(0.5, 1, len(poses))
    image_ids = [7] * 6 + [9] * 6
    results = detection_results(image_ids, poses, joint_scores, box_scores, areas, 0.9)
    person = np.array([b * s[s > 0.2].mean() for b, s in zip(box_scores, joint_scores)])
    want = []
    for image in (7, 9):
        members = [i for i in range(12) if image_ids[i] == image]
        keep = _oks_nms_by_loops(poses[members], person[members], areas[members], 0.9)
        want += [members[i] for i in keep]
    assert [r["image_id"] for r in results] == [image_ids[i] for i in want]
    np.testing.assert_allclose([r["score"] for r in results], person[want], atol=1e-6)
    got = np.array([r["keypoints"] for r in results]).reshape(-1, 17, 3)
    np.testing.assert_allclose(got[..., :2], poses[want], atol=1e-3)
    np.testing.assert_allclose(got[..., 2], joint_scores[want], atol=1e-3)


@pytest.mark.slow
def test_evaluate_py_with_detector_boxes(coco, tmp_path, python_env, shared_data):
    """Detections = the ground-truth boxes (score 1), each again with score 0.5 (the same crop,
    so the same pose: OKS NMS drops it) and a far-off box at 0.05 (below --min-box-score): the
    poses are those of the ground-truth-box mode, one per person, and the AP rows are
    pycocotools' on the written results over every image."""
    import pandas as pd
    from conftest import run_command

    import keras_hourglass as kh

    path, data = coco
    model = kh.build_hourglass(
        num_stacks=1, skeleton="coco", filters=16, depth=2, input_shape=(32, 32, 3)
    )
    model.save(tmp_path / "coco.keras")
    people = _people(data)
    detections = []
    for a in people:
        detections.append({"image_id": a["image_id"], "bbox": a["bbox"], "score": 1.0})
        detections.append({"image_id": a["image_id"], "bbox": a["bbox"], "score": 0.5})
        detections.append({"image_id": a["image_id"], "bbox": [0, 0, 9, 9], "score": 0.05})
    (tmp_path / "dets.json").write_text(json.dumps(detections))
    common = ["--model", str(tmp_path / "coco.keras"), "--dataset", "coco"]
    common += ["--data-dir", str(shared_data / "coco_samples")]
    result = run_command(
        "eval/evaluate.py",
        [*common, "--out", str(tmp_path / "gt")],
        python_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    result = run_command(
        "eval/evaluate.py",
        [*common, "--out", str(tmp_path / "det"), "--detections", str(tmp_path / "dets.json")]
        + ["--min-box-score", "0.1"],
        python_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{2 * len(people)} detections" in result.stdout
    det = json.loads((tmp_path / "det/coco_results.json").read_text())
    gt = json.loads((tmp_path / "gt/coco_results.json").read_text())
    assert len(det) == len(gt) == len(people)  # the duplicates suppressed
    key = lambda r: (r["image_id"], r["keypoints"][:2])  # noqa: E731
    for a, b in zip(sorted(det, key=key), sorted(gt, key=key)):
        assert a["image_id"] == b["image_id"]
        np.testing.assert_allclose(a["keypoints"], b["keypoints"], atol=2e-3)
    summary = pd.read_csv(tmp_path / "det/summary.csv")
    images = sorted(im["id"] for im in data["images"])
    stats = evaluate_keypoints(path, det, image_ids=images)
    np.testing.assert_allclose(summary["COCO OKS"], [round(100 * v, 2) for v in stats.values()])
    # A model whose person box unit is not 200 px (a 256-px box, as some ports use): the
    # detections' crops cover the same pixels as the ground-truth boxes' (the records keep
    # their scale in 200-px units), so the poses agree again.
    from keras_hourglass.commands import evaluate as evaluate_command

    wide = kh.build_hourglass(
        num_stacks=1, skeleton="coco", filters=16, depth=2, input_shape=(32, 32, 3),
        person_box_px=256.0,
    )  # fmt: skip
    wide.save(tmp_path / "wide.keras")
    runs = {}
    for mode, extra in (("gt256", []), ("det256", ["--detections", str(tmp_path / "dets.json")])):
        argv = ["--model", str(tmp_path / "wide.keras"), *common[2:], "--out", str(tmp_path / mode)]
        evaluate_command.main(argv + extra + ["--min-box-score", "0.1", "-q"])
        runs[mode] = sorted(
            json.loads((tmp_path / mode / "coco_results.json").read_text()), key=key
        )
    assert len(runs["det256"]) == len(runs["gt256"]) == len(people)
    for a, b in zip(runs["det256"], runs["gt256"]):
        np.testing.assert_allclose(a["keypoints"], b["keypoints"], atol=2e-3)
    # An image id the annotation file does not have is refused, naming it.
    (tmp_path / "bad.json").write_text(json.dumps([{"image_id": 5, "bbox": [0, 0, 9, 9]}]))
    result = run_command(
        "eval/evaluate.py",
        [*common, "--out", str(tmp_path / "bad"), "--detections", str(tmp_path / "bad.json")],
        python_env,
    )
    assert result.returncode != 0 and "image_id 5 not in" in result.stderr


def test_coco_without_pycocotools_is_said_before_predicting(monkeypatch, tmp_path, capsys):
    import sys

    from keras_hourglass.commands import evaluate

    monkeypatch.setitem(sys.modules, "pycocotools.cocoeval", None)  # as if not installed
    model = tmp_path / "m.keras"
    model.write_bytes(b"not read: the check comes first")
    with pytest.raises(SystemExit) as stopped:
        evaluate.parse_args(["--model", str(model), "--dataset", "coco", "--data-dir", "x"])
    assert stopped.value.code == 2
    assert "pip install 'keras-hourglass[coco]'" in capsys.readouterr().err
