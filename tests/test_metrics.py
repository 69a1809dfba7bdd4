import numpy as np
import pytest

import keras_hourglass as kh
from keras_hourglass.evaluation.metrics import normalized_errors, pck_per_joint
from keras_hourglass.evaluation.protocols import GroundTruth, evaluate


def test_normalized_errors_and_pck_by_hand():
    gt = np.zeros((2, 3, 2))
    pred = np.array([[[3, 4], [0, 1], [0, 0]], [[6, 8], [0, 0], [1, 0]]], float)
    errors = normalized_errors(pred, gt, np.array([10.0, 20.0]))
    np.testing.assert_allclose(errors, [[0.5, 0.1, 0.0], [0.5, 0.0, 0.05]])
    annotated = np.array([[1, 1, 0], [1, 1, 1]], bool)
    pck, counts = pck_per_joint(errors, annotated, 0.5)
    # 0.5 is not below 0.5: strict, as the official protocol.
    np.testing.assert_allclose(pck, [0.0, 100.0, 100.0])
    np.testing.assert_array_equal(counts, [2, 2, 1])


def test_nan_predictions_count_as_wrong_and_never_annotated_is_nan():
    errors = normalized_errors(np.full((1, 2, 2), np.nan), np.zeros((1, 2, 2)), np.ones(1))
    assert np.all(np.isinf(errors))
    pck, counts = pck_per_joint(errors, np.array([[True, False]]), 0.5)
    assert pck[0] == 0.0 and np.isnan(pck[1]) and counts.tolist() == [1, 0]


def test_shape_errors_are_explained():
    with pytest.raises(ValueError, match=r"\(N, K, 2\)"):
        normalized_errors(np.zeros((2, 3, 2)), np.zeros((2, 4, 2)), np.ones(2))
    with pytest.raises(ValueError, match="normalizers"):
        normalized_errors(np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), np.ones(3))


def test_torso_size_and_table_mean_excludes_pelvis_and_thorax():
    s = kh.MPII
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 100, (50, 16, 2))
    sizes = np.linalg.norm(gt[:, s.index("left_shoulder")] - gt[:, s.index("right_hip")], axis=-1)
    np.testing.assert_allclose(sizes[0], np.linalg.norm(gt[0, 13] - gt[0, 2]))
    # Predictions at a random fraction (0..1) of the torso size from the truth, PCK@0.5 of the
    # torso on MPII's joints (the demo's protocol) through the one scoring function.
    fractions = rng.uniform(0, 1, (50, 16))
    fractions[:, s.index("pelvis")] = 0.0  # pelvis always right: must not lift the mean
    preds = gt.copy()
    preds[..., 0] += fractions * sizes[:, None]
    truth = GroundTruth(
        gt, np.ones((50, 16), bool), sizes, s, normalizer=("joints", ("left_shoulder", "right_hip"))
    )
    report = evaluate(preds, truth, thresholds=(0.5, 0.1))
    assert report.metric == "PCK"
    per_joint = report.per_joint.set_index("joint")["PCK@0.5"]
    np.testing.assert_allclose(per_joint, np.round(100 * (fractions < 0.5).mean(0), 2))
    keep = [n for n in s.joint_names if n not in ("pelvis", "thorax")]
    mean = report.summary.set_index("group").loc["Mean", "PCK@0.5"]
    assert mean == pytest.approx(
        100 * (fractions[:, [s.index(n) for n in keep]] < 0.5).mean(), abs=0.01
    )
    assert per_joint["pelvis"] == 100.0 and len(per_joint) == 16
