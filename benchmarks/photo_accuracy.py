"""The pose a user sees: whole LSPET photos through `hourglass-predict` as a user runs it, scored
against the annotation, beside the same model given the annotation's box and (optionally)
MediaPipe Pose on the same photos.

    python benchmarks/photo_accuracy.py --data-dir ../shared/data/lspet
    python benchmarks/photo_accuracy.py --data-dir ../shared/data/lspet \
        --pipelines default,annotation,whole --mediapipe-python /work/mpvenv/bin/python

Each pipeline is `hourglass-predict FOLDER --out OUT <flags>` run as a subprocess on a folder of
links to the photos (so what is measured is the command, its start included), then every
`<name>_pose.json` is read back and scored:

- the people: the photo's annotated person (LSPET has one per photo) whose left shoulder and
  right hip are both visible (the torso, PCK's normaliser);
- the person compared: the reported person nearest to the annotation (mean distance over the
  visible joints); a photo where none is reported scores 0 on every joint;
- PCK@0.2: a visible joint is right within 0.2 of the torso (left shoulder to right hip); the
  figure is the mean over the 12 limb joints (LSP's 14 less neck and head top) of each joint's
  fraction, the table has each joint's row and the 14-joint mean;
- people reported per photo, photos with none, seconds for the whole folder.

Pipelines: `default` (no flags: what a user gets), `whole` (`--whole-image --no-refine`: the
photo is the person, the command's default before issue #48), `whole-refined` (`--whole-image`),
`detect-once` (`--no-refine --no-landmarks`: the detector's box, one pass), `no-landmarks`
(the detector's box as the first crop, refined: the default before BlazePose's landmark model
framed the first crop), `annotation` (`--detections` with
the annotated joints' box, `--no-refine`: the model's own framing, the evaluation's figure). With
`--mediapipe-python` (a Python with mediapipe 0.10.21 and NumPy 1: its pins clash with ours, so it
lives in its own environment) MediaPipe Pose (BlazePose full, its own detector, static images)
runs on the same photos by `benchmarks/mediapipe_pose.py`, its 33 landmarks mapped to LSP's 14.
The photos default to LSPET's held-out `im09001`-`im10000` (the shipped model never saw them).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LSP_JOINTS = (
    "right_ankle right_knee right_hip left_hip left_knee left_ankle right_wrist right_elbow "
    "right_shoulder left_shoulder left_elbow left_wrist neck head_top"
).split()
LIMBS = 12  # the first 12 of LSP's joints: the limbs and hips
TORSO = (LSP_JOINTS.index("left_shoulder"), LSP_JOINTS.index("right_hip"))
PIPELINES = {
    "default": [],
    "whole": ["--whole-image", "--no-refine"],  # what the command did before issue #48
    "whole-refined": ["--whole-image"],
    "detect-once": ["--no-refine", "--no-landmarks"],  # the detector's box, one pass
    "no-landmarks": ["--no-landmarks"],  # the detector's box first, refined (before BlazePose's)
    "annotation": ["--no-refine"],  # with --detections made from the annotation
}


def lspet_people(data_dir, first, last):
    """[(image name, joints (14, 2), visible (14,))] of the photos im<first>-im<last> present."""
    from scipy.io import loadmat

    joints = loadmat(os.path.join(data_dir, "joints.mat"))["joints"]  # (14, 3, N)
    people = []
    for number in range(first, last + 1):
        name = f"im{number:05d}.jpg"
        if not os.path.isfile(os.path.join(data_dir, "images", name)):
            continue
        table = joints[:, :, number - 1]
        people.append((name, table[:, :2].astype(np.float64), table[:, 2] > 0.5))
    return people


def annotation_detections(people):
    """The annotated (visible) joints' extent of each photo as a --detections mapping: the crop
    around it (the longer side x 1.25, centred) is the evaluation's `box_from_joints`."""
    boxes = {}
    for name, joints, visible in people:
        points = joints[visible]
        lo, hi = points.min(axis=0), points.max(axis=0)
        w, h = max(hi[0] - lo[0], 1.0), max(hi[1] - lo[1], 1.0)
        boxes[name] = [[float(lo[0] + 0.5), float(lo[1] + 0.5), float(w), float(h)]]
    return boxes


def person_joints(person):
    """A person record's LSP joints: (xy (14, 2), confidences (14,))."""
    joints = person["joints"]
    xy = np.array([[joints[j]["x"], joints[j]["y"]] for j in LSP_JOINTS], np.float64)
    return xy, np.array([joints[j]["confidence"] for j in LSP_JOINTS], np.float64)


def reported_people(out, names):
    """{image name: [(joints (14, 2), confidences (14,))]} from the `<stem>_pose.json` files."""
    found = {}
    for name in names:
        stem = os.path.splitext(name)[0]
        with open(os.path.join(out, f"{stem}_pose.json")) as f:
            record = json.load(f)
        found[name] = [person_joints(person) for person in record["people"]]
    return found


def score(people, found, threshold=0.2):
    """Per-joint PCK@threshold (14,), the people scored, people reported per photo, photos with
    no one reported."""
    hits = np.zeros(len(LSP_JOINTS))
    counts = np.zeros(len(LSP_JOINTS))
    scored = 0
    for name, joints, visible in people:
        if not (visible[TORSO[0]] and visible[TORSO[1]]):
            continue
        scored += 1
        torso = float(np.linalg.norm(joints[TORSO[0]] - joints[TORSO[1]]))
        counts += visible
        candidates = found.get(name, [])
        if not candidates or torso <= 0:
            continue
        distances = [np.linalg.norm(xy - joints, axis=1) for xy, _ in candidates]
        nearest = min(distances, key=lambda d: d[visible].mean())
        hits += visible & (nearest <= threshold * torso)
    pck = 100.0 * hits / np.maximum(counts, 1)
    reported = np.mean([len(found.get(name, [])) for name, _, _ in people])
    empty = sum(1 for name, _, _ in people if not found.get(name))
    return pck, scored, reported, empty


def run_predict(folder, out, flags, model):
    """`hourglass-predict folder --out out flags` -> seconds."""
    command = [sys.executable, os.path.join(ROOT, "eval", "predict.py"), folder, "--out", out, "-q"]
    command += flags + (["--model", model] if model else [])
    start = time.time()
    subprocess.run(command, check=True)
    return time.time() - start


def run_mediapipe(python, folder, out, names):
    """MediaPipe Pose on the photos, in its own Python -> seconds; writes `<stem>_pose.json` as
    hourglass-predict does (LSP's 14 joints)."""
    command = [python, os.path.join(HERE, "mediapipe_pose.py"), folder, "--out", out]
    start = time.time()
    subprocess.run(command, check=True)
    return time.time() - start


def lspet_parser(doc):
    """The parser of an LSPET accuracy benchmark: its description and --data-dir, --first,
    --last (the held-out photos by default)."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", required=True, help="LSPET's folder (joints.mat, images/)")
    parser.add_argument("--first", type=int, default=9001, help="first photo number (9001)")
    parser.add_argument("--last", type=int, default=10000, help="last photo number (10000)")
    return parser


def add_output_arguments(parser):
    """--model, --keep and --json, as every accuracy benchmark here takes them."""
    parser.add_argument("--model", help="a model name or file (default: the shipped default)")
    parser.add_argument("--keep", help="keep the photos and outputs in this folder")
    parser.add_argument("--json", help="write the figures to this JSON file")


def chosen_pipelines(parser, text, known):
    """The comma-separated pipelines of `text`, each one of `known` (else a parser error)."""
    pipelines = [p for p in text.split(",") if p]
    unknown = [p for p in pipelines if p not in known]
    if unknown:
        parser.error(f"--pipelines: unknown {unknown}; known: {sorted(known)}")
    return pipelines


def main(argv=None):
    parser = lspet_parser(__doc__)
    parser.add_argument(
        "--pipelines",
        default="default,annotation",
        help=f"comma-separated, of {sorted(PIPELINES)} (default: default,annotation)",
    )
    parser.add_argument("--flags", default="", help="more hourglass-predict flags, for all")
    parser.add_argument("--mediapipe-python", help="a Python with mediapipe 0.10.21 (NumPy 1)")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    pipelines = chosen_pipelines(parser, args.pipelines, PIPELINES)

    people = lspet_people(args.data_dir, args.first, args.last)
    if not people:
        parser.error(f"--data-dir {args.data_dir}: no photo im{args.first:05d}-im{args.last:05d}")
    names = [name for name, _, _ in people]
    work = args.keep or tempfile.mkdtemp(prefix="photo_accuracy_")
    folder = os.path.join(work, "photos")
    os.makedirs(folder, exist_ok=True)
    for name in names:
        link = os.path.join(folder, name)
        if not os.path.lexists(link):
            os.symlink(os.path.abspath(os.path.join(args.data_dir, "images", name)), link)

    rows = {}
    extra = args.flags.split()
    for pipeline in pipelines:
        out = os.path.join(work, pipeline)
        flags = PIPELINES[pipeline]
        if pipeline == "annotation":
            detections = os.path.join(work, "annotation_boxes.json")
            with open(detections, "w") as f:
                json.dump(annotation_detections(people), f)
            flags = flags + ["--detections", detections]
        seconds = run_predict(folder, out, flags + extra, args.model)
        rows[pipeline] = (*score(people, reported_people(out, names)), seconds)
    if args.mediapipe_python:
        out = os.path.join(work, "mediapipe")
        seconds = run_mediapipe(args.mediapipe_python, folder, out, names)
        rows["mediapipe"] = (*score(people, reported_people(out, names)), seconds)

    print(f"{len(people)} photos im{args.first:05d}-im{args.last:05d}, PCK@0.2 of the torso")
    header = "| joint | " + " | ".join(rows) + " |"
    print(header)
    print("|---" * (len(rows) + 1) + "|")
    for j, joint in enumerate(LSP_JOINTS):
        print(f"| {joint} | " + " | ".join(f"{r[0][j]:.2f}" for r in rows.values()) + " |")
    summary = {}
    for pipeline, (pck, scored, reported, empty, seconds) in rows.items():
        summary[pipeline] = {
            "pck_limbs": round(float(pck[:LIMBS].mean()), 2),
            "pck_14": round(float(pck.mean()), 2),
            "people_scored": scored,
            "reported_per_photo": round(float(reported), 3),
            "photos_without_person": empty,
            "seconds": round(seconds, 1),
        }
    for key in ("pck_limbs", "pck_14", "people_scored", "reported_per_photo",
                "photos_without_person", "seconds"):  # fmt: skip
        print(f"| {key} | " + " | ".join(str(s[key]) for s in summary.values()) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
