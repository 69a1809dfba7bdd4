"""Predict the pose in your photos and look at it.

    python eval/predict.py photo.jpg other.png --model runs/demo/best.keras --out poses/
    python eval/predict.py photo.jpg --model saved_models/hourglass/1 --out poses/
    python eval/predict.py group.jpg --model M --bbox 40,20,200,380 --bbox 300,35,180,360 --out poses/
    python eval/predict.py *.jpg --model M --detections detections.json --out poses/

The network is single-person (top-down): it estimates the pose of the person in a box. The
people are the whole image (the default), the boxes given with --bbox x,y,w,h (repeatable: the
people of the image), a detector's boxes per image with --detections (COCO's detection-results
JSON, or {image: [boxes]}; boxes below --min-box-score left out), or --box cx,cy,scale (MPII's
convention: centre and box side / 200 px; once for all images or once per image). Every person
is predicted, --batch people per network call, with the flip test. For each image it writes
`<name>_pose.jpg` (`.png` for a PNG input; each skeleton over the image: left limbs green, right red, centre yellow;
joints below --threshold dimmed; each given box drawn with the person's score) and
`<name>_pose.json` ({"people": [{"box", "bbox", "box_score", "score", "joints"}]}: named
joints {"x", "y", "confidence"} in the image's pixels; `score`, the person's, is the mean
confidence of the joints above 0.2 times the box's score, the published COCO pipelines'), and
`preds.mat` of every person, images in order (`preds` N x K x 2, 1-based: the layout of the MPII
evaluation tools and the published prediction files).

A `.keras` model runs the library's pose loop (`keras_hourglass.deploy.estimate_keypoints`: NumPy
crops) on the chosen runtime: OpenVINO by default (converted once; later runs read the
conversion back without loading Keras), or Keras with --runtime keras; an exported OpenVINO
`.xml` runs the same loop without Keras; a SavedModel version folder runs its own
`predict_encoded` signatures, which call the same inference inside the graph, so all give the
same keypoints.

Videos and cameras:

    python eval/predict.py --video clip.mp4 --model runs/demo/best.keras --out poses/
    python eval/predict.py --video 0 --model M --out poses/ --show    # camera 0, live window

Every frame (any format OpenCV reads) goes through the same inference as an image, --batch
frames per call (default 8; 1 for a camera or --show), and is written to `<name>_pose.mp4`
(the skeleton and the person box drawn) and `<name>_pose.jsonl` (one line per frame: frame
number, time, the box used, named joints). The person box follows the person: each frame's box
is the square around the last frame's confident joints (above --threshold) enlarged 1.25x, and
the whole frame when fewer than half the joints are confident (the pose is lost) or with
--no-track; --box fixes one box for all frames. --show opens a window with the overlay and the
frames per second (q or Esc quits, space or p pauses; it needs OpenCV with window support:
opencv-python rather than the -headless build the requirements pin). --smooth A averages each
joint's position over frames (exponential moving average, A = the past's weight; 0, the
default, is off: jitter falls but fast motion lags). A progress line shows frames per second.
A video that ends early (a truncated file, a camera unplugged, Ctrl-C, q) keeps what was
written. The model is compiled once, at the first frame.
"""

import argparse
import json
import os

import numpy as np

from keras_hourglass import files
from keras_hourglass.boxes import (
    BoxError,
    check_inside,
    detected_people,
    parse_bbox,
    person_box,
    read_detections,
)
from keras_hourglass.cli import (
    MODEL_HELP,
    add_image_limit,
    add_logging,
    add_runtime_arguments,
    check_image_limit,
    configure_logging,
    ready,
    resolve_model_arg,
    say,
    warn,
)
from keras_hourglass.media import (
    PAUSE_KEYS,
    QUIT_KEYS,
    InputError,
    VideoWriter,
    Window,
    check_image,
    open_video,
    read_image,
)
from keras_hourglass.pose_output import (
    OVERLAY_FORMATS,
    InputListError,
    coco_result,
    draw_people,
    expand_images,
    named_joints_json,
    write_overlay,
)
from keras_hourglass.poses import PoseEstimator, follow
from keras_hourglass.skeletons import SKELETONS

Predictor = PoseEstimator  # the name tests, benchmarks and users of eval/predict.py know


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


def predict_video(args, predictor, source=None, window=None):
    """Every frame through the model, `--batch` frames per call; writes <name>_pose.mp4 and
    <name>_pose.jsonl, and with `--show` draws each frame in `window` (q or Esc quits, space or p
    pauses). The person box follows the person: each batch's box comes from the last pose
    (`follow`), or is --box, or (--no-track, or the pose lost) the whole frame. `source`: (a
    capture with read() and release(), name, fps, frame count) instead of opening --video (tests
    pass a fake camera). Returns the number of frames."""
    import time

    import cv2
    import keras

    capture, name, fps, count = source or open_video(args.video)
    if args.show and window is None:
        window = Window(f"keras-hourglass: {name} (q quits, space pauses)")
    os.makedirs(args.out, exist_ok=True)
    video_path = os.path.join(args.out, f"{name}_pose.mp4")
    lines_path = os.path.join(args.out, f"{name}_pose.jsonl")
    tmp_video = os.path.join(args.out, f".{name}_pose.tmp.mp4")
    skeleton = predictor.skeleton
    box = fixed = None
    writer, smoothed, done, pending = None, None, 0, []
    start = time.time()
    interrupted = quit_asked = False
    total = min(count, args.max_frames or count) if count else None  # a camera: no end
    progress = keras.utils.Progbar(total, unit_name="frame")

    def flush(batch):
        nonlocal writer, smoothed, done, box, quit_asked
        frames = np.stack(batch)
        used = box if fixed is None else fixed
        keypoints, scores = predictor.frames(frames, used)
        for frame, kp, sc in zip(frames, keypoints, scores):
            if args.smooth:
                smoothed = (
                    kp if smoothed is None else args.smooth * smoothed + (1 - args.smooth) * kp
                )
                kp = smoothed
            height, width = frame.shape[:2]
            person = {"keypoints": kp, "scores": sc, "bbox": _crop_bbox(used, predictor)}
            drawn = draw_people(frame, [person], skeleton, args.threshold)
            if writer is None:
                writer = VideoWriter(tmp_video, fps, width, height)
            writer.write(np.asarray(drawn))
            lines.write(json.dumps(_frame_record(done, fps, used, skeleton, kp, sc)) + "\n")
            done += 1
            if window is not None and not quit_asked:
                rate = done / max(time.time() - start, 1e-9)
                quit_asked = _show(window, np.asarray(drawn), rate)
        if args.track and fixed is None:
            box = follow(
                keypoints[-1], scores[-1], frames[-1].shape, args.threshold, predictor.person_box_px
            )
        lines.flush()
        progress.update(done)

    with open(lines_path, "w") as lines:
        try:
            while not quit_asked and (not args.max_frames or done + len(pending) < args.max_frames):
                ok, frame = capture.read()
                if not ok:
                    break
                if fixed is None and args.box:
                    fixed = parse_box(args.box[0], args.video, frame.shape[:2])
                if done + len(pending) == 0:
                    _check_frame_size(frame, args.video, args.max_image_pixels)
                pending.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                if len(pending) == args.batch:
                    flush(pending)
                    pending = []
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if pending and not quit_asked:
                flush(pending)
            capture.release()
            if window is not None:
                window.close()
            if writer is not None:
                writer.close()
                os.replace(tmp_video, video_path)
    if done == 0:
        os.remove(lines_path)
        raise InputError(f"--video {args.video!r}: no frame could be read (empty or broken video)")
    elapsed = time.time() - start
    ended = _how_it_ended(quit_asked, interrupted, done, count, args.max_frames)
    say(
        f"{args.video}: {done} frames in {elapsed:.1f} s ({done / elapsed:.1f} frames/s){ended} "
        f"-> {video_path}, {lines_path}"
    )
    return done


def _check_frame_size(frame, video, max_pixels):
    """A video's frames are refused, like photos, above `max_pixels` (the first frame tells)."""
    from keras_hourglass.datasets import DatasetError, check_image_size

    try:
        check_image_size(frame.shape[1], frame.shape[0], f"--video {video}", max_pixels)
    except DatasetError as error:
        raise InputError(str(error)) from None


def _crop_bbox(used, predictor):
    """The square crop the network saw for box `used` (cx, cy, scale) as x, y, w, h; None for
    the whole frame."""
    if used is None:
        return None
    side = used[2] * predictor.person_box_px
    return (used[0] + 0.5 - side / 2, used[1] + 0.5 - side / 2, side, side)


def _frame_record(index, fps, used, skeleton, keypoints, scores):
    """One line of <name>_pose.jsonl: the frame, its time, the box and the named joints."""
    return {
        "frame": index,
        "time_s": round(index / fps, 4),
        "box": (
            "whole frame"
            if used is None
            else {"center": [round(v, 2) for v in used[:2]], "scale": round(used[2], 4)}
        ),
        "joints": named_joints_json(skeleton, keypoints, scores),
    }


def _show(window, drawn_rgb, rate):
    """Shows a drawn frame with the frames per second in `window`; True when the user quits
    (q or Esc; space or p pauses until the next key)."""
    import cv2

    drawn = cv2.cvtColor(drawn_rgb, cv2.COLOR_RGB2BGR)  # the window's order
    cv2.putText(
        drawn,
        f"{rate:.1f} fps",
        (8, 24),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.7,
        (255, 255, 255),
        2,
        cv2.LINE_AA,
    )
    key = window.show(drawn)
    if key in PAUSE_KEYS:
        key = window.wait()  # any key resumes; q or Esc quits
    return key in QUIT_KEYS


def _how_it_ended(quit_asked, interrupted, done, count, max_frames):
    """What the summary line adds about the end of a video run."""
    if quit_asked:
        return " (quit: kept what was read)"
    if count and done < min(count, max_frames or count) and not interrupted:
        return f" (the video ended after {done} of {count} frames: kept what was read)"
    if interrupted:
        return " (interrupted: kept what was read)"
    return ""


def build_parser():
    """predict.py's flags (the library's tables give their choices)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _add_input_flags(parser)
    parser.add_argument(
        "--model",
        help="a .keras file, an OpenVINO .xml (train/export.py --format openvino), a "
        "SavedModel version folder, " + MODEL_HELP,
    )
    add_runtime_arguments(parser)
    parser.add_argument(
        "--out",
        default="poses",
        help="folder for <name>_pose.jpg|.png and <name>_pose.json (default: poses)",
    )
    _add_people_flags(parser)
    _add_output_flags(parser)
    add_image_limit(parser)
    add_logging(parser)
    return parser


def _add_input_flags(parser):
    """What to predict: images, folders and globs, or a video or camera, and how to batch it."""
    parser.add_argument(
        "images",
        nargs="*",
        help="JPEG or PNG files (any size), folders (searched recursively for .jpg/.jpeg/.png; "
        "outputs mirror their sub-folders) and glob patterns ('photos/**/*.jpg')",
    )
    parser.add_argument(
        "--video",
        help="a video file (any format OpenCV reads) or a camera "
        "index (0, 1, ...) instead of images",
    )
    parser.add_argument(
        "--show",
        action="store_true",
        help="video: show the overlay live in a window with the frames per second (q or Esc "
        "quits, space or p pauses); needs OpenCV with window support (opencv-python)",
    )
    parser.add_argument(
        "--no-track",
        dest="track",
        action="store_false",
        help="video: predict every frame on the whole frame (default: the person box follows "
        "the last pose, the whole frame when the pose is lost)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help="people (images) or video frames per network call (default: 8; 1 for a camera or "
        "--show, for the least delay)",
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


def _add_people_flags(parser):
    """Whose poses: one person per image (the whole image), boxes, a detector's boxes."""
    people = parser.add_argument_group(
        "people (default: one, the whole image)",
        "Boxes of several people per image: --bbox (repeatable) or --detections; every person "
        "is predicted (in batches of --batch), drawn with its box and written with its box and "
        "score. Or MPII's convention: --box cx,cy,scale.",
    )
    people.add_argument(
        "--bbox",
        action="append",
        help="a person's box x,y,w,h (top-left corner and size in pixels, COCO's convention; "
        "the crop is the square of the longer side x 1.25); repeat it for several people "
        "(with several images: the same boxes in each)",
    )
    people.add_argument(
        "--detections",
        help="a JSON of boxes per image: COCO detection results (what detectors write: "
        "image_id, bbox, score; image 397133 is 000000397133.jpg) or {image file name: "
        "[[x, y, w, h] or {bbox, score}, ...]}",
    )
    people.add_argument(
        "--min-box-score",
        type=float,
        default=0.3,
        help="--detections: boxes with a lower score are left out (default: 0.3, mmpose's "
        "top-down demo)",
    )
    people.add_argument(
        "--nms-thr",
        type=float,
        default=0.3,
        help="--detections: a box overlapping a higher-scored box of its image by more than "
        "this IoU is a duplicate and left out (default: 0.3, mmpose's top-down demo; 1 keeps "
        "every box)",
    )
    people.add_argument(
        "--box",
        action="append",
        help="one person box cx,cy,scale (pixels; scale = side / the model's 200 px person "
        "box, MPII's convention): once for all images or once per image",
    )


def _add_output_flags(parser):
    """How the poses are computed, drawn and written."""
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
        "--overlay-format",
        choices=OVERLAY_FORMATS,
        default="auto",
        help="the drawn images' format: auto (the input's: JPEG for JPEG photos, at quality 90; "
        "PNG for PNG; default), png or jpg",
    )
    parser.add_argument(
        "--coco-results",
        help="also write every person to this JSON file in COCO's keypoint results format "
        "(image_id from the file name's number, keypoints [x, y, confidence] in the model's "
        "joint order, score)",
    )
    parser.add_argument(
        "--skip-bad",
        action="store_true",
        help="leave out images that cannot be read (missing, empty, truncated, not an image, "
        "too large) and list them, instead of stopping before any prediction",
    )


def parse_args(argv=None):
    """The flags, parsed and checked before anything heavy loads (a bad one is a parser error,
    exit 2); returns (parser, args)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.quiet, args.debug)
    if bool(args.images) == bool(args.video):
        parser.error("give image files or --video (a file or camera index), not both or neither")
    if args.batch is None:
        args.batch = 1 if args.video and (args.show or args.video.isdigit()) else 8
    if args.show and not args.video:
        parser.error("--show is for --video (a file or a camera)")
    if args.batch < 1 or args.max_frames < 0:
        parser.error("--batch must be at least 1 and --max-frames not negative")
    if not 0.0 <= args.smooth < 1.0:
        parser.error(f"--smooth must be in [0, 1), got {args.smooth}")
    if args.video and args.box and len(args.box) != 1:
        parser.error("a video takes one --box for all frames")
    if not 0.0 <= args.threshold <= 1.0:
        parser.error(f"--threshold must be between 0 and 1, got {args.threshold}")
    check_image_limit(parser, args)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out {args.out!r} is a file; name a folder for the poses")
    if resolve_model_arg(parser, args):
        say(f"model: {args.model_name}, shipped with keras-hourglass (docs/models.md)")
    if sum(map(bool, (args.box, args.bbox, args.detections))) > 1:
        parser.error("give the people as --bbox, --detections or --box, one of them")
    for text in args.bbox or ():
        try:
            parse_bbox(text)
        except BoxError as error:
            parser.error(str(error))
    if args.video and (args.bbox or args.detections):
        parser.error(
            "a video takes one --box (or none: the person is followed from frame to frame)"
        )
    if not 0.0 <= args.min_box_score <= 1.0:
        parser.error(f"--min-box-score must be between 0 and 1, got {args.min_box_score}")
    if not 0.0 <= args.nms_thr <= 1.0:
        parser.error(f"--nms-thr must be between 0 and 1, got {args.nms_thr}")
    if args.detections:
        try:
            args.detections_table = read_detections(args.detections, args.min_box_score)
        except BoxError as error:
            parser.error(str(error))
    return parser, args


def main(argv=None):
    parser, args = parse_args(argv)
    if args.video:
        ready()
        try:
            predictor = Predictor(
                args.model, args.skeleton, not args.no_flip, args.runtime, args.precision
            )
            predict_video(args, predictor)
            return 0
        except InputError as error:
            raise SystemExit(f"error: {error}") from None
    try:
        inputs = expand_images(args.images)
    except InputListError as error:
        parser.error(str(error))
    if args.box and len(args.box) not in (1, len(inputs)):
        parser.error(
            f"give one --box for all images or one per image ({len(inputs)}), not {len(args.box)}"
        )
    args.given_images = [item.path for item in inputs]  # --box counts these
    # Every input's cheap checks first (headers: missing, empty, too large): a bad file stops the
    # run before anything is written, or with --skip-bad is listed and left out.
    readable, skipped = [], []
    for item in inputs:
        try:
            check_image(item.path, args.max_image_pixels)
            readable.append(item)
        except InputError as error:
            if not args.skip_bad:
                raise SystemExit(f"error: {error}") from None
            skipped.append(str(error))
    if not readable:
        _report_skipped(skipped)
        raise SystemExit("error: no readable image left to predict")
    try:  # the images and flags are checked: now the model (Keras only where it needs it)
        predictor = Predictor(
            args.model, args.skeleton, not args.no_flip, args.runtime, args.precision
        )
    except InputError as error:
        raise SystemExit(f"error: {error}") from None
    try:
        predict_photos(args, predictor, readable, skipped)
    finally:
        _report_skipped(skipped)
    return 0


def _report_skipped(skipped):
    if skipped:
        warn(f"skipped {len(skipped)} unreadable image(s) (--skip-bad):")
        for line in skipped:
            warn(f"  {line}")


def predict_photos(args, predictor, inputs, skipped):
    """The photos, one at a time (bounded memory: each is read and decoded once, its people
    predicted in batches of --batch, drawn and written, then let go): `<stem>_pose.json` and the
    overlay per image, then `preds.mat` (and --coco-results) for every person predicted. A file
    that fails to decode stops the run (or is added to `skipped` with --skip-bad); what ran is
    written completely either way."""
    skeleton = predictor.skeleton
    os.makedirs(args.out, exist_ok=True)
    every, coco = [], []
    try:
        for item in inputs:
            try:
                data, pixels = read_image(item.path, args.max_image_pixels)
                persons = people_of(args, item.path, pixels.shape[:2], predictor.person_box_px)
            except (InputError, BoxError) as error:
                if not args.skip_bad or isinstance(error, BoxError):
                    raise SystemExit(f"error: {error}") from None
                skipped.append(str(error))
                continue
            poses = predictor.image(data, pixels, persons, args.batch, args.threshold)
            keypoints, scores, overall = poses.keypoints, poses.scores, poses.overall
            fmt = item.format if args.overlay_format == "auto" else args.overlay_format
            overlay = write_overlay(poses.drawn, args.out, item.stem, fmt)
            height, width = pixels.shape[:2]
            result = {
                "image": os.path.abspath(item.path),
                "width": width,
                "height": height,
                "model": args.model_name or os.path.abspath(args.model),
                "skeleton": skeleton.name,
                "flip_test": predictor.flip_test,
                "runtime": predictor.runtime,
                "precision": predictor.precision,
                "threshold": args.threshold,
                "people": poses.people,
            }
            target = os.path.join(args.out, f"{item.stem}_pose.json")
            files.write_json(target, result)
            if args.coco_results:
                coco.extend(
                    coco_result(item.path, kp, sc, score)
                    for kp, sc, score in zip(keypoints, scores, overall)
                )
            confident = int((scores >= args.threshold).sum())
            count = len(persons)
            say(
                f"{item.path}: {count} {'person' if count == 1 else 'people'}, "
                f"{confident}/{scores.size} joints above {args.threshold} -> {overlay}, {target}"
            )
            every.extend(keypoints)
    finally:  # what ran is written whole, also when a later file stops the run
        from keras_hourglass.evaluation import write_prediction_file

        mat = os.path.join(args.out, "preds.mat")
        if every:
            write_prediction_file(np.stack(every), mat, base=1)
            say(
                f"{mat}: `preds` {len(every)} x {skeleton.num_joints} x 2 (every person, images "
                "in order), 1-based (MATLAB's, as MPII's tools)"
            )
        if args.coco_results:
            files.write_json(args.coco_results, coco)
            say(f"{args.coco_results}: {len(coco)} people in COCO's keypoint results format")


def people_of(args, path, size, person_box_px):
    """One image's people from the flags: [{"box": (cx, cy, scale) or None (the whole image),
    "bbox": [x, y, w, h] or None, "box_score"}]."""
    if args.bbox:
        boxes = [(parse_bbox(text), 1.0) for text in args.bbox]
    elif args.detections:
        found = [(d.bbox, d.score) for d in args.detections_table.of(path)]
        height, width = size
        boxes, notes = detected_people(found, width, height, path, args.nms_thr)
        for note in notes:
            warn(note)
        if not found:
            warn(
                f"note: {path}: no box in {args.detections} with a score of at least "
                f"{args.min_box_score}; nothing predicted"
            )
    elif args.box:
        index = getattr(args, "given_images", args.images).index(path)
        text = args.box[0] if len(args.box) == 1 else args.box[index]
        return [{"box": parse_box(text, path, size), "bbox": None, "box_score": 1.0}]
    else:
        return [{"box": None, "bbox": None, "box_score": 1.0}]
    height, width = size
    people = []
    for bbox, score in boxes:
        check_inside(bbox, width, height, path)
        people.append(
            {"box": person_box(bbox, person_box_px), "bbox": list(bbox), "box_score": score}
        )
    return people
