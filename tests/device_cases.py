"""The device executor's cases (`keras_hourglass.inputs.device_data`: crops, augmentation and
targets made by JAX from a bank of person cuts) against the numpy executor, which
tests/test_pydata.py checks against tf.data. JAX runs on the CPU here; the batches are the same
arrays a GPU makes. They run JAX in the test process, whose threads make any later fork unsafe,
so tests/test_device_data.py runs this file in a pytest process of its own (its name keeps the
main run from collecting it)."""

import math

import numpy as np
import pytest
from test_pipeline import LEFT, RIGHT, _centroid, _dot_record

import keras_hourglass as kh
from keras_hourglass import datasets as D
from keras_hourglass.datasets import read_image_floats
from keras_hourglass.inputs import pose_dataset
from keras_hourglass.inputs.augmentation import Augmentation
from keras_hourglass.inputs.device_data import DevicePoseSequence, PersonBank, cut_side
from keras_hourglass.inputs.numpy_data import PoseSequence, transform_sample


def _lspet(shared_data, count):
    return D.read_lsp(
        str(shared_data / "lspet/joints.mat"), str(shared_data / "lspet/images"), skip_bad=True
    )[:count]


def _psnr(a, b):
    return 10 * math.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-12))


def _against_numpy(ds, index):
    """(worst crop PSNR, worst heatmap difference) of batch `index` against the numpy
    executor's sample function with the same draws."""
    images, heatmaps = (np.asarray(x) for x in ds[index])
    psnr, heat = [], 0.0
    for j, counter in enumerate(ds.counters(index)):
        record = ds.records[ds.order(counter)]
        crop, target, _ = transform_sample(
            read_image_floats(record.image_path), record, ds.skeleton, ds.codec, ds.params(counter)
        )
        psnr.append(_psnr(crop, images[j]))
        heat = max(heat, float(np.abs(target - heatmaps[j]).max()))
    return min(psnr), heat


def test_same_samples_as_the_numpy_executor_on_real_lspet_people(shared_data):
    """Measured: at 256 px the worst crop is 40 dB from the numpy executor's single warp (the
    two resamplings and the 8-bit cut differ by < 1% of the range), at 64 px 26 dB (each person
    is shrunk 2-3x: the cut's anti-aliased shrink and the crop's bilinear taps alias a little
    differently); the heatmaps agree to float32 rounding."""
    records = _lspet(shared_data, 24)
    for size, min_psnr in ((256, 36.0), (64, 22.0)):
        codec = kh.HeatmapCodec(size, size // 4)
        bank = PersonBank.build(records, codec, workers=2)
        assert (
            bank.side
            == cut_side(size, Augmentation())
            == math.ceil(1.25 * (math.sqrt(3) / 2 + 0.5) * (size - 1)) + 3
        )
        ds = DevicePoseSequence(bank, kh.LSP, codec, 12, training=True, seed=3)
        flips = [ds.params(c)[2] for c in ds.counters(0) + ds.counters(1)]
        assert 0 < sum(flips) < len(flips)  # flipped and unflipped samples both checked
        for index in (0, 1):
            psnr, heat = _against_numpy(ds, index)
            assert psnr > min_psnr and heat < 1e-4, (size, psnr, heat)
        plain = DevicePoseSequence(bank, kh.LSP, codec, 12, training=False)
        psnr, heat = _against_numpy(plain, 0)
        assert psnr > min_psnr and heat < 1e-4, (size, psnr, heat)


def test_the_cut_holds_the_largest_augmented_crop(shared_data, monkeypatch):
    """Zoomed out to the augmentation's limit at +-30 degrees, flipped or not: a cut 16 px wider
    than `cut_side` gives the same crops (nothing fell outside the cut), and they are the numpy
    executor's (measured 35.5 dB at 128 px: the zoom's second resampling)."""
    from keras_hourglass.inputs import device_data

    records = _lspet(shared_data, 4)
    codec = kh.HeatmapCodec(128, 32)
    extremes = [
        (1.25, math.radians(a), f, np.ones(3, np.float32)) for a in (-30, 30) for f in (0, 1)
    ]

    class Extreme(DevicePoseSequence):
        def params(self, counter):
            return extremes[counter % 4]

    def crops(bank):
        ds = Extreme(bank, kh.LSP, codec, 4, training=True, shuffle=False)
        return ds, np.asarray(ds[0][0])

    ds, tight = crops(PersonBank.build(records, codec))
    psnr, heat = _against_numpy(ds, 0)
    assert psnr > 33.0 and heat < 1e-4, (psnr, heat)
    narrow = cut_side(128, Augmentation())
    monkeypatch.setattr(device_data, "cut_side", lambda size, augmentation: narrow + 16)
    wide = PersonBank.build(records, codec)
    assert wide.side == narrow + 16
    # (OpenCV's 1/32 px fixed-point taps and the 8-bit cut round a little differently)
    np.testing.assert_allclose(crops(wide)[1], tight, atol=0.01)
    monkeypatch.setattr(device_data, "cut_side", lambda size, augmentation: narrow - 8)
    assert np.abs(crops(PersonBank.build(records, codec))[1] - tight).max() > 0.1  # it can fail


def test_a_heatmap_peak_lands_where_the_image_content_moved(tmp_path):
    """Independent of the numpy executor: the red and green dots of a photo move, rotate and
    swap sides with the crop exactly as the target's Gaussian centres do."""
    record = _dot_record(tmp_path)
    codec = kh.HeatmapCodec(256, 64)
    augmentation = Augmentation(rotation_prob=1.0, colour_range=(1.0, 1.0))
    bank = PersonBank.build([record], codec, augmentation)
    ds = DevicePoseSequence(
        bank, kh.LSP, codec, 24, training=True, seed=11, augmentation=augmentation
    )
    images, heatmaps = (np.asarray(x) for x in ds[0])
    draws = [ds.params(c) for c in ds.counters(0)]
    assert 0 < sum(d[2] for d in draws) < 24 and max(abs(d[1]) for d in draws) > math.radians(10)
    ys, xs = np.mgrid[0:64, 0:64]
    for i, (_, _, flip, _) in enumerate(draws):
        red, green = _centroid(images[i, ..., 0]), _centroid(images[i, ..., 1])
        left_dot, right_dot = (green, red) if flip else (red, green)
        for joint, dot in ((LEFT, left_dot), (RIGHT, right_dot)):
            h = heatmaps[i, ..., joint]
            centre = np.array([(xs * h).sum(), (ys * h).sum()]) / h.sum()  # heatmap pixels
            np.testing.assert_allclose((centre + 0.5) * 4 - 0.5, dot, atol=0.7)


def test_resume_shards_and_order_are_the_numpy_executors(shared_data):
    records = _lspet(shared_data, 10)
    codec = kh.HeatmapCodec(64, 16)
    bank = PersonBank.build(records, codec, workers=2)

    def make(**kw):
        return DevicePoseSequence(bank, kh.LSP, codec, 4, training=True, seed=5, **kw)

    whole = make()
    first = [np.asarray(whole[i][0]) for i in range(6)]
    reference = PoseSequence(records, kh.LSP, codec, 4, training=True, seed=5)
    assert [whole.order(c) for c in range(24)] == [reference.order(c) for c in range(24)]
    assert [whole.params(c)[0] for c in range(8)] == [reference.params(c)[0] for c in range(8)]
    resumed = make(start_batch=3)
    for i in range(3):
        np.testing.assert_array_equal(np.asarray(resumed[i][0]), first[3 + i])
    shards = [make(shard=(2, j)) for j in range(2)]
    both = np.empty_like(first[2])
    both[0::2], both[1::2] = (np.asarray(s[2][0]) for s in shards)
    np.testing.assert_array_equal(both, first[2])
    finite = DevicePoseSequence(bank, kh.LSP, codec, 4, training=False)
    assert [len(finite[i][0]) for i in range(len(finite))] == [4, 4, 2]


def test_wrong_uses_are_one_line_errors(shared_data):
    records = _lspet(shared_data, 2)
    codec = kh.HeatmapCodec(64, 16)
    bank = PersonBank.build(records, codec)
    with pytest.raises(ValueError, match="training batches"):
        DevicePoseSequence(bank, kh.LSP, codec, 2, training=False, with_meta=True)
    with pytest.raises(ValueError, match="cut for 64 px crops"):
        DevicePoseSequence(bank, kh.LSP, kh.HeatmapCodec(128, 32), 2, training=True)
    wider = Augmentation(scale_range=(0.75, 1.5))
    with pytest.raises(ValueError, match="rebuild the bank"):
        DevicePoseSequence(bank, kh.LSP, codec, 2, training=True, augmentation=wider)
    with pytest.raises(ValueError, match="empty dataset"):
        PersonBank.build([], codec)
    with pytest.raises(ValueError, match="KERAS_BACKEND=jax"):  # the tests run on TensorFlow
        pose_dataset(records, kh.LSP, codec, 2, training=True, executor="device")
