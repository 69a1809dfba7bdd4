"""The synthetic stick figures as an ordinary data folder: PNG images and a custom-format JSON per
split, rendered on first use (no download), then read like any dataset.

    <folder>/synthetic.json     {"size": 64, "renderer": 1, "splits": {"train": {"count": 20000,
                                 "seed": 0}, "valid": {...}, "test": {...}}}
    <folder>/train.json         custom JSON: image, keypoints (16 x [x, y, v], MPII order),
                                 center/scale (the crop is the whole image), normalizer (torso)
    <folder>/train/000000.png   the figures, `size` px square

The figures are `keras_hourglass.synthetic.render_stick_figure(seed, index, size)`: split
"train" uses seed 0, "valid" 1_000_003 and "test" (the demo's held-out figures) 2_000_029, so
the three never share a figure. A split is rendered by worker processes into a temporary folder
that is renamed when complete: an interrupted render leaves nothing half-made, and two processes
rendering one split at once both end with the same files.
"""

import concurrent.futures
import json
import logging
import multiprocessing
import os
import shutil

import numpy as np
from PIL import Image

from keras_hourglass import files
from keras_hourglass.datasets.readers import read_custom
from keras_hourglass.datasets.records import DatasetError, MissingSplit
from keras_hourglass.geometry import PERSON_BOX_PX
from keras_hourglass.skeletons import MPII
from keras_hourglass.synthetic import render_stick_figure

log = logging.getLogger(__name__)

# Bumped whenever render_stick_figure draws differently, so old folders are not reused.
RENDERER_VERSION = 1

SPLITS = {
    "train": {"count": 20_000, "seed": 0},
    "valid": {"count": 256, "seed": 1_000_003},
    "test": {"count": 256, "seed": 2_000_029},
}

# The torso of the figures' PCK: left shoulder to right hip (MPII joint order).
_TORSO = (MPII.index("left_shoulder"), MPII.index("right_hip"))


def keras_home():
    """Keras' folder for downloaded data ($KERAS_HOME, else ~/.keras), as `keras.utils.get_file`
    uses it."""
    return os.path.expanduser(os.environ.get("KERAS_HOME", os.path.join("~", ".keras")))


def synthetic_folder(size, root=None):
    """The folder of the synthetic figures at `size` px (created with its `synthetic.json` if
    needed; splits are rendered when first read): `<root>/keras_hourglass_synthetic/<size>px`,
    `root` defaulting to Keras' datasets folder."""
    root = root or os.path.join(keras_home(), "datasets")
    folder = os.path.join(root, "keras_hourglass_synthetic", f"{int(size)}px")
    make_synthetic_folder(folder, size)
    return folder


def make_synthetic_folder(folder, size, splits=None):
    """Writes `folder/synthetic.json` (image size and, per split, figure count and seed); an
    existing one must agree."""
    spec = {"size": int(size), "renderer": RENDERER_VERSION, "splits": splits or SPLITS}
    path = os.path.join(folder, "synthetic.json")
    if os.path.isfile(path):
        existing = _spec(folder)
        if existing != spec:
            raise DatasetError(
                f"{path} describes other figures ({existing}) than asked for ({spec}): "
                "use another folder"
            )
        return folder
    os.makedirs(folder, exist_ok=True)
    files.write_json(path, spec)
    return folder


def _spec(folder):
    path = os.path.join(folder, "synthetic.json")
    if not os.path.isfile(path):
        raise DatasetError(
            f"{folder}: not a synthetic data folder (no synthetic.json); leave --data-dir out "
            "to use the default one, or make one with datasets.make_synthetic_folder"
        )
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    if spec.get("renderer") != RENDERER_VERSION:
        raise DatasetError(
            f"{path}: figures of renderer version {spec.get('renderer')}, this one draws "
            f"version {RENDERER_VERSION}: remove the folder to render them again"
        )
    return spec


def read_synthetic(data_dir, split, skip_bad=False):
    """The `split` of a synthetic data folder as `Records` (rendered first if it is not there)."""
    spec = _spec(data_dir)
    if split not in spec["splits"]:
        raise MissingSplit(
            f"{data_dir}: the synthetic figures have the splits {sorted(spec['splits'])}, "
            f"not {split!r}"
        )
    annotations = os.path.join(data_dir, f"{split}.json")
    if not os.path.isfile(annotations):
        render_split(data_dir, split, spec["size"], **spec["splits"][split])
    return read_custom(annotations, MPII, data_dir, skip_bad)


def person(seed, index, size):
    """One figure's annotation (the custom JSON format) and its image (uint8)."""
    image, keypoints, visible = render_stick_figure(seed, index, size)
    a, b = _TORSO
    return {
        "image": f"{index:06d}.png",
        "keypoints": [[float(x), float(y), 2 if v else 0] for (x, y), v in zip(keypoints, visible)],
        # The crop is the image itself: the person box of side `size` centred on it.
        "center": [(size - 1) / 2.0, (size - 1) / 2.0],
        "scale": size / PERSON_BOX_PX,
        # Torso from the exact joints, also where one of them is left unannotated.
        "normalizer": float(np.linalg.norm(keypoints[a] - keypoints[b])),
    }, image


def _render_chunk(folder, seed, size, indices):
    people = []
    for index in indices:
        annotation, image = person(seed, index, size)
        Image.fromarray(image).save(os.path.join(folder, annotation["image"]), compress_level=1)
        people.append(annotation)
    return people


def render_split(data_dir, split, size, count, seed, workers=None, verbose=True):
    """Renders `count` figures of `seed` into `data_dir/<split>/` and `data_dir/<split>.json`,
    with `workers` processes (default: the machine's cores)."""
    target = os.path.join(data_dir, split)
    annotations = os.path.join(data_dir, f"{split}.json")
    staging = files.temporary_folder(dir=data_dir)
    workers = workers or max(1, len(os.sched_getaffinity(0)))
    chunks = [range(i, min(i + 500, count)) for i in range(0, count, 500)]
    from keras_hourglass.quiet import progress_bar

    bar = None
    if verbose:
        log.info(f"Rendering {count} synthetic figures ({split}, {size} px) into {data_dir}, once")
        bar = progress_bar(count, "figure")
    people = []
    try:
        if workers > 1 and len(chunks) > 1:
            # Forked workers draw with NumPy and Pillow only (no TensorFlow or JAX in them).
            context = multiprocessing.get_context("fork")
            with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
                futures = [
                    pool.submit(_render_chunk, staging, seed, size, chunk) for chunk in chunks
                ]
                for done, future in enumerate(futures, 1):
                    people.extend(future.result())
                    _progress(bar, done * 500, count)
        else:
            for done, chunk in enumerate(chunks, 1):
                people.extend(_render_chunk(staging, seed, size, chunk))
                _progress(bar, done * 500, count)
        for annotation in people:
            annotation["image"] = f"{split}/{annotation['image']}"
        try:
            os.rename(staging, target)
        except OSError:
            if not os.path.isdir(target):  # not another process' finished render: a real error
                raise
        if not os.path.isfile(annotations):
            files.write_json(annotations, people, indent=None)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _progress(bar, done, count):
    if bar is not None:
        bar.update(min(done, count))
