"""The index of the models this project trained and ships inside the package: names, files,
their SHA-256 and card figures (`keras_hourglass/weights/index.json`; each file's SHA-256 is
checked when it is first used in a process). Light to import (no Keras): the commands resolve
`--model NAME` with it before anything heavy loads, and `loader.load_model` finds a
name's file here. `keras_hourglass.pretrained` loads the models and re-exports all of this
(its docstring shows the use); docs/models.md is each model's card.
"""

import functools
import hashlib
import json
import os

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
INDEX = os.path.join(WEIGHTS_DIR, "index.json")


class PretrainedError(ValueError):
    """An unknown name, or a shipped file that is missing or not the one the index names."""


@functools.lru_cache(maxsize=1)
def _index():
    try:
        with open(INDEX, encoding="utf-8") as f:
            index = json.load(f)
    except FileNotFoundError:
        return {"default": None, "models": {}}
    return index


def list_pretrained():
    """Names of the shipped models, the default first."""
    index = _index()
    names = list(index["models"])
    default = index.get("default")
    return sorted(names, key=lambda n: (n != default, n))


def default_pretrained():
    """Name of the model the commands use when none is given (None when none ships)."""
    return _index().get("default")


def pretrained_info(name):
    """The index entry of a shipped model (a copy): file, sha256, skeleton, input size, the
    held-out figures of its card, the command that trained it."""
    models = _index()["models"]
    if name not in models:
        shipped = ", ".join(list_pretrained()) or "none"
        raise PretrainedError(f"no shipped model named {name!r} (shipped: {shipped})")
    return dict(models[name], name=name)


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def _verified(path, sha256):
    if not os.path.isfile(path):
        raise PretrainedError(f"the shipped model file {path!r} is missing: reinstall the package")
    actual = file_sha256(path)
    if actual != sha256:
        raise PretrainedError(
            f"the shipped model file {path!r} has SHA-256 {actual}, not the {sha256} its index "
            "names: the file is damaged or was replaced; reinstall the package"
        )
    return path


def pretrained_path(name=None):
    """Path of a shipped model's `.keras` file (the default model when `name` is None), its
    SHA-256 checked once per process."""
    name = name or default_pretrained()
    if name is None:
        raise PretrainedError("no model ships with this installation")
    info = pretrained_info(name)
    return _verified(os.path.join(WEIGHTS_DIR, info["file"]), info["sha256"])


def resolve_model(value, what="--model"):
    """What a command's --model names, as (path, shipped name or None): an existing file or
    folder as it is, else a shipped model's name, else a one-line error; None or "" is the
    default shipped model."""
    if not value:
        name = default_pretrained()
        if name is None:
            raise PretrainedError(f"{what}: none given and no model ships with this installation")
        return pretrained_path(name), name
    if os.path.exists(value):
        return value, None
    if value in _index()["models"]:
        return pretrained_path(value), value
    shipped = ", ".join(list_pretrained()) or "none"
    raise PretrainedError(
        f"{what} {value!r}: no such file or folder, and no shipped model of that name "
        f"(shipped: {shipped})"
    )
