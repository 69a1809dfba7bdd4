"""Geometry and determinism of the tf.data pipeline, on planted dots and real images."""

import numpy as np
import pytest
import tensorflow as tf

import keras_hourglass as kh
from keras_hourglass import datasets as D
from keras_hourglass.inputs.augmentation import Augmentation
from keras_hourglass.inputs.tf_data import make_dataset

S = kh.LSP
LEFT, RIGHT = S.index("left_wrist"), S.index("right_wrist")


def _png(path, image):
    path.write_bytes(tf.io.encode_png(image).numpy())


def _dot_record(tmp_path, name="dots.png"):
    """A black 240x320 image with a red dot at the left wrist and a green one at the right."""
    image = np.zeros((240, 320, 3), np.uint8)
    keypoints = np.zeros((14, 2))
    rng = np.random.default_rng(0)
    keypoints[:] = rng.uniform(100, 180, (14, 2))
    keypoints[LEFT] = (171.0, 95.0)
    keypoints[RIGHT] = (131.0, 150.0)
    for index, colour in ((LEFT, 0), (RIGHT, 1)):
        x, y = keypoints[index].astype(int)
        image[y - 2 : y + 3, x - 2 : x + 3, colour] = 255
    _png(tmp_path / name, image)
    return D.PersonRecord(
        str(tmp_path / name),
        keypoints,
        np.ones(14, bool),
        np.ones(14, bool),
        np.array([150.0, 120.0]),
        1.2,
        50.0,
        "0",
    )


def _centroid(channel):
    weights = np.clip(channel - 0.2, 0, None)
    assert weights.sum() > 1.0, "the dot left the crop"
    ys, xs = np.mgrid[0 : channel.shape[0], 0 : channel.shape[1]]
    return np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()


def test_a_keypoint_lands_where_the_image_content_moved(tmp_path):
    record = _dot_record(tmp_path)
    codec = kh.HeatmapCodec(256, 64)
    augmentation = Augmentation(rotation_prob=1.0, colour_range=(1.0, 1.0))
    ds = make_dataset(
        [record] * 24,
        S,
        codec,
        24,
        training=True,
        seed=11,
        augmentation=augmentation,
        with_meta=True,
    )
    images, _, meta = next(iter(ds))
    images, keypoints = images.numpy(), meta["crop_keypoints"].numpy()
    flips = meta["flip"].numpy()
    assert 0 < flips.sum() < len(flips)  # both flipped and unflipped samples checked
    assert np.abs(meta["angle"].numpy()).max() > 10
    for i in range(len(images)):
        red, green = _centroid(images[i, ..., 0]), _centroid(images[i, ..., 1])
        # After a flip the person's left wrist is the content that was the right wrist.
        left_dot, right_dot = (green, red) if flips[i] else (red, green)
        np.testing.assert_allclose(keypoints[i, LEFT], left_dot, atol=0.6)
        np.testing.assert_allclose(keypoints[i, RIGHT], right_dot, atol=0.6)


def test_flip_mirrors_with_the_pixel_convention(tmp_path):
    record = _dot_record(tmp_path)
    codec = kh.HeatmapCodec(256, 64)
    never = Augmentation(scale_sigma=0.0, rotation_prob=0.0, flip_prob=0.0, colour_range=(1, 1))
    always = Augmentation(scale_sigma=0.0, rotation_prob=0.0, flip_prob=1.0, colour_range=(1, 1))
    a, ta, ma = next(
        iter(make_dataset([record], S, codec, 1, True, augmentation=never, with_meta=True))
    )
    b, tb, mb = next(
        iter(make_dataset([record], S, codec, 1, True, augmentation=always, with_meta=True))
    )
    # The flipped crop is the exact mirror (x -> 255 - x) of the unflipped one.
    np.testing.assert_allclose(b.numpy()[0], a.numpy()[0, :, ::-1], atol=1e-4)
    mirrored = np.asarray(kh.flip_keypoints(ma["crop_keypoints"].numpy(), 256, S.flip_index))
    np.testing.assert_allclose(mb["crop_keypoints"].numpy(), mirrored, atol=1e-3)
    back = kh.HeatmapCodec.flip_heatmaps(tb, S.flip_index)
    np.testing.assert_allclose(np.asarray(back), ta.numpy(), atol=1e-5)


def test_colour_jitter_applies_to_flipped_and_unflipped_samples(tmp_path):
    _png(tmp_path / "grey.png", np.full((200, 200, 3), 128, np.uint8))
    record = D.PersonRecord(
        str(tmp_path / "grey.png"),
        np.full((14, 2), 100.0),
        np.ones(14, bool),
        np.ones(14, bool),
        np.array([99.5, 99.5]),
        0.5,
        1.0,
        "grey",
    )
    codec = kh.HeatmapCodec(64, 16)
    ds = make_dataset(
        [record] * 32,
        S,
        codec,
        32,
        True,
        seed=2,
        with_meta=True,
        augmentation=Augmentation(rotation_prob=0.0, scale_range=(0.9, 1.0)),
    )
    images, _, meta = next(iter(ds))
    centre = images.numpy()[:, 32, 32, :]
    gains = meta["gains"].numpy()
    np.testing.assert_allclose(centre, np.clip(128 / 255 * gains, 0, 1), atol=1e-5)
    flips = meta["flip"].numpy()
    for group in (flips, ~flips):
        assert group.sum() >= 5
        assert np.abs(gains[group] - 1.0).max() > 0.2  # jittered in both groups
    assert gains.min() >= 0.6 and gains.max() <= 1.4


def test_no_augmentation_reproduces_the_readers_keypoints(shared_data):
    records = D.read_lsp(
        str(shared_data / "lspet/joints.mat"), str(shared_data / "lspet/images"), skip_bad=True
    )[:48]
    codec = kh.HeatmapCodec(256, 64)
    ds = make_dataset(records, S, codec, 16, training=False)
    for images, targets, meta in ds:
        assert images.shape[1:] == (256, 256, 3)
        crop = meta["crop_keypoints"].numpy()
        back = np.asarray(kh.crop_to_original(crop, meta["center"], meta["scale"], 256))
        np.testing.assert_allclose(back, meta["keypoints"].numpy(), atol=1e-3)
        decoded, scores = codec.decode(targets)
        decoded = np.asarray(kh.crop_to_original(decoded, meta["center"], meta["scale"], 256))
        visible = meta["crop_visible"].numpy()
        pixel = 200 * meta["scale"].numpy()[:, None] / 256  # original px per crop px
        error = np.abs(decoded - meta["keypoints"].numpy()).max(axis=-1)
        # The codec's bound: one crop pixel (stride / 4) per axis.
        assert np.all(error[visible] <= pixel.repeat(14, 1)[visible] + 1e-3)
        assert np.all(np.asarray(scores)[~meta["annotated"].numpy()] == 0)


def test_pipeline_is_deterministic_per_seed(shared_data):
    records = D.read_lsp(
        str(shared_data / "lspet/joints.mat"), str(shared_data / "lspet/images"), skip_bad=True
    )[:40]
    codec = kh.HeatmapCodec(64, 16)

    def first_batches(seed):
        ds = make_dataset(records, S, codec, 8, training=True, seed=seed)
        return [x.numpy() for x, _ in ds.take(3)]

    a, b, c = first_batches(5), first_batches(5), first_batches(6)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_crop_cache_gives_the_same_samples_as_raw_images(shared_data, tmp_path):
    from keras_hourglass.inputs.cache import write_crop_cache

    records = D.read_lsp(
        str(shared_data / "lspet/joints.mat"), str(shared_data / "lspet/images"), skip_bad=True
    )[:30]
    meta = write_crop_cache(records, str(tmp_path / "cache"), S, 256, shard_size=12, verbose=False)
    assert meta["num_shards"] == 3 and meta["num_records"] == 30
    codec = kh.HeatmapCodec(256, 64)
    raw = make_dataset(records, S, codec, 10, True, seed=4, with_meta=True)
    cached = make_dataset(str(tmp_path / "cache"), S, codec, 10, True, seed=4, with_meta=True)
    for (xa, ya, ma), (xb, yb, mb) in zip(raw.take(3), cached.take(3)):
        np.testing.assert_array_equal(ma["index"].numpy(), mb["index"].numpy())
        np.testing.assert_allclose(
            ma["crop_keypoints"].numpy(), mb["crop_keypoints"].numpy(), atol=2e-3
        )
        np.testing.assert_allclose(ya.numpy(), yb.numpy(), atol=1e-4)
        np.testing.assert_allclose(ma["keypoints"].numpy(), mb["keypoints"].numpy(), atol=1e-4)
        # Images differ only by JPEG storage and one extra resampling.
        assert np.abs(xa.numpy() - xb.numpy()).mean() < 0.02
    # A second run finds the cache complete; a cache of other records is refused.
    write_crop_cache(records, str(tmp_path / "cache"), S, 256, shard_size=12, verbose=False)
    with pytest.raises(FileExistsError):
        write_crop_cache(records[:5], str(tmp_path / "cache"), S, 256, shard_size=12, verbose=False)


def test_grayscale_and_rgba_images_become_rgb(tmp_path):
    gray = np.full((100, 100, 1), 200, np.uint8)
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 100, 255
    _png(tmp_path / "g.png", gray)
    _png(tmp_path / "a.png", rgba)
    records = [
        D.PersonRecord(
            str(tmp_path / n),
            np.full((14, 2), 50.0),
            np.ones(14, bool),
            np.ones(14, bool),
            np.array([49.5, 49.5]),
            0.4,
            1.0,
            n,
        )
        for n in ("g.png", "a.png")
    ]
    images, _, _ = next(iter(make_dataset(records, S, kh.HeatmapCodec(64, 16), 2, False)))
    images = images.numpy()
    np.testing.assert_allclose(images[0, 32, 32], [200 / 255] * 3, atol=1e-5)
    np.testing.assert_allclose(images[1, 32, 32], [100 / 255, 0, 0], atol=1e-5)


def test_empty_input_is_an_error():
    with pytest.raises(ValueError, match="no records"):
        make_dataset([], S, kh.HeatmapCodec(64, 16), 2, True)


def test_show_batch_draws_keypoints_on_the_heatmap_peaks(shared_data, tmp_path):
    from PIL import Image

    from keras_hourglass.drawing import SIDE_COLOURS, show_batch

    records = D.read_lsp(
        str(shared_data / "lspet/joints.mat"), str(shared_data / "lspet/images"), skip_bad=True
    )[:8]
    out = tmp_path / "batch.png"
    keypoints, visible, heatmaps = show_batch(records, S, str(out), count=8, columns=4, seed=1)
    sheet = np.asarray(Image.open(out).convert("RGB"))
    assert sheet.shape == (512, 1024, 3)
    colours = {tuple(c) for c in SIDE_COLOURS.values()}
    checked = 0
    for i in range(8):
        for j in np.flatnonzero(visible[i]):
            # The drawn joint sits on its heatmap's peak (within the quarter-pixel shift)...
            row, col = np.unravel_index(heatmaps[i, ..., j].argmax(), heatmaps.shape[1:3])
            assert np.abs(keypoints[i, j] - (np.array([col, row]) * 4 + 1.5)).max() <= 1.0 + 1e-4
            # ...and the sheet shows a joint dot there (another joint's dot may overlap it).
            x, y = np.round(keypoints[i, j] + [256 * (i % 4), 256 * (i // 4)]).astype(int)
            patch = {tuple(p) for p in sheet[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3)}
            assert patch & colours, (i, j, patch)
            checked += 1
    assert checked > 50


def test_a_crop_shrinks_only_the_part_of_the_photo_under_it(shared_data):
    """`geometry.warp` shrinks only the window under the crop (a person costs its own area, not
    the photo's): the window is the whole-photo shrink's pixels, and crops of a real photo
    (turned, flipped, half outside, tiny and large people) equal those of the whole shrink."""
    from PIL import Image

    from keras_hourglass import geometry as G

    path = shared_data / "lspet" / "images" / "im00001.jpg"
    image = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0
    h, w = image.shape[:2]
    whole, ratios = G._shrink(image, 3)
    part, same = G._shrink(image, 3, (5, 7, 40, 31))
    assert ratios == same and part.shape == (24, 35, 3)
    np.testing.assert_allclose(part, whole[7:31, 5:40], atol=2e-5)

    def whole_shrink_warp(image, a, center, size):  # the crop from the whole photo's shrink
        factor = G.shrink_factor(a)
        rows = G.crop_to_source_rows(a, center, size)
        if factor > 1:
            image, (ry, rx) = G._shrink(image, factor)
            rows[0] = rows[0] * rx + np.array([0.0, 0.0, 0.5 * rx - 0.5])
            rows[1] = rows[1] * ry + np.array([0.0, 0.0, 0.5 * ry - 0.5])
        return cv2.warpAffine(
            image, rows, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        )

    import cv2

    rng = np.random.default_rng(1)
    shrunk = 0
    for trial in range(40):
        size = int(rng.choice([64, 128, 256]))
        center = rng.uniform([-0.3 * w, -0.3 * h], [1.3 * w, 1.3 * h])
        a, c = G.crop_matrix(
            center, rng.uniform(0.1, 4.0), size, angle=rng.uniform(-3, 3) * (trial % 2),
            flip=trial % 3 == 0,
        )  # fmt: skip
        shrunk += G.shrink_factor(a) > 1
        np.testing.assert_allclose(
            G.warp(image, a, c, size), whole_shrink_warp(image, a, c, size), atol=2e-5
        )
    assert shrunk >= 15
