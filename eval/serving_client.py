"""Ask a TF Serving model server for poses, over gRPC (tensorflow-serving-api) or REST.

    # serve:  docker run -p 8500:8500 -p 8501:8501 -v $PWD/saved_models:/models \
    #           tensorflow/serving --model_config_file=/models/models.config
    python eval/serving_client.py photo.jpg --server localhost:8500             # gRPC
    python eval/serving_client.py photo.jpg --rest http://localhost:8501        # REST
    python eval/serving_client.py photo.jpg --server localhost:8500 --box 640,360,3.2

Sends the JPEG/PNG files as they are to the `predict_encoded` signature (`predict_encoded_boxes`
with --box: person centre x, y in pixels and scale = box side / 200 px) and prints, per image,
the named joints with (x, y) in the image's pixels and a confidence. `--print-request` shows
the request instead of sending it.

The request builders and `check_request` are importable: `check_request` applies TF Serving's
own rules (the request names exactly the signature's inputs, with its dtypes) plus the input
ranks, so a bad request fails here with a message naming the input, not at the server.
"""

import argparse
import base64
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault(
    "KERAS_HOURGLASS_QUIET", "1"
)  # TensorFlow's start-up noise: keras_hourglass.quiet


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
    readable and within `max_pixels` (the export's limit, default 50,000,000)."""
    from keras_hourglass.datasets import DatasetError, check_image_size, image_size

    if isinstance(images, (bytes, str)) or not isinstance(images, (list, tuple)) or not images:
        raise RequestError("images: expected a non-empty list of JPEG/PNG file contents (bytes)")
    for i, data in enumerate(images):
        if not isinstance(data, (bytes, bytearray)) or not data:
            raise RequestError(
                f"images[{i}]: expected the bytes of a JPEG or PNG file, got "
                f"{type(data).__name__} of length {len(data) if data else 0}"
            )
        try:
            check_image_size(*image_size(bytes(data)), f"images[{i}]", max_pixels)
        except ValueError as error:  # DatasetError too
            reason = str(error) if isinstance(error, DatasetError) else f"images[{i}]: {error}"
            raise RequestError(reason) from None


def rest_body(images, boxes=None):
    """The JSON body of a REST `:predict` call (row format): `images` is a list of JPEG/PNG
    file contents (bytes), sent base64-encoded as TF Serving expects for string inputs."""
    check_images(images)
    instances = [{"images": {"b64": base64.b64encode(data).decode("ascii")}} for data in images]
    if boxes is not None:
        for instance, box in zip(instances, _boxes_array(boxes, len(images), images).tolist()):
            instance["boxes"] = box
    return {"signature_name": signature_name(boxes is not None), "instances": instances}


def predict_request(images, boxes=None, model_name="hourglass", version=None):
    """A gRPC `PredictRequest` for `predict_encoded` (or `predict_encoded_boxes`)."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    check_images(images)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name(boxes is not None)
    if version is not None:
        request.model_spec.version.value = int(version)
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


def _send_grpc(server, request, timeout):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(server) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout)
    import tensorflow as tf

    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def _send_rest(url, model, body, timeout):
    import urllib.request

    import numpy as np

    request = urllib.request.Request(
        f"{url.rstrip('/')}/v1/models/{model}:predict",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        predictions = json.load(response)["predictions"]
    return {k: np.array([p[k] for p in predictions]) for k in predictions[0]}


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("images", nargs="+", help="JPEG or PNG files")
    parser.add_argument(
        "--server", help="gRPC host:port of tensorflow_model_server (e.g. localhost:8500)"
    )
    parser.add_argument("--rest", help="REST base URL (e.g. http://localhost:8501)")
    parser.add_argument(
        "--model", default="hourglass", help="model name in models.config (default: hourglass)"
    )
    parser.add_argument("--version", type=int, help="model version (default: the newest)")
    parser.add_argument("--box", action="append", help="cx,cy,scale per image (repeat per image)")
    parser.add_argument(
        "--joints", help="the export's assets/hourglass.json, for joint names (default: MPII's 16)"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default: 30)")
    parser.add_argument(
        "--print-request", action="store_true", help="print the request, do not send"
    )
    args = parser.parse_args(argv)
    if not args.timeout > 0:
        parser.error(f"--timeout must be a positive number of seconds, got {args.timeout}")
    if not (args.server or args.rest or args.print_request):
        parser.error("give --server host:port (gRPC), --rest URL, or --print-request")
    images = []
    for path in args.images:
        if not os.path.isfile(path):
            parser.error(f"{path}: no such file")
        with open(path, "rb") as f:
            images.append(f.read())
    boxes = None
    if args.box:
        try:
            boxes = [[float(v) for v in b.split(",")] for b in args.box]
            boxes = _boxes_array(boxes, len(images), images)
        except (ValueError, RequestError) as error:
            parser.error(f"--box: {error} (one --box cx,cy,scale per image)")
    if args.joints:
        with open(args.joints) as f:
            joint_names = json.load(f)["skeleton"]["joint_names"]
    else:
        from keras_hourglass.skeletons import MPII

        joint_names = MPII.joint_names
    try:
        check_images(images)
    except RequestError as error:
        parser.error(str(error).replace("images[", "image ["))
    if args.rest:
        body = rest_body(images, boxes)
        if args.print_request:
            print(json.dumps(body)[:2000])
            return 0
        outputs = _send_rest(args.rest, args.model, body, args.timeout)
    else:
        request = predict_request(images, boxes, args.model, args.version)
        if args.print_request:
            print(request)
            return 0
        outputs = _send_grpc(args.server, request, args.timeout)
    from keras_hourglass.skeletons import named_joints

    result = {
        path: named_joints(joint_names, kp, sc, decimals=(2, 4))
        for path, kp, sc in zip(args.images, outputs["keypoints"], outputs["scores"])
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
