"""Drawing poses on images (Pillow): limbs coloured by side, joints as dots."""

import numpy as np
from PIL import Image, ImageDraw

from keras_hourglass import files

SIDE_COLOURS = {"left": (40, 200, 60), "right": (230, 50, 50), "centre": (250, 210, 40)}


def draw_pose(
    image, keypoints, skeleton, visible=None, scores=None, threshold=0.2, radius=3, width=2
):
    """Draws a skeleton on a copy of `image`.

    Args:
        image: (H, W, 3) uint8 or float in [0, 1].
        keypoints: (K, 2) pixel coordinates (pixel centres at integers).
        skeleton: the `Skeleton` whose limbs and sides are drawn (left green, right red).
        visible: (K,) bool, joints to draw (default all).
        scores: (K,) confidences; joints below `threshold` are drawn dimmed.

    Returns:
        a PIL image.
    """
    canvas = rgb_canvas(image)
    pose_on(ImageDraw.Draw(canvas, "RGBA"), keypoints, skeleton, visible, scores, threshold,
            radius, width)  # fmt: skip
    return canvas


def rgb_canvas(image):
    """A new RGB PIL image of `image` (PIL, or an array: uint8, or float in [0, 1])."""
    if isinstance(image, Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image.copy()
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(image).convert("RGB")


def pose_on(draw, keypoints, skeleton, visible=None, scores=None, threshold=0.2, radius=3,
            width=2):  # fmt: skip
    """`draw_pose` onto an `ImageDraw.Draw(canvas, "RGBA")`, in place (several people on one
    canvas, with no copy of the image each)."""
    k = skeleton.num_joints
    visible = np.ones(k, bool) if visible is None else np.asarray(visible, bool)
    scores = np.ones(k) if scores is None else np.asarray(scores)
    sides = skeleton.side
    alpha = np.where(scores >= threshold, 255, 90)
    # PIL's pixel (i, j) covers [i, i + 1): shift our pixel-centre coordinates by +0.5.
    points = np.asarray(keypoints, np.float64) + 0.5
    for a, b in skeleton.limb_index:
        if visible[a] and visible[b]:
            side = sides[a] if sides[a] != "centre" else sides[b]
            colour = SIDE_COLOURS[side] + (int(min(alpha[a], alpha[b])),)
            draw.line([tuple(points[a]), tuple(points[b])], fill=colour, width=width)
    for j in range(k):
        if visible[j]:
            x, y = points[j]
            colour = SIDE_COLOURS[sides[j]] + (int(alpha[j]),)
            draw.ellipse(
                [x - radius, y - radius, x + radius, y + radius],
                fill=colour,
                outline=(0, 0, 0, int(alpha[j])),
            )


def draw_box(image, bbox, label=None, width=2, colour=(80, 160, 255)):
    """Draws an [x, y, w, h] box (pixel edges, COCO's convention) and an optional label above
    its top-left corner on a copy of `image` (an array or PIL image); returns a PIL image."""
    canvas = rgb_canvas(image)
    box_on(ImageDraw.Draw(canvas), bbox, label, width, colour)
    return canvas


def box_on(draw, bbox, label=None, width=2, colour=(80, 160, 255)):
    """`draw_box` onto an `ImageDraw.Draw(canvas)`, in place."""
    x, y, w, h = (float(v) for v in bbox)
    draw.rectangle([x, y, x + w - 1, y + h - 1], outline=colour, width=width)
    if label:
        left, top, right, bottom = draw.textbbox((x, y), label)
        lift = bottom - top + 2
        draw.rectangle([left, top - lift, right + 2, bottom - lift], fill=colour)
        draw.text((x + 1, y - lift), label, fill=(0, 0, 0))


def grid(images, columns):
    """Tiles equally sized PIL images into one PIL image."""
    w, h = images[0].size
    rows = (len(images) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * w, rows * h))
    for i, im in enumerate(images):
        sheet.paste(im, ((i % columns) * w, (i // columns) * h))
    return sheet


def show_batch(
    source,
    skeleton,
    out,
    count=16,
    columns=4,
    input_size=256,
    seed=0,
    training=True,
    augmentation=None,
    executor=None,
):
    """Writes a grid of `count` crops of `source` (records, or a crop cache folder) as the
    training pipeline makes them, with the keypoints decoded from their heatmap targets drawn,
    and returns those keypoints ((count, K, 2) crop pixels), the visible mask and the targets.
    `augmentation`: as the pipelines take it (False: none)."""
    from keras_hourglass.inputs import batches, pose_dataset
    from keras_hourglass.network.codec import hourglass_codec  # Keras: only here

    codec = hourglass_codec(input_size)
    ds = pose_dataset(
        source,
        skeleton,
        codec,
        count,
        training=training,
        seed=seed,
        augmentation=augmentation,
        with_meta=True,
        drop_remainder=False,
        executor=executor,
    )
    images, heatmaps, _ = next(iter(batches(ds)))
    keypoints, scores = codec.decode(heatmaps)
    keypoints, visible = np.asarray(keypoints), np.asarray(scores) > 0
    tiles = [
        draw_pose(images[i], keypoints[i], skeleton, visible[i]) for i in range(images.shape[0])
    ]
    with files.atomic_path(out) as tmp:
        grid(tiles, columns).save(tmp)
    return keypoints, visible, heatmaps
