"""TF Serving as operators run it: models.config with version policies (parsed by TF Serving's
own config proto), warm-up requests (parsed back as PredictionLog records and run through the
SavedModel), and the serving client against local servers that answer as TF Serving documents:
REST over a loopback HTTP server, gRPC through a PredictionService servicer, each with the
SavedModel behind it."""

import base64
import concurrent.futures
import http.server
import json
import re
import sys
import threading
import time

import numpy as np
import pytest
from conftest import ROOT, randomize_weights
from PIL import Image

import keras_hourglass as kh
from keras_hourglass.poses.boxes import person_box

sys.path.insert(0, str(ROOT / "eval"))
import serving_client  # noqa: E402

tf = pytest.importorskip("tensorflow")


def _config(root):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse((root / "models.config").read_text(), config)
    return {c.name: c for c in config.model_config_list.config}


def test_models_config_carries_each_models_version_policy(tmp_path):
    from keras_hourglass.deployment.saved_model import (
        parse_version_policy,
        set_version_policy,
        write_models_config,
    )

    for name, versions in (("hourglass", (1, 2, 3)), ("lsp", (4,))):
        for v in versions:
            (tmp_path / name / str(v)).mkdir(parents=True)
    write_models_config(tmp_path)
    configs = _config(tmp_path)
    assert set(configs) == {"hourglass", "lsp"}
    assert configs["hourglass"].base_path == "/models/hourglass"
    assert configs["hourglass"].model_version_policy.latest.num_versions == 1  # Serving's default
    set_version_policy(tmp_path / "hourglass", "latest:2")
    set_version_policy(tmp_path / "lsp", "specific:4,2")
    configs = _config(tmp_path)
    assert configs["hourglass"].model_version_policy.latest.num_versions == 2
    assert list(configs["lsp"].model_version_policy.specific.versions) == [2, 4]
    set_version_policy(tmp_path / "lsp", "all")
    assert _config(tmp_path)["lsp"].model_version_policy.HasField("all")
    for bad in ("latest:0", "latest", "newest:2", "specific:", "specific:a", "all:3"):
        with pytest.raises(ValueError, match="expected latest:N"):
            parse_version_policy(bad)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A tiny model exported for serving, its loaded SavedModel and a test photo."""
    from keras_hourglass.deployment.saved_model import export_for_serving

    root = tmp_path_factory.mktemp("served")
    model = kh.build_hourglass(
        num_stacks=1, skeleton="lsp", filters=16, depth=2, input_shape=(64, 64, 3)
    )
    randomize_weights(model, np.random.default_rng(1), scale=0.3)
    path = export_for_serving(model, str(root / "models" / "hourglass"))
    image = root / "photo.png"
    pixels = np.random.default_rng(2).integers(0, 256, (90, 120, 3), np.uint8)
    Image.fromarray(pixels).save(image)
    return {"root": root, "path": path, "loaded": tf.saved_model.load(path), "image": image}


@pytest.mark.slow
def test_warmup_requests_parse_as_prediction_logs_and_run(served):
    from tensorflow_serving.apis import prediction_log_pb2

    from keras_hourglass.deployment.saved_model import SIGNATURES

    path = f"{served['path']}/assets.extra/tf_serving_warmup_requests"
    names = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        assert request.model_spec.name == "hourglass"
        names.append(request.model_spec.signature_name)
        signature = served["loaded"].signatures[names[-1]]
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        out = signature(**inputs)
        assert out["keypoints"].shape == (1, 14, 2) and np.all(np.isfinite(out["scores"]))
    assert names == list(SIGNATURES)


def _outputs(signature, rows):
    return {k: v.numpy() for k, v in signature(**rows).items()}


class _RestServer(http.server.ThreadingHTTPServer):
    """Answers POST /v1/models/<name>[/versions/<v>]:predict as TF Serving's REST API documents
    (row format in, {"predictions": [...]} out, {"error": ...} with an error status), running the
    SavedModel; `delay` seconds before answering; records each path asked."""

    def __init__(self, loaded, delay=0.0):
        self.loaded, self.delay, self.paths = loaded, delay, []
        super().__init__(("127.0.0.1", 0), _RestHandler)


class _RestHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except BrokenPipeError:  # the client gave up waiting (the timeout test)
            pass

    def do_POST(self):
        server = self.server
        server.paths.append(self.path)
        time.sleep(server.delay)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        match = re.fullmatch(r"/v1/models/([\w.-]+)(?:/versions/(\d+))?:predict", self.path)
        # The server serves the shipped model's name, which the client asks for by default.
        if not match or match.group(1) != kh.default_pretrained():
            name = match.group(1) if match else self.path
            return self._answer(404, {"error": f"Servable not found for request: Latest({name})"})
        signature = server.loaded.signatures.get(body.get("signature_name", "serving_default"))
        instances = body["instances"]
        rows = {"images": tf.constant([base64.b64decode(i["images"]["b64"]) for i in instances])}
        if "boxes" in instances[0]:
            rows["boxes"] = tf.constant([i["boxes"] for i in instances], tf.float32)
        try:
            out = _outputs(signature, rows)
        except Exception as error:  # what Serving answers for a graph error
            return self._answer(400, {"error": str(error).splitlines()[0]})
        predictions = [
            {
                k: [x.decode() for x in v[i]] if v.dtype == object else v[i].tolist()
                for k, v in out.items()
            }
            for i in range(len(instances))
        ]
        return self._answer(200, {"predictions": predictions})


def _serve_rest(loaded, delay=0.0):
    server = _RestServer(loaded, delay)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _client(argv, capsys):
    code = serving_client.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_rest_client_against_a_local_server(served, capsys):
    server, url = _serve_rest(served["loaded"])
    image = str(served["image"])
    try:
        code, out, err = _client([image, "--rest", url, "--bbox", "10,5,60,70"], capsys)
        assert code == 0, err
        person = json.loads(out)[image]["people"][0]
        # Named from the server's joint_names (LSP's 14), equal to the signature called directly.
        assert list(person["joints"]) == list(kh.LSP.joint_names)
        direct = served["loaded"].signatures["predict_encoded_boxes"](
            images=tf.constant([served["image"].read_bytes()]),
            boxes=tf.constant([person_box((10, 5, 60, 70))], tf.float32),
        )
        got = np.array([[j["x"], j["y"]] for j in person["joints"].values()])
        np.testing.assert_allclose(got, direct["keypoints"].numpy()[0], atol=0.01)
        # --version names the version in the URL (TF Serving's /versions/<v>).
        _client([image, "--rest", url, "--version", "3"], capsys)
        assert server.paths[-1] == f"/v1/models/{kh.default_pretrained()}/versions/3:predict"
        # An error answer is one line with the server's message, no traceback.
        with pytest.raises(SystemExit) as stopped:
            _client([image, "--rest", url, "--model", "other"], capsys)
        assert "answered HTTP 404: Servable not found for request: Latest(other)" in str(
            stopped.value
        )
    finally:
        server.shutdown()
        server.server_close()
    # Nobody listening: one line.
    with pytest.raises(SystemExit) as stopped:
        _client([image, "--rest", url], capsys)
    assert "cannot reach" in str(stopped.value) and "Connection refused" in str(stopped.value)
    slow, url = _serve_rest(served["loaded"], delay=3.0)
    try:
        with pytest.raises(SystemExit) as stopped:
            _client([image, "--rest", url, "--timeout", "0.5"], capsys)
        assert "no answer from" in str(stopped.value) and "within 0.5 s" in str(stopped.value)
    finally:
        slow.shutdown()
        slow.server_close()


@pytest.mark.slow
def test_grpc_client_against_a_local_prediction_service(served, capsys):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    filters = []

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            filters.append(list(request.output_filter))
            if request.model_spec.name != kh.default_pretrained():
                context.abort(grpc.StatusCode.NOT_FOUND, "Servable not found for request")
            signature = served["loaded"].signatures[request.model_spec.signature_name]
            rows = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
            out = _outputs(signature, rows)
            response = predict_pb2.PredictResponse()
            for name, value in out.items():
                if not request.output_filter or name in request.output_filter:
                    response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
            return response

    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    image = str(served["image"])
    try:
        code, out, err = _client([image, "--server", f"127.0.0.1:{port}"], capsys)
        assert code == 0, err
        person = json.loads(out)[image]["people"][0]
        assert list(person["joints"]) == list(kh.LSP.joint_names)
        # Heatmaps do not travel unless asked for.
        assert filters[-1] == ["keypoints", "scores", "joint_names"]
        _client([image, "--server", f"127.0.0.1:{port}", "--heatmaps"], capsys)
        assert filters[-1] == []
        direct = served["loaded"].signatures["predict_encoded"](
            images=tf.constant([served["image"].read_bytes()])
        )
        got = np.array([[j["x"], j["y"]] for j in person["joints"].values()])
        np.testing.assert_allclose(got, direct["keypoints"].numpy()[0], atol=0.01)
        with pytest.raises(SystemExit) as stopped:
            _client([image, "--server", f"127.0.0.1:{port}", "--model", "other"], capsys)
        assert "answered NOT_FOUND: Servable not found for request" in str(stopped.value)
    finally:
        server.stop(None)
    with pytest.raises(SystemExit) as stopped:
        _client([image, "--server", f"127.0.0.1:{port}", "--timeout", "2"], capsys)
    assert "cannot reach the gRPC server" in str(stopped.value) or "no answer" in str(stopped.value)


def test_client_refuses_a_missing_joints_file(tmp_path, capsys):
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    with pytest.raises(SystemExit):
        serving_client.main([str(image), "--print-request", "--joints", str(tmp_path / "no.json")])
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # 64 pixels against a limit of 50
        serving_client.main([str(image), "--print-request", "--max-image-pixels", "50"])
    assert "a.png" in capsys.readouterr().err


def test_local_mode_refuses_what_is_not_a_saved_model(tmp_path, shared_data, capsys):
    image = str(shared_data / "mpii_samples/004645041.jpg")
    for argv, message in (
        ([image, "--local", str(tmp_path)], "holds no SavedModel"),
        ([image, "--local", "no-such-model"], "no shipped model"),
        ([image, "--local", str(tmp_path), "--rest", "http://x"], "one of --server, --rest"),
    ):
        with pytest.raises(SystemExit) as stopped:
            serving_client.main(argv)
        assert stopped.value.code == 2
        assert message in capsys.readouterr().err


def _batching_parameters_class():
    """TF Serving's BatchingParameters message (session_bundle_config.proto), built here from its
    published field numbers: tensorflow-serving-api does not ship that proto."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    proto = descriptor_pb2.FileDescriptorProto(
        name="batching_test.proto",
        package="tensorflow.serving",
        dependency=["google/protobuf/wrappers.proto"],
        syntax="proto3",
    )
    message = proto.message_type.add(name="BatchingParameters")
    field = descriptor_pb2.FieldDescriptorProto
    for name, number in (
        ("max_batch_size", 1),
        ("batch_timeout_micros", 2),
        ("num_batch_threads", 4),
        ("max_enqueued_batches", 5),
    ):
        message.field.add(
            name=name,
            number=number,
            type=field.TYPE_MESSAGE,
            type_name=".google.protobuf.Int64Value",
            label=field.LABEL_OPTIONAL,
        )
    message.field.add(name="thread_pool_name", number=3, type=field.TYPE_MESSAGE,
                      type_name=".google.protobuf.StringValue", label=field.LABEL_OPTIONAL)  # fmt: skip
    message.field.add(name="allowed_batch_sizes", number=6, type=field.TYPE_INT64,
                      label=field.LABEL_REPEATED)  # fmt: skip
    message.field.add(name="pad_variable_length_inputs", number=7, type=field.TYPE_BOOL,
                      label=field.LABEL_OPTIONAL)  # fmt: skip
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    )


def test_version_labels_and_the_batching_file_beside_models_config(tmp_path):
    from google.protobuf import text_format

    from keras_hourglass.deployment.saved_model import (
        BATCHING_FILE,
        set_version_policy,
        write_models_config,
    )

    for v in (1, 2, 3):
        (tmp_path / "m" / str(v)).mkdir(parents=True)
    write_models_config(tmp_path)
    batching = _batching_parameters_class()()
    text_format.Parse((tmp_path / BATCHING_FILE).read_text(), batching)
    assert batching.max_batch_size.value == 32 and batching.batch_timeout_micros.value == 2000
    # An operator's edit of the batching file survives later exports.
    (tmp_path / BATCHING_FILE).write_text("max_batch_size { value: 8 }\n")
    set_version_policy(tmp_path / "m", "specific:1,3", "stable=1,canary=3")
    config = _config(tmp_path)["m"]
    assert dict(config.version_labels) == {"stable": 1, "canary": 3}
    assert list(config.model_version_policy.specific.versions) == [1, 3]
    assert (tmp_path / BATCHING_FILE).read_text() == "max_batch_size { value: 8 }\n"
    # The recorded labels are kept with a new policy, so one that stops serving version 1
    # while stable=1 names it is refused; moving the label with it is not.
    with pytest.raises(ValueError, match="version 1 is not served by latest:2"):
        set_version_policy(tmp_path / "m", "latest:2")
    set_version_policy(tmp_path / "m", "latest:2", "stable=2,canary=3")
    assert dict(_config(tmp_path)["m"].version_labels) == {"stable": 2, "canary": 3}
    with pytest.raises(ValueError, match="label=version pairs"):
        set_version_policy(tmp_path / "m", None, "stable:1")
    set_version_policy(tmp_path / "m", "latest:2", "")
    assert dict(_config(tmp_path)["m"].version_labels) == {}
