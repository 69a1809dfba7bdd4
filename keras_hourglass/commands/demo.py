"""See poses in your browser: a local demo page for photos, several people and the camera.

    hourglass-demo                       # the shipped model at http://127.0.0.1:8000/
    hourglass-demo --port 8080 --model runs/demo/best.keras

Open the printed address: choose or drop photos (or take a frame from the camera) and each
shows its people's skeletons, their boxes and a table of joints with confidences, with buttons
to download the JSON (`hourglass-predict`'s format) and the drawn image. The boxes come from the
person detector (docs/demo.md: what it finds and misses); drag on the photo to add a box, drag
a box to move it, and the poses follow. The page and its JSON API (POST /api/poses) are served
by this process on 127.0.0.1 only, unless --host says otherwise; nothing is loaded from the
internet and nothing is written to disk. Ctrl-C stops it.
"""

import argparse
import socket
import sys

from keras_hourglass.cli import (
    MODEL_HELP,
    add_image_limit,
    add_logging,
    add_runtime_arguments,
    add_server_arguments,
    check_image_limit,
    check_port,
    configure_logging,
    resolve_model_arg,
    say,
    warn,
)


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", help="a .keras file, an exported .xml, .onnx or .tflite, " + MODEL_HELP
    )
    add_runtime_arguments(parser)
    add_server_arguments(parser, 8000)
    parser.add_argument(
        "--no-detect",
        dest="detect",
        action="store_false",
        help="no automatic person boxes: a photo without boxes is one person, the whole photo",
    )
    parser.add_argument(
        "--detect-scales",
        default="1,2,3",
        help="the tile grids the person detector runs over (default: 1,2,3, so a group photo's "
        "people are found: 14 detector calls, about 0.3 s a photo on 2 cores; 1: the whole "
        "photo once; docs/predict.md)",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=20.0,
        help="the largest photo accepted, in MB (default: 20)",
    )
    add_image_limit(parser)
    add_logging(parser)
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.quiet, args.debug)
    check_port(parser, args)
    if not args.max_upload_mb > 0:
        parser.error(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    check_image_limit(parser, args)
    from keras_hourglass.poses.detect import parse_scales

    try:
        args.detect_scales = parse_scales(args.detect_scales)
    except ValueError as error:
        parser.error(f"--detect-scales: {error}")
    resolve_model_arg(parser, args)
    return parser, args


def listen(host, port):
    """A bound, listening socket (port 0: any free one); a clear error for a busy port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise SystemExit(
            f"error: cannot listen on {host}:{port} ({error.strerror}); choose another --port"
        ) from None
    sock.listen(128)
    return sock


def main(argv=None):
    parser, args = parse_args(argv)
    sock = listen(args.host, args.port)  # before the model loads: a busy port says so at once
    import uvicorn

    from keras_hourglass.poses.demo import DemoLimits, make_app
    from keras_hourglass.poses.estimator import InputError, PoseEstimator

    try:
        estimator = PoseEstimator(args.model, runtime=args.runtime, precision=args.precision)
    except InputError as error:
        raise SystemExit(f"error: {error}") from None
    detector = None
    if args.detect:
        from keras_hourglass.poses.detect import DetectorError, make_detector

        try:
            detector = make_detector("blazepose", args.detect_scales)
        except DetectorError as error:
            warn(f"note: no automatic person boxes ({error}); draw boxes on the page")
    limits = DemoLimits(round(args.max_upload_mb * 1e6), args.max_image_pixels)
    app = make_app(estimator, detector, limits, args.model_name)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    say(
        f"keras-hourglass demo: {args.model_name or args.model} on {estimator.runtime}/"
        f"{estimator.precision}, person detector {'on' if detector else 'off'}"
    )
    print(f"Open http://{shown}:{port}/ in a browser (Ctrl-C stops)", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    sys.stdout.flush()
    return 0
