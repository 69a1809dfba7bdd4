r"""Ask a TF Serving model server for poses, over gRPC (tensorflow-serving-api) or REST.

    # serve:  docker run -p 8500:8500 -p 8501:8501 -v $PWD/saved_models:/models \
    #           tensorflow/serving --model_config_file=/models/models.config
    python eval/serving_client.py photo.jpg --server localhost:8500             # gRPC
    python eval/serving_client.py photo.jpg --rest http://localhost:8501        # REST
    python eval/serving_client.py photo.jpg --server localhost:8500 --box 640,360,3.2
    python eval/serving_client.py group.jpg --server localhost:8500 --bbox 40,20,200,380 --bbox 300,35,180,360
    python eval/serving_client.py *.jpg --rest http://localhost:8501 --detections detections.json
    python eval/serving_client.py photo.jpg --local saved_models/lspet-hg2-128  # no server
    python eval/serving_client.py photo.jpg --local lspet-hg2-128               # a shipped model

Sends the JPEG/PNG files as they are (a photo with an EXIF orientation, or of another format, as
its upright pixels in a PNG: the server's decoder ignores EXIF) to `predict_encoded_boxes` with
one row per person: the person detector's people (as hourglass-predict finds them, one pass),
or to `predict_encoded` with the whole image (--whole-image, or no detector), or --bbox x,y,w,h (repeatable,
the same boxes in every image), --detections FILE (COCO detection results or {image: [boxes]},
as eval/predict.py takes them; boxes below --min-box-score left out) or --box cx,cy,scale (MPII's
convention, one per image). It prints, per image, {"people": [{"bbox", "box_score", "score",
"joints"}]}: the named joints with (x, y) in the image's pixels and a confidence, the person's
score as predict.py gives it. `--print-request` shows the request instead of sending it.
`--local` sends nothing: it loads a SavedModel (a version folder, or a model folder: its newest
version) in this process and calls the same signature with the same inputs, which is what a
server would run; a shipped model's name is exported once into a cache folder
(~/.cache/keras_hourglass, or $KERAS_HOURGLASS_CACHE) and loaded from there.

The request builders and `check_request` are importable: `check_request` applies TF Serving's
own rules (the request names exactly the signature's inputs, with its dtypes) plus the input
ranks, so a bad request fails here with a message naming the input, not at the server.
"""

import argparse
import base64
import json
import os
import sys

from keras_hourglass.cli import (
    add_box_arguments,
    add_logging,
    check_box_arguments,
    configure_logging,
    ready,
)
from keras_hourglass.geometry import PERSON_BOX_PX


class RequestError(ValueError):
    pass


def signature_name(with_boxes):
    return "predict_encoded_boxes" if with_boxes else "predict_encoded"


def _boxes_array(boxes, count, images=None):
    """Boxes as float32 (count, 3) after the checks the model's graph makes: finite values, a
    positive scale, the centre inside its image (when the images are given)."""
    import numpy as np

    try:
        boxes = np.asarray(boxes, np.float32)
    except (TypeError, ValueError):
        raise RequestError(
            "boxes: expected numbers (centre x, centre y, scale) per image"
        ) from None
    if boxes.shape != (count, 3):
        raise RequestError(
            f"boxes: expected one (centre x, centre y, scale) per image, shape "
            f"({count}, 3); got {boxes.shape}"
        )
    for i, (cx, cy, scale) in enumerate(boxes.tolist()):
        if not np.all(np.isfinite([cx, cy, scale])):
            raise RequestError(f"boxes[{i}]: {[cx, cy, scale]} has a NaN or infinite value")
        if not scale > 0:
            raise RequestError(
                f"boxes[{i}]: the scale (box side / 200 px) must be positive, got {scale}"
            )
        if images is not None:
            from keras_hourglass.datasets import image_size

            width, height = image_size(images[i])
            if not (0 <= cx <= width - 1 and 0 <= cy <= height - 1):
                raise RequestError(
                    f"boxes[{i}]: the centre ({cx}, {cy}) lies outside image {i} "
                    f"({width} x {height})"
                )
    return boxes


def check_images(images, max_pixels=None):
    """`images` must be a non-empty list of whole JPEG/PNG files (bytes) whose headers are
    readable and within `max_pixels` (the export's limit, default 50,000,000): the library's one
    image check (`datasets.check_image_bytes`), as a `RequestError`."""
    from keras_hourglass.datasets import DatasetError, check_image_bytes

    if isinstance(images, (bytes, str)) or not isinstance(images, (list, tuple)) or not images:
        raise RequestError("images: expected a non-empty list of JPEG/PNG file contents (bytes)")
    for i, data in enumerate(images):
        if not isinstance(data, (bytes, bytearray)) or not data:
            raise RequestError(
                f"images[{i}]: expected the bytes of a JPEG or PNG file, got "
                f"{type(data).__name__} of length {len(data) if data else 0}"
            )
        data = bytes(data)
        try:
            check_image_bytes(
                data[:32], data[-12:], len(data), f"images[{i}]", max_pixels, data, known_only=True
            )
        except DatasetError as error:
            raise RequestError(str(error)) from None


def rest_body(images, boxes=None):
    """The JSON body of a REST `:predict` call (row format): `images` is a list of JPEG/PNG
    file contents (bytes), sent base64-encoded as TF Serving expects for string inputs."""
    check_images(images)
    instances = [{"images": {"b64": base64.b64encode(data).decode("ascii")}} for data in images]
    if boxes is not None:
        for instance, box in zip(instances, _boxes_array(boxes, len(images), images).tolist()):
            instance["boxes"] = box
    return {"signature_name": signature_name(boxes is not None), "instances": instances}


def predict_request(images, boxes=None, model_name="hourglass", version=None, outputs=None):
    """A gRPC `PredictRequest` for `predict_encoded` (or `predict_encoded_boxes`); `outputs`:
    the outputs to send back (TF Serving's `output_filter`; None: all of them)."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    check_images(images)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name(boxes is not None)
    if version is not None:
        request.model_spec.version.value = int(version)
    if outputs:
        request.output_filter.extend(outputs)
    request.inputs["images"].CopyFrom(
        tf.make_tensor_proto(list(images), dtype=tf.string, shape=[len(images)])
    )
    if boxes is not None:
        request.inputs["boxes"].CopyFrom(
            tf.make_tensor_proto(_boxes_array(boxes, len(images), images))
        )
    return request


def signature_def(saved_model_dir, name):
    """The `SignatureDef` proto `name` of a SavedModel (what TF Serving reads)."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(saved_model_dir, "saved_model.pb")
    if not os.path.isfile(path):
        raise RequestError(f"{saved_model_dir!r} is not a SavedModel folder (no saved_model.pb)")
    proto = saved_model_pb2.SavedModel()
    with open(path, "rb") as f:
        proto.ParseFromString(f.read())
    signatures = proto.meta_graphs[0].signature_def
    if name not in signatures:
        raise RequestError(
            f"{saved_model_dir!r} has no signature {name!r} (it has "
            f"{sorted(k for k in signatures if not k.startswith('__'))})"
        )
    return signatures[name]


def _check_inputs(given, signature, where):
    """given: {name: (dtype enum, shape tuple)}."""
    from tensorflow.core.framework import types_pb2

    expected = set(signature.inputs)
    if set(given) != expected:
        raise RequestError(
            f"{where}: inputs {sorted(given)} do not match the signature's {sorted(expected)} "
            f"(missing {sorted(expected - set(given))}, extra {sorted(set(given) - expected)})"
        )
    for name, (dtype, shape) in given.items():
        info = signature.inputs[name]
        if dtype != info.dtype:
            raise RequestError(
                f"{where}: input {name!r} is {types_pb2.DataType.Name(dtype)}, the signature "
                f"expects {types_pb2.DataType.Name(info.dtype)}"
            )
        dims = [d.size for d in info.tensor_shape.dim]
        if not info.tensor_shape.unknown_rank and len(dims) != len(shape):
            raise RequestError(
                f"{where}: input {name!r} has shape {list(shape)}, the signature "
                f"expects rank {len(dims)} {dims} (-1: any)"
            )
        for got, want in zip(shape, dims):
            if want != -1 and got != want:
                raise RequestError(
                    f"{where}: input {name!r} has shape {list(shape)}, the "
                    f"signature expects {dims} (-1: any)"
                )


def check_request(request, signature):
    """Checks a gRPC `PredictRequest` against a `SignatureDef`; raises `RequestError`."""
    given = {
        name: (proto.dtype, tuple(d.size for d in proto.tensor_shape.dim))
        for name, proto in request.inputs.items()
    }
    _check_inputs(given, signature, f"PredictRequest for {request.model_spec.signature_name!r}")


class ServerError(RuntimeError):
    """The server could not be reached or answered with an error; the message is one line."""


def _send_grpc(server, request, timeout):
    """Sends a `PredictRequest`; {output name: array}, or `ServerError` in one line."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    try:
        with grpc.insecure_channel(server) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            response = stub.Predict(request, timeout)
    except grpc.RpcError as error:
        code = error.code()
        if code == grpc.StatusCode.UNAVAILABLE:
            raise ServerError(
                f"cannot reach the gRPC server {server} ({error.details()})"
            ) from None
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise ServerError(f"no answer from {server} within {timeout:g} s (--timeout)") from None
        raise ServerError(f"the server {server} answered {code.name}: {error.details()}") from None
    import tensorflow as tf

    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def rest_url(url, model, version=None):
    """TF Serving's REST predict URL, of one version when given (api_rest: `/v1/models/<model>
    [/versions/<version>]:predict`)."""
    version_part = f"/versions/{int(version)}" if version is not None else ""
    return f"{url.rstrip('/')}/v1/models/{model}{version_part}:predict"


def _send_rest(url, model, body, timeout, version=None):
    """POSTs a REST body; {output name: array}, or `ServerError` in one line (TF Serving answers
    errors as {"error": message} with an HTTP error status)."""
    import socket
    import urllib.error
    import urllib.request

    import numpy as np

    target = rest_url(url, model, version)
    request = urllib.request.Request(
        target, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as error:
        text = error.read().decode("utf-8", "replace")
        try:
            text = json.loads(text).get("error", text)
        except (ValueError, AttributeError):
            pass
        detail = " ".join(str(text).split())[:500] or error.reason
        raise ServerError(f"{target} answered HTTP {error.code}: {detail}") from None
    except (socket.timeout, TimeoutError):
        raise ServerError(f"no answer from {target} within {timeout:g} s (--timeout)") from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise ServerError(f"no answer from {target} within {timeout:g} s (--timeout)") from None
        raise ServerError(f"cannot reach {target} ({reason})") from None
    except ValueError:
        raise ServerError(f"{target} did not answer with JSON") from None
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, list) or not predictions:
        raise ServerError(f"{target} answered without predictions: {str(answer)[:200]}")
    return {k: np.array([p[k] for p in predictions]) for k in predictions[0]}


def build_parser():
    """serve-client's flags."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "images", nargs="+", help="photos (JPEG and PNG sent as they are; others as PNG)"
    )
    parser.add_argument(
        "--server", help="gRPC host:port of tensorflow_model_server (e.g. localhost:8500)"
    )
    parser.add_argument("--rest", help="REST base URL (e.g. http://localhost:8501)")
    parser.add_argument(
        "--local",
        help="no server: run this SavedModel (version or model folder) or shipped model's name "
        "in this process, with the same request",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="model name in models.config (default: the shipped model's name, as "
        "saved_models/models.config serves it)",
    )
    parser.add_argument("--version", type=int, help="model version (default: the newest)")
    add_box_arguments(parser)
    parser.add_argument("--box", action="append", help="cx,cy,scale per image (repeat per image)")
    parser.add_argument(
        "--whole-image",
        action="store_true",
        help="without boxes, send each photo whole as one person instead of the person "
        "detector's people (the default where mediapipe's wheel is installed)",
    )
    parser.add_argument(
        "--joints",
        help="the export's assets/hourglass.json: joint names for servers whose model does not "
        "send them, and its person box size (default: the names the server sends, else MPII's)",
    )
    parser.add_argument(
        "--heatmaps",
        action="store_true",
        help="gRPC: also send the heatmaps back (default: keypoints, scores and joint names "
        "only; 262 KB less per person for the paper's model)",
    )
    parser.add_argument(
        "--max-image-pixels",
        type=int,
        default=None,
        help="refuse images above this many pixels before sending (default: 50,000,000, the "
        "export's own default limit)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default: 30)")
    parser.add_argument(
        "--print-request", action="store_true", help="print the request, do not send"
    )
    add_logging(parser)
    return parser


def parse_args(argv=None):
    """The flags, parsed and checked (a bad one is a parser error, exit 2): (parser, args)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.quiet, args.debug)
    if args.max_image_pixels is not None and args.max_image_pixels < 1:
        parser.error("--max-image-pixels must be positive")
    if not args.timeout > 0:
        parser.error(f"--timeout must be a positive number of seconds, got {args.timeout}")
    check_box_arguments(parser, args)
    if sum(map(bool, (args.server, args.rest, args.local))) > 1:
        parser.error("give one of --server, --rest and --local")
    if not (args.server or args.rest or args.local or args.print_request):
        parser.error(
            "give --server host:port (gRPC), --rest URL, --local SAVEDMODEL|NAME, or "
            "--print-request"
        )
    if args.model is None:
        from keras_hourglass.presets import default_pretrained

        args.model = default_pretrained() or "hourglass"
    if args.local:
        ready()
        try:
            args.local = local_saved_model(args.local)
        except RequestError as error:
            parser.error(f"--local: {error}")
    return parser, args


def upright_bytes(parser, path, data, max_pixels=None):
    """The bytes to send for a photo: as they are, unless the server's decoder (TensorFlow's,
    which ignores EXIF and reads JPEG, PNG, GIF and BMP) would see it otherwise than a viewer
    does: a photo with an EXIF orientation, or another format, is sent as the upright pixels
    re-encoded as PNG (said on stderr)."""
    from keras_hourglass.poses.media import InputError, decode_image, exif_turned

    kind = (
        "JPEG"
        if data[:3] == b"\xff\xd8\xff"
        else "PNG"
        if data[:8] == b"\x89PNG\r\n\x1a\n"
        else None
    )
    if kind and not exif_turned(data):
        return data
    try:
        pixels = decode_image(data, path, max_pixels)
    except InputError as error:
        parser.error(str(error))
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    why = "its EXIF orientation applied" if kind else "a format the server does not decode"
    print(f"note: {path}: sent as upright PNG pixels ({why})", file=sys.stderr)
    return out.getvalue()


def read_people(parser, args):
    """The images' bytes (checked), the --joints description, and the people to predict:
    (images, meta, rows, row_images, boxes) where rows are (image index, person)."""
    images = []
    for path in args.images:
        if not os.path.isfile(path):
            parser.error(f"{path}: no such file")
        with open(path, "rb") as f:
            images.append(f.read())
    meta = {}
    if args.joints:
        try:
            with open(args.joints, encoding="utf-8") as f:
                meta = json.load(f)
            meta["skeleton"]["joint_names"]
        except FileNotFoundError:
            parser.error(f"--joints {args.joints!r}: no such file")
        except (OSError, ValueError, KeyError, TypeError) as error:
            parser.error(
                f"--joints {args.joints!r}: not an export's assets/hourglass.json ({error!r:.80})"
            )
    for i, (path, data) in enumerate(zip(args.images, images)):
        images[i] = upright_bytes(parser, path, data, args.max_image_pixels)
        try:
            check_images([images[i]], args.max_image_pixels)
        except RequestError as error:
            parser.error(str(error).replace("images[0]", path))
    try:
        rows = people_rows(args, images, meta.get("person_box_px", PERSON_BOX_PX))
    except (ValueError, RequestError) as error:
        parser.error(str(error))
    if not rows:
        parser.error("no person to predict: no box passed --min-box-score")
    row_images = [images[i] for i, _ in rows]
    boxes = None
    if any(person["box"] is not None for _, person in rows):
        try:
            boxes = _boxes_array([p["box"] for _, p in rows], len(rows), row_images)
        except RequestError as error:
            parser.error(f"boxes: {error}")
    return images, meta, rows, row_images, boxes


def main(argv=None):
    parser, args = parse_args(argv)
    images, meta, rows, row_images, boxes = read_people(parser, args)
    if args.local:
        outputs = send(_send_local, args.local, row_images, boxes)
    elif args.rest:
        body = rest_body(row_images, boxes)
        if args.print_request:
            print(json.dumps(body)[:2000])
            return 0
        outputs = send(_send_rest, args.rest, args.model, body, args.timeout, args.version)
    else:
        wanted = None
        if not args.heatmaps:  # names come from --joints when given (older exports lack them)
            wanted = ["keypoints", "scores"] + ([] if args.joints else ["joint_names"])
        ready()  # TensorFlow's protos, its start-up kept quiet (REST needs neither)
        request = predict_request(row_images, boxes, args.model, args.version, wanted)
        if args.print_request:
            print(request)
            return 0
        outputs = send(_send_grpc, args.server, request, args.timeout)
    print(json.dumps(answer(args, rows, outputs, meta), indent=2))
    return 0


def answer(args, rows, outputs, meta):
    """The served outputs as {image: {"people": [...]}} with named joints: the names the model
    sends, else --joints', else MPII's for 16 joints (said on stderr)."""
    from keras_hourglass.evaluation.metrics import person_scores
    from keras_hourglass.skeletons import MPII, named_joints

    if "joint_names" in outputs:  # the model's own names, served with every answer
        joint_names = [n.decode() if isinstance(n, bytes) else n for n in outputs["joint_names"][0]]
    elif meta:
        joint_names = meta["skeleton"]["joint_names"]
    else:  # an export made before models sent their names, and no --joints: say so
        joint_names = [f"joint_{i}" for i in range(outputs["keypoints"].shape[1])]
        if len(joint_names) == MPII.num_joints:
            joint_names = list(MPII.joint_names)
        print(
            "note: the server does not send joint names (an older export): "
            + ("MPII's 16 names assumed" if joint_names == list(MPII.joint_names) else "numbered")
            + "; pass --joints <export>/assets/hourglass.json to be sure",
            file=sys.stderr,
        )
    scores = person_scores(outputs["scores"], [p["box_score"] for _, p in rows])
    result = {path: {"people": []} for path in args.images}
    for (i, person), kp, sc, score in zip(rows, outputs["keypoints"], outputs["scores"], scores):
        result[args.images[i]]["people"].append(
            {
                "bbox": person["bbox"],
                "box_score": round(person["box_score"], 6),
                "score": round(float(score), 6),
                "joints": named_joints(joint_names, kp, sc, decimals=(2, 4)),
            }
        )
    return result


def local_saved_model(value):
    """The SavedModel version folder `--local` names: a version folder as it is, a model folder's
    newest numbered version, or a shipped model's name exported once into the cache folder."""
    if os.path.isfile(os.path.join(value, "saved_model.pb")):
        return value
    if os.path.isdir(value):
        versions = [int(v) for v in os.listdir(value) if v.isdigit()]
        versions = [
            v for v in versions if os.path.isfile(os.path.join(value, str(v), "saved_model.pb"))
        ]
        if not versions:
            raise RequestError(f"{value!r} holds no SavedModel (no saved_model.pb, no version)")
        return os.path.join(value, str(max(versions)))
    from keras_hourglass.pretrained import PretrainedError, cached_saved_model

    try:
        return cached_saved_model(value)
    except PretrainedError as error:
        raise RequestError(str(error)) from None


def _send_local(saved_model_dir, images, boxes):
    """Runs the request's signature of a SavedModel in this process; outputs as NumPy."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(saved_model_dir)
    except (OSError, ValueError, RuntimeError) as error:
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ServerError(f"cannot load {saved_model_dir!r}: {problem}") from None
    name = signature_name(boxes is not None)
    if name not in loaded.signatures:
        raise ServerError(f"{saved_model_dir!r} has no signature {name!r}")
    check_images(images)
    inputs = {"images": tf.constant(list(images), tf.string)}
    if boxes is not None:
        inputs["boxes"] = tf.constant(_boxes_array(boxes, len(images), images))
    try:
        outputs = loaded.signatures[name](**inputs)
    except tf.errors.InvalidArgumentError as error:
        raise ServerError(f"{saved_model_dir!r}: {error.message.splitlines()[0]}") from None
    return {key: value.numpy() for key, value in outputs.items()}


def send(function, *args):
    """Calls a sender; a `ServerError` ends the command with its one line."""
    try:
        return function(*args)
    except ServerError as error:
        raise SystemExit(f"error: {error}") from None


def _found_people(args, data, path):
    """The people found in one photo, as hourglass-predict finds them without its re-framing
    passes (each pass would be another request): the person detector's boxes, each with the
    crop BlazePose's landmark model frames where it sees a body (`landmarks.LandmarkFramer`;
    the box's own crop elsewhere, or without the framer); None: the whole photo
    (--whole-image, no detector installed, or no one found; said on stderr)."""
    if args.whole_image:
        return None
    if getattr(args, "detector", "auto") == "auto":
        from keras_hourglass.poses.detect import DetectorError, PersonDetector
        from keras_hourglass.poses.landmarks import LandmarkFramer

        try:
            args.detector = PersonDetector()
            args.framer = LandmarkFramer()
        except DetectorError as error:
            print(f"note: {error}; the whole photo is the person", file=sys.stderr)
            args.detector = None
    if args.detector is None:
        return None
    from keras_hourglass.poses.media import decode_image

    pixels = decode_image(data, path)
    found = args.detector(pixels)
    if not found:
        print(
            f"note: {path}: the person detector found no one; the whole photo is sent",
            file=sys.stderr,
        )
        return None
    framer = getattr(args, "framer", None)
    if framer is None:
        return found
    import dataclasses

    import numpy as np

    from keras_hourglass.poses.framing import Framing

    floats = pixels.astype(np.float32) / 255.0
    people = []
    for box in found:
        seen = framer(floats, Framing.of_box(box, -1.0))
        if seen.presence >= framer.min_presence:  # the detector's box, the landmarks' crop
            frame = seen.framing
            box = dataclasses.replace(box, center=(frame.cx, frame.cy), side=frame.side)
        people.append(box)
    return people


def people_rows(args, images, unit=PERSON_BOX_PX):
    """One row per person: [(image index, {"box": (cx, cy, scale) or None, "bbox", "box_score"})]
    from --bbox, --detections or --box, else the person detector's (`_found_people`; None: the
    image whole). "box" is what `serving_boxes` takes: --box as given, a `boxes.Box`'s square
    with its scale in the export's person boxes of `unit` pixels (its description's)."""
    from keras_hourglass.datasets import image_size
    from keras_hourglass.poses.boxes import Box, detected_people, parse_bbox, read_detections

    if args.box:
        if len(args.box) != len(images):
            raise RequestError(
                f"--box: one cx,cy,scale per image ({len(images)}), got {len(args.box)}"
            )
        rows = []
        for i, text in enumerate(args.box):
            try:
                box = [float(v) for v in text.split(",")]
            except ValueError:
                raise RequestError(f"--box {text!r}: expected cx,cy,scale") from None
            rows.append((i, {"box": box, "bbox": None, "box_score": 1.0}))
        return rows
    table = read_detections(args.detections, args.min_box_score) if args.detections else None
    rows = []
    for i, path in enumerate(args.images):
        width, height = image_size(images[i])
        if table is not None:
            found = [(d.bbox, d.score) for d in table.of(path)]
            found, notes = detected_people(found, width, height, path, args.nms_thr)
            for note in notes:
                print(note, file=sys.stderr)
            boxes = [Box(*bbox, score=score) for bbox, score in found]
        elif args.bbox:
            boxes = [Box(*parse_bbox(text)) for text in args.bbox]
            for box in boxes:
                box.check_inside(width, height, path)
        else:
            boxes = _found_people(args, images[i], path)
            if boxes is None:
                rows.append((i, {"box": None, "bbox": None, "box_score": 1.0}))
                continue
        for box in boxes:
            cx, cy, side = box.square()
            person = {"box": [cx, cy, side / unit], "bbox": box.xywh, "box_score": box.score}
            rows.append((i, person))
    return rows
