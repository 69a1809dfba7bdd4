"""Training for detectors' boxes (issue #48 item 3): --aug-scale, --aug-rotation and --aug-shift
set the augmentation both executors draw; a shifted crop moves its targets with it; a run can
start from a model's weights (--init-weights)."""

import numpy as np
import pytest

import keras_hourglass as kh
from keras_hourglass.config import ConfigError, TrainConfig, augmentation_of
from keras_hourglass.inputs.augmentation import Augmentation


def test_the_settings_make_the_augmentation_and_bad_ones_are_refused():
    paper = augmentation_of(TrainConfig())
    assert paper == Augmentation()  # the defaults are the paper's, as before the settings
    wide = augmentation_of(TrainConfig(aug_scale="0.7,1.6", aug_rotation=60.0, aug_shift=0.08))
    assert wide.scale_range == (0.7, 1.6) and wide.scale_sigma == pytest.approx(0.225)
    assert (wide.rotation_max, wide.rotation_sigma, wide.shift_sigma) == (60.0, 30.0, 0.08)
    for bad, message in [
        ({"aug_scale": "1.2,2"}, "lo <= 1 <= hi"),
        ({"aug_scale": "wide"}, "expected lo,hi"),
        ({"aug_rotation": 200.0}, "aug-rotation"),
        ({"aug_shift": -0.1}, "aug-shift"),
    ]:
        with pytest.raises(ConfigError, match=message):
            augmentation_of(TrainConfig(**bad))


def test_shift_draws_are_a_function_of_seed_and_element_and_clamped():
    a = Augmentation(shift_sigma=0.1)
    draws = np.array([a.draw_shift_numpy(3, c) for c in range(4000)])
    np.testing.assert_array_equal(draws[17], a.draw_shift_numpy(3, 17))  # resume-exact
    assert np.abs(draws).max() <= 0.2 + 1e-12  # 2 sigma
    assert 0.08 < draws.std() < 0.1  # a clamped Gaussian of sigma 0.1
    assert (draws != a.draw_shift_numpy(4, 0)).any()
    np.testing.assert_array_equal(Augmentation().draw_shift_numpy(3, 17), [0.0, 0.0])
    # The other draws are untouched by the shift (their own generator).
    assert a.draw_numpy(3, 17)[0] == Augmentation().draw_numpy(3, 17)[0]


def test_a_shifted_crop_moves_its_targets_with_it():
    """The numpy executor's sample: a shift of 0.1 of the side moves every keypoint by -0.1 of
    the crop; the tf.data executor's draw of the same kind stays within its clamp."""
    from keras_hourglass.datasets import PersonRecord
    from keras_hourglass.inputs.numpy_data import transform_sample

    codec = kh.HeatmapCodec(64, 16)
    keypoints = np.random.default_rng(0).uniform(80, 120, (14, 2))
    record = PersonRecord(
        image_path="x.jpg",
        keypoints=keypoints,
        annotated=np.ones(14, bool),
        visible=np.ones(14, bool),
        center=np.array([100.0, 100.0]),
        scale=0.5,
        normalizer=10.0,
        record_id="0",
    )
    image = np.zeros((200, 200, 3), np.float32)
    gains = np.ones(3, np.float32)
    _, _, still = transform_sample(image, record, kh.LSP, codec, (1.0, 0.0, False, gains))
    _, _, moved = transform_sample(
        image, record, kh.LSP, codec, (1.0, 0.0, False, gains, np.array([0.1, -0.05]))
    )
    np.testing.assert_allclose(
        moved["crop_keypoints"] - still["crop_keypoints"], np.tile([-6.4, 3.2], (14, 1)), atol=1e-4
    )

    import tensorflow as tf

    from keras_hourglass.inputs.tf_data import _sample_shift

    shifts = np.array(
        [
            _sample_shift(tf.constant([0, c], tf.int64), Augmentation(shift_sigma=0.1))
            for c in range(200)
        ]
    )
    assert np.abs(shifts).max() <= 0.2 + 1e-6 and shifts.std() > 0.05


def test_a_run_starts_from_a_models_weights(tmp_path):
    """--init-weights: the built model gets the file's weights; another architecture is refused
    in one line."""
    import keras

    from keras_hourglass.training.loop import ConfigError as TrainingConfigError
    from keras_hourglass.training.loop import _start_from

    source = kh.build_hourglass(
        num_stacks=1, num_keypoints=14, filters=16, depth=2, input_shape=(32, 32, 3)
    )
    source.save(tmp_path / "a.keras")
    keras.utils.set_random_seed(1)
    target = kh.build_hourglass(
        num_stacks=1, num_keypoints=14, filters=16, depth=2, input_shape=(32, 32, 3)
    )
    _start_from(target, str(tmp_path / "a.keras"))
    for mine, theirs in zip(target.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    other = kh.build_hourglass(
        num_stacks=1, num_keypoints=14, filters=32, depth=2, input_shape=(32, 32, 3)
    )
    with pytest.raises(TrainingConfigError, match="another architecture"):
        _start_from(other, str(tmp_path / "a.keras"))
