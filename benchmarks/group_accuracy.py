"""Everyone in the picture: group photos made of held-out LSPET people, through
`hourglass-predict` as a user runs it, scored person by person (issue #50).

    python benchmarks/group_accuracy.py --data-dir ../shared/data/lspet
    python benchmarks/group_accuracy.py --data-dir ../shared/data/lspet --grids 2,3 \
        --pipelines default,scales-12,annotation

A group photo is `grid` x `grid` whole LSPET photos side by side, each scaled to fit a square cell
of `--cell` pixels (centred, black around it), from the held-out `im09001`-`im10000` (the shipped
model never saw them), consecutive photos in number order. Each pipeline is the command run as a
subprocess on the folder of group photos (its start included), and every `<name>_pose.json` is
read back:

- matching: the annotated people and the reported ones of a photo are paired by the Hungarian
  assignment (SciPy) on the mean distance over each annotated person's visible joints, in
  torsos (left shoulder to right hip); a pair further than 1 torso apart is no pair;
- recall: a person is found when paired and at least half its visible joints lie within half a
  torso of the annotation;
- group PCK@0.2: over the 12 limb joints, a paired person's joints as PCK scores them, an unpaired
  person's all wrong (people without both torso joints visible are not scored);
- reported per annotated: people reported over people in the photos; seconds for the folder.

Pipelines: `default` (no flags), `scales-12` / `scales-123` / `scales-1234` / `scales-12345`
(`--detect-scales 1,2` ... `1,2,3,4,5`: the detector over 2x2, 3x3, ... tiles too), `whole` (`--whole-image`: one person per photo, the
command before issue #48), `annotation` (`--detections` with each person's annotated joint box,
`--no-refine`: what the model gives when it is handed the people).
"""

import json
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from photo_accuracy import (  # noqa: E402
    LIMBS,
    TORSO,
    add_output_arguments,
    annotation_detections,
    chosen_pipelines,
    lspet_parser,
    lspet_people,
    person_joints,
    reported_people,
    run_predict,
)

PIPELINES = {
    "default": [],
    "scales-12": ["--detect-scales", "1,2"],
    "scales-123": ["--detect-scales", "1,2,3"],
    "scales-1234": ["--detect-scales", "1,2,3,4"],
    "scales-12345": ["--detect-scales", "1,2,3,4,5"],
    "scales-1234-score08": ["--detect-scales", "1,2,3,4", "--min-person-score", "0.08"],
    "scales-1234-score11": ["--detect-scales", "1,2,3,4", "--min-person-score", "0.11"],
    "scales-1234-passes3": ["--detect-scales", "1,2,3,4", "--passes", "3"],
    "scales-123-no-landmarks": ["--detect-scales", "1,2,3", "--no-landmarks"],
    "scales-1234-no-landmarks": ["--detect-scales", "1,2,3,4", "--no-landmarks"],
    "whole": ["--whole-image"],
    "annotation": ["--no-refine"],  # with --detections made from the annotation
}
PAIR_TORSOS = 1.0  # a reported person further than this from an annotated one is not it
FOUND_TORSOS = 0.5  # found: half the visible joints within half a torso


def build_groups(people, data_dir, grid, cell, folder):
    """Group photos of `grid` x `grid` consecutive `people` written to `folder` as JPEG ->
    [(group file name, [(joints (14, 2) in the group photo, visible (14,))])]."""
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    per = grid * grid
    groups = []
    for start in range(0, len(people) - per + 1, per):
        canvas = Image.new("RGB", (grid * cell, grid * cell))
        members = []
        for i, (name, joints, visible) in enumerate(people[start : start + per]):
            with Image.open(os.path.join(data_dir, "images", name)) as photo:
                photo = photo.convert("RGB")
                factor = cell / max(photo.size)
                size = (max(1, round(photo.width * factor)), max(1, round(photo.height * factor)))
                scaled = photo.resize(size, Image.LANCZOS)
            left = (i % grid) * cell + (cell - size[0]) // 2
            top = (i // grid) * cell + (cell - size[1]) // 2
            canvas.paste(scaled, (left, top))
            # pixel centres: x' = (x + 0.5) * f - 0.5 + left, with the true factor per axis
            fx, fy = size[0] / photo.width, size[1] / photo.height
            moved = np.stack(
                [(joints[:, 0] + 0.5) * fx - 0.5 + left, (joints[:, 1] + 0.5) * fy - 0.5 + top],
                axis=1,
            )
            members.append((moved, visible))
        group = f"group{grid}x{grid}_{start // per:03d}.jpg"
        canvas.save(os.path.join(folder, group), quality=95)
        groups.append((group, members))
    return groups


def score_groups(groups, found, threshold=0.2):
    """(group PCK@threshold over the 12 limb joints, recall, reported per annotated, people
    scored) of `groups` against `found` ({group: [(joints, confidences)]})."""
    from scipy.optimize import linear_sum_assignment

    hits = counts = 0.0
    scored = hit_people = annotated = reported = 0
    for group, members in groups:
        candidates = found.get(group, [])
        annotated += len(members)
        reported += len(candidates)
        torsos = [float(np.linalg.norm(j[TORSO[0]] - j[TORSO[1]])) for j, _ in members]
        usable = [
            i
            for i, (_, vis) in enumerate(members)
            if vis[TORSO[0]] and vis[TORSO[1]] and torsos[i] > 0
        ]
        pairs = {}
        if candidates and usable:
            cost = np.array(
                [
                    [
                        np.linalg.norm(xy - members[i][0], axis=1)[members[i][1]].mean() / torsos[i]
                        for xy, _ in candidates
                    ]
                    for i in usable
                ]
            )
            rows, cols = linear_sum_assignment(cost)
            pairs = {usable[r]: c for r, c in zip(rows, cols) if cost[r, c] <= PAIR_TORSOS}
        for i in usable:
            joints, visible = members[i]
            limbs = visible[:LIMBS]
            scored += 1
            counts += limbs.sum()
            if i not in pairs:
                continue
            distance = np.linalg.norm(candidates[pairs[i]][0] - joints, axis=1) / torsos[i]
            hits += (limbs & (distance[:LIMBS] <= threshold)).sum()
            hit_people += int((distance[visible] <= FOUND_TORSOS).mean() >= 0.5)
    pck = 100.0 * hits / max(counts, 1)
    return pck, hit_people / max(scored, 1), reported / max(annotated, 1), scored


def group_detections(groups):
    """The annotated people's joint boxes of each group photo as a --detections mapping."""
    boxes = {}
    for group, members in groups:
        people = [(group, joints, visible) for joints, visible in members if visible.any()]
        boxes[group] = [box for p in people for box in annotation_detections([p])[group]]
    return boxes


def clip_size(count, pan=80):
    """The frame of a clip of `count` people: 360 px high, about 220 px of width per person
    (at least 640)."""
    return max(640, 220 * count + pan), 360


def build_clip(people, data_dir, count, path, frames=60, pan=80, fps=30):
    """A panning clip of `count` people side by side (whole LSPET photos, each scaled into an
    equal share of the frame, `clip_size`), the view moving `pan` pixels right and back;
    everyone stays in view. Written losslessly (FFV1) to `path` -> per frame [(joints (14, 2),
    visible (14,))]."""
    import cv2
    from PIL import Image

    width, height = size = clip_size(count, pan)
    canvas = np.zeros((height, width + pan, 3), np.uint8)
    cell = (width - pan) // count
    members = []
    for i, (name, joints, visible) in enumerate(people[:count]):
        with Image.open(os.path.join(data_dir, "images", name)) as photo:
            photo = photo.convert("RGB")
            factor = min(cell / photo.width, (height - 20) / photo.height)
            scaled = photo.resize(
                (max(1, round(photo.width * factor)), max(1, round(photo.height * factor))),
                Image.LANCZOS,
            )
        left = pan + i * cell + (cell - scaled.width) // 2
        top = (height - scaled.height) // 2
        canvas[top : top + scaled.height, left : left + scaled.width] = np.asarray(scaled)
        fx, fy = scaled.width / photo.width, scaled.height / photo.height
        moved = np.stack(
            [(joints[:, 0] + 0.5) * fx - 0.5 + left, (joints[:, 1] + 0.5) * fy - 0.5 + top], axis=1
        )
        members.append((moved, visible))
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"FFV1"), fps, size)
    truth = []
    for t in range(frames):
        offset = round(pan * (1 - abs(1 - 2 * t / max(frames - 1, 1))))  # right, then back
        frame = canvas[:, offset : offset + width]
        writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
        truth.append([(joints - [offset, 0], visible) for joints, visible in members])
    writer.release()
    return truth


def video_people(lines_path):
    """{frame: [(joints (14, 2), confidences (14,), track id)]} from a `_pose.jsonl`."""
    found = {}
    with open(lines_path) as f:
        for line in f:
            record = json.loads(line)
            found[record["frame"]] = [
                (*person_joints(person), person["track_id"]) for person in record["people"]
            ]
    return found


def score_clip(truth, found):
    """(group PCK@0.2 of the 12 limb joints, recall, reported per annotated, id switches, the
    smallest fraction of frames any one person was found in) of a clip."""
    from scipy.optimize import linear_sum_assignment

    groups = [(t, members) for t, members in enumerate(truth)]
    reported = {t: [(xy, conf) for xy, conf, _ in found.get(t, [])] for t in range(len(truth))}
    pck, recall, per, _ = score_groups(groups, reported)
    ids = [[] for _ in truth[0]]
    for t, members in enumerate(truth):
        people = found.get(t, [])
        if not people:
            continue
        cost = np.array(
            [
                [np.linalg.norm(xy - joints, axis=1)[visible].mean() for xy, _, _ in people]
                for joints, visible in members
            ]
        )
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols):
            torso = np.linalg.norm(members[r][0][TORSO[0]] - members[r][0][TORSO[1]])
            if cost[r, c] <= PAIR_TORSOS * max(torso, 1.0):
                ids[r].append(people[c][2])
    switches = sum(sum(a != b for a, b in zip(seq, seq[1:])) for seq in ids)
    seen = min(len(seq) for seq in ids) / len(truth)
    return pck, recall, per, switches, seen


def run_clip(clip, out, flags, model):
    """`hourglass-predict --video clip` -> frames per second of its own loop (its summary)."""
    import re
    import subprocess

    command = [sys.executable, os.path.join(os.path.dirname(HERE), "eval", "predict.py")]
    command += ["--video", clip, "--out", out] + flags + (["--model", model] if model else [])
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    rate = re.search(r"\(([0-9.]+) frames/s\)", done.stdout + done.stderr)
    return float(rate.group(1)) if rate else float("nan")


def main(argv=None):
    parser = lspet_parser(__doc__)
    parser.add_argument("--grids", default="2,3", help="group sizes: 2 for 2x2, 3 for 3x3")
    parser.add_argument("--cell", type=int, default=320, help="each person's cell, pixels (320)")
    parser.add_argument(
        "--pipelines",
        default="default,scales-12,annotation",
        help=f"comma-separated, of {sorted(PIPELINES)} (default: default,scales-12,annotation)",
    )
    parser.add_argument(
        "--clips",
        default="1,2,5",
        help="people in the panning clips (default: 1,2,5; empty: no clip)",
    )
    parser.add_argument("--frames", type=int, default=60, help="frames per clip (60)")
    parser.add_argument(
        "--video-flags", default="", help="hourglass-predict flags for the clips (default: none)"
    )
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    pipelines = chosen_pipelines(parser, args.pipelines, PIPELINES)
    grids = [int(g) for g in args.grids.split(",") if g]
    if args.frames < 2:
        parser.error(f"--frames must be at least 2, got {args.frames}")

    people = lspet_people(args.data_dir, args.first, args.last)
    if not people:
        parser.error(f"--data-dir {args.data_dir}: no photo im{args.first:05d}-im{args.last:05d}")
    work = args.keep or tempfile.mkdtemp(prefix="group_accuracy_")
    os.makedirs(work, exist_ok=True)
    summary = {}
    for grid in grids:
        folder = os.path.join(work, f"groups{grid}")
        groups = build_groups(people, args.data_dir, grid, args.cell, folder)
        names = [g for g, _ in groups]
        for pipeline in pipelines:
            out = os.path.join(work, f"{pipeline}_{grid}")
            flags = list(PIPELINES[pipeline])
            if pipeline == "annotation":
                detections = os.path.join(work, f"annotation_boxes_{grid}.json")
                with open(detections, "w") as f:
                    json.dump(group_detections(groups), f)
                flags += ["--detections", detections]
            seconds = run_predict(folder, out, flags, args.model)
            pck, recall, per, scored = score_groups(groups, reported_people(out, names))
            summary[f"{pipeline} {grid}x{grid}"] = {
                "group_pck_limbs": round(float(pck), 2),
                "recall": round(float(recall), 3),
                "reported_per_annotated": round(float(per), 3),
                "people_scored": scored,
                "photos": len(groups),
                "seconds": round(seconds, 1),
            }
    clips = {}
    for count in [int(c) for c in args.clips.split(",") if c]:
        path = os.path.join(work, f"clip{count}.avi")
        truth = build_clip(people, args.data_dir, count, path, args.frames)
        out = os.path.join(work, f"clip{count}_out")
        rate = run_clip(path, out, args.video_flags.split(), args.model)
        found = video_people(os.path.join(out, f"clip{count}_pose.jsonl"))
        pck, recall, per, switches, seen = score_clip(truth, found)
        clips[f"clip of {count}"] = {
            "group_pck_limbs": round(float(pck), 2),
            "recall": round(float(recall), 3),
            "reported_per_annotated": round(float(per), 3),
            "id_switches": int(switches),
            "least_seen": round(float(seen), 3),
            "frame": "x".join(map(str, clip_size(count))),
            "frames_per_s": rate,
        }
    print(f"group photos of LSPET im{args.first:05d}-im{args.last:05d}, {args.cell} px cells")
    keys = ["group_pck_limbs", "recall", "reported_per_annotated", "people_scored", "photos",
            "seconds"]  # fmt: skip
    print("| pipeline | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name, row in summary.items():
        print(f"| {name} | " + " | ".join(str(row[k]) for k in keys) + " |")
    if clips:
        keys = list(next(iter(clips.values())))
        print(
            f"\npanning clips of {args.frames} frames, 360 px high, people from im{args.first:05d}"
        )
        print("| clip | " + " | ".join(keys) + " |")
        print("|---" * (len(keys) + 1) + "|")
        for name, row in clips.items():
            print(f"| {name} | " + " | ".join(str(row[k]) for k in keys) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**summary, **clips}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
