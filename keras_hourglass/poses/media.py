"""Reading photos and video, writing the overlay video, the live window: the media side of the
pose loop (`hourglass-predict`, the demo). Each photo is checked from its header before it is
decoded (missing, empty, cut short, too many pixels), then decoded once; errors are one
`InputError` line naming the file."""

import io
import logging
import os

import numpy as np

__all__ = [
    "PAUSE_KEYS",
    "QUIT_KEYS",
    "InputError",
    "VideoWriter",
    "Window",
    "check_image",
    "decode_image",
    "exif_turned",
    "open_video",
    "read_image",
]


log = logging.getLogger(__name__)

# The photo formats read (Pillow's names): JPEG (MPO: a phone's multi-picture JPEG), PNG (8 and
# 16 bits), WebP, BMP, TIFF and GIF (the first frame).
PHOTO_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF", "GIF")
FORMAT_NAMES = "JPEG, PNG, WebP, BMP, TIFF or GIF"


class InputError(ValueError):
    """Input that cannot be used, in one line naming it; `kind` says which way ("missing",
    "empty", "truncated", "too large", "not an image", "broken", or "bad input")."""

    def __init__(self, message, kind="bad input"):
        super().__init__(message)
        self.kind = kind


def check_image(path, max_pixels=None):
    """The cheap checks of an input before anything is decoded or written: it exists, is not
    empty, is not cut short (a JPEG without its end marker, a PNG without IEND), and its header
    (JPEG/PNG) is within `max_pixels`. Raises `InputError`."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file", "missing")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(32)
        f.seek(max(size - 12, 0))
        tail = f.read()
    _check_bytes(head, tail, size, path, max_pixels, path)


KINDS = {  # `datasets.check_image_bytes`' reasons as `InputError` kinds
    "empty image": "empty",
    "truncated image": "truncated",
    "image too large": "too large",
}


def _check_bytes(head, tail, size, where, max_pixels, source):
    """`check_image`'s checks (`datasets.check_image_bytes`, the one image check) as an
    `InputError`."""
    from keras_hourglass.datasets import DatasetError, check_image_bytes

    try:
        check_image_bytes(head, tail, size, where, max_pixels, source)
    except DatasetError as error:
        raise InputError(str(error), KINDS.get(error.reason, "bad input")) from None


def read_image(path, max_pixels=None):
    """(file bytes, (H, W, 3) uint8 RGB pixels) of a whole photo (`PHOTO_FORMATS`) of at most
    `max_pixels` pixels, upright (its EXIF orientation applied): read once, checked from its
    header (`decode_image`: the one check, before any pixel), then decoded once (a truncated
    file fails here). Raises `InputError` naming the file."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file", "missing")
    with open(path, "rb") as f:
        data = f.read()
    return data, decode_image(data, path, max_pixels)


def decode_image(data, where="the image", max_pixels=None):
    """(H, W, 3) uint8 RGB pixels of a whole photo file's bytes `data` (`PHOTO_FORMATS`) of at
    most `max_pixels` pixels (default `datasets.MAX_IMAGE_PIXELS`), checked before decoding,
    upright (`_upright_rgb`: the EXIF orientation applied, 16-bit samples scaled); raises
    `InputError` naming `where`, with its `kind`."""
    from PIL import Image, UnidentifiedImageError

    from keras_hourglass.datasets import DatasetError, check_image_size

    _check_bytes(data[:32], data[-12:], len(data), where, max_pixels, data)
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            if kind not in PHOTO_FORMATS:
                raise InputError(
                    f"{where}: a {kind} image; expected a photo ({FORMAT_NAMES})", "not an image"
                )
            check_image_size(*image.size, where, max_pixels)  # before decoding any pixel
            image.load()  # decodes everything: a truncated file fails here
            pixels = _upright_rgb(image)
    except DatasetError as error:
        raise InputError(str(error), "too large") from None
    except UnidentifiedImageError:
        raise InputError(
            f"{where}: not an image (expected a photo: {FORMAT_NAMES})", "not an image"
        ) from None
    except Image.DecompressionBombError as error:
        raise InputError(f"{where}: {error}", "too large") from None
    except (OSError, SyntaxError) as error:
        raise InputError(
            f"{where}: a broken or truncated image ({error}); expected a whole photo file",
            "broken",
        ) from None
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise InputError(
            f"{where}: the image has zero size ({pixels.shape[1]}x{pixels.shape[0]})", "empty"
        )
    return pixels


def _upright_rgb(image):
    """(H, W, 3) uint8 RGB of a loaded Pillow image as a viewer shows it: turned by its EXIF
    orientation (phones store the sensor's rows and a tag saying how to turn them), 16-bit
    and 32-bit samples scaled to 8 bits (Pillow's `convert` would clip them), transparency
    dropped."""
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image, np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        grey = np.clip(np.round(values * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    if image.mode == "F":
        grey = np.clip(np.round(np.asarray(image, np.float64) * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    return np.asarray(image.convert("RGB"))


def exif_turned(data):
    """Whether a photo's bytes carry an EXIF orientation that turns or mirrors it (2-8): what
    `decode_image` applies and TensorFlow's decoders (the SavedModel's in-graph decoder) do
    not. False for anything Pillow cannot read."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.getexif().get(0x0112, 1) not in (1, None)
    except Exception:  # not an image: the decoder says so where it matters
        return False


def open_video(source):
    """(cv2.VideoCapture, name, frames per second, frame count or 0) of a file or camera index."""
    import cv2

    camera = source.isdigit()
    if not camera and not os.path.isfile(source):
        raise InputError(f"--video {source!r}: no such file")
    if not camera:
        check_video_container(source)
    capture = cv2.VideoCapture(int(source) if camera else source)
    if not capture.isOpened():
        raise InputError(
            f"--video {source!r}: cannot open it ({'no such camera' if camera else 'not a video OpenCV can decode'})"
        )
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and 0 < fps < 1000 else 30.0
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if not camera else 0
    name = f"camera{source}" if camera else os.path.splitext(os.path.basename(source))[0]
    return capture, name, fps, max(count, 0)


STILL_FORMATS = ("image2", "tty", "gif_pipe")  # FFmpeg demuxers of stills and text, not videos


def check_video_container(path):
    """An `InputError` naming `path` unless FFmpeg's probe (PyAV) finds a video container with a
    video stream: a text file, a photo (FFmpeg's image demuxers: `image2`, `*_pipe`) or a
    broken file is refused before OpenCV, whose FFmpeg "opens" them, plays them as frames.
    Without PyAV, OpenCV's check alone."""
    try:
        import av
    except ImportError:
        return
    try:
        with av.open(path) as container:
            kind = container.format.name
            streams = len(container.streams.video)
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise InputError(f"--video {path!r}: not a video ({reason})") from None
    if kind in STILL_FORMATS or kind.endswith("_pipe"):
        raise InputError(
            f"--video {path!r}: a still image or text ({kind}), not a video; give photos as "
            "images (hourglass-predict photo.jpg)"
        )
    if not streams:
        raise InputError(f"--video {path!r}: the file ({kind}) holds no video stream")


class VideoWriter:
    """The overlay video: H.264 in MP4 (yuv420p), what browsers play, through PyAV (which ships
    FFmpeg with its H.264 encoder; requirements.txt pins it, the `video` extra installs it);
    without PyAV, OpenCV's MPEG-4 Part 2 (mp4v) with a note. Odd frame sizes are padded by a
    black row or column (H.264's 4:2:0 needs even sides)."""

    def __init__(self, path, fps, width, height):
        self.width, self.height = width + width % 2, height + height % 2
        try:
            import av
        except ImportError:
            av = None
        if av is None:
            import cv2

            log.warning(
                "note: PyAV is not installed: the overlay is MPEG-4 Part 2 (mp4v), which "
                "browsers do not play; pip install av for H.264"
            )
            self.av, self.cv2 = None, cv2
            self.out = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
            if not self.out.isOpened():
                raise InputError(f"cannot write {path} (OpenCV's mp4v encoder)")
            return
        import fractions

        self.av = av
        self.out = av.open(path, "w", format="mp4")
        self.stream = self.out.add_stream(
            "libx264", rate=fractions.Fraction(fps).limit_denominator(1001)
        )
        self.stream.width, self.stream.height = self.width, self.height
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": "23", "preset": "veryfast"}

    def write(self, rgb):
        """One (H, W, 3) uint8 RGB frame."""
        if self.av is None:
            self.out.write(self.cv2.cvtColor(rgb, self.cv2.COLOR_RGB2BGR))
            return
        height, width = rgb.shape[:2]
        if (height, width) != (self.height, self.width):
            rgb = np.pad(rgb, ((0, self.height - height), (0, self.width - width), (0, 0)))
        frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        for packet in self.stream.encode(frame):
            self.out.mux(packet)

    def close(self):
        if self.av is None:
            self.out.release()
            return
        for packet in self.stream.encode():  # flush the encoder's delayed frames
            self.out.mux(packet)
        self.out.close()


class Window:
    """The live view of `--show`: OpenCV's window (cv2.imshow); `show(frame)` returns the key
    pressed (-1: none)."""

    def __init__(self, title):
        import cv2

        self.cv2, self.title = cv2, title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as error:
            raise InputError(
                "--show needs OpenCV with window support (this one has none: "
                f"{str(error).strip().splitlines()[-1]}); install opencv-python instead of "
                "opencv-python-headless (docs/serving.md, 'A live camera')"
            ) from None

    def show(self, frame_bgr):
        self.cv2.imshow(self.title, frame_bgr)
        return self.cv2.waitKey(1)

    def wait(self):
        return self.cv2.waitKey(0)

    def close(self):
        self.cv2.destroyWindow(self.title)


QUIT_KEYS = (ord("q"), 27)  # q, Esc
PAUSE_KEYS = (ord(" "), ord("p"))
