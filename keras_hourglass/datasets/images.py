"""Image files: their size from the header (no decoding), the checks made before any training
or evaluation starts, and the NumPy decoder of the TensorFlow-free paths."""

import contextlib
import io
import os
import warnings

import numpy as np
from PIL import Image

from keras_hourglass.datasets.records import DatasetError

# Refused above this many pixels (width x height) before anything decodes the image: a 48 MP
# phone photo passes, a 69-byte PNG claiming 60000 x 60000 does not. Raise it with the commands'
# --max-image-pixels.
MAX_IMAGE_PIXELS = 50_000_000

# An annotated joint may lie outside its image (MPII head tops above the frame), but not farther
# than this many image sides from it: such a joint is corrupt (checked by check_image_files, which
# reads the image size; this is what catches corrupt joints of datasets whose person box is built
# from the joints themselves, where the distance-from-box check cannot fail).
MAX_OUTSIDE_IMAGE = 0.5


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_size(path):
    """(width, height) of a JPEG or PNG read from its header, without decoding any pixels.
    `path` is a file path or the file's bytes. Raises ValueError for a header that cannot be
    read."""
    opened = (
        contextlib.nullcontext(io.BytesIO(path))
        if isinstance(path, (bytes, bytearray))
        else open(path, "rb")
    )
    with opened as f:
        head = f.read(24)
        if head[:8] == b"\x89PNG\r\n\x1a\n":
            if head[12:16] != b"IHDR":
                raise ValueError("PNG without IHDR header")
            return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        if head[:2] != b"\xff\xd8":
            raise ValueError("neither JPEG nor PNG")
        f.seek(2)
        while True:
            marker = f.read(2)
            if len(marker) < 2 or marker[0] != 0xFF:
                raise ValueError("JPEG without a frame header (SOF)")
            if marker[1] in (0xD8, 0x01) or 0xD0 <= marker[1] <= 0xD7:
                continue  # markers without a length
            length = int.from_bytes(f.read(2), "big")
            if marker[1] in _SOF_MARKERS:
                frame = f.read(5)
                if len(frame) < 5:
                    raise ValueError("JPEG frame header cut off")
                return int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big")
            if length < 2:
                raise ValueError("corrupt JPEG segment length")
            f.seek(length - 2, 1)


def check_image_size(width, height, where, max_pixels=None):
    """DatasetError when width x height exceeds `max_pixels` (default MAX_IMAGE_PIXELS) or is 0."""
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    if width <= 0 or height <= 0:
        raise DatasetError(f"{where} has no pixels ({width} x {height})", "empty image")
    if width * height > limit:
        raise DatasetError(
            f"{where} is {width} x {height} = {width * height:,} pixels, above the limit of "
            f"{limit:,} (decoding it would take {width * height * 12 / 2**30:.1f} GiB as float "
            "RGB); raise the limit with --max-image-pixels if it is real",
            "image too large",
        )


def check_image_bytes(head, tail, size, where, max_pixels=None, source=None, known_only=False):
    """The one check of an image before it is decoded, for every reader (datasets, photos, the
    serving client): `head` and `tail` its first and last bytes (32 and 12 are enough), `size`
    its length, `where` how errors name it, `source` its path or bytes for the header (None:
    `head`). Empty, a JPEG without its end marker, a PNG without IEND, a header above
    `max_pixels`, and with `known_only` a file neither JPEG nor PNG or a corrupt header, are a
    `DatasetError` "{where}: ..." whose `reason` is the kind ("empty image", "truncated image",
    "image too large", "not a JPEG or PNG image", "corrupt image header"). Returns (width,
    height) from the header, or None when another format's (Pillow decides later)."""
    if size == 0:
        raise DatasetError(
            f"{where}: the file is empty (0 bytes); expected a JPEG or PNG image", "empty image"
        )
    jpeg, png = head[:3] == b"\xff\xd8\xff", head[:8] == b"\x89PNG\r\n\x1a\n"
    if jpeg and b"\xff\xd9" not in tail:
        raise DatasetError(
            f"{where}: a truncated JPEG (no end marker); expected a whole image", "truncated image"
        )
    if png and b"IEND" not in tail:
        raise DatasetError(
            f"{where}: a truncated PNG (no IEND); expected a whole image", "truncated image"
        )
    if known_only and not (jpeg or png):
        raise DatasetError(f"{where}: neither JPEG nor PNG", "not a JPEG or PNG image")
    try:
        width, height = image_size(head if source is None else source)
    except ValueError as error:
        if known_only:
            raise DatasetError(
                f"{where}: a corrupt header ({error})", "corrupt image header"
            ) from None
        return None  # not a JPEG/PNG header (or a JPEG whose size comes later)
    check_image_size(width, height, where, max_pixels)
    return width, height


def check_image_files(records, max_pixels=None, skip_bad=False):
    """Cheap checks of every image before any training or evaluation starts.

    Reads each file's first and last bytes and its header: a zero-size file, an unknown format,
    a JPEG without its end marker (truncated), a PNG without IEND, an image above `max_pixels`
    (default `MAX_IMAGE_PIXELS`) and an annotated joint farther than `MAX_OUTSIDE_IMAGE` image
    sides outside its image raise `DatasetError` naming the file and record. With `skip_bad`
    such a record is left out instead and listed under its reason in the result's `skipped`,
    as the readers list a missing image (LSPET record 8074 has a joint 145 px right of its
    241 px image).

    Returns the records kept, as `Records` (the input's source, skeleton and skipped lists,
    plus what this check skipped).
    """
    from keras_hourglass.datasets.records import Records

    kept, skipped, seen = [], {}, {}
    for record in records:
        try:
            _check_record(record, seen, max_pixels)
        except DatasetError as error:
            if not skip_bad:
                raise
            skipped.setdefault(error.reason or "unusable image", []).append(record.record_id)
            continue
        kept.append(record)
    merged = {reason: list(ids) for reason, ids in getattr(records, "skipped", {}).items()}
    for reason, ids in skipped.items():
        merged.setdefault(reason, []).extend(ids)
    source = getattr(records, "source", "")
    if not kept and skipped:
        raise DatasetError(f"{source or 'the records'}: no usable people (skipped: {skipped})")
    return Records(kept, merged, source, getattr(records, "skeleton", None))


def _check_record(record, seen, max_pixels):
    path = record.image_path
    if path not in seen:  # successes only: a bad image shared by people is named for each
        seen[path] = _check_image_file(record, path, max_pixels)
    width, height = seen[path]
    margin = MAX_OUTSIDE_IMAGE * max(width, height)
    xy = np.asarray(record.keypoints)[np.asarray(record.annotated, bool)]
    outside = (
        (xy[:, 0] < -margin)
        | (xy[:, 0] > width - 1 + margin)
        | (xy[:, 1] < -margin)
        | (xy[:, 1] > height - 1 + margin)
    )
    if outside.any():
        raise DatasetError(
            f"record {record.record_id}: annotated joints at {xy[outside].tolist()} lie "
            f"far outside its image {path!r} ({width} x {height}): corrupt coordinates?",
            "coordinates far outside the image",
        )


def _check_image_file(record, path, max_pixels):
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(32)
            f.seek(max(size - 12, 0))
            tail = f.read()
    except OSError as error:
        raise DatasetError(
            f"record {record.record_id}: cannot read image {path!r}: {error}", "unreadable image"
        ) from None
    where = f"record {record.record_id}: image {path!r}"
    return check_image_bytes(head, tail, size, where, max_pixels, path, known_only=True)


def read_image_floats(path, max_pixels=None):
    """JPEG/PNG file -> (H, W, 3) float32 in [0, 1]; grayscale and RGBA become RGB (alpha
    dropped, as `tf.io.decode_image(channels=3)` does); 16-bit PNGs are scaled to 8 bits. An
    image above `max_pixels` (default `MAX_IMAGE_PIXELS`) is refused from its header with a
    `DatasetError` before anything is decoded."""
    try:
        size = image_size(path)
    except ValueError:
        size = None  # another format: Pillow decides below
    if size is not None:
        check_image_size(*size, f"image {path!r}", max_pixels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = Image.open(path)
    with image:
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            gray = (np.asarray(image, np.uint32) >> 8).astype(np.uint8)
            array = np.repeat(gray[..., None], 3, axis=-1)
        else:
            array = np.asarray(image.convert("RGB"))
    return array.astype(np.float32) / 255.0
