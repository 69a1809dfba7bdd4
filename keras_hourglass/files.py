"""Files written whole or not at all: the one atomic-write helper of the project.

Every result file (CSV tables, JSON, plots, models, videos, backups' pointers) is written to a
temporary name in its own folder and renamed over the target when complete, so a process killed
mid-write (SIGKILL, a full disk) leaves the previous file or none, never half of one. Temporary
names start with `.tmp-`, which a run folder removes at start (`runs.RunFolder`).

    with atomic_write("summary.json") as f:          # a file object
        json.dump(summary, f)
    with atomic_path("curve.png") as tmp:            # a path, for libraries that write by name
        figure.savefig(tmp)

Files and folders get the modes a plain `open()` / `os.makedirs()` would give them under the
process's umask (0644 / 0755 under the usual 022): `tempfile` makes its names private (0600 /
0700), which would leave a colleague, `docker run --user` or TF Serving's service account unable
to read a run, an evaluation or an export. `temporary_folder` is the folder counterpart (export
staging folders, backups) for folders renamed into place.
"""

import contextlib
import json
import os
import tempfile

TEMPORARY_PREFIX = ".tmp-"


def umask():
    """The process's umask, read without changing it where Linux shows it (/proc/self/status:
    safe with threads), else by setting and restoring it."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def public_mode(path, folder=False):
    """Gives `path` the mode `open()` (0666) or `os.makedirs()` (0777) would under the umask."""
    os.chmod(path, (0o777 if folder else 0o666) & ~umask())


def temporary_folder(prefix=TEMPORARY_PREFIX, dir=None):
    """`tempfile.mkdtemp` with the mode `os.makedirs` would give (a folder that is renamed into
    place must be readable like any other output)."""
    path = tempfile.mkdtemp(prefix=prefix, dir=dir)
    public_mode(path, folder=True)
    return path


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yields a temporary path in `path`'s folder (created if needed); on success it is renamed
    over `path`, on an error it is removed. `suffix` (default: `path`'s own) keeps libraries
    that choose a format by the file name (Pillow, Matplotlib, Keras, OpenCV) working."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    if suffix is None:
        suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        if os.path.isfile(tmp):
            public_mode(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_write(path, mode="w", **open_kwargs):
    """`open(path, mode)` that replaces `path` only once the `with` block has finished."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **open_kwargs) as f:
            yield f


def write_json(path, value, indent=2):
    """Writes `value` as JSON to `path`, atomically."""
    with atomic_write(path, encoding="utf-8") as f:
        json.dump(value, f, indent=indent)
        f.write("\n")


def write_text(path, text):
    """Writes `text` to `path`, atomically."""
    with atomic_write(path, encoding="utf-8") as f:
        f.write(text)


def write_csv(table, path):
    """Writes a pandas DataFrame as CSV (no index), atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def is_temporary(name):
    """Whether a file or folder name is one of ours left by a write that never finished."""
    return name.startswith(TEMPORARY_PREFIX)


def cache_dir():
    """Where files derived from models are kept (conversions, shipped models' SavedModels; never
    downloaded: made here once): $KERAS_HOURGLASS_CACHE, else ~/.cache/keras_hourglass."""
    return os.environ.get("KERAS_HOURGLASS_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "keras_hourglass"
    )
