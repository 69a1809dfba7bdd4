"""Skeleton tables: one per dataset, the single source of joint names, flip partners, limbs,
report groups and the joints (or box) that normalise PCK.

Everything else (the flip permutation, joint groups in reports, the limbs drawn on images, the
named joints of every output) derives from these tables. Your own keypoints come as a skeleton
file (`read_skeleton`, YAML or JSON).
"""

import dataclasses
import json
import math
import os


@dataclasses.dataclass(frozen=True)
class Skeleton:
    """A dataset's joints.

    Attributes:
        name: dataset name.
        joint_names: joint names in the dataset's order.
        flip_pairs: (left, right) joint-name pairs swapped by a horizontal flip; joints in no
            pair map to themselves.
        limbs: joint-name pairs joined when drawing the skeleton.
        groups: report columns, in order: (column name, joint names averaged in it).
        normalizer: what normalises the PCK distance: `("head_box", factor)` for PCKh (factor x
            the head-box diagonal, MPII's official protocol), or `("joints", (a, b))` for the
            distance between two joints (torso size for PCK).
        mean_excludes: joints left out of the summary's Mean (MPII: pelvis and thorax; FLIC:
            all but elbows and wrists, the columns of its published tables).
    """

    name: str
    joint_names: tuple
    flip_pairs: tuple
    limbs: tuple
    groups: tuple
    normalizer: tuple
    mean_excludes: tuple = ()

    def __post_init__(self):
        names = self.joint_names
        if len(set(names)) != len(names):
            raise ValueError(f"Skeleton {self.name!r} has duplicate joint names: {names}")
        seen = set()
        for pair in self.flip_pairs:
            for joint in pair:
                self.index(joint)
                if joint in seen:
                    raise ValueError(
                        f"Skeleton {self.name!r}: joint {joint!r} is in two flip pairs."
                    )
                seen.add(joint)
        for a, b in self.limbs:
            self.index(a), self.index(b)
        for _, joints in self.groups:
            for joint in joints:
                self.index(joint)
        if self.normalizer[0] == "joints":
            for joint in self.normalizer[1]:
                self.index(joint)
        elif self.normalizer[0] != "head_box":
            raise ValueError(f"Unknown normalizer {self.normalizer!r} in skeleton {self.name!r}")

    @property
    def num_joints(self):
        return len(self.joint_names)

    def index(self, joint_name):
        try:
            return self.joint_names.index(joint_name)
        except ValueError:
            raise ValueError(
                f"Skeleton {self.name!r} has no joint {joint_name!r}; its joints are "
                f"{list(self.joint_names)}"
            ) from None

    @property
    def flip_index(self):
        """Permutation p such that joint j of a flipped image is joint p[j] of the original."""
        perm = list(range(self.num_joints))
        for a, b in self.flip_pairs:
            ia, ib = self.index(a), self.index(b)
            perm[ia], perm[ib] = ib, ia
        return tuple(perm)

    @property
    def limb_index(self):
        return tuple((self.index(a), self.index(b)) for a, b in self.limbs)

    @property
    def group_index(self):
        return tuple((group, tuple(self.index(j) for j in joints)) for group, joints in self.groups)

    def get_config(self):
        """The table as JSON-ready lists (what a model's config and a SavedModel's metadata
        hold); `Skeleton.from_config` rebuilds it."""

        def plain(value):
            return [plain(v) for v in value] if isinstance(value, (tuple, list)) else value

        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_config(cls, config):
        def frozen(value):
            return tuple(frozen(v) for v in value) if isinstance(value, (tuple, list)) else value

        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(config, dict) or not {"name", "joint_names"} <= set(config):
            raise ValueError(f"A skeleton config must be a dict with its tables; got {config!r}")
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"Unknown skeleton field(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: v if k == "name" else frozen(v) for k, v in config.items()})

    @property
    def side(self):
        """Per joint: 'left', 'right' or 'centre', from the flip pairs (pair = (left, right))."""
        sides = ["centre"] * self.num_joints
        for left, right in self.flip_pairs:
            sides[self.index(left)] = "left"
            sides[self.index(right)] = "right"
        return tuple(sides)


# MPII Human Pose, 16 joints (0-based), as in pose-hg-train and ../shared/RECIPE.md.
MPII = Skeleton(
    name="mpii",
    joint_names=(
        "right_ankle",
        "right_knee",
        "right_hip",
        "left_hip",
        "left_knee",
        "left_ankle",
        "pelvis",
        "thorax",
        "upper_neck",
        "head_top",
        "right_wrist",
        "right_elbow",
        "right_shoulder",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
    ),
    flip_pairs=(
        ("left_ankle", "right_ankle"),
        ("left_knee", "right_knee"),
        ("left_hip", "right_hip"),
        ("left_wrist", "right_wrist"),
        ("left_elbow", "right_elbow"),
        ("left_shoulder", "right_shoulder"),
    ),
    limbs=(
        ("right_ankle", "right_knee"),
        ("right_knee", "right_hip"),
        ("right_hip", "pelvis"),
        ("left_hip", "pelvis"),
        ("left_knee", "left_hip"),
        ("left_ankle", "left_knee"),
        ("pelvis", "thorax"),
        ("thorax", "upper_neck"),
        ("upper_neck", "head_top"),
        ("right_wrist", "right_elbow"),
        ("right_elbow", "right_shoulder"),
        ("right_shoulder", "thorax"),
        ("left_shoulder", "thorax"),
        ("left_elbow", "left_shoulder"),
        ("left_wrist", "left_elbow"),
    ),
    groups=(
        ("Head", ("head_top",)),
        ("Shoulder", ("left_shoulder", "right_shoulder")),
        ("Elbow", ("left_elbow", "right_elbow")),
        ("Wrist", ("left_wrist", "right_wrist")),
        ("Hip", ("left_hip", "right_hip")),
        ("Knee", ("left_knee", "right_knee")),
        ("Ankle", ("left_ankle", "right_ankle")),
    ),
    # Official MPII PCKh: 0.6 x the head-box diagonal.
    normalizer=("head_box", 0.6),
    mean_excludes=("pelvis", "thorax"),
)

# Leeds Sports Pose (and LSP Extended), 14 joints, person-centric left/right.
LSP = Skeleton(
    name="lsp",
    joint_names=(
        "right_ankle",
        "right_knee",
        "right_hip",
        "left_hip",
        "left_knee",
        "left_ankle",
        "right_wrist",
        "right_elbow",
        "right_shoulder",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "neck",
        "head_top",
    ),
    flip_pairs=(
        ("left_ankle", "right_ankle"),
        ("left_knee", "right_knee"),
        ("left_hip", "right_hip"),
        ("left_wrist", "right_wrist"),
        ("left_elbow", "right_elbow"),
        ("left_shoulder", "right_shoulder"),
    ),
    limbs=(
        ("right_ankle", "right_knee"),
        ("right_knee", "right_hip"),
        ("right_hip", "left_hip"),
        ("left_knee", "left_hip"),
        ("left_ankle", "left_knee"),
        ("right_wrist", "right_elbow"),
        ("right_elbow", "right_shoulder"),
        ("right_shoulder", "neck"),
        ("left_shoulder", "neck"),
        ("left_elbow", "left_shoulder"),
        ("left_wrist", "left_elbow"),
        ("neck", "head_top"),
        ("right_shoulder", "right_hip"),
        ("left_shoulder", "left_hip"),
    ),
    groups=(
        ("Head", ("head_top", "neck")),
        ("Shoulder", ("left_shoulder", "right_shoulder")),
        ("Elbow", ("left_elbow", "right_elbow")),
        ("Wrist", ("left_wrist", "right_wrist")),
        ("Hip", ("left_hip", "right_hip")),
        ("Knee", ("left_knee", "right_knee")),
        ("Ankle", ("left_ankle", "right_ankle")),
    ),
    # PCK@0.2 with the torso size: distance between the left shoulder and the right hip, as
    # in Tompson et al. (NIPS'14) and the stacked hourglass paper's FLIC/LSP tables.
    normalizer=("joints", ("left_shoulder", "right_hip")),
)

# FLIC: the 11 upper-body joints of examples.mat evaluated in the literature (Sapp & Taskar;
# Tompson et al.), in the order we read them from FLIC's 29 coordinates.
FLIC = Skeleton(
    name="flic",
    joint_names=(
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_eye",
        "right_eye",
        "nose",
    ),
    flip_pairs=(
        ("left_shoulder", "right_shoulder"),
        ("left_elbow", "right_elbow"),
        ("left_wrist", "right_wrist"),
        ("left_hip", "right_hip"),
        ("left_eye", "right_eye"),
    ),
    limbs=(
        ("left_wrist", "left_elbow"),
        ("left_elbow", "left_shoulder"),
        ("right_wrist", "right_elbow"),
        ("right_elbow", "right_shoulder"),
        ("left_shoulder", "right_shoulder"),
        ("left_shoulder", "left_hip"),
        ("right_shoulder", "right_hip"),
        ("left_hip", "right_hip"),
        ("left_eye", "nose"),
        ("right_eye", "nose"),
    ),
    groups=(
        ("Elbow", ("left_elbow", "right_elbow")),
        ("Wrist", ("left_wrist", "right_wrist")),
    ),
    normalizer=("joints", ("left_shoulder", "right_hip")),
    # The FLIC table of the literature (and the paper) reports elbows and wrists.
    mean_excludes=(
        "left_shoulder",
        "right_shoulder",
        "left_hip",
        "right_hip",
        "left_eye",
        "right_eye",
        "nose",
    ),
)

# COCO person keypoints, 17 joints.
COCO = Skeleton(
    name="coco",
    joint_names=(
        "nose",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ),
    flip_pairs=(
        ("left_eye", "right_eye"),
        ("left_ear", "right_ear"),
        ("left_shoulder", "right_shoulder"),
        ("left_elbow", "right_elbow"),
        ("left_wrist", "right_wrist"),
        ("left_hip", "right_hip"),
        ("left_knee", "right_knee"),
        ("left_ankle", "right_ankle"),
    ),
    limbs=(
        ("left_ankle", "left_knee"),
        ("left_knee", "left_hip"),
        ("right_ankle", "right_knee"),
        ("right_knee", "right_hip"),
        ("left_hip", "right_hip"),
        ("left_shoulder", "left_hip"),
        ("right_shoulder", "right_hip"),
        ("left_shoulder", "right_shoulder"),
        ("left_shoulder", "left_elbow"),
        ("right_shoulder", "right_elbow"),
        ("left_elbow", "left_wrist"),
        ("right_elbow", "right_wrist"),
        ("left_eye", "right_eye"),
        ("nose", "left_eye"),
        ("nose", "right_eye"),
        ("left_eye", "left_ear"),
        ("right_eye", "right_ear"),
        ("left_ear", "left_shoulder"),
        ("right_ear", "right_shoulder"),
    ),
    groups=(
        ("Head", ("nose", "left_eye", "right_eye", "left_ear", "right_ear")),
        ("Shoulder", ("left_shoulder", "right_shoulder")),
        ("Elbow", ("left_elbow", "right_elbow")),
        ("Wrist", ("left_wrist", "right_wrist")),
        ("Hip", ("left_hip", "right_hip")),
        ("Knee", ("left_knee", "right_knee")),
        ("Ankle", ("left_ankle", "right_ankle")),
    ),
    normalizer=("joints", ("left_shoulder", "right_hip")),
)

SKELETONS = {s.name: s for s in (MPII, LSP, FLIC, COCO)}


def get_skeleton(name):
    """Returns the skeleton table of a dataset by name ('mpii', 'lsp', 'flic', 'coco'); a
    `Skeleton` or a skeleton config dict is returned as a `Skeleton`."""
    if isinstance(name, Skeleton):
        return name
    if isinstance(name, dict):
        return Skeleton.from_config(name)
    try:
        return SKELETONS[name]
    except KeyError:
        raise ValueError(
            f"Unknown skeleton {name!r}. Known skeletons: {sorted(SKELETONS)}"
        ) from None


def model_skeleton(model, skeleton=None):
    """The skeleton to serve `model` with: `skeleton` (a `Skeleton` or a name) when given, which
    must then agree with the one the model carries, else the model's own."""
    own = getattr(model, "skeleton", None)
    if skeleton is None:
        if own is None:
            raise ValueError(
                "The model was saved without its skeleton (made before models described "
                "themselves): give the skeleton it was trained with (--skeleton)."
            )
        return own
    skeleton = get_skeleton(skeleton)
    if own is not None and own.joint_names != skeleton.joint_names:
        raise ValueError(
            f"The model was trained on the {own.name!r} skeleton, not {skeleton.name!r}: "
            "leave the skeleton out to use the model's own."
        )
    return skeleton


def metric_of(normalizer):
    """(metric name, threshold) of a PCK normaliser: PCKh@0.5 for the head box, PCK@0.2 else."""
    return ("PCKh", 0.5) if normalizer[0] == "head_box" else ("PCK", 0.2)


def read_skeleton(path):
    """A `Skeleton` from a YAML (`.yaml`, `.yml`) or JSON file, for your own keypoints:

        name: hand                      # optional (default: the file's name)
        joint_names: [wrist, thumb, index, left_mark, right_mark]
        flip_pairs: [[left_mark, right_mark]]        # (left, right); default: none
        limbs: [[wrist, thumb], [wrist, index]]       # drawn on images; default: none
        groups: {Fingers: [thumb, index]}             # report columns; default: one per joint
        normalizer: [joints, [wrist, index]]          # PCK@0.2 of this distance (required)
        mean_excludes: []                             # left out of the summary's Mean

    Any mistake (an unknown joint in a pair, a joint named twice, a missing normaliser) raises
    ValueError naming the file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"skeleton file {path!r} does not exist")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if path.lower().endswith((".yaml", ".yml")):
            import yaml  # only for YAML files

            table = yaml.safe_load(text)
        else:
            table = json.loads(text)
    except Exception as error:  # OSError, UnicodeDecodeError, yaml.YAMLError, JSONDecodeError
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"skeleton file {path!r} cannot be read ({first})") from None
    if not isinstance(table, dict):
        raise ValueError(f"skeleton file {path!r}: expected a mapping of fields, got {table!r:.60}")
    table = dict(table)
    table.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    names = table.get("joint_names")
    if not (isinstance(names, list) and names and all(isinstance(n, str) and n for n in names)):
        raise ValueError(f"skeleton file {path!r}: joint_names must be a list of joint names")
    table.setdefault("flip_pairs", [])
    table.setdefault("limbs", [])
    groups = table.setdefault("groups", [[n, [n]] for n in names])
    if isinstance(groups, dict):
        table["groups"] = [[k, v] for k, v in groups.items()]
    normalizer = table.get("normalizer")
    if isinstance(normalizer, dict) and len(normalizer) == 1:
        table["normalizer"] = list(next(iter(normalizer.items())))
    if normalizer is None:
        raise ValueError(
            f"skeleton file {path!r}: needs a normalizer, e.g. [joints, [left_shoulder, "
            "right_hip]] (PCK@0.2 of that distance) or [head_box, 0.6] (PCKh with head boxes)"
        )
    for field in ("flip_pairs", "limbs"):
        pairs = table[field]
        if not isinstance(pairs, list) or any(
            not (isinstance(p, list) and len(p) == 2 and all(isinstance(j, str) for j in p))
            for p in pairs
        ):
            raise ValueError(f"skeleton file {path!r}: {field} must be a list of [joint, joint]")
    try:
        return Skeleton.from_config(table)
    except (TypeError, ValueError) as error:
        raise ValueError(f"skeleton file {path!r}: {error}") from None


def named_joints(joint_names, keypoints, scores, decimals=None):
    """One person's joints by name: {joint: {"x": x, "y": y, "confidence": score}}, positions in
    image pixels (pixel centres at integers), the format of every output of the project
    (`estimate_poses`, the commands' JSON files, the serving client). `decimals`: (position,
    confidence) rounding for files, e.g. (2, 4); None keeps full precision."""

    def value(v, places):
        v = float(v)
        return round(v, places) if places is not None and math.isfinite(v) else v

    places = decimals or (None, None)
    return {
        name: {
            "x": value(x, places[0]),
            "y": value(y, places[0]),
            "confidence": value(s, places[1]),
        }
        for name, (x, y), s in zip(joint_names, keypoints, scores)
    }
