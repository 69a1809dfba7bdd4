"""Models this project trained and ships inside the package: each has a name, no download.

    import keras_hourglass as kh

    kh.list_pretrained()                   # ['lspet-hg2-128']: the default first
    model = kh.load_pretrained()           # the default; or load_pretrained("lspet-hg2-128")
    people = model.estimate_poses(images)  # per image, the people found (docs/predict.md)

Every command that takes a model takes a shipped model's name in its place (`--model
lspet-hg2-128`), and `hourglass-predict photo.jpg` without `--model` uses the default.
`keras_hourglass/weights/index.json` lists the shipped files with their SHA-256, checked when a
file is first loaded in a process; docs/models.md is each model's card (data, recipe, accuracy,
limits). The index itself is read by the light `keras_hourglass.presets` (re-exported here);
this module loads the models.
"""

import os

from keras_hourglass.files import cache_dir
from keras_hourglass.presets import (
    INDEX,
    WEIGHTS_DIR,
    PretrainedError,
    default_pretrained,
    file_sha256,
    list_pretrained,
    pretrained_info,
    pretrained_path,
    resolve_model,
)

__all__ = [
    "INDEX",
    "WEIGHTS_DIR",
    "PretrainedError",
    "cache_dir",
    "cached_saved_model",
    "default_pretrained",
    "file_sha256",
    "list_pretrained",
    "load_pretrained",
    "pretrained_info",
    "pretrained_path",
    "resolve_model",
]


def load_pretrained(name=None):
    """A shipped model as a Keras model (not compiled; `compile_hourglass(model)` to train it
    further). It carries its skeleton, codec and crop convention, like any trained `.keras`."""
    import keras

    import keras_hourglass.network.model  # noqa: F401  (registers the model class)

    return keras.saving.load_model(pretrained_path(name), compile=False)


def cached_saved_model(name):
    """A shipped model as a SavedModel version folder (TF Serving's export, the flip test
    inside), exported into `cache_dir()` on first use and reused after; keyed by the file's
    SHA-256, so a new file makes a new export."""
    info = pretrained_info(name)
    base = os.path.join(cache_dir(), f"{name}-{info['sha256'][:12]}")
    version = os.path.join(base, "1")
    if os.path.isfile(os.path.join(version, "saved_model.pb")):
        return version
    from keras_hourglass.deployment.saved_model import export_for_serving

    model = load_pretrained(name)
    try:
        return export_for_serving(model, base, version=1)
    except FileExistsError:  # another process exported it meanwhile
        return version
