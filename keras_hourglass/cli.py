"""What several commands share in their flags: the people a command reads."""

import logging
import sys

__all__ = [
    "EXTRAS",
    "MODEL_HELP",
    "run_main",
    "add_box_arguments",
    "add_image_limit",
    "add_logging",
    "add_people_arguments",
    "add_runtime_arguments",
    "check_box_arguments",
    "check_image_limit",
    "configure_logging",
    "ready",
    "resolve_model_arg",
    "say",
    "warn",
]

# The optional dependency -> the package extra that installs it (pyproject.toml).
EXTRAS = {
    "tensorflow": "tf",
    "tensorboard": "tf",
    "tensorflow_serving": "serving",
    "grpc": "serving",
    "tf2onnx": "onnx",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "openvino": "openvino",
    "starlette": "demo",
    "uvicorn": "demo",
    "nncf": "openvino",
    "pycocotools": "coco",
    "av": "video",
    "jax": "jax",
}


def run_main(main, argv=None):
    """Runs a command's `main`; an optional dependency that is not installed ends it with one
    line naming the extra that installs it, instead of a traceback."""
    try:
        result = main(argv)
    except ModuleNotFoundError as error:
        top = (error.name or "").split(".")[0]
        if top not in EXTRAS:
            raise
        extra = EXTRAS[top]
        hint = f"pip install 'keras-hourglass[{extra}]'"
        if top == "tensorflow":
            hint += (
                " (or run Keras on JAX: pip install 'keras-hourglass[jax]' and KERAS_BACKEND=jax)"
            )
        raise SystemExit(f"error: this needs {top}, which is not installed: {hint}") from None
    return result if isinstance(result, int) else 0


MODEL_HELP = "or the name of a shipped model (docs/models.md; default: the best one shipped)"


def resolve_model_arg(parser, args, attr="model"):
    """Resolves `args.<attr>` in place: a file or folder as it is, a shipped model's name to its
    file, nothing to the default shipped model; `args.model_name` gets the shipped name (or
    None). An unknown value is a one-line parser error that lists the shipped names."""
    from keras_hourglass.presets import PretrainedError, resolve_model

    try:
        path, name = resolve_model(getattr(args, attr), "--" + attr.replace("_", "-"))
    except PretrainedError as error:
        parser.error(str(error))
    setattr(args, attr, path)
    args.model_name = name
    return name


def add_people_arguments(parser):
    """`--annotations` and `--skeleton`: an annotation file read instead of the dataset folder's
    split, and custom data's skeleton file (`datasets.load_records` takes both)."""
    parser.add_argument(
        "--annotations",
        help="an annotation file of --dataset to read instead of the folder's split, its images "
        "relative to --data-dir (custom data: a .json or .csv of named joints, images by default "
        "relative to the file's folder)",
    )
    parser.add_argument(
        "--skeleton",
        help="custom data: the skeleton file (YAML or JSON: joint names, flip pairs, limbs, PCK "
        "normaliser; default: skeleton.yaml beside the annotations)",
    )


def add_box_arguments(parser):
    """The people's boxes a pose command takes from outside: `--bbox` (repeatable), a detector's
    `--detections` with `--min-box-score` and `--nms-thr` (`check_box_arguments` checks them)."""
    parser.add_argument(
        "--bbox",
        action="append",
        help="a person's box x,y,w,h (top-left corner and size in pixels, COCO's convention; "
        "the crop is the square of the longer side x 1.25); repeat it for several people "
        "(with several images: the same boxes in each)",
    )
    parser.add_argument(
        "--detections",
        help="a JSON of boxes per image: COCO detection results (what detectors write: "
        "image_id, bbox, score; image 397133 is 000000397133.jpg) or {image file name: "
        "[[x, y, w, h] or {bbox, score}, ...]}",
    )
    parser.add_argument(
        "--min-box-score",
        type=float,
        default=0.3,
        help="--detections: boxes with a lower score are left out (default: 0.3, mmpose's "
        "top-down demo)",
    )
    parser.add_argument(
        "--nms-thr",
        type=float,
        default=0.3,
        help="--detections: a box overlapping a higher-scored box of its image by more than "
        "this IoU is a duplicate and left out (default: 0.3, mmpose's top-down demo; 1 keeps "
        "every box)",
    )


def check_box_arguments(parser, args):
    """`add_box_arguments`' flags checked: one way of giving people (with `--box`), boxes that
    parse, scores and IoUs in [0, 1]; a bad one is a parser error (exit 2)."""
    from keras_hourglass.poses.boxes import BoxError, parse_bbox

    if sum(map(bool, (args.box, args.bbox, args.detections))) > 1:
        parser.error("give the people as --bbox, --detections or --box, one of them")
    for text in args.bbox or ():
        try:
            parse_bbox(text)
        except BoxError as error:
            parser.error(str(error))
    for flag, value in (("--min-box-score", args.min_box_score), ("--nms-thr", args.nms_thr)):
        if not 0.0 <= value <= 1.0:
            parser.error(f"{flag} must be between 0 and 1, got {value}")


def add_runtime_arguments(parser, default="auto", note=""):
    """`--runtime` and `--precision`, their choices from the library's own tables
    (`deploy.RUNTIMES`, `deploy.PRECISIONS`); `default` the command's runtime for a .keras
    file (None: the command decides by the model's format), `note` what the command adds to
    the runtime's help."""
    from keras_hourglass.deployment.core import PRECISIONS, RUNTIMES

    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=default,
        help=".keras: where the network runs: openvino (converted once, then kept in the "
        "conversion cache; the fastest on CPUs) or keras (the Keras backend, float32); auto: "
        "openvino when it is installed and the backend is TensorFlow (env "
        f"KERAS_HOURGLASS_RUNTIME). Default: {default or 'keras'}{note}",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="openvino: computation in bf16 (CPUs with AMX or AVX512-BF16) or fp32; auto: bf16 "
        "where the CPU has it (default; env KERAS_HOURGLASS_PRECISION)",
    )


def add_image_limit(parser):
    """`--max-image-pixels`: images whose header claims more pixels are refused before decoding
    (default `datasets.MAX_IMAGE_PIXELS`, 50,000,000)."""
    parser.add_argument(
        "--max-image-pixels",
        type=int,
        default=None,
        help="refuse images above this many pixels, read from their headers before decoding "
        "(default: 50,000,000)",
    )


def check_image_limit(parser, args):
    if args.max_image_pixels is not None and args.max_image_pixels < 1:
        parser.error("--max-image-pixels must be positive")


def add_logging(parser):
    """`-q/--quiet`: only warnings and errors from the library's logging; `-v/--debug`: its
    debug messages too (the settings resolved, the input pipeline chosen, what is compiled)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only warnings and errors (the library's progress and summaries are logged)",
    )
    group.add_argument(
        "-v",
        "--debug",
        action="store_true",
        help="print the library's debug messages too (resolved settings, the input pipeline "
        "chosen, what is compiled)",
    )


_QUIET = False

# The libraries whose own INFO messages -q silences too (NNCF prints about 100 lines per int8
# export; TensorFlow's C++ logs are set by TF_CPP_MIN_LOG_LEVEL before it loads).
QUIETED_LIBRARIES = ("nncf", "openvino", "tensorflow", "absl", "h5py", "matplotlib", "PIL")


def say(*args, **kwargs):
    """`print` for a command's progress and summaries: silent under -q."""
    if not _QUIET:
        print(*args, **kwargs)


def warn(text):
    """A note the user should see even under -q (what was left out, what was assumed): stderr."""
    print(text, file=sys.stderr)


def configure_logging(quiet=False, debug=False):
    """The commands' logging: the library's loggers (`keras_hourglass.*`) print their messages
    as they are, INFO and up (WARNING and up with `quiet`, DEBUG with `debug`): progress and
    summaries to stdout, warnings and notes to stderr. From Python only warnings are printed
    (Python's last-resort handler, stderr) unless the caller configures logging
    (`logging.basicConfig(level=logging.INFO)`)."""
    logger = logging.getLogger("keras_hourglass")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    progress = logging.StreamHandler(sys.stdout)  # progress and summaries
    progress.addFilter(lambda record: record.levelno < logging.WARNING)
    notes = logging.StreamHandler(sys.stderr)  # warnings and notes, as `warn` writes them
    notes.setLevel(logging.WARNING)
    for handler in (progress, notes):
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.DEBUG if debug else logging.INFO)
    logger.propagate = False
    global _QUIET
    _QUIET = bool(quiet)
    from keras_hourglass.quiet import set_quiet_progress

    set_quiet_progress(quiet)  # -q: no progress bar in any command
    if quiet:
        import os

        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # before TensorFlow loads (the commands load late)
        os.environ.setdefault("NNCF_LOG_LEVEL", "WARNING")
        for name in QUIETED_LIBRARIES:
            logging.getLogger(name).setLevel(logging.WARNING)


def ready():
    """Loads the library (Keras, TensorFlow's quiet start-up, the model class registered): each
    command calls it once its flags are parsed and checked, so `--help` and a bad flag answer
    before Keras loads (the commands import themselves lazily: keras_hourglass/__init__.py)."""
    import keras_hourglass

    keras_hourglass.load()


def add_server_arguments(parser, port):
    """--host and --port of a command that serves a page (default `port`)."""
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 lets "
        "other machines in)",
    )
    parser.add_argument(
        "--port", type=int, default=port, help=f"the port (default: {port}; 0: any free port)"
    )


def check_port(parser, args):
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
