"""The TensorFlow-free input executor (`keras_hourglass.inputs.numpy_data`) against tf.data."""

import math

import numpy as np
import pytest
from test_pipeline import LEFT, RIGHT, _centroid, _dot_record

import keras_hourglass as kh
from keras_hourglass import datasets as D
from keras_hourglass.datasets import read_image_floats
from keras_hourglass.inputs import batches, pose_dataset, resolve_executor, spec
from keras_hourglass.inputs.augmentation import Augmentation
from keras_hourglass.inputs.numpy_data import PoseSequence, transform_sample


def _params(meta, i):
    return (
        float(meta["scale_factor"][i]),
        math.radians(float(meta["angle"][i])),
        bool(meta["flip"][i]),
        np.asarray(meta["gains"][i]),
    )


def _compare_with_tf_data(records, skeleton, codec, training, seed=0):
    """Runs tf.data, then the NumPy executor's sample function with the parameters tf.data drew;
    returns the largest differences."""
    ds = pose_dataset(
        records,
        skeleton,
        codec,
        len(records),
        training=training,
        seed=seed,
        with_meta=True,
        executor="tf.data",
    )
    images, targets, meta = next(batches(ds))
    worst = {"image_mad": 0.0, "heatmap": 0.0, "keypoints": 0.0, "flips": 0}
    for i in range(len(images)):
        record = records[int(meta["index"][i])]
        params = _params(meta, i) if training else None
        crop, heatmaps, m = transform_sample(
            read_image_floats(record.image_path), record, skeleton, codec, params
        )
        worst["image_mad"] = max(worst["image_mad"], float(np.abs(crop - images[i]).mean()))
        worst["heatmap"] = max(worst["heatmap"], float(np.abs(heatmaps - targets[i]).max()))
        kp, want = m["crop_keypoints"], meta["crop_keypoints"][i]
        annotated = (
            meta["annotated"][i]
            if not params or not params[2]
            else meta["annotated"][i][list(skeleton.flip_index)]
        )
        worst["keypoints"] = max(
            worst["keypoints"], float(np.abs(kp[annotated] - want[annotated]).max())
        )
        np.testing.assert_array_equal(m["crop_visible"], meta["crop_visible"][i])
        for key in ("center", "scale", "normalizer"):
            np.testing.assert_allclose(m[key], meta[key][i], rtol=1e-6)
        worst["flips"] += int(bool(params and params[2]))
    return worst


def test_same_samples_as_tf_data_on_real_lspet_people(shared_data):
    records = D.read_lsp(
        str(shared_data / "lspet/joints.mat"), str(shared_data / "lspet/images"), skip_bad=True
    )[:24]
    worst = _compare_with_tf_data(records, kh.LSP, kh.HeatmapCodec(256, 64), training=True)
    assert 0 < worst["flips"] < 24  # flipped and unflipped samples both checked
    assert worst["keypoints"] < 1e-3 and worst["heatmap"] < 1e-3, worst
    assert worst["image_mad"] < 0.02, worst
    worst = _compare_with_tf_data(records, kh.LSP, kh.HeatmapCodec(128, 32), training=False)
    assert worst["keypoints"] < 1e-3 and worst["heatmap"] < 1e-3 and worst["image_mad"] < 0.02


def test_same_samples_as_tf_data_on_real_mpii_people(shared_data):
    """MPII people are large (1280x720 photos): the anti-aliased shrink runs on every crop."""
    records = D.read_mpii_h5(
        str(shared_data / "mpii_annot/valid.h5"), str(shared_data / "mpii_samples"), skip_bad=True
    )
    assert len(records) >= 5
    for training, seed in ((True, 3), (True, 4), (False, 0)):
        worst = _compare_with_tf_data(
            list(records) * 2, kh.MPII, kh.HeatmapCodec(256, 64), training, seed
        )
        assert worst["keypoints"] < 1e-3 and worst["heatmap"] < 1e-3, worst
        assert worst["image_mad"] < 0.02, worst


def test_a_keypoint_lands_where_the_image_content_moved(tmp_path):
    record = _dot_record(tmp_path)
    codec = kh.HeatmapCodec(256, 64)
    augmentation = Augmentation(rotation_prob=1.0, colour_range=(1.0, 1.0))
    ds = PoseSequence(
        [record] * 24,
        kh.LSP,
        codec,
        24,
        training=True,
        seed=11,
        augmentation=augmentation,
        with_meta=True,
    )
    images, _, meta = ds[0]
    flips = meta["flip"]
    assert 0 < flips.sum() < len(flips) and np.abs(meta["angle"]).max() > 10
    for i in range(len(images)):
        red, green = _centroid(images[i, ..., 0]), _centroid(images[i, ..., 1])
        left_dot, right_dot = (green, red) if flips[i] else (red, green)
        np.testing.assert_allclose(meta["crop_keypoints"][i, LEFT], left_dot, atol=0.6)
        np.testing.assert_allclose(meta["crop_keypoints"][i, RIGHT], right_dot, atol=0.6)


def test_draws_follow_the_documented_distributions():
    a = Augmentation()
    draws = [a.draw_numpy(7, c) for c in range(20000)]
    scale = np.array([d[0] for d in draws])
    angle = np.degrees([d[1] for d in draws])
    flip = np.array([d[2] for d in draws])
    gains = np.stack([d[3] for d in draws])
    assert scale.min() >= 0.75 and scale.max() <= 1.25
    assert abs(np.mean(scale) - 1.0) < 0.005 and abs(np.std(scale) - 0.119) < 0.005  # 2-sigma clip
    assert np.mean((scale == 0.75) | (scale == 1.25)) == pytest.approx(0.0455, abs=0.006)
    rotated = angle != 0
    assert np.mean(rotated) == pytest.approx(0.4, abs=0.015)
    assert np.abs(angle).max() <= 30.0 and abs(np.mean(angle[rotated])) < 0.5
    assert np.std(angle[rotated]) == pytest.approx(0.119 * 120, abs=0.5)  # clipped N(0, 15)
    assert np.mean(flip) == pytest.approx(0.5, abs=0.015)
    assert gains.min() >= 0.6 and gains.max() <= 1.4
    assert np.allclose(gains.mean(axis=0), 1.0, atol=0.01)
    assert np.allclose(gains.std(axis=0), 0.8 / math.sqrt(12), atol=0.01)  # U(0.6, 1.4)
    # Independent of each other (no shared stream): flip vs rotation, scale vs gains.
    assert abs(np.corrcoef(flip, rotated)[0, 1]) < 0.03
    assert abs(np.corrcoef(scale, gains[:, 0])[0, 1]) < 0.03
    # A function of (seed, counter) only.
    assert a.draw_numpy(7, 123)[0] == draws[123][0] and a.draw_numpy(8, 123)[0] != draws[123][0]


def _records(tmp_path, n):
    import PIL.Image

    rng = np.random.default_rng(5)
    out = []
    for i in range(n):
        path = tmp_path / f"{i}.png"
        PIL.Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(path)
        kp = rng.uniform(10, 35, (14, 2))
        out.append(
            D.PersonRecord(
                str(path),
                kp,
                np.ones(14, bool),
                np.ones(14, bool),
                np.array([25.0, 20.0]),
                0.2,
                10.0,
                str(i),
            )
        )
    return out


def test_resume_shard_and_workers_give_the_same_batches(tmp_path):
    records = _records(tmp_path, 10)
    codec = kh.HeatmapCodec(32, 8)

    def make(**kw):
        return PoseSequence(
            records,
            kh.LSP,
            codec,
            4,
            training=True,
            seed=3,
            with_meta=True,
            **kw,
        )

    whole = make()
    first = [whole[i] for i in range(8)]  # 32 elements: 3.2 epochs, each epoch reshuffled
    indices = np.concatenate([b[2]["index"] for b in first])
    for epoch in range(3):
        assert sorted(indices[10 * epoch : 10 * epoch + 10]) == list(range(10))
    assert list(indices[:10]) != list(indices[10:20])  # a new order each epoch
    resumed = make(start_batch=5)
    for i in range(3):
        np.testing.assert_array_equal(resumed[i][0], first[5 + i][0])
        np.testing.assert_array_equal(resumed[i][1], first[5 + i][1])
    shards = [make(shard=(2, j)) for j in range(2)]
    for i in (0, 6):
        both = np.empty_like(first[i][0])
        both[0::2], both[1::2] = shards[0][i][0], shards[1][i][0]
        np.testing.assert_array_equal(both, first[i][0])
    with pytest.raises(ValueError, match="does not divide over 3"):
        make(shard=(3, 0))
    # Batches prepared by several threads are the same as one by one.
    finite = PoseSequence(records, kh.LSP, codec, 4, training=False, workers=3)
    assert len(finite) == 3
    threaded = list(batches(finite))
    for i, batch in enumerate(threaded):
        np.testing.assert_array_equal(batch[0], finite[i][0])
    assert [len(b[0]) for b in threaded] == [4, 4, 2]


def test_synthetic_records_are_the_rendered_figures_through_both_executors(tmp_path):
    """The synthetic data is an ordinary folder: its crops through either executor are the
    rendered figures themselves (the crop is the whole image), its targets the codec's."""
    import tensorflow as tf  # noqa: F401  (the tf encoder is the reference)

    folder = D.make_synthetic_folder(tmp_path / "synthetic", 64, {"test": {"count": 6, "seed": 1}})
    records = D.read_dataset("synthetic", folder, "test")
    assert len(records) == 6 and records.skeleton is kh.MPII
    codec = kh.HeatmapCodec(64, 16)
    for executor in ("tf.data", "numpy"):
        ds = pose_dataset(records, kh.MPII, codec, 3, training=False, executor=executor)
        images, heatmaps, meta = list(batches(ds))[1]
        image, keypoints, visible = kh.render_stick_figure(1, 4, 64)
        np.testing.assert_allclose(images[1], image / 255.0, atol=1e-6)
        np.testing.assert_allclose(
            meta["crop_keypoints"][1][visible > 0], keypoints[visible > 0], atol=1e-4
        )
        np.testing.assert_allclose(
            heatmaps[1], np.asarray(codec.encode(keypoints, visible)), atol=2e-5
        )
        # The batch spec: the same fields, dtypes and shapes from both executors.
        want = spec.meta_spec(kh.MPII.num_joints)
        assert sorted(meta) == sorted(want)
        for name, (dtype, shape) in want.items():
            assert meta[name].dtype == np.dtype(dtype) and meta[name].shape[1:] == shape, name


def test_executor_choice():
    assert resolve_executor("auto") == "tf.data"  # TensorFlow imports in the test environment
    assert resolve_executor("numpy") == "numpy"
    with pytest.raises(ValueError, match="unknown input executor"):
        resolve_executor("torch")


def test_the_device_executor_is_for_training_on_jax(monkeypatch):
    with pytest.raises(ValueError, match="training batches only"):
        resolve_executor("device")
    with pytest.raises(ValueError, match="KERAS_BACKEND=jax"):  # the tests run on TensorFlow
        resolve_executor("device", training=True)
    with pytest.raises(ValueError, match="choose one of .*'device'"):
        resolve_executor("torch", training=True)
    # Set for every command by the environment, it is training's choice: evaluation reads on
    # the host (auto), training refuses it here (not JAX).
    monkeypatch.setenv("KERAS_HOURGLASS_EXECUTOR", "device")
    assert resolve_executor() == "tf.data"
    with pytest.raises(ValueError, match="KERAS_BACKEND=jax"):
        resolve_executor(training=True)
