import numpy as np
import pytest

import keras_hourglass as kh
from keras_hourglass.network.codec import flip_keypoints


def _encode(codec, keypoints, visible):
    return np.asarray(codec.encode(keypoints, visible))


def _reference_heatmaps(keypoints, visible, input_size, heatmap_size, sigma):
    """Float64 NumPy reference: the Gaussian at the sub-pixel heatmap position."""
    stride = input_size / heatmap_size
    ys, xs = np.mgrid[0:heatmap_size, 0:heatmap_size].astype(np.float64)
    out = np.zeros((heatmap_size, heatmap_size, len(keypoints)))
    for k, ((x, y), v) in enumerate(zip(keypoints.astype(np.float64), visible)):
        inside = -0.5 <= x < input_size - 0.5 and -0.5 <= y < input_size - 0.5
        if v and inside:
            mx, my = (x + 0.5) / stride - 0.5, (y + 0.5) / stride - 0.5
            out[..., k] = np.exp(-((xs - mx) ** 2 + (ys - my) ** 2) / (2 * sigma**2))
    return out


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_encode_matches_float64_numpy_reference(sigma):
    rng = np.random.default_rng(0)
    codec = kh.HeatmapCodec(256, 64, sigma)
    keypoints = rng.uniform(-20, 275, (16, 2)).astype(np.float32)
    visible = rng.uniform(size=16) > 0.2
    got = _encode(codec, keypoints, visible)
    want = _reference_heatmaps(keypoints, visible, 256, 64, sigma)
    assert got.shape == (64, 64, 16) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=2e-6)
    assert (want.max(axis=(0, 1)) > 0.5).sum() >= 8  # the check is not vacuous


def test_encode_peak_sits_on_the_keypoint():
    codec = kh.HeatmapCodec(256, 64, 1.0)
    # Input pixel 4j + 1.5 is the centre of heatmap pixel j: peak exactly 1 there.
    heatmaps = _encode(codec, np.array([[4 * 10 + 1.5, 4 * 20 + 1.5]]), [1])
    assert heatmaps[20, 10, 0] == pytest.approx(1.0)
    assert np.unravel_index(heatmaps[..., 0].argmax(), (64, 64)) == (20, 10)


def test_unannotated_and_outside_joints_get_zero_heatmaps():
    codec = kh.HeatmapCodec(64, 16, 1.0)
    keypoints = np.array([[10, 10], [20, 20], [-3, 30], [30, 64.2], [np.nan, 5]], np.float32)
    visible = np.array([1, 0, 1, 1, 1])
    heatmaps = _encode(codec, keypoints, visible)
    assert heatmaps[..., 0].max() > 0.5
    for k in range(1, 5):
        assert np.all(heatmaps[..., k] == 0), k
    _, scores = codec.decode(heatmaps[None])
    np.testing.assert_array_equal(np.asarray(scores)[0, 1:], 0.0)


def test_encode_is_batched_and_runs_in_a_tf_data_graph():
    import tensorflow as tf

    codec = kh.HeatmapCodec(64, 16, 1.0)
    rng = np.random.default_rng(1)
    keypoints = rng.uniform(0, 63, (4, 3, 2)).astype(np.float32)
    visible = np.ones((4, 3), np.float32)
    batched = _encode(codec, keypoints, visible)
    ds = tf.data.Dataset.from_tensor_slices((keypoints, visible)).map(codec.encode)
    mapped = np.stack([np.asarray(h) for h in ds])
    assert batched.shape == (4, 16, 16, 3)
    np.testing.assert_allclose(mapped, batched, atol=1e-7)


@pytest.mark.parametrize("input_size,heatmap_size", [(256, 64), (64, 16), (128, 32)])
def test_decode_encode_round_trip_is_within_a_quarter_heatmap_pixel(input_size, heatmap_size):
    """The bound proved in HeatmapCodec's docstring: |error| <= stride / 4 input px per axis."""
    codec = kh.HeatmapCodec(input_size, heatmap_size, 1.0)
    stride = input_size / heatmap_size
    rng = np.random.default_rng(input_size)
    # Keep keypoints one heatmap pixel away from the border, where both neighbours exist.
    keypoints = rng.uniform(1.5 * stride, input_size - 1.5 * stride, (200, 8, 2)).astype(np.float32)
    heatmaps = _encode(codec, keypoints, np.ones((200, 8)))
    decoded, scores = codec.decode(heatmaps)
    error = np.abs(np.asarray(decoded) - keypoints)
    assert error.max() <= stride / 4 + 1e-4, error.max()
    assert error.max() > 0.9 * stride / 4  # the bound is tight, so it really was tested
    assert np.all(np.asarray(scores) > np.exp(-0.25))  # peak >= exp(-(0.5^2+0.5^2)/2)


def test_quarter_shift_can_be_switched_off_and_helps():
    rng = np.random.default_rng(2)
    keypoints = rng.uniform(8, 248, (300, 4, 2)).astype(np.float32)
    on = kh.HeatmapCodec(256, 64, shift=True)
    off = kh.HeatmapCodec(256, 64, shift=False)
    heatmaps = _encode(on, keypoints, np.ones((300, 4)))
    err_on = np.abs(np.asarray(on.decode(heatmaps)[0]) - keypoints).mean()
    err_off = np.abs(np.asarray(off.decode(heatmaps)[0]) - keypoints).mean()
    # Uniform sub-pixel offsets: mean |d| = 1/4 heatmap px without shift, 1/8 with it.
    assert err_off == pytest.approx(1.0, abs=0.1)
    assert err_on == pytest.approx(0.5, abs=0.1)


def test_flip_twice_is_identity_and_flip_matches_mirrored_targets():
    skeleton = kh.MPII
    codec = kh.HeatmapCodec(256, 64, 1.0)
    rng = np.random.default_rng(3)
    keypoints = rng.uniform(0, 255, (2, 16, 2)).astype(np.float32)
    visible = np.ones((2, 16))
    heatmaps = _encode(codec, keypoints, visible)
    twice = codec.flip_heatmaps(
        codec.flip_heatmaps(heatmaps, skeleton.flip_index), skeleton.flip_index
    )
    np.testing.assert_array_equal(np.asarray(twice), heatmaps)
    # Heatmaps of the mirrored pose, flipped back, are the original heatmaps: the pixel
    # alignment needs no shift under the project's convention.
    mirrored = np.asarray(flip_keypoints(keypoints, 256, skeleton.flip_index))
    back = np.asarray(codec.flip_heatmaps(_encode(codec, mirrored, visible), skeleton.flip_index))
    np.testing.assert_allclose(back, heatmaps, atol=1e-5)
    # And a mirrored image's decoded keypoints map onto the original's.
    decoded, _ = codec.decode(heatmaps)
    decoded_flipped, _ = codec.decode(back)
    np.testing.assert_allclose(np.asarray(decoded_flipped), np.asarray(decoded), atol=1e-4)


def test_flip_swaps_left_and_right_joints():
    skeleton = kh.MPII
    flip = skeleton.flip_index
    assert flip == (5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10)  # RECIPE.md
    keypoints = np.zeros((1, 16, 2), np.float32)
    keypoints[0, skeleton.index("left_wrist")] = (10, 20)
    mirrored = np.asarray(flip_keypoints(keypoints, 100, flip))
    np.testing.assert_allclose(mirrored[0, skeleton.index("right_wrist")], (89, 20))


def test_codec_config_round_trip_and_bad_arguments():
    codec = kh.HeatmapCodec(128, 32, 1.5, shift=False)
    assert kh.HeatmapCodec.from_config(codec.get_config()).get_config() == codec.get_config()
    with pytest.raises(ValueError, match="multiple"):
        kh.HeatmapCodec(100, 32)
    with pytest.raises(ValueError, match="sigma"):
        kh.HeatmapCodec(64, 16, sigma=0)
