"""The commands start like the tools users know: `--help` and a bad flag answer before Keras and
TensorFlow load, and a missing optional dependency is one line naming the extra to install."""

import subprocess

import pytest
from conftest import PYTHON, ROOT

SCRIPTS = (
    "train/train.py",
    "train/export.py",
    "train/convert.py",
    "train/prepare.py",
    "train/show_batch.py",
    "eval/evaluate.py",
    "eval/predict.py",
    "eval/serving_client.py",
)

# Runs a script as `python script args` would, then reports whether Keras or TensorFlow was
# imported (on stderr, after the script's own output).
PROBE = r"""
import runpy, sys
script, *args = sys.argv[1:]
sys.argv = [script, *args]
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as stop:
    code = stop.code
else:
    code = 0
heavy = sorted(m for m in ("keras", "tensorflow", "jax") if m in sys.modules)
print(f"\nimported: {heavy}", file=sys.stderr)
sys.exit(code if isinstance(code, int) else 1)
"""

# TensorFlow made uninstallable for the process (as in `pip install keras-hourglass` without
# extras): any import of it fails as a missing module does.
NO_TENSORFLOW = r"""
import runpy, sys

class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoTensorFlow())
script, *args = sys.argv[1:]
sys.argv = [script, *args]
runpy.run_path(script, run_name="__main__")
"""


def _run(code, script, args, env):
    return subprocess.run(
        [PYTHON, "-c", code, str(ROOT / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_loads_neither_keras_nor_tensorflow(script, python_env):
    result = _run(PROBE, script, ["--help"], python_env)
    assert result.returncode == 0 and "usage:" in result.stdout, result.stderr[-2000:]
    assert "imported: []" in result.stderr


@pytest.mark.parametrize(
    "script, args, message",
    [
        ("eval/predict.py", ["a.jpg", "--bbox", "1,2,3"], "expected x,y,w,h"),
        ("eval/predict.py", ["a.jpg", "--threshold", "2"], "--threshold must be between"),
        ("eval/predict.py", ["a.jpg", "--model", "no-such-model"], "no shipped model of that name"),
        ("eval/evaluate.py", ["--batch-size", "0"], "--batch-size must be positive"),
        ("train/train.py", ["--stacks", "0"], "stacks must be a positive integer"),
        ("train/train.py", ["--stem", "1,2"], "stem must be three positive widths"),
        ("train/export.py", ["--model", "nope"], "no such file or folder"),
        ("eval/serving_client.py", ["a.jpg"], "give --server"),
    ],
)
def test_a_bad_flag_is_refused_before_keras_loads(script, args, message, python_env):
    result = _run(PROBE, script, args, python_env)
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert "imported: []" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "script, args",
    [
        ("eval/predict.py", ["docs/images/coco_000000000785.jpg", "--out", "{tmp}"]),
        ("train/export.py", ["--out", "{tmp}/sm"]),
        (
            "eval/evaluate.py",
            ["--model", "lspet-hg2-128", "--dataset", "lsp", "--data-dir", "{tmp}"],
        ),
    ],
)
def test_without_tensorflow_a_command_says_which_extra_to_install(
    script, args, tmp_path, python_env
):
    args = [
        a.replace("{tmp}", str(tmp_path)).replace("docs/", str(ROOT / "docs") + "/") for a in args
    ]
    result = _run(NO_TENSORFLOW, script, args, dict(python_env, KERAS_BACKEND="tensorflow"))
    assert result.returncode == 1, result.stdout[-1000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: this needs tensorflow, which is not installed")
    assert "pip install 'keras-hourglass[tf]'" in lines[-1]


@pytest.mark.slow
def test_quiet_keeps_only_warnings_and_errors_libraries_included(tmp_path, python_env, shared_data):
    """-q: predict prints nothing on success (the files are written), an int8 export prints
    none of NNCF's INFO lines nor TensorFlow's C++ logs; without -q both say what they did."""
    photo = str(ROOT / "docs/images/coco_000000000785.jpg")
    loud = _run(PROBE, "eval/predict.py", [photo, "--out", str(tmp_path / "a")], python_env)
    assert loud.returncode == 0 and "1 person" in loud.stdout, loud.stderr[-2000:]
    quiet = _run(PROBE, "eval/predict.py", [photo, "--out", str(tmp_path / "b"), "-q"], python_env)
    assert quiet.returncode == 0 and quiet.stdout.strip() == "", quiet.stdout
    assert (tmp_path / "b/coco_000000000785_pose.json").is_file()
    import keras_hourglass as kh

    model = kh.build_hourglass(
        num_stacks=1, skeleton="lsp", filters=16, depth=2, input_shape=(32, 32, 3)
    )
    model.save(tmp_path / "m.keras")
    args = [
        "--model", str(tmp_path / "m.keras"), "--format", "openvino", "--precision", "int8",
        "--calibration-dataset", "lspet", "--calibration-data-dir", str(shared_data / "lspet"),
        "--calibration-count", "16", "--out", str(tmp_path / "m.xml"), "-q",
    ]  # fmt: skip
    exported = _run(PROBE, "train/export.py", args, python_env)
    assert exported.returncode == 0, exported.stderr[-3000:]
    said = exported.stdout + exported.stderr.replace("imported:", "")
    assert "nncf" not in said.lower() and "I0000" not in said and "E0000" not in said, said[-3000:]


def test_the_network_imports_without_the_data_readers(python_env):
    """`import keras_hourglass.network.model` (and the package) brings the network, its inference and
    codec, not the data readers (`datasets`: h5py, SciPy, the annotation formats) nor the input
    pipelines (issue #39). (Keras itself imports h5py, and the TensorFlow and JAX backends SciPy,
    so the check is on this package's modules.)"""
    code = (
        "import sys, keras_hourglass.network.model, keras_hourglass as kh; kh.build_hourglass; "
        "print(sorted(m for m in sys.modules if m.startswith('keras_hourglass.')))"
    )
    result = subprocess.run(
        [PYTHON, "-c", code],
        env=dict(python_env, KERAS_BACKEND="numpy"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = result.stdout.strip()
    assert (
        "keras_hourglass.deployment.inference" in loaded
        and "keras_hourglass.network.codec" in loaded
    )
    for heavy in (
        "keras_hourglass.datasets",
        "keras_hourglass.inputs",
        "keras_hourglass.training.loop",
    ):
        assert heavy not in loaded, loaded
