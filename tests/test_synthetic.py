import keras
import numpy as np
import pytest

import keras_hourglass as kh
from keras_hourglass.pck_metric import HeatmapPCK


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


def test_dataset_serves_images_and_one_target_per_stack():
    codec = kh.HeatmapCodec(64, 16, 1.0)
    ds = kh.synthetic_dataset(
        10, codec, batch_size=4, num_stacks=3, seed=5, shuffle=False, with_keypoints=True
    )
    images, targets, extra = next(iter(ds))
    assert images.shape == (4, 64, 64, 3) and float(np.max(images)) <= 1.0
    assert sorted(targets) == ["heatmaps_0", "heatmaps_1", "heatmaps_2"]
    want_images, keypoints, visible = kh.synthetic_arrays(4, seed=5, size=64)
    np.testing.assert_allclose(np.asarray(images), want_images / 255.0, atol=1e-6)
    want = np.asarray(codec.encode(keypoints, visible))
    for value in targets.values():
        np.testing.assert_allclose(np.asarray(value), want, atol=1e-6)
    np.testing.assert_allclose(np.asarray(extra["keypoints"]), keypoints)


@pytest.mark.slow
def test_a_tiny_model_learns_the_synthetic_data_in_under_a_minute():
    keras.utils.set_random_seed(0)
    codec = kh.HeatmapCodec(64, 16, 1.0)
    train = kh.synthetic_dataset(4000, codec, 16, 1, seed=0, repeat=True)
    val = kh.synthetic_dataset(128, codec, 32, 1, seed=99, shuffle=False)
    model = kh.build_hourglass(
        num_stacks=1, num_keypoints=16, filters=32, depth=4, input_shape=(64, 64, 3)
    )
    torso = (kh.MPII.index("left_shoulder"), kh.MPII.index("right_hip"))
    kh.compile_hourglass(
        model, learning_rate=2.5e-3, metrics={"heatmaps_0": [HeatmapPCK(codec, torso, 0.2)]}
    )
    before = model.evaluate(val, verbose=0, return_dict=True)
    history = model.fit(train, steps_per_epoch=50, epochs=3, verbose=0)
    after = model.evaluate(val, verbose=0, return_dict=True)
    targets = np.concatenate([np.asarray(t["heatmaps_0"]) for _, t in val])
    zero_prediction_loss = float(np.mean(targets**2))
    # Loss falls below predicting all-background, and PCK rises well above the untrained model.
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert after["loss"] < 0.9 * zero_prediction_loss, (after["loss"], zero_prediction_loss)
    assert after["pck"] > before["pck"] + 4.0, (before["pck"], after["pck"])
