"""The project as users install it: a wheel with every subpackage, the LICENSE and the console
commands, installed into a fresh virtual environment and run from outside the repository."""

import os
import pathlib
import subprocess
import sys
import sysconfig
import zipfile

import pytest
from conftest import ROOT

COMMANDS = (
    "hourglass-train",
    "hourglass-evaluate",
    "hourglass-export",
    "hourglass-predict",
    "hourglass-serve-client",
    "hourglass-convert",
    "hourglass-prepare",
    "hourglass-show-batch",
    "hourglass-demo",
    "hourglass-label",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    import shutil

    out = tmp_path_factory.mktemp("dist")
    # A copy of the checkout: setuptools builds in the source tree (build/, *.egg-info).
    source = tmp_path_factory.mktemp("source") / "keras-hourglass"
    skip = (".venv", ".git", "runs", "build", "*.egg-info", "__pycache__", "saved_models")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*skip, ".whl", "gpu_data"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (path,) = out.glob("keras_hourglass-*.whl")
    return path


def test_the_wheel_holds_every_module_the_license_and_the_commands(wheel):
    import keras_hourglass

    names = set(zipfile.ZipFile(wheel).namelist())
    here = ROOT / "keras_hourglass"
    modules = {str(p.relative_to(ROOT)) for p in here.rglob("*.py")}
    assert modules <= names, sorted(modules - names)  # subpackages too (datasets, inputs, ...)
    assert "hourglass_commands.py" in names
    # The shipped models travel in the wheel (keras_hourglass.pretrained loads them by name).
    for name in keras_hourglass.list_pretrained():
        info = keras_hourglass.pretrained_info(name)
        assert f"keras_hourglass/weights/{info['file']}" in names
    assert "keras_hourglass/weights/index.json" in names
    for page in ("index.html", "demo.js", "demo.css"):  # the demo page travels in the wheel
        assert f"keras_hourglass/poses/demo_page/{page}" in names
    for page in ("index.html", "label.js", "label.css"):  # and the labelling page
        assert f"keras_hourglass/labelling/label_page/{page}" in names
    info = f"keras_hourglass-{keras_hourglass.__version__}.dist-info"
    assert f"{info}/licenses/LICENSE" in names  # the version is the package's own
    entry_points = zipfile.ZipFile(wheel).read(f"{info}/entry_points.txt").decode()
    for command in COMMANDS:
        assert f"{command} = hourglass_commands:" in entry_points, command


@pytest.mark.slow
def test_installed_commands_run_outside_the_repository(wheel, tmp_path):
    """A fresh venv with the wheel (its dependencies made visible from this environment, as
    'already available'); every command's --help, and the demo's evaluation of a model, run from
    a folder outside the checkout with the installed package, not the repository's."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # This environment's packages (the pinned dependencies) after the venv's own.
    (pathlib.Path(site) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    result = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    where = subprocess.run(
        [python, "-c", "import keras_hourglass; print(keras_hourglass.__file__)"],
        capture_output=True,
        text=True,
        cwd=outside,
        env=env,
    )
    assert where.stdout.strip().startswith(site), where.stdout + where.stderr
    for command in COMMANDS:  # the NumPy backend: --help needs no TensorFlow start-up
        result = subprocess.run(
            [venv / "bin" / command, "--help"],
            capture_output=True,
            text=True,
            cwd=outside,
            env=dict(env, KERAS_BACKEND="numpy"),
            timeout=300,
        )
        assert result.returncode == 0 and "usage:" in result.stdout, (command, result.stderr)

    # The demo's evaluation (the held-out synthetic figures) with the installed command.
    import keras

    import keras_hourglass as kh

    model = kh.build_hourglass(
        num_stacks=1, skeleton="mpii", filters=16, depth=2, input_shape=(32, 32, 3)
    )
    model.save(outside / "m.keras")
    result = subprocess.run(
        [venv / "bin" / "hourglass-evaluate", "--model", "m.keras", "--samples", "8"]
        + ["--out", "results"],
        capture_output=True,
        text=True,
        cwd=outside,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "PCK@0.2 mean over 8 people of synthetic" in result.stdout
    assert (outside / "results/summary.csv").is_file()
    assert keras.saving.load_model(outside / "m.keras").count_params() == model.count_params()

    # The shipped model, from the installed wheel: a photo's pose with no --model at all.
    photo = ROOT / "docs/images/coco_000000000785.jpg"
    result = subprocess.run(
        [venv / "bin" / "hourglass-predict", str(photo), "--bbox", "281,45,219,347"],
        capture_output=True,
        text=True,
        cwd=outside,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"model: {kh.default_pretrained()}, shipped with keras-hourglass" in result.stdout
    assert (outside / "poses/coco_000000000785_pose.json").is_file()


def test_the_readmes_layout_names_every_module():
    """The README's Layout section names every module and subpackage of the library, so a new
    module cannot go unlisted."""
    layout = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("\nRequirements", 1)[0]
    here = ROOT / "keras_hourglass"
    modules = [p.name for p in here.glob("*.py") if p.name != "__init__.py"]
    packages = [p.name + "/" for p in here.iterdir() if p.is_dir() and not p.name.startswith("__")]
    missing = [name for name in modules + packages if f"`{name}`" not in layout]
    assert not missing, f"README.md's Layout does not name {missing}"
