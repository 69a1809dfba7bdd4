import os

import keras
import numpy as np
import pytest
from PIL import Image

import keras_hourglass as kh
from keras_hourglass import datasets as D
from keras_hourglass.datasets import make_synthetic_folder, read_dataset
from keras_hourglass.geometry import PERSON_BOX_PX
from keras_hourglass.inputs.tf_data import make_dataset
from keras_hourglass.network.pck_metric import HeatmapPCK


def test_samples_are_deterministic_per_seed_and_index():
    a = kh.render_stick_figure(7, 3, 64)
    b = kh.render_stick_figure(7, 3, 64)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    c = kh.render_stick_figure(8, 3, 64)
    d = kh.render_stick_figure(7, 4, 64)
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[0], d[0])


def test_figures_are_frontal_people_in_mpii_order():
    images, keypoints, visible = kh.synthetic_arrays(200, seed=0, size=128)
    assert images.shape == (200, 128, 128, 3) and images.dtype == np.uint8
    assert keypoints.shape == (200, 16, 2) and visible.shape == (200, 16)
    s = kh.MPII
    # Facing the camera: the person's right hip and shoulder are on the image's left.
    assert np.all(keypoints[:, s.index("right_hip"), 0] < keypoints[:, s.index("left_hip"), 0])
    assert np.all(
        keypoints[:, s.index("right_shoulder"), 0] < keypoints[:, s.index("left_shoulder"), 0]
    )
    # Upright: head top above the thorax above the pelvis.
    assert np.all(keypoints[:, s.index("head_top"), 1] < keypoints[:, s.index("thorax"), 1])
    assert np.all(keypoints[:, s.index("thorax"), 1] < keypoints[:, s.index("pelvis"), 1])
    # Most joints are annotated; some are not (all-zero targets get exercised).
    assert 0.85 < visible.mean() < 0.995
    # Joints outside the image are never marked annotated.
    outside = np.any((keypoints < -0.5) | (keypoints >= 127.5), axis=-1)
    assert not np.any(visible[outside] > 0)


def test_figure_is_drawn_where_its_joints_are():
    """The thorax-pelvis segment is covered by the shirt: near-constant colour along it."""
    image, keypoints, _ = kh.render_stick_figure(1, 0, 128)
    t = keypoints[kh.MPII.index("thorax")]
    p = keypoints[kh.MPII.index("pelvis")]
    samples = [
        image[int(round(v[1])), int(round(v[0]))].astype(float)
        for v in (p + f * (t - p) for f in np.linspace(0.2, 0.8, 5))
    ]
    assert np.std(samples, axis=0).max() < 30


def test_the_synthetic_dataset_is_an_ordinary_folder_rendered_once(tmp_path):
    """Rendered into PNGs and a custom-format JSON, read like any dataset: exact keypoints, the
    whole image as the person box, the torso normaliser of the exact joints."""
    folder = make_synthetic_folder(
        tmp_path / "s", 64, {"train": {"count": 7, "seed": 5}, "test": {"count": 3, "seed": 9}}
    )
    records = read_dataset("synthetic", folder, "train")
    assert len(records) == 7 and records.skeleton is kh.MPII
    images, keypoints, visible = kh.synthetic_arrays(7, seed=5, size=64)
    torso = (kh.MPII.index("left_shoulder"), kh.MPII.index("right_hip"))
    for record, image, kp, vis in zip(records, images, keypoints, visible):
        np.testing.assert_array_equal(np.asarray(Image.open(record.image_path)), image)
        np.testing.assert_array_equal(record.annotated, vis > 0)
        np.testing.assert_array_equal(record.keypoints[vis > 0], kp[vis > 0])
        np.testing.assert_allclose(record.center, [31.5, 31.5])
        assert record.scale * PERSON_BOX_PX == pytest.approx(64.0)
        assert record.normalizer == pytest.approx(np.linalg.norm(kp[torso[0]] - kp[torso[1]]))
    # Read again, nothing is rendered again; another split is a different seed.
    stamp = os.path.getmtime(records[0].image_path)
    assert read_dataset("synthetic", folder, "train")[0].image_path == records[0].image_path
    assert os.path.getmtime(records[0].image_path) == stamp
    test = read_dataset("synthetic", folder, "test")
    np.testing.assert_array_equal(
        np.asarray(Image.open(test[0].image_path)), kh.render_stick_figure(9, 0, 64)[0]
    )
    with pytest.raises(D.MissingSplit, match="valid"):
        read_dataset("synthetic", folder, "valid")
    with pytest.raises(D.DatasetError, match="other figures"):
        make_synthetic_folder(folder, 32)


@pytest.mark.slow
def test_a_tiny_model_learns_the_synthetic_data_in_under_a_minute(tmp_path):
    """Through the ordinary pipeline, with one target per image and an in-graph PCK metric on
    the last stack (the model gives the target to every stack, metrics too)."""
    keras.utils.set_random_seed(0)
    folder = make_synthetic_folder(
        tmp_path / "s",
        64,
        {"train": {"count": 2400, "seed": 0}, "valid": {"count": 128, "seed": 99}},
    )
    codec = kh.HeatmapCodec(64, 16, 1.0)
    records = read_dataset("synthetic", folder, "train")
    train = make_dataset(records, kh.MPII, codec, 16, training=True, augmentation=False)
    val = make_dataset(
        read_dataset("synthetic", folder, "valid"),
        kh.MPII,
        codec,
        32,
        training=False,
        with_meta=False,
    )
    model = kh.build_hourglass(
        num_stacks=1, skeleton="mpii", filters=32, depth=4, input_shape=(64, 64, 3)
    )
    torso = (kh.MPII.index("left_shoulder"), kh.MPII.index("right_hip"))
    model.compile(learning_rate=2.5e-3, metrics={"heatmaps_0": [HeatmapPCK(codec, torso, 0.2)]})
    before = model.evaluate(val, verbose=0, return_dict=True)
    history = model.fit(train, steps_per_epoch=50, epochs=3, verbose=0)
    after = model.evaluate(val, verbose=0, return_dict=True)
    targets = np.concatenate([np.asarray(t) for _, t in val])
    zero_prediction_loss = float(np.mean(targets**2))
    # Loss falls below predicting all-background, and PCK rises well above the untrained model.
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert after["loss"] < 0.9 * zero_prediction_loss, (after["loss"], zero_prediction_loss)
    assert after["pck"] > before["pck"] + 4.0, (before["pck"], after["pck"])
