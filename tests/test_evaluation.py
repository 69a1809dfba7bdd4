"""Evaluation protocols against the published numbers, prediction files, and geometry."""

import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import MPII_VALID_ANNOTATED, PYTHON, ROOT, randomize_weights

import keras_hourglass as kh
from keras_hourglass import datasets as D
from keras_hourglass.evaluation import protocols as E

# bearpaw/pytorch-pose README, hg_s2_b1 (last), MPII validation PCKh@0.5 (../shared/data/mpii_preds/SOURCE.md).
PUBLISHED_S2 = {
    "Head": 95.80,
    "Shoulder": 94.57,
    "Elbow": 88.12,
    "Wrist": 83.31,
    "Hip": 86.24,
    "Knee": 80.88,
    "Ankle": 77.44,
    "Mean": 86.76,
}


def _evaluate_cli(args, env):
    """Runs eval/evaluate.py as a user would."""
    return subprocess.run(
        [PYTHON, str(ROOT / "eval/evaluate.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_skip_bad_lists_lspet_record_8074_in_evaluate_and_show_batch(
    shared_data, tmp_path, python_env
):
    """A record whose joint lies far outside its image stops evaluate and show_batch with its
    record named; with --skip-bad it is skipped and listed like a missing image, and
    --held-out takes the last people present and usable."""
    model = kh.build_hourglass(
        num_stacks=1, skeleton="lsp", filters=16, depth=4, input_shape=(64, 64, 3)
    )
    model.save(tmp_path / "m.keras")
    lspet = ["--dataset", "lspet", "--data-dir", str(shared_data / "lspet")]
    result = _evaluate_cli(
        ["--model", str(tmp_path / "m.keras"), *lspet, "--skip-bad", "--held-out", "8"]
        + ["--out", str(tmp_path / "e")],
        python_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skipped 1 (coordinates far outside the image): 8074" in result.stdout
    assert "skipped 1000 (image does not exist)" in result.stdout
    ids = pd.read_csv(tmp_path / "e/predictions.csv")["record"].astype(str).unique()
    assert sorted(ids, key=int) == [str(i) for i in range(9992, 10000)]
    show = [PYTHON, str(ROOT / "train/show_batch.py"), *lspet, "--out", str(tmp_path / "b.png")]
    refused = subprocess.run(show, env=python_env, capture_output=True, text=True, timeout=600)
    assert refused.returncode != 0 and "record 4000" in refused.stderr  # the missing images
    shown = subprocess.run(
        show + ["--skip-bad"], env=python_env, capture_output=True, text=True, timeout=600
    )
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "skipped 1 (coordinates far outside the image): 8074" in shown.stdout
    assert (tmp_path / "b.png").is_file()


def test_prediction_file_mode_reproduces_the_published_pckh_row(shared_data, tmp_path, python_env):
    out = tmp_path / "s2"
    result = _evaluate_cli(
        [
            "--preds",
            str(shared_data / "mpii_preds/bearpaw-hg_s2_b1.mat"),
            "--dataset",
            "mpii",
            "--annotations",
            str(shared_data / "mpii_annot/detections_our_format.mat"),
            "--out",
            str(out),
        ],
        python_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns[:2]) == ["group", "PCKh@0.5"]
    assert list(summary.group) == list(PUBLISHED_S2)
    for group, value in PUBLISHED_S2.items():
        got = summary.loc[summary.group == group, "PCKh@0.5"].iloc[0]
        assert got == pytest.approx(value, abs=0.005), group
    assert "86.76" in result.stdout
    for name in ("per_joint.csv", "curve.csv", "predictions.csv", "curve.png"):
        assert (out / name).is_file(), name
    curve = pd.read_csv(out / "curve.csv")
    assert curve.threshold.iloc[-1] == 0.5 and curve.Mean.iloc[-1] == pytest.approx(86.76, abs=0.01)
    assert curve.Mean.is_monotonic_increasing
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == 2958 * 16
    # predictions.csv (0-based) read back as --preds with the default --preds-base auto: the
    # same table (an MPII .mat is 1-based, our CSV is not; auto once shifted the CSV by 1 px).
    again = _evaluate_cli(
        [
            *("--preds", str(out / "predictions.csv"), "--dataset", "mpii"),
            *("--annotations", str(shared_data / "mpii_annot/detections_our_format.mat")),
            *("--out", str(out / "again")),
        ],
        python_env,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    pd.testing.assert_frame_equal(pd.read_csv(out / "again/summary.csv"), summary)
    # --out naming a file: a usage error, not a traceback.
    result = _evaluate_cli(["--preds", "x.mat", "--out", str(out / "summary.csv")], python_env)
    assert result.returncode == 2 and "is a file; name a folder" in result.stderr


def test_other_published_figures_and_the_weighted_mean(shared_data):
    gt = E.load_mpii_official(str(shared_data / "mpii_annot/detections_our_format.mat"))
    np.testing.assert_array_equal(  # annotated counts as SOURCE.md lists them
        gt.annotated.sum(axis=0), MPII_VALID_ANNOTATED
    )
    s8 = E.evaluate(E.load_predictions(str(shared_data / "mpii_preds/bearpaw-hg_s8_b1.mat")), gt)
    mean = s8.summary.set_index("group").loc["Mean"]
    assert mean["PCKh@0.5"] == pytest.approx(88.64, abs=0.005)  # bearpaw's 8-stack row
    # The count-weighted mean (HRNet/mmpose) by hand from the per-joint values.
    per_joint = s8.per_joint.set_index("joint")
    keep = [j for j in kh.MPII.joint_names if j not in ("pelvis", "thorax")]
    weighted = np.average(per_joint.loc[keep, "PCKh@0.5"], weights=per_joint.loc[keep, "count"])
    assert mean["PCKh@0.5 weighted"] == pytest.approx(weighted, abs=0.01)
    # The authors' own model (Newell et al.): about 88.0 on this split (RECIPE.md).
    newell = E.evaluate(E.load_predictions(str(shared_data / "mpii_preds/newell.h5")), gt)
    assert newell.summary.set_index("group").loc["Mean", "PCKh@0.5"] == pytest.approx(88.0, abs=0.1)


def test_reader_ground_truth_with_a_pixel_base_shift(shared_data, tmp_path, python_env):
    """valid.h5 as ground truth (0-based reader) and 1-based predictions: SOURCE.md's 95.84."""
    out = tmp_path / "h5"
    result = _evaluate_cli(
        [
            "--preds",
            str(shared_data / "mpii_preds/bearpaw-hg_s2_b1.mat"),
            "--dataset",
            "mpii",
            "--annotations",
            str(shared_data / "mpii_annot/valid.h5"),
            "--image-dir",
            str(shared_data / "mpii_samples"),
            "--out",
            str(out),
        ],
        python_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = pd.read_csv(out / "summary.csv").set_index("group")
    assert summary.loc["Head", "PCKh@0.5"] == pytest.approx(95.84, abs=0.005)
    assert (out / "sheet.png").is_file()  # the 5 shared images are drawn


def test_csv_predictions_round_trip(shared_data, tmp_path):
    gt = E.load_mpii_official(str(shared_data / "mpii_annot/detections_our_format.mat"))
    preds = E.load_predictions(str(shared_data / "mpii_preds/bearpaw-hg_s2_b1.mat"))
    report = E.evaluate(preds, gt)
    report.predictions[["record", "joint", "x", "y"]].to_csv(tmp_path / "p.csv", index=False)
    again = E.load_predictions(str(tmp_path / "p.csv"))
    np.testing.assert_allclose(again, preds - 1, atol=1e-4)  # the CSV is 0-based, the .mat not


def test_bad_prediction_files_are_explained(shared_data):
    gt = E.load_mpii_official(str(shared_data / "mpii_annot/detections_our_format.mat"))
    preds = E.load_predictions(str(shared_data / "mpii_preds/bearpaw-hg_s2_b1.mat"))
    with pytest.raises(E.EvaluationError, match="number of rows"):
        E.evaluate(preds[:-1], gt)
    with pytest.raises(E.EvaluationError, match="number of joints"):
        E.evaluate(preds[:, :14], gt)
    nan = preds.copy()
    nan[:100, 9] = np.nan
    expected = int(gt.annotated[:100, 9].sum())
    with pytest.warns(UserWarning, match=f"{expected} annotated joints .* NaN"):
        report = E.evaluate(nan, gt)
    clean = E.evaluate(preds, gt)
    head = lambda r: r.per_joint.set_index("joint").loc["head_top", "PCKh@0.5"]  # noqa: E731
    assert head(report) < head(clean) - 2.0  # NaN counted as wrong, not dropped


def test_pckh_needs_head_boxes(shared_data):
    gt = E.load_annotations(str(shared_data / "mpii_samples/test_mpii.json"), "mpii")
    with pytest.raises(E.EvaluationError, match="no head boxes"):
        E.evaluate(gt.keypoints.copy(), gt)


def test_lsp_pck_uses_the_torso():
    rng = np.random.default_rng(0)
    keypoints = rng.uniform(0, 200, (30, 14, 2))
    records = [
        D.PersonRecord(
            "x",
            k,
            np.ones(14, bool),
            np.ones(14, bool),
            k.mean(0),
            1.0,
            float(np.linalg.norm(k[9] - k[2])),
            str(i),
        )
        for i, k in enumerate(keypoints)
    ]
    gt = E.ground_truth_from_records(records, kh.LSP)
    assert gt.metric == ("PCK", 0.2)
    torso = np.linalg.norm(keypoints[:, 9] - keypoints[:, 2], axis=-1)
    preds = keypoints.copy()
    preds[:, 0, 0] += 0.19 * torso  # right ankle just inside 0.2 torso
    preds[:, 1, 0] += 0.21 * torso  # right knee just outside
    report = E.evaluate(preds, gt)
    per_joint = report.per_joint.set_index("joint")
    assert per_joint.loc["right_ankle", "PCK@0.2"] == 100.0
    assert per_joint.loc["right_knee", "PCK@0.2"] == 0.0
    assert report.curve.threshold.iloc[-1] == 0.2


def _geometry_check(records, skeleton, normaliser_name):
    """GT -> heatmaps of the crop and of its mirror -> flip test -> decode -> original pixels."""
    import tensorflow as tf  # noqa: F401

    from keras_hourglass.deployment.inference import average_with_flipped
    from keras_hourglass.inputs.augmentation import Augmentation
    from keras_hourglass.inputs.tf_data import make_dataset

    codec = kh.HeatmapCodec(256, 64)
    plain = make_dataset(records, skeleton, codec, 8, training=False)
    mirror = Augmentation(scale_sigma=0.0, rotation_prob=0.0, flip_prob=1.0, colour_range=(1, 1))
    flipped = make_dataset(
        records,
        skeleton,
        codec,
        8,
        training=True,
        augmentation=mirror,
        repeat=False,
        shuffle=False,
        with_meta=True,
        drop_remainder=False,
    )
    preds = np.zeros((len(records), skeleton.num_joints, 2))
    for (images, targets, meta), (f_images, f_targets, _) in zip(plain, flipped):
        np.testing.assert_allclose(f_images.numpy(), images.numpy()[:, :, ::-1], atol=1e-4)
        heatmaps = average_with_flipped(targets, f_targets, skeleton.flip_index)
        keypoints, _ = codec.decode(heatmaps)
        preds[meta["index"].numpy()] = np.asarray(
            kh.crop_to_original(keypoints, meta["center"], meta["scale"], 256)
        )
    gt = E.ground_truth_from_records(records, skeleton)
    report = E.evaluate(preds, gt)
    scales = np.array([r.scale for r in records])
    # Bound: the codec is within 1 crop px per axis = 200 * scale / 256 original px, so the
    # error is at most sqrt(2) * 200 / 256 = 1.105 px per unit of scale.
    inside = np.stack([r.annotated for r in records])
    for i, r in enumerate(records):
        crop = (r.keypoints - r.center) * 256 / (200 * r.scale) + 127.5
        inside[i] &= np.all((crop >= -0.5) & (crop < 255.5), axis=1)
    error = np.linalg.norm(preds - gt.keypoints, axis=-1) / scales[:, None]
    assert error[inside].max() <= np.sqrt(2) * 200 / 256 + 1e-3
    # Uniform sub-pixel offsets give a mean near 0.6; "well under a pixel" per unit of scale.
    assert error[inside].mean() < 0.75
    return report, inside


def test_geometry_end_to_end_on_real_mpii_images(shared_data):
    records = D.read_mpii_h5(
        str(shared_data / "mpii_annot/valid.h5"), str(shared_data / "mpii_samples"), skip_bad=True
    )
    assert len(records) == 5
    report, inside = _geometry_check(records, kh.MPII, "head")
    assert inside.sum() == np.stack([r.annotated for r in records]).sum()
    summary = report.summary.set_index("group")
    assert (summary["PCKh@0.5"] == 100.0).all()


def test_geometry_end_to_end_on_real_lspet_images(shared_data):
    records = D.read_lsp(
        str(shared_data / "lspet/joints.mat"), str(shared_data / "lspet/images"), skip_bad=True
    )[:64]
    report, _ = _geometry_check(records, kh.LSP, "torso")
    assert report.summary.set_index("group").loc["Mean", "PCK@0.2"] == 100.0


@pytest.mark.slow
def test_model_mode_with_keras_file_and_saved_model(shared_data, tmp_path, python_env):
    from keras_hourglass.deployment.saved_model import export_for_serving

    model = kh.build_hourglass(
        num_stacks=1, skeleton="mpii", filters=16, depth=4, input_shape=(64, 64, 3)
    )
    rng = np.random.default_rng(0)
    randomize_weights(model, rng, scale=0.1)
    model.save(tmp_path / "m.keras")
    saved = export_for_serving(model, str(tmp_path / "sm"), kh.MPII)
    tables = {}
    for name, path in (("keras", tmp_path / "m.keras"), ("saved", saved)):
        out = tmp_path / name
        result = _evaluate_cli(
            [
                "--model",
                str(path),
                "--dataset",
                "mpii",
                "--annotations",
                str(shared_data / "mpii_annot/valid.h5"),
                "--data-dir",
                str(shared_data / "mpii_samples"),
                "--skip-bad",
                "--out",
                str(out),
            ],
            python_env,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert "skipped 2953 (image does not exist)" in result.stdout
        tables[name] = pd.read_csv(out / "predictions.csv")
        assert len(tables[name]) == 5 * 16 and (out / "sheet.png").is_file()
    # Same scores; same keypoints except where an untrained model's flat heatmap has two
    # near-equal maxima that float rounding (XLA vs plain graph) can order either way.
    np.testing.assert_allclose(
        tables["keras"]["confidence"], tables["saved"]["confidence"], rtol=1e-3, atol=1e-5
    )
    same = np.all(
        np.abs(tables["keras"][["x", "y"]].to_numpy() - tables["saved"][["x", "y"]].to_numpy())
        < 1e-2,
        axis=1,
    )
    assert same.mean() >= 0.95
    # A model with the wrong number of joints is refused with a message.
    bad = kh.build_hourglass(
        num_stacks=1, num_keypoints=14, filters=16, depth=4, input_shape=(64, 64, 3)
    )
    bad.save(tmp_path / "bad.keras")
    result = _evaluate_cli(
        [
            "--model",
            str(tmp_path / "bad.keras"),
            "--dataset",
            "mpii",
            "--annotations",
            str(shared_data / "mpii_annot/valid.h5"),
            "--data-dir",
            str(shared_data / "mpii_samples"),
            "--skip-bad",
            "--out",
            str(tmp_path / "b"),
        ],
        python_env,
    )
    assert result.returncode != 0 and "predicts 14 joints, but mpii has 16" in result.stderr


def test_prediction_sheet_draws_predictions_on_the_evaluation_crop(shared_data, tmp_path):
    """The sheet's tiles are the geometry module's evaluation crops, with each prediction drawn
    where the same map puts it: here the ground truth of the MPII samples, one tile per person."""
    from PIL import Image

    from keras_hourglass import datasets, geometry
    from keras_hourglass.drawing import SIDE_COLOURS

    folder = shared_data / "mpii_samples"
    records = datasets.read_mpii_json(str(folder / "test_mpii.json"), str(folder))[:2]
    gt = E.ground_truth_from_records(records, kh.MPII)
    gt.normalizers = np.full(len(records), 50.0)  # the JSON has no head boxes
    preds = gt.keypoints.copy()
    preds[1] += 3.0  # person 1 is the worst, person 0 the best
    report = E.evaluate(preds, gt)
    size = 96
    assert E.write_prediction_sheet(report, gt, preds, str(tmp_path / "s.png"), count=1, size=size)
    sheet = np.asarray(Image.open(tmp_path / "s.png").convert("RGB")).astype(int)
    assert sheet.shape == (2 * size, size, 3)
    colours = np.array(list(SIDE_COLOURS.values()))
    for tile, person in enumerate((1, 0)):  # worst on top
        r = records[person]
        a, center = geometry.crop_matrix(r.center, r.scale, size)
        image = np.asarray(Image.open(r.image_path).convert("RGB"), np.float32) / 255.0
        crop = np.round(255 * geometry.warp(image, a, center, size))
        points = geometry.source_to_crop_points(preds[person], a, center, size)
        part = sheet[tile * size : (tile + 1) * size]
        drawn = np.zeros((size, size), bool)
        for x, y in np.round(points[r.annotated]).astype(int):
            if 2 <= x < size - 2 and 2 <= y < size - 2:
                patch = part[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 1, 3)
                assert (np.abs(patch - colours[None]).sum(-1) == 0).any(), (person, x, y)
                drawn[max(y - 8, 0) : y + 9, max(x - 8, 0) : x + 9] = True
        # Away from the joints the tile is the crop, pixel for pixel, but for the limbs drawn
        # across it (a misplaced or differently resampled crop would differ almost everywhere).
        far = ~drawn
        same = np.abs(part[far] - crop[far]).max(-1) <= 1
        assert far.sum() > size * size // 4 and same.mean() > 0.9, same.mean()


def test_prediction_files_written_here_reproduce_the_published_row(shared_data, tmp_path):
    """preds.mat as evaluate.py and predict.py write it (N x K x 2, 1-based for MPII) is what
    the published files are: bearpaw's predictions written back score the published row."""
    gt = E.load_mpii_official(str(shared_data / "mpii_annot/detections_our_format.mat"))
    published = E.load_predictions(str(shared_data / "mpii_preds/bearpaw-hg_s2_b1.mat"))
    path = E.write_prediction_file(published - 1.0, str(tmp_path / "preds.mat"), base=1)
    again = E.load_predictions(path)
    np.testing.assert_allclose(again, published, atol=1e-4)
    mean = E.evaluate(again, gt).summary.set_index("group").loc["Mean", "PCKh@0.5"]
    assert mean == pytest.approx(PUBLISHED_S2["Mean"], abs=0.005)
