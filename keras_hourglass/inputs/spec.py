"""What both input executors yield, described once so that they cannot drift apart.

A batch is `(images, heatmaps)` for training, or `(images, heatmaps, meta)` with evaluation
metadata: whatever the number of stacks of the model it feeds (the model supervises every stack
with the one target, see `StackedHourglass.compute_loss`).

- images: (B, S, S, 3) float32 crops in [0, 1].
- heatmaps: (B, S/4, S/4, K) float32 targets (the codec's, all-zero for unannotated joints).
- meta: a dict with exactly the fields of `META` below (K = the skeleton's joints).
"""

import numpy as np

# (name, dtype, shape with "K" for the number of joints, what it is)
META = (
    ("center", "float32", (2,), "person centre (x, y), original-image pixels"),
    ("scale", "float32", (), "person scale: the person box side / 200 px"),
    ("keypoints", "float32", ("K", 2), "ground truth (x, y), original-image pixels"),
    ("annotated", "bool", ("K",), "the joint has a ground-truth position"),
    ("normalizer", "float32", (), "the PCK normalising size, pixels (NaN if unknown)"),
    ("index", "int64", (), "the record's position in the list read"),
    ("crop_keypoints", "float32", ("K", 2), "ground truth in crop pixels (after any flip)"),
    ("crop_visible", "bool", ("K",), "annotated and inside the crop"),
    ("flip", "bool", (), "the crop is mirrored (left/right joints swapped)"),
    ("angle", "float32", (), "rotation drawn, degrees"),
    ("scale_factor", "float32", (), "zoom drawn (> 1 shows more of the image)"),
    ("gains", "float32", (3,), "colour gains drawn, per RGB channel"),
)


def meta_spec(num_joints):
    """{name: (dtype, shape)} of one element's metadata for a skeleton of `num_joints`."""
    return {
        name: (dtype, tuple(num_joints if d == "K" else d for d in shape))
        for name, dtype, shape, _ in META
    }


def numpy_meta(values, num_joints):
    """One element's metadata as the spec's NumPy arrays (raises KeyError for a missing field,
    ValueError for a wrong shape)."""
    out = {}
    for name, (dtype, shape) in meta_spec(num_joints).items():
        value = np.asarray(values[name], dtype)
        if value.shape != shape:
            raise ValueError(f"meta[{name!r}] has shape {value.shape}, the spec says {shape}")
        out[name] = value
    return out


def batch(images, heatmaps, meta, with_meta):
    """The element the executors yield: (images, heatmaps[, meta])."""
    return (images, heatmaps, meta) if with_meta else (images, heatmaps)
