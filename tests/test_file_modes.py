"""Outputs others can read: every file and folder the project writes gets the mode a plain
`open()` / `os.makedirs()` gives under the umask (0644 / 0755 under 022), although each is
written under a private temporary name first and renamed into place."""

import os
import stat
import subprocess

import pytest
from conftest import PYTHON, ROOT, tiny_train_flags

import keras_hourglass as kh
from keras_hourglass import files


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def modes(root):
    """{relative path: permission bits} of everything under `root` (root included)."""
    found = {".": stat.S_IMODE(os.stat(root).st_mode)}
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root)] = stat.S_IMODE(os.stat(path).st_mode)
    return found


def assert_readable(root):
    """Every file 0644-like (owner rw, others r) and every folder 0755-like, nothing private."""
    for path, mode in modes(root).items():
        folder = os.path.isdir(os.path.join(root, path))
        want = 0o755 if folder else 0o644
        assert mode & ~0o111 == want & ~0o111, (path, oct(mode))
        if folder:
            assert mode == 0o755, (path, oct(mode))


def test_atomic_files_and_temporary_folders_follow_the_umask(tmp_path, umask_022):
    files.write_json(tmp_path / "a.json", {"x": 1})
    with files.atomic_path(tmp_path / "b.bin") as tmp:
        with open(tmp, "wb") as f:
            f.write(b"1")
    folder = files.temporary_folder(dir=tmp_path)
    assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "b.bin").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o755
    assert files.umask() == 0o022
    os.umask(0o077)  # a private umask is honoured too
    files.write_json(tmp_path / "c.json", {})
    assert stat.S_IMODE(os.stat(tmp_path / "c.json").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(files.temporary_folder(dir=tmp_path)).st_mode) == 0o700


@pytest.mark.slow
def test_a_saved_model_export_is_readable_by_a_server_running_as_another_user(tmp_path, umask_022):
    from keras_hourglass.deployment.saved_model import export_for_serving

    model = kh.build_hourglass(
        num_stacks=1, skeleton="lsp", filters=16, depth=2, input_shape=(32, 32, 3)
    )
    version = export_for_serving(model, str(tmp_path / "saved_models" / "m"))
    assert_readable(version)
    assert_readable(tmp_path / "saved_models")


@pytest.mark.slow
def test_a_run_its_evaluation_and_predictions_are_readable(tmp_path, python_env, shared_data):
    def run(script, *args):
        result = subprocess.run(
            [PYTHON, str(ROOT / script), *map(str, args)],
            env=python_env,
            capture_output=True,
            text=True,
            timeout=900,
            preexec_fn=lambda: os.umask(0o022),
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]

    runs = tmp_path / "runs"
    run(
        "train/train.py", *tiny_train_flags(), "--steps-per-epoch", 2, "--epochs", 1,
        "--runs-dir", runs, "--name", "r",
    )  # fmt: skip
    assert_readable(runs / "r")
    run(
        "eval/evaluate.py",
        "--model",
        runs / "r/best.keras",
        "--samples",
        8,
        "--out",
        tmp_path / "e",
    )
    assert_readable(tmp_path / "e")
    run(
        "eval/predict.py", shared_data / "mpii_samples/004645041.jpg", "--model",
        runs / "r/best.keras", "--out", tmp_path / "p",
    )  # fmt: skip
    assert_readable(tmp_path / "p")
