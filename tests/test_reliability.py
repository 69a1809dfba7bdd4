"""Bad input is refused with a message naming the file and record, never accepted silently and
never a traceback from deep inside a library (issue #14). Includes fuzzing of the JSON readers."""

import json
import re
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keras_hourglass as kh
from keras_hourglass import datasets as D

S = kh.LSP


def _jpeg(path, size=(60, 40)):
    from PIL import Image

    Image.new("RGB", size, (120, 80, 40)).save(path, format="JPEG")


def _person(i=0, **overrides):
    keypoints = [[10.0 + i + j, 5.0 + 2 * j, 2] for j in range(14)]
    row = {"image": "a.jpg", "keypoints": keypoints}
    row.update(overrides)
    return row


def _write_json(tmp_path, rows, name="people.json"):
    path = tmp_path / name
    path.write_text(json.dumps(rows))
    return str(path)


# --- silent acceptance -------------------------------------------------------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_annotated_joint_in_json_is_an_error(tmp_path, value):
    _jpeg(tmp_path / "a.jpg")
    row = _person()
    row["keypoints"][3] = [value, 10.0, 2]
    path = tmp_path / "p.json"
    path.write_text(json.dumps([_person(), row]))  # json writes NaN / Infinity
    with pytest.raises(D.DatasetError, match=r"p.json, record 1: annotated joints \[3\]"):
        D.read_custom(str(path), S, str(tmp_path))
    records = D.read_custom(str(path), S, str(tmp_path), skip_bad=True)
    assert len(records) == 1 and records.skipped == {"malformed record": [1]}


def _csv(tmp_path, rows, header=None):
    header = header or ["image"] + [f"{j}_{a}" for j in S.joint_names for a in "xy"]
    path = tmp_path / "p.csv"
    path.write_text("\n".join([",".join(header)] + rows) + "\n")
    return str(path)


def _csv_row(values=None):
    values = values or [f"{10 + j},{5 + 2 * j}" for j in range(14)]
    return "a.jpg," + ",".join(values)


def test_csv_inf_cut_off_rows_and_extra_columns_are_errors(tmp_path):
    _jpeg(tmp_path / "a.jpg")
    values = [f"{10 + j},{5 + 2 * j}" for j in range(14)]
    values[4] = "inf,12"
    with pytest.raises(D.DatasetError, match="record 0: annotated joints \\[4\\] need finite"):
        D.read_custom(_csv(tmp_path, [_csv_row(values)]), S, str(tmp_path))
    values[4] = "12,"  # one coordinate missing
    with pytest.raises(D.DatasetError, match="record 0: annotated joints \\[4\\]"):
        D.read_custom(_csv(tmp_path, [_csv_row(values)]), S, str(tmp_path))
    values[4] = ","  # both missing: not annotated
    assert not D.read_custom(_csv(tmp_path, [_csv_row(values)]), S, str(tmp_path))[0].annotated[4]
    with pytest.raises(D.DatasetError, match="record 1: has 3 fields, the header has 29"):
        D.read_custom(_csv(tmp_path, [_csv_row(), "052475643.jpg,1,2"]), S, str(tmp_path))
    with pytest.raises(D.DatasetError, match="record 0: has 30 fields"):
        D.read_custom(_csv(tmp_path, [_csv_row() + ",7"]), S, str(tmp_path))
    header = ["image"] + [f"{j}_{a}" for j in S.joint_names for a in "xy"] + ["weight"]
    with pytest.raises(D.DatasetError, match=r"unknown \['weight'\]"):
        D.read_custom(_csv(tmp_path, [_csv_row() + ",1"], header), S, str(tmp_path))
    values[0] = "ten,5"
    with pytest.raises(D.DatasetError, match="column right_ankle_x: 'ten' is not a number"):
        D.read_custom(_csv(tmp_path, [_csv_row(values)]), S, str(tmp_path))


def test_corrupt_joints_of_joint_box_datasets_are_caught(tmp_path):
    """Without a person box the box is built from the joints, so a joint at (-1000, -999) cannot
    be 'far from the box'; it is far outside the image (check_image_files reads its size), and a
    coordinate of 1e300 is refused when reading."""
    _jpeg(tmp_path / "a.jpg", (300, 200))
    row = _person()
    row["keypoints"][0] = [-1000.0, -999.0, 2]
    records = D.read_custom(_write_json(tmp_path, [_person(), row]), S, str(tmp_path))
    assert records[1].scale > 6  # the reader alone cannot tell: a 1,300 px person box
    with pytest.raises(
        D.DatasetError, match="record 1: annotated joints at .*-1000.0.* far outside"
    ):
        D.check_image_files(records)
    D.check_image_files(records[:1])
    row["keypoints"][0] = [1e300, 10.0, 2]
    with pytest.raises(D.DatasetError, match="record 1: annotated joints .* beyond any image"):
        D.read_custom(_write_json(tmp_path, [_person(), row]), S, str(tmp_path))


def _png_header_only(path, width, height):
    """A tiny PNG whose header claims width x height (the pixels are a stub)."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )


def test_image_above_the_pixel_limit_is_refused_from_its_header(tmp_path):
    _png_header_only(tmp_path / "bomb.png", 60000, 60000)
    assert (tmp_path / "bomb.png").stat().st_size < 100
    record = D.PersonRecord(
        str(tmp_path / "bomb.png"),
        np.full((14, 2), 50.0),
        np.ones(14, bool),
        np.ones(14, bool),
        np.array([50.0, 50.0]),
        1.0,
        10.0,
        "7",
    )
    with pytest.raises(
        D.DatasetError,
        match=r"record 7: image .*bomb.png.* is 60000 x 60000 = "
        r"3,600,000,000 pixels, above the limit of 50,000,000",
    ):
        D.check_image_files([record])
    D.check_image_files([record], max_pixels=4_000_000_000)  # raised on purpose: accepted
    _png_header_only(tmp_path / "zero.png", 0, 10)
    with pytest.raises(D.DatasetError, match="has no pixels"):
        D.check_image_files(
            [D.PersonRecord(str(tmp_path / "zero.png"), *list(record.__dict__.values())[1:])]
        )
    assert D.image_size(str(tmp_path / "bomb.png")) == (60000, 60000)


def test_image_size_reads_real_jpeg_headers(shared_data):
    from PIL import Image

    paths = sorted((shared_data / "mpii_samples").glob("*.jpg")) + sorted(
        (shared_data / "coco_samples").glob("*.jpg")
    )
    assert paths
    for path in paths:
        with Image.open(path) as image:
            assert D.image_size(str(path)) == image.size


# --- crashes where a clear error is promised ---------------------------------------------------


@pytest.mark.parametrize(
    "content,message",
    [
        ("{not json", "not valid JSON"),
        (b"\xff\xfe[1, 2]", "not UTF-8"),
        ("{}", "expected a JSON list of people"),
        ("[1, 2]", "record 0: expected an object"),
        ('[{"image": 5, "keypoints": []}]', "record 0: needs 'image'"),
        ('[{"image": "a.jpg", "keypoints": null}]', "record 0: 'keypoints' must be a list"),
        (
            '[{"image": "a.jpg", "keypoints": [["a", 1]]}]',
            "record 0: 'keypoints' must hold numbers",
        ),
        (
            '[{"image": "a.jpg", "keypoints": [[1, 2], [3]]}]',
            "record 0: 'keypoints' must be a list of equal",
        ),
        ('[{"image": "a.jpg", "keypoints": [[1, 2]]}]', "record 0: 'keypoints' must be 14 rows"),
        (
            '[{"image": "a.jpg", "keypoints": %s, "box": "x"}]' % json.dumps([[1, 2]] * 14),
            "record 0: 'box' must be a list",
        ),
    ],
)
def test_malformed_custom_json(tmp_path, content, message):
    path = tmp_path / "people.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(D.DatasetError, match=message):
        D.read_custom(str(path), S, str(tmp_path), check_images=False)


def _coco(annotations=None, images=None):
    keypoints = []
    for j in range(17):
        keypoints += [20.0 + j, 30.0 + j, 2]
    return {
        "images": images if images is not None else [{"id": 1, "file_name": "a.jpg"}],
        "annotations": annotations
        if annotations is not None
        else [
            {
                "id": 10,
                "image_id": 1,
                "keypoints": keypoints,
                "num_keypoints": 17,
                "bbox": [10, 20, 40, 60],
                "iscrowd": 0,
            }
        ],
    }


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda d: d["annotations"][0].pop("keypoints"), "record 10: 'keypoints' must be a list"),
        (lambda d: d["annotations"][0].pop("bbox"), "record 10: 'bbox' must be a list"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, 0, 3]), "record 10: 'bbox' must be"),
        (lambda d: d["annotations"][0].update(image_id=None), "record 10: unknown image_id None"),
        (lambda d: d["images"][0].pop("file_name"), r"images\[0\]: needs an integer 'id'"),
        (lambda d: d["images"][0].pop("id"), r"images\[0\]: needs an integer 'id'"),
        (lambda d: d.update(annotations=None), "'images' and 'annotations' must be lists"),
        (lambda d: d["annotations"].append(None), r"record annotations\[1\]: expected an object"),
    ],
)
def test_malformed_coco(tmp_path, mutate, message):
    data = _coco()
    mutate(data)
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(data))
    with pytest.raises(D.DatasetError, match=message):
        D.read_coco(str(path), str(tmp_path), check_images=False)
    path.write_text("[]")
    with pytest.raises(D.DatasetError, match="expected a COCO object"):
        D.read_coco(str(path), str(tmp_path), check_images=False)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=20)
        | st.dictionaries(
            st.sampled_from(
                [
                    "image",
                    "keypoints",
                    "box",
                    "id",
                    "image_id",
                    "bbox",
                    "file_name",
                    "iscrowd",
                    "num_keypoints",
                    "images",
                    "annotations",
                    "x",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=60,
)


def _plausible_person():
    number = st.floats(-50, 300, allow_nan=False)
    joint = st.lists(number, min_size=2, max_size=2) | st.tuples(
        number, number, st.sampled_from([0, 1, 2])
    ).map(list)
    return st.fixed_dictionaries(
        {
            "image": st.sampled_from(["a.jpg", "b.jpg"]),
            "keypoints": st.lists(joint, min_size=13, max_size=15),
        },
        optional={"box": st.lists(number, min_size=3, max_size=5)},
    )


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    data=st.one_of(json_values, st.lists(st.one_of(_plausible_person(), json_values), max_size=6))
)
def test_fuzz_custom_json_reader(tmp_path_factory, data):
    """Whatever the JSON, read_custom returns records or raises DatasetError (with and without
    skip_bad); never TypeError, KeyError, AttributeError or IndexError."""
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "people.json"
    path.write_text(json.dumps(data))
    for skip_bad in (False, True):
        try:
            records = D.read_custom(
                str(path), S, str(folder), skip_bad=skip_bad, check_images=False
            )
        except D.DatasetError:
            continue
        for record in records:
            assert np.all(np.isfinite(record.keypoints)) and record.scale > 0


def _plausible_coco():
    number = st.floats(-50, 300, allow_nan=False)
    annotation = st.fixed_dictionaries(
        {
            "id": st.integers(0, 100),
            "image_id": st.sampled_from([1, 2, 3, "1", None]),
            "keypoints": st.lists(number | st.sampled_from([0, 1, 2]), min_size=48, max_size=54),
            "bbox": st.lists(number, min_size=3, max_size=5),
        },
        optional={
            "iscrowd": st.sampled_from([0, 1, 2, None]),
            "num_keypoints": st.integers(0, 17) | st.none(),
        },
    )
    image = st.fixed_dictionaries(
        {"id": st.sampled_from([1, 2, True, "x"]), "file_name": st.sampled_from(["a.jpg", 5])}
    )
    return st.fixed_dictionaries(
        {
            "images": st.lists(image, max_size=3),
            "annotations": st.lists(annotation | json_values, max_size=5),
        }
    )


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.one_of(json_values, _plausible_coco()))
def test_fuzz_coco_reader(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "coco.json"
    path.write_text(json.dumps(data))
    for skip_bad in (False, True):
        try:
            records = D.read_coco(str(path), str(folder), skip_bad=skip_bad, check_images=False)
        except D.DatasetError:
            continue
        for record in records:
            assert np.all(np.isfinite(record.keypoints)) and record.scale > 0


# --- commands ----------------------------------------------------------------------------------

import os  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402

from conftest import PYTHON, ROOT, run_command, tiny_train_flags  # noqa: E402

TINY = tiny_train_flags(stacks=1)


_command = run_command


@pytest.mark.parametrize(
    "text,message",
    [
        ("batch_size: abc\n", "batch_size must be a whole number, got 'abc'"),
        ("stacks: 1.5\n", "stacks must be a whole number, got 1.5"),
        ("stacks: true\n", "stacks must be a whole number, got True"),
        ("learning_rate: fast\n", "learning_rate must be a number"),
        ("stacks: [1\n", "not valid YAML"),
        ("- 1\n- 2\n", "expected a mapping of settings"),
    ],
)
def test_config_files_with_wrong_types_are_refused(tmp_path, text, message):
    from keras_hourglass.training.loop import ConfigError, load_config_file

    (tmp_path / "run.yaml").write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        load_config_file(str(tmp_path / "run.yaml"))
    assert str(tmp_path / "run.yaml") in str(caught.value)


def test_a_bad_config_file_is_a_usage_error_of_the_command(tmp_path, python_env):
    (tmp_path / "run.yaml").write_text("stacks: [1\n")
    result = _command("train/train.py", ["--config", str(tmp_path / "run.yaml")], python_env)
    assert result.returncode == 2 and "not valid YAML" in result.stderr, result.stderr[-1500:]
    assert "run.yaml" in result.stderr and "Traceback" not in result.stderr


def test_run_names_cannot_leave_the_runs_folder(tmp_path, python_env):
    from keras_hourglass.training.loop import ConfigError, make_config

    for name in ("../../x", "/tmp/abs", "..", "a/b"):
        with pytest.raises(ConfigError, match="a run name must be a single folder name"):
            make_config({"name": name, "runs_dir": str(tmp_path)})
    # The command says it as a usage error (exit 2), before anything is written.
    result = _command(
        "train/train.py", ["--name", "../../x", "--runs-dir", str(tmp_path)], python_env
    )
    assert result.returncode == 2 and "a run name must be a single folder name" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_second_training_of_the_same_run_is_refused_and_stale_temporaries_go(
    tmp_path, python_env
):
    runs = tmp_path / "runs"
    run = runs / "same"
    (run / "backup" / ".tmp-killed").mkdir(parents=True)
    (run / ".tmp-abc.keras").write_bytes(b"half")
    (run / "config.json.tmp").write_text("{")
    first = subprocess.Popen(
        [
            PYTHON,
            str(ROOT / "train/train.py"),
            *TINY,
            "--epochs",
            "50",
            "--steps-per-epoch",
            "20",
            "--runs-dir",
            str(runs),
            "--name",
            "same",
        ],
        env=python_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = __import__("time").time() + 120
        while not (run / "log.csv").exists() and __import__("time").time() < deadline:
            __import__("time").sleep(0.2)
        second = _command(
            "train/train.py",
            [*TINY, "--epochs", "1", "--runs-dir", str(runs), "--name", "same"],
            python_env,
        )
        assert second.returncode != 0
        assert f"is in use by process {first.pid} on" in second.stderr, second.stderr[-1500:]
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert not (run / "backup" / ".tmp-killed").exists() and not (run / ".tmp-abc.keras").exists()
    assert not (run / "config.json.tmp").exists()
    # The killed holder's lock went with it: the run resumes at once.
    again = _command(
        "train/train.py",
        [
            *TINY,
            "--epochs",
            "1",
            "--steps-per-epoch",
            "20",
            "--runs-dir",
            str(runs),
            "--name",
            "same",
        ],
        python_env,
    )
    assert again.returncode == 0, again.stderr[-2000:]


@pytest.mark.slow
def test_a_failing_disk_ends_training_with_a_message_not_a_hang(tmp_path, python_env):
    """RLIMIT_FSIZE makes every write past 300 kB fail (EFBIG), as a full disk fails with ENOSPC:
    the first checkpoint cannot be written."""

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))

    result = _command(
        "train/train.py",
        [
            *TINY,
            "--filters",
            "32",
            "--epochs",
            "2",
            "--steps-per-epoch",
            "3",
            "--runs-dir",
            str(tmp_path),
            "--name",
            "full",
        ],
        python_env,
        preexec_fn=limit,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "failed: a file grew larger than allowed" in result.stderr
    assert "run the same command again to resume" in result.stderr


@pytest.mark.slow
def test_predict_and_evaluate_refuse_wrong_files_without_a_traceback(
    tmp_path, python_env, shared_data
):
    image = str(shared_data / "mpii_samples/004645041.jpg")
    (tmp_path / "empty_model").mkdir()
    (tmp_path / "taken").write_text("x")
    cases = [
        (
            "eval/predict.py",
            [image, "--model", image, "--out", str(tmp_path / "o")],
            "expected a .keras file",
        ),
        (
            "eval/predict.py",
            [image, "--model", str(tmp_path / "empty_model"), "--out", str(tmp_path / "o")],
            "no saved_model.pb",
        ),
        (
            "eval/predict.py",
            [image, "--model", image, "--out", str(tmp_path / "taken")],
            "is a file; name a folder",
        ),
        (
            "eval/predict.py",
            [image, "--model", image, "--out", str(tmp_path / "o"), "--threshold", "nan"],
            "--threshold must be between 0 and 1",
        ),
        (
            "eval/evaluate.py",
            [
                "--preds",
                str(tmp_path / "fake.mat"),
                "--dataset",
                "mpii",
                "--annotations",
                str(shared_data / "mpii_annot/valid.h5"),
                "--out",
                str(tmp_path / "e"),
            ],
            "prediction file",
        ),
        ("train/export.py", ["--model", image], "is not a .keras model"),
        (
            "eval/predict.py",
            [image, "--model", str(tmp_path / "text.keras"), "--out", str(tmp_path / "o")],
            "is not a .keras model: a .keras file is a zip archive",
        ),
        (
            "eval/evaluate.py",
            [
                "--model",
                str(tmp_path / "text.keras"),
                "--dataset",
                "mpii",
                "--data-dir",
                str(tmp_path),
            ],
            "this file is not a zip archive",
        ),
    ]
    (tmp_path / "fake.mat").write_bytes(b"this is not a MATLAB file at all" * 10)
    (tmp_path / "text.keras").write_text("a text file named .keras, not a model")
    for script, args, message in cases:
        result = _command(script, args, python_env)
        assert result.returncode != 0 and message in result.stderr, (script, result.stderr[-1500:])
        assert "Traceback" not in result.stderr, result.stderr[-1500:]


def test_predict_refuses_an_image_above_the_pixel_limit(tmp_path, python_env):
    _png_header_only(tmp_path / "bomb.png", 60000, 60000)
    result = _command(
        "eval/predict.py",
        [str(tmp_path / "bomb.png"), "--out", str(tmp_path / "o")],  # the shipped model
        python_env,
    )
    assert result.returncode != 0 and "above the limit of 50,000,000" in result.stderr
    assert "Traceback" not in result.stderr
    # A --model that is neither a file nor a shipped name is refused before anything loads.
    result = _command(
        "eval/predict.py",
        [str(tmp_path / "bomb.png"), "--model", "x.keras", "--out", str(tmp_path / "o")],
        python_env,
    )
    assert result.returncode == 2 and "--model 'x.keras': no such file or folder" in result.stderr
    assert "shipped: lspet-hg2-128" in result.stderr and "Traceback" not in result.stderr


def test_serving_client_checks_values_and_counts(shared_data):
    import sys

    sys.path.insert(0, str(ROOT / "eval"))
    import serving_client as sc

    data = (shared_data / "mpii_samples/004645041.jpg").read_bytes()
    width, height = D.image_size(data)
    body = sc.rest_body([data], [[width / 2, height / 2, 2.0]])
    assert body["instances"][0]["boxes"] == [width / 2, height / 2, 2.0]
    for boxes, message in (
        ([[float("nan"), 1, 1]], "NaN or infinite"),
        ([[10, 10, 0]], "scale .* must be positive"),
        ([[width + 5, 10, 1]], "lies outside image 0"),
        ([[10, 10, 1], [10, 10, 1]], "one .* per image"),
    ):
        with pytest.raises(sc.RequestError, match=message):
            sc.rest_body([data], boxes)
    for images, message in (
        ([], "non-empty list"),
        (data, "non-empty list"),
        ([b""], r"images\[0\]"),
        ([b"GIF89a....."], r"images\[0\]: neither"),
    ):
        with pytest.raises(sc.RequestError, match=message):
            sc.rest_body(images)


@pytest.mark.slow
def test_two_exports_at_once_get_two_versions(tmp_path, python_env):
    model = kh.build_hourglass(
        num_stacks=1, skeleton="mpii", filters=16, depth=2, input_shape=(32, 32, 3)
    )
    model.save(tmp_path / "m.keras")
    out = tmp_path / "saved" / "hourglass"
    out.mkdir(parents=True)
    (out / ".export-999999999-dead").mkdir()  # a killed export's leftovers (no such process)
    procs = [
        subprocess.Popen(
            [
                PYTHON,
                str(ROOT / "train/export.py"),
                "--model",
                str(tmp_path / "m.keras"),
                "--out",
                str(out),
            ],
            env=python_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_stdout, stderr) in zip(procs, results):
        assert p.returncode == 0, stderr[-2000:]
    assert sorted(os.listdir(out)) == ["1", "2"]
    for version in ("1", "2"):
        assert (out / version / "saved_model.pb").is_file()


# --- found by looking further (the "next ten") --------------------------------------------------


def test_annotation_files_that_are_not_what_they_say(tmp_path):
    junk = b"\x00garbage, not MATLAB or HDF5\xff" * 20
    for name in ("joints.mat", "examples.mat", "valid.h5"):
        (tmp_path / name).write_bytes(junk)
    with pytest.raises(D.DatasetError, match="joints.mat: not a readable MATLAB"):
        D.read_lsp(str(tmp_path / "joints.mat"), str(tmp_path))
    with pytest.raises(D.DatasetError, match="examples.mat: not a readable MATLAB"):
        D.read_flic(str(tmp_path / "examples.mat"), str(tmp_path))
    with pytest.raises(D.DatasetError, match="valid.h5: not a readable HDF5"):
        D.read_mpii_h5(str(tmp_path / "valid.h5"), str(tmp_path))
    from scipy.io import savemat

    savemat(tmp_path / "joints.mat", {"other": np.zeros(3)})
    with pytest.raises(D.DatasetError, match="no variable 'joints'"):
        D.read_lsp(str(tmp_path / "joints.mat"), str(tmp_path))


def test_coco_visibility_flags_must_be_0_1_or_2(tmp_path):
    data = _coco()
    data["annotations"][0]["keypoints"][2] = 3
    (tmp_path / "c.json").write_text(json.dumps(data))
    with pytest.raises(
        D.DatasetError, match="record 10: keypoint visibility flags must be 0, 1 or 2"
    ):
        D.read_coco(str(tmp_path / "c.json"), str(tmp_path), check_images=False)


def test_csv_written_by_excel_with_a_byte_order_mark(tmp_path):
    path = _csv(tmp_path, [_csv_row()])
    with open(path, "rb") as f:
        text = f.read()
    with open(path, "wb") as f:
        f.write(b"\xef\xbb\xbf" + text)
    assert len(D.read_custom(path, S, str(tmp_path), check_images=False)) == 1


@pytest.mark.slow
def test_more_careless_command_lines(tmp_path, python_env, shared_data):
    a = shared_data / "mpii_samples/004645041.jpg"
    (tmp_path / "other").mkdir()
    (tmp_path / "other/004645041.jpg").write_bytes(a.read_bytes())
    cases = [
        (
            "eval/predict.py",
            [
                str(a),
                str(tmp_path / "other/004645041.jpg"),
                "--out",
                str(tmp_path / "o"),
            ],
            "would both write 004645041_pose.*",
        ),
        ("train/train.py", ["--workers", "-1"], "workers must not be negative"),
        (
            "eval/evaluate.py",
            ["--model", str(a), "--threshold", "0"],
            "--threshold must be a positive",
        ),
    ]
    for script, args, message in cases:
        result = _command(script, args, python_env)
        assert result.returncode == 2 and message in result.stderr, (script, result.stderr[-800:])
    result = _command(
        "eval/evaluate.py",
        ["--model", str(a), "--dataset", "mpii", "--data-dir", str(tmp_path)],
        dict(python_env, KERAS_HOURGLASS_EXECUTOR="torch"),
    )
    assert result.returncode == 2 and "unknown input executor 'torch'" in result.stderr
