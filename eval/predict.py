"""Predict the pose in your photos and look at it.

    python eval/predict.py photo.jpg other.png --model runs/demo/best.keras --out poses/
    python eval/predict.py photo.jpg --model saved_models/hourglass/1 --out poses/
    python eval/predict.py photo.jpg --model M --box 640,360,3.2 --out poses/

Nothing is detected: the person is the whole image, or the box given with --box (centre x, y
in pixels and scale = box side / 200 px, MPII's convention; one --box for all images or one per
image). Prediction uses the flip test. For each image it writes `<name>_pose.png` (the skeleton
over the image: left limbs green, right red, centre yellow; joints below --threshold dimmed)
and `<name>_pose.json` (named joints {"x", "y", "confidence"}, (x, y) in the image's pixels), and
`preds.mat` of all the images in order (`preds` N x K x 2, 1-based: the layout of the MPII
evaluation tools and the published prediction files).

A `.keras` model runs the library's inference (`keras_hourglass.inference.estimate_poses`: NumPy
crops, any Keras backend); a SavedModel version folder runs its own `predict_encoded` signatures,
which call the same inference inside the graph, so both give the same keypoints.

Videos and cameras:

    python eval/predict.py --video clip.mp4 --model runs/demo/best.keras --out poses/
    python eval/predict.py --video 0 --model M --out poses/ --max-frames 300   # camera 0

Every frame (any format OpenCV reads) goes through the same serving functions as an image
(`serving_default`, or `serving_boxes` with --box), --batch frames per call, and is written to
`<name>_pose.mp4` (the skeleton drawn as for images) and `<name>_pose.jsonl` (one line per
frame: frame number, time, named joints). A progress line shows frames per second; the end
reports them. --smooth A averages each joint's position over frames (exponential moving
average, A = the past's weight; 0, the default, is off: jitter falls but fast motion lags).
A video that ends early (a truncated file, a camera unplugged, Ctrl-C) keeps what was written.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault(
    "KERAS_HOURGLASS_QUIET", "1"
)  # TensorFlow's start-up noise: keras_hourglass.quiet
os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # SavedModels are TensorFlow graphs

import numpy as np  # noqa: E402

from keras_hourglass import files  # noqa: E402
from keras_hourglass.skeletons import SKELETONS, named_joints  # noqa: E402


class InputError(ValueError):
    pass


def read_image(path, max_pixels=None):
    """(file bytes, (height, width)) after checking the file is a whole JPEG or PNG image of at
    most `max_pixels` pixels (read from its header before decoding)."""
    from PIL import Image, UnidentifiedImageError

    from keras_hourglass.datasets import DatasetError, check_image_size, image_size

    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: the file is empty (0 bytes); expected a JPEG or PNG image")
    with open(path, "rb") as f:
        data = f.read()
    try:
        check_image_size(*image_size(path), path, max_pixels)
    except DatasetError as error:
        raise InputError(str(error)) from None
    except ValueError:
        pass  # not a JPEG/PNG header: Pillow says what it is below
    try:
        with Image.open(path) as image:
            kind = image.format
            image.load()  # decodes everything: a truncated file fails here
            width, height = image.size
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image (expected a JPEG or PNG file)") from None
    except Image.DecompressionBombError as error:
        raise InputError(f"{path}: {error}") from None
    except (OSError, SyntaxError) as error:
        raise InputError(
            f"{path}: a broken or truncated image ({error}); expected a whole JPEG or PNG file"
        ) from None
    if kind not in ("JPEG", "PNG"):
        raise InputError(f"{path}: a {kind} image; expected a JPEG or PNG file")
    if width == 0 or height == 0:
        raise InputError(f"{path}: the image has zero size ({width}x{height})")
    return data, (height, width)


def parse_box(text, path, size):
    try:
        cx, cy, scale = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(
            f"--box {text!r}: expected centre x, centre y and scale, e.g. 640,360,3.2"
        ) from None
    height, width = size
    if not scale > 0:
        raise InputError(f"--box {text!r}: the scale (box side / 200 px) must be positive")
    if not (0 <= cx <= width - 1 and 0 <= cy <= height - 1):
        raise InputError(
            f"--box {text!r}: the centre ({cx}, {cy}) lies outside {path} ({width}x{height})"
        )
    return [cx, cy, scale]


class Predictor:
    """Images (+ optional boxes) -> keypoints (N, K, 2) in image pixels and scores (N, K), with a
    `.keras` file (the library's `estimate_keypoints`) or a SavedModel version folder (its
    serving signatures)."""

    def __init__(self, model_path, skeleton_name=None, flip_test=True):
        self.saved_model = os.path.isdir(model_path)
        if self.saved_model:
            from keras_hourglass.export import (
                ServingModelError,
                load_serving_model,
                skeleton_of_metadata,
            )

            try:
                loaded, meta = load_serving_model(
                    model_path,
                    need=(
                        "predict_encoded",
                        "predict_encoded_boxes",
                        "serving_default",
                        "serving_boxes",
                    ),
                )
            except ServingModelError as error:
                raise InputError(f"--model: {error}") from None
            except Exception as error:  # a corrupt SavedModel
                raise InputError(
                    f"--model {model_path!r}: cannot load the SavedModel "
                    f"({str(error).splitlines()[0]})"
                ) from None
            self.signatures = loaded.signatures
            self.skeleton = skeleton_of_metadata(meta)
            self.flip_test = bool(meta["export"]["flip_test"])
            if not flip_test:
                print("note: a SavedModel's flip test is fixed at export; --no-flip is ignored")
            return
        if not os.path.isfile(model_path):
            raise InputError(f"--model {model_path!r}: no such .keras file or SavedModel folder")
        import keras

        from keras_hourglass.export import model_skeleton
        from keras_hourglass.inference import crop_predictor

        if not model_path.endswith(".keras"):
            raise InputError(
                f"--model {model_path!r}: expected a .keras file from "
                "train/train.py or a SavedModel version folder"
            )
        try:
            model = keras.saving.load_model(model_path, compile=False)
        except Exception as error:  # a corrupt zip, an unknown class
            raise InputError(
                f"--model {model_path!r}: not a loadable .keras model "
                f"({str(error).splitlines()[0] if str(error) else type(error).__name__})"
            ) from None
        try:
            self.skeleton = model_skeleton(model, skeleton_name)
        except ValueError as error:
            raise InputError(f"--model {model_path!r}: {error}") from None
        if model.skeleton is None:  # a file saved before models carried their skeleton
            model.skeleton = self.skeleton
        self.model = model
        self.predictor = crop_predictor(model, flip_test)
        self.flip_test = flip_test

    def frames(self, frames, box=None):
        """(B, H, W, 3) uint8 RGB frames -> keypoints (B, K, 2), scores (B, K), with one box (or
        the whole frame) for all."""
        boxes = None if box is None else [box] * len(frames)
        if not self.saved_model:
            from keras_hourglass.inference import estimate_keypoints

            return estimate_keypoints(
                self.predictor, list(frames), boxes, self.model.person_box_px, len(frames)
            )
        import tensorflow as tf

        images = tf.constant(frames, tf.uint8)
        if box is None:
            out = self.signatures["serving_default"](images=images)
        else:
            out = self.signatures["serving_boxes"](
                images=images, boxes=tf.constant(boxes, tf.float32)
            )
        return out["keypoints"].numpy(), out["scores"].numpy()

    def __call__(self, data, box=None):
        """One JPEG/PNG file's bytes -> keypoints (K, 2), scores (K,)."""
        if not self.saved_model:
            import io

            from PIL import Image

            with Image.open(io.BytesIO(data)) as image:
                pixels = np.asarray(image.convert("RGB"))
            keypoints, scores = self.frames(pixels[None], box)
            return keypoints[0], scores[0]
        import tensorflow as tf

        images = tf.constant([data])
        if box is None:
            out = self.signatures["predict_encoded"](images=images)
        else:
            out = self.signatures["predict_encoded_boxes"](
                images=images, boxes=tf.constant([box], tf.float32)
            )
        return out["keypoints"].numpy()[0], out["scores"].numpy()[0]


def joints_json(skeleton, keypoints, scores):
    """One person's named joints as the JSON outputs hold them (`skeletons.named_joints`,
    positions to 0.01 px, confidences to 1e-4)."""
    return named_joints(skeleton.joint_names, keypoints, scores, decimals=(2, 4))


def open_video(source):
    """(cv2.VideoCapture, name, frames per second, frame count or 0) of a file or camera index."""
    import cv2

    camera = source.isdigit()
    if not camera and not os.path.isfile(source):
        raise InputError(f"--video {source!r}: no such file")
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


def predict_video(args, predictor):
    """Every frame through the serving functions, in batches; writes <name>_pose.mp4 and
    <name>_pose.jsonl; returns the number of frames."""
    import time

    import cv2

    from keras_hourglass.datasets import DatasetError, check_image_size
    from keras_hourglass.drawing import draw_pose

    capture, name, fps, count = open_video(args.video)
    os.makedirs(args.out, exist_ok=True)
    video_path = os.path.join(args.out, f"{name}_pose.mp4")
    lines_path = os.path.join(args.out, f"{name}_pose.jsonl")
    tmp_video = os.path.join(args.out, f".{name}_pose.tmp.mp4")
    skeleton = predictor.skeleton
    box = None
    writer, smoothed, done, pending = None, None, 0, []
    start = time.time()
    interrupted = False

    def flush(batch):
        nonlocal writer, smoothed, done
        frames = np.stack(batch)
        keypoints, scores = predictor.frames(frames, box)
        for frame, kp, sc in zip(frames, keypoints, scores):
            if args.smooth:
                smoothed = (
                    kp if smoothed is None else args.smooth * smoothed + (1 - args.smooth) * kp
                )
                kp = smoothed
            height, width = frame.shape[:2]
            drawn = np.asarray(
                draw_pose(
                    frame,
                    kp,
                    skeleton,
                    scores=sc,
                    threshold=args.threshold,
                    radius=max(3, round(max(height, width) / 150)),
                    width=max(2, round(max(height, width) / 250)),
                )
            )
            if writer is None:
                writer = cv2.VideoWriter(
                    tmp_video, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height)
                )
                if not writer.isOpened():
                    raise InputError(f"cannot write {video_path} (OpenCV's mp4v encoder)")
            writer.write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
            record = {
                "frame": done,
                "time_s": round(done / fps, 4),
                "joints": joints_json(skeleton, kp, sc),
            }
            lines.write(json.dumps(record) + "\n")
            done += 1
        lines.flush()
        rate = done / max(time.time() - start, 1e-9)
        total = f"/{min(count, args.max_frames or count)}" if count else ""
        print(f"\r  frame {done}{total}, {rate:.1f} frames/s", end="", file=sys.stderr, flush=True)

    with open(lines_path, "w") as lines:
        try:
            while not args.max_frames or done + len(pending) < args.max_frames:
                ok, frame = capture.read()
                if not ok:
                    break
                if box is None and args.box:
                    box = parse_box(args.box[0], args.video, frame.shape[:2])
                if done + len(pending) == 0:
                    try:
                        check_image_size(
                            frame.shape[1],
                            frame.shape[0],
                            f"--video {args.video}",
                            args.max_image_pixels,
                        )
                    except DatasetError as error:
                        raise InputError(str(error)) from None
                pending.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                if len(pending) == args.batch:
                    flush(pending)
                    pending = []
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if pending:
                flush(pending)
            capture.release()
            if writer is not None:
                writer.release()
                os.replace(tmp_video, video_path)
    print(file=sys.stderr)
    if done == 0:
        os.remove(lines_path)
        raise InputError(f"--video {args.video!r}: no frame could be read (empty or broken video)")
    elapsed = time.time() - start
    ended = ""
    if count and done < min(count, args.max_frames or count) and not interrupted:
        ended = f" (the video ended after {done} of {count} frames: kept what was read)"
    elif interrupted:
        ended = " (interrupted: kept what was read)"
    print(
        f"{args.video}: {done} frames in {elapsed:.1f} s ({done / elapsed:.1f} frames/s){ended} "
        f"-> {video_path}, {lines_path}"
    )
    return done


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("images", nargs="*", help="JPEG or PNG files, any size")
    parser.add_argument(
        "--video",
        help="a video file (any format OpenCV reads) or a camera "
        "index (0, 1, ...) instead of images",
    )
    parser.add_argument(
        "--batch", type=int, default=8, help="video frames per network call (default: 8)"
    )
    parser.add_argument(
        "--smooth",
        type=float,
        default=0.0,
        help="video: exponential moving average of joint positions, the past's "
        "weight in [0, 1) (default: 0, off)",
    )
    parser.add_argument(
        "--max-frames",
        type=int,
        default=0,
        help="video: stop after this many frames (0: the whole video; a camera runs until Ctrl-C)",
    )
    parser.add_argument(
        "--model", required=True, help="a .keras file or a SavedModel version folder"
    )
    parser.add_argument(
        "--out", required=True, help="folder for <name>_pose.png and <name>_pose.json"
    )
    parser.add_argument(
        "--box",
        action="append",
        help="person box cx,cy,scale (pixels; scale = side / 200 px): once for "
        "all images or once per image (default: the whole image)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.2,
        help="joints with a lower confidence are drawn dimmed (default: 0.2)",
    )
    parser.add_argument(
        "--skeleton",
        choices=sorted(SKELETONS),
        help=".keras only: the joint table (default: the one saved in the model; needed only "
        "for models saved before they carried it)",
    )
    parser.add_argument("--no-flip", action="store_true", help=".keras only: skip the flip test")
    parser.add_argument(
        "--max-image-pixels",
        type=int,
        default=None,
        help="refuse images above this many pixels, read from the header before "
        "decoding (default: 50,000,000)",
    )
    args = parser.parse_args(argv)
    if bool(args.images) == bool(args.video):
        parser.error("give image files or --video (a file or camera index), not both or neither")
    if args.batch < 1 or args.max_frames < 0:
        parser.error("--batch must be at least 1 and --max-frames not negative")
    if not 0.0 <= args.smooth < 1.0:
        parser.error(f"--smooth must be in [0, 1), got {args.smooth}")
    if args.video and args.box and len(args.box) != 1:
        parser.error("a video takes one --box for all frames")
    if not 0.0 <= args.threshold <= 1.0:
        parser.error(f"--threshold must be between 0 and 1, got {args.threshold}")
    if args.max_image_pixels is not None and args.max_image_pixels < 1:
        parser.error("--max-image-pixels must be positive")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out {args.out!r} is a file; name a folder for the poses")
    if args.box and len(args.box) not in (1, len(args.images)):
        parser.error(
            f"give one --box for all images or one per image ({len(args.images)}), "
            f"not {len(args.box)}"
        )
    names = {}
    for path in args.images:
        name = os.path.splitext(os.path.basename(path))[0]
        if name in names:
            parser.error(
                f"{names[name]} and {path} would both write {name}_pose.png and "
                f"{name}_pose.json into --out; predict them in separate runs or rename one"
            )
        names[name] = path
    if args.video:
        try:
            predictor = Predictor(args.model, args.skeleton, not args.no_flip)
            predict_video(args, predictor)
            return 0
        except InputError as error:
            raise SystemExit(f"error: {error}") from None
    try:
        inputs = [read_image(p, args.max_image_pixels) for p in args.images]
        boxes = [None] * len(inputs)
        if args.box:
            texts = args.box * len(inputs) if len(args.box) == 1 else args.box
            boxes = [parse_box(t, p, size) for t, p, (_, size) in zip(texts, args.images, inputs)]
        predictor = Predictor(args.model, args.skeleton, not args.no_flip)
    except InputError as error:
        raise SystemExit(f"error: {error}") from None

    from PIL import Image

    from keras_hourglass.drawing import draw_pose

    os.makedirs(args.out, exist_ok=True)
    skeleton = predictor.skeleton
    every = []
    for path, (data, (height, width)), box in zip(args.images, inputs, boxes):
        keypoints, scores = predictor(data, box)
        name = os.path.splitext(os.path.basename(path))[0]
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        drawn = draw_pose(
            pixels,
            keypoints,
            skeleton,
            scores=scores,
            threshold=args.threshold,
            radius=max(3, round(max(height, width) / 150)),
            width=max(2, round(max(height, width) / 250)),
        )
        png = os.path.join(args.out, f"{name}_pose.png")
        with files.atomic_path(png) as tmp:
            drawn.save(tmp, format="PNG")
        result = {
            "image": os.path.abspath(path),
            "width": width,
            "height": height,
            "box": {"center": box[:2], "scale": box[2]} if box else "whole image",
            "model": os.path.abspath(args.model),
            "skeleton": skeleton.name,
            "flip_test": predictor.flip_test,
            "threshold": args.threshold,
            "joints": joints_json(skeleton, keypoints, scores),
        }
        target = os.path.join(args.out, f"{name}_pose.json")
        files.write_json(target, result)
        confident = int((scores >= args.threshold).sum())
        print(f"{path}: {confident}/{len(scores)} joints above {args.threshold} -> {png}, {target}")
        every.append(keypoints)
    from keras_hourglass.evaluation import write_prediction_file

    mat = os.path.join(args.out, "preds.mat")
    write_prediction_file(np.stack(every), mat, base=1)
    print(f"{mat}: `preds` {len(every)} x {len(every[0])} x 2, 1-based (MATLAB's, as MPII's tools)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
