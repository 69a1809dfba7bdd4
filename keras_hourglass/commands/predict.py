"""Predict the poses in your photos, folders, videos or camera and look at them.

    hourglass-predict photo.jpg photos/ --out poses/             # the shipped model
    hourglass-predict group.jpg --bbox 40,20,200,380 --bbox 300,35,180,360 --out poses/
    hourglass-predict *.jpg --detections detections.json --model runs/demo/best.keras
    hourglass-predict --video clip.mp4 --out poses/              # or --video 0 --show

Each image gets `<name>_pose.jpg|.png` (the skeletons and boxes drawn) and `<name>_pose.json`
(each person's box, score and named joints in the image's pixels), and the run `preds.mat`
(MPII's layout); a video `<name>_pose.mp4` and `<name>_pose.jsonl` (a line per frame, its people
with track ids), everyone followed from frame to frame. The people are found by the person detector (default;
--detect-scales 1,2 for group photos), or given: --bbox boxes, another detector's --detections,
MPII's --box, or --whole-image. This command parses the flags and runs the library's pose loop (`keras_hourglass.poses.estimator`); docs/predict.md has the details.
"""

import argparse
import os

from keras_hourglass.cli import (
    MODEL_HELP,
    add_box_arguments,
    add_image_limit,
    add_logging,
    add_runtime_arguments,
    check_box_arguments,
    check_image_limit,
    configure_logging,
    resolve_model_arg,
    say,
    warn,
)
from keras_hourglass.geometry import PERSON_BOX_PX
from keras_hourglass.poses.boxes import (
    Box,
    BoxError,
    detected_people,
    parse_bbox,
    read_detections,
)
from keras_hourglass.poses.detect import DETECTORS, parse_scales
from keras_hourglass.poses.estimator import PoseEstimator, predict_photos, predict_video
from keras_hourglass.poses.media import InputError, Window, check_image, open_video
from keras_hourglass.poses.output import OVERLAY_FORMATS, InputListError, expand_images
from keras_hourglass.poses.tracking import TRACKERS
from keras_hourglass.skeletons import SKELETONS

Predictor = PoseEstimator  # the name tests, benchmarks and users of eval/predict.py know


def parse_box(text, path, size):
    """`--box cx,cy,scale` (MPII's convention: the crop's centre and side / 200 px) as a `Box`;
    its centre must lie in the `size` (height, width) image when given."""
    try:
        cx, cy, scale = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(
            f"--box {text!r}: expected centre x, centre y and scale, e.g. 640,360,3.2"
        ) from None
    if not scale > 0:
        raise InputError(f"--box {text!r}: the scale (box side / 200 px) must be positive")
    if size is not None:
        height, width = size
        if not (0 <= cx <= width - 1 and 0 <= cy <= height - 1):
            raise InputError(
                f"--box {text!r}: the centre ({cx}, {cy}) lies outside {path} ({width}x{height})"
            )
    return Box.around(cx, cy, scale * PERSON_BOX_PX)


def build_parser():
    """predict.py's flags (the library's tables give their choices)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _add_input_flags(parser)
    parser.add_argument(
        "--model",
        help="a .keras file, an exported .xml, .onnx or .tflite (train/export.py), a "
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
        "--tracker",
        choices=sorted(TRACKERS),
        default="pose",
        help="video: how people are followed between frames: "
        + "; ".join(f"{name}: {text}" for name, (_, text) in TRACKERS.items()),
    )
    parser.add_argument(
        "--no-track",
        dest="tracker",
        action="store_const",
        const="detect",
        help="video: find the people in every frame (--tracker detect)",
    )
    parser.add_argument(
        "--detect-every",
        type=int,
        default=None,
        help="video: frames between person detections (default: 10); people are followed from "
        "their poses between them",
    )
    parser.add_argument(
        "--max-people",
        type=int,
        default=0,
        help="video: follow at most this many people (default: 0, everyone found)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help="people per network call for images (default: 8; a video frame's people are one call)",
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
    """Whose poses: the people found (default), boxes given, or the whole image."""
    people = parser.add_argument_group(
        "people (default: found by the person detector)",
        "Without boxes the people are found: MediaPipe's BlazePose person detector (from "
        "mediapipe's wheel, run by OpenVINO), or its 2x2 tiles, or the photo turned when it finds "
        "no one, else the whole photo; each found person's first crop is framed by BlazePose's "
        "landmark model (--no-landmarks: the detector's box); people whose pose is not "
        "confident (and whose body the landmark model does not see) are left out, so a photo of "
        "nobody gives no one. Boxes given win: --bbox (repeatable), --detections, or MPII's "
        "--box cx,cy,scale. Every person is re-framed from its pose as the model was trained "
        "and predicted again (--passes), in batches of --batch.",
    )
    add_box_arguments(people)
    people.add_argument(
        "--detect",
        action="store_true",
        help="require the person detector (an error when it is not installed; it is the "
        "default where it is: docs/predict.md)",
    )
    people.add_argument(
        "--detector",
        dest="detector_name",
        choices=sorted(DETECTORS),
        default="blazepose",
        help="the person detector (default: blazepose, MediaPipe's BlazePose detector)",
    )
    people.add_argument(
        "--detect-scales",
        default=None,
        help="the tile grids the detector runs over, comma-separated: 1 the whole photo, 2 a 2x2 "
        "grid of overlapping tiles (people seen twice as large), 3 a 3x3 grid; each grid n costs "
        "n*n detector calls (default: 1, fast; 1,2 or 1,2,3 for group photos and crowds: "
        "docs/predict.md)",
    )
    people.add_argument(
        "--no-landmarks",
        action="store_true",
        help="photos: the people found start from the detector's box, not from the crop "
        "BlazePose's landmark model frames (about 10 ms a person less; a video's people always "
        "start from the detector's box: docs/predict.md)",
    )
    people.add_argument(
        "--whole-image",
        action="store_true",
        help="the whole image is the one person's first box (no detector); it is always reported",
    )
    people.add_argument(
        "--passes",
        type=int,
        default=None,
        help="network passes per person at most: the first box, then crops re-framed from the "
        "pose until they stop moving (default: 2; 1: the box as given, no re-framing)",
    )
    people.add_argument(
        "--no-refine",
        dest="passes",
        action="store_const",
        const=1,
        help="one pass per person: the box as given or found (the same as --passes 1)",
    )
    people.add_argument(
        "--min-person-score",
        type=float,
        default=None,
        help="people found (not given) whose mean joint confidence is below this are left out "
        "(default: 0.15, calibrated on held-out people and photos of nobody: docs/predict.md)",
    )
    people.add_argument(
        "--box",
        action="append",
        help="cx,cy,scale: the person's centre and scale (box side / the model's person "
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
    check_box_arguments(parser, args)
    given = bool(args.box or args.bbox or args.detections)
    if (args.detect or args.whole_image) and given:
        flag = "--detect" if args.detect else "--whole-image"
        warn(f"note: the boxes given win over {flag}")
        args.detect = args.whole_image = False
    if args.detect and args.whole_image:
        parser.error("--detect and --whole-image: give one of them")
    if args.detect_every is not None and args.detect_every < 1:
        parser.error(f"--detect-every must be at least 1, got {args.detect_every}")
    if args.max_people < 0:
        parser.error(f"--max-people must be 0 (everyone) or more, got {args.max_people}")
    if args.passes is not None and args.passes < 1:
        parser.error(f"--passes must be at least 1, got {args.passes}")
    if args.min_person_score is not None and not 0.0 <= args.min_person_score <= 1.0:
        parser.error(f"--min-person-score must be between 0 and 1, got {args.min_person_score}")
    try:
        args.detect_scales = parse_scales(args.detect_scales or "1")
    except ValueError as error:
        parser.error(f"--detect-scales: {error}")
    args.detector = "auto"  # made with the model, when a photo needs it
    if args.detect:
        from keras_hourglass.poses.detect import DetectorError, make_detector

        try:
            args.detector = make_detector(args.detector_name, args.detect_scales)
        except DetectorError as error:
            parser.error(f"--detect: {error}")
    if args.video and (args.bbox or args.detections):
        parser.error(
            "a video takes one --box (or none: the person is followed from frame to frame)"
        )
    if args.detections:
        try:
            args.detections_table = read_detections(args.detections, args.min_box_score)
        except BoxError as error:
            parser.error(str(error))
    return parser, args


def main(argv=None):
    parser, args = parse_args(argv)
    try:
        if args.video:
            run_video(args, _estimator(args))
            return 0
        inputs = _checked_inputs(parser, args)
        estimator = _estimator(args)  # the images and flags are checked: now the model
        skipped = args.skipped
        try:
            predict_photos(
                estimator,
                inputs,
                args.out,
                lambda path, pixels: people_of(args, path, pixels),
                batch=args.batch,
                threshold=args.threshold,
                overlay_format=args.overlay_format,
                max_image_pixels=args.max_image_pixels,
                skip_bad=args.skip_bad,
                coco_results=args.coco_results,
                model_name=args.model_name,
                skipped=skipped,
                whole_image=args.whole_image,
            )
        finally:
            _report_skipped(skipped)
    except (InputError, BoxError) as error:
        raise SystemExit(f"error: {error}") from None
    return 0


def _estimator(args):
    return PoseEstimator(
        args.model, args.skeleton, not args.no_flip, args.runtime, args.precision,
        detector=getattr(args, "detector", "auto"), passes=getattr(args, "passes", None),
        min_person_score=getattr(args, "min_person_score", None),
        detect_scales=getattr(args, "detect_scales", None),
        detector_name=getattr(args, "detector_name", "blazepose"),
        framer=None if getattr(args, "no_landmarks", False) else "auto",
    )  # fmt: skip


def _checked_inputs(parser, args):
    """The images the arguments name, each checked from its header (missing, empty, too large)
    before anything is written: a bad one stops the run, or with --skip-bad is listed in
    `args.skipped` and left out."""
    try:
        inputs = expand_images(args.images)
    except InputListError as error:
        parser.error(str(error))
    if args.box and len(args.box) not in (1, len(inputs)):
        parser.error(
            f"give one --box for all images or one per image ({len(inputs)}), not {len(args.box)}"
        )
    args.given_images = [item.path for item in inputs]  # --box counts these
    readable, args.skipped = [], []
    for item in inputs:
        try:
            check_image(item.path, args.max_image_pixels)
            readable.append(item)
        except InputError as error:
            if not args.skip_bad:
                raise
            args.skipped.append(str(error))
    if not readable:
        _report_skipped(args.skipped)
        raise InputError("no readable image left to predict")
    return readable


def run_video(args, estimator, source=None, window=None):
    """--video: the library's video loop with the flags, a progress bar and (--show) a window;
    `source` and `window` replace the opened video and window (tests pass fakes). Returns the
    number of frames."""
    source = source or open_video(args.video)
    capture, name, fps, count = source
    if args.show and window is None:
        window = Window(f"keras-hourglass: {name} (q quits, space pauses)")
    box = parse_box(args.box[0], args.video, None) if args.box else None
    from keras_hourglass.quiet import text_progress

    total = min(count, args.max_frames or count) if count else None  # a camera: no end
    bar = text_progress(total, "frame")
    try:
        run = _video_run(args, estimator, source, window, box, bar)
    finally:
        if bar is not None:
            bar.close()
    say(run.summary(args.video))
    return run.frames


def _video_run(args, estimator, source, window, box, bar):
    return predict_video(
        estimator,
        source,
        args.out,
        batch=args.batch,
        threshold=args.threshold,
        box=box,
        tracker=args.tracker,
        smooth=args.smooth,
        max_frames=args.max_frames,
        max_image_pixels=args.max_image_pixels,
        window=window,
        progress=bar.update if bar else None,
        where=f"--video {args.video}",
        whole_image=args.whole_image,
        detect_every=args.detect_every,
        max_people=args.max_people,
    )


def _report_skipped(skipped):
    if skipped:
        warn(f"skipped {len(skipped)} unreadable image(s) (--skip-bad):")
        for line in skipped:
            warn(f"  {line}")


def people_of(args, path, pixels):
    """One image's people from the flags, as `Box`es: the boxes given (--bbox, --detections,
    --box), else None (the pose loop finds them, or takes the whole image with
    --whole-image)."""
    size = pixels.shape[:2]
    if args.bbox:
        return [Box(*parse_bbox(text)) for text in args.bbox]
    if args.detections:
        found = [(d.bbox, d.score) for d in args.detections_table.of(path)]
        height, width = size
        kept, notes = detected_people(found, width, height, path, args.nms_thr)
        for note in notes:
            warn(note)
        if not found:
            warn(
                f"note: {path}: no box in {args.detections} with a score of at least "
                f"{args.min_box_score}; nothing predicted"
            )
        return [Box(*bbox, score=score) for bbox, score in kept]
    if args.box:
        index = getattr(args, "given_images", args.images).index(path)
        text = args.box[0] if len(args.box) == 1 else args.box[index]
        return [parse_box(text, path, size)]
    return None  # found by the pose loop (the detector, or --whole-image)
