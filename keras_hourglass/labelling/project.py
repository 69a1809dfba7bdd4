"""A labelling project: one folder holding everything, so that nothing lives only in the page.

    project/
      project.json      the skeleton file's name, individuals per frame, the videos, the frames
                        picked (id, image, video, frame index, how picked), the training rounds
      skeleton.yaml     the joints (`skeletons.read_skeleton`: names, flip partners, limbs)
      frames/<video>/   the picked frames as JPEG files (000017.jpg: frame 17)
      labels.json       the labels in the custom annotation format (`datasets.read_custom`: a
                        row per individual: image, keypoints [[x, y, v], ...], plus "frame",
                        "individual" and "not_visible"), ready for `hourglass-train --dataset
                        custom`
      predictions.json  a trained model's pre-filled joints of unlabelled frames (not labels
                        until accepted or corrected)
      runs/round-N/     each training round's run; export/ what `export` writes

Every change is written at once and atomically (`files.write_json`): closing the page or the
server loses nothing, and a file is never half-written. A file edited by hand into nonsense is a
`ProjectError` naming it and the record, and is not overwritten.
"""

import csv
import dataclasses
import io
import json
import os
import shutil
import threading

from keras_hourglass import files
from keras_hourglass.labelling import frames as F
from keras_hourglass.skeletons import read_skeleton

__all__ = ["Project", "ProjectError"]

PROJECT_FILE, LABELS_FILE, PREDICTIONS_FILE = "project.json", "labels.json", "predictions.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
FORMAT = 1


class ProjectError(ValueError):
    """A project that cannot be read or a change that cannot be made: one line naming the file
    (and record) or the argument."""


@dataclasses.dataclass
class Frame:
    """One picked frame: `id` ("<video>/<index>"), its JPEG `image` relative to the project,
    the `video` it came from (None: an image added as it is), the frame `index`, and `source`
    (kmeans, uniform, suggested, image)."""

    id: str
    image: str
    video: str = None
    index: int = 0
    source: str = "kmeans"


def _read_json(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ProjectError(f"{path}: cannot read the {what} ({error})") from None


class Project:
    """A project folder (see the module): `open` an existing one, `create` a new one."""

    def __init__(self, folder):
        self.folder = os.path.abspath(folder)
        self.lock = threading.Lock()
        meta = _read_json(self.path(PROJECT_FILE), "project file")
        if meta is None:
            raise ProjectError(
                f"{self.path(PROJECT_FILE)}: no such project (hourglass-label "
                "PROJECT --skeleton FILE creates one)"
            )
        try:
            self.skeleton_file = str(meta["skeleton"])
            self.individuals = int(meta.get("individuals", 1))
            self.videos = [str(v) for v in meta.get("videos", [])]
            self.frames = [Frame(**f) for f in meta.get("frames", [])]
            self.rounds = list(meta.get("rounds", []))
        except (KeyError, TypeError, ValueError) as error:
            raise ProjectError(
                f"{self.path(PROJECT_FILE)}: not a labelling project ({type(error).__name__}: "
                f"{error})"
            ) from None
        try:
            self.skeleton = read_skeleton(self.path(self.skeleton_file))
        except (OSError, ValueError) as error:
            raise ProjectError(f"{self.path(self.skeleton_file)}: {error}") from None
        self.labels = self._read_labels()
        self.predictions = _read_json(self.path(PREDICTIONS_FILE), "predictions") or {}

    @classmethod
    def create(cls, folder, skeleton, individuals=1):
        """A new project in `folder` with a copy of the skeleton file `skeleton`."""
        if os.path.exists(os.path.join(folder, PROJECT_FILE)):
            raise ProjectError(f"{folder}: already a project")
        try:
            read_skeleton(skeleton)
        except (OSError, ValueError) as error:
            raise ProjectError(f"--skeleton {skeleton}: {error}") from None
        if individuals < 1:
            raise ProjectError(f"--individuals must be at least 1, got {individuals}")
        os.makedirs(folder, exist_ok=True)
        name = "skeleton" + os.path.splitext(skeleton)[1]
        shutil.copyfile(skeleton, os.path.join(folder, name))
        files.write_json(
            os.path.join(folder, PROJECT_FILE),
            {"format": FORMAT, "skeleton": name, "individuals": individuals, "videos": [],
             "frames": [], "rounds": []},
        )  # fmt: skip
        return cls(folder)

    def path(self, *parts):
        return os.path.join(self.folder, *parts)

    # --- reading and writing -----------------------------------------------------------------

    def _read_labels(self):
        """{frame id: [individual's K [x, y, v] rows, or None where none placed]} from
        labels.json, each row checked (a hand edit into nonsense names the record)."""
        path = self.path(LABELS_FILE)
        rows = _read_json(path, "labels")
        if rows is None:
            return {}
        if not isinstance(rows, list):
            raise ProjectError(f"{path}: expected a JSON list of labels, got {type(rows).__name__}")
        k, known = self.skeleton.num_joints, {f.id for f in self.frames}
        labels = {}
        for n, row in enumerate(rows):
            try:
                frame, individual = str(row["frame"]), int(row["individual"])
                points = [self._point(p, set(row.get("not_visible", ())), j)
                          for j, p in enumerate(row["keypoints"])]  # fmt: skip
                if len(points) != k:
                    raise ValueError(f"{len(points)} joints, the skeleton has {k}")
                if frame not in known:
                    raise ValueError(f"frame {frame!r} is not one of the project's frames")
                if not 0 <= individual < self.individuals:
                    raise ValueError(
                        f"individual {individual} (the project has {self.individuals})"
                    )
            except (KeyError, TypeError, ValueError) as error:
                raise ProjectError(f"{path}, record {n}: {error}") from None
            labels.setdefault(frame, [None] * self.individuals)[individual] = points
        return labels

    @staticmethod
    def _point(p, hidden, j):
        """A label row's joint as [x, y, v] (v 2 visible, 1 occluded), "hidden" (marked not
        visible) or None (not placed yet)."""
        if j in hidden:
            return "hidden"
        if p is None or p[0] is None:
            return None
        x, y = float(p[0]), float(p[1])
        v = int(p[2]) if len(p) > 2 else 2
        if not (x == x and y == y) or v not in (1, 2):
            raise ValueError(f"joint {j}: expected [x, y, 1 or 2], got {p!r:.60}")
        return [x, y, v]

    def _save(self):
        files.write_json(
            self.path(PROJECT_FILE),
            {"format": FORMAT, "skeleton": self.skeleton_file, "individuals": self.individuals,
             "videos": self.videos, "frames": [dataclasses.asdict(f) for f in self.frames],
             "rounds": self.rounds},
        )  # fmt: skip

    def label_rows(self, complete_only=False):
        """labels.json's rows (the custom format); `complete_only`: individuals whose every joint
        is placed or marked not visible, with at least two placed (what training reads)."""
        rows, image = [], {f.id: f.image for f in self.frames}
        for frame in (f.id for f in self.frames):
            for individual, points in enumerate(self.labels.get(frame, ())):
                if points is None:
                    continue
                placed = [p for p in points if isinstance(p, list)]
                if complete_only and (None in points or len(placed) < 2):
                    continue
                rows.append({
                    "image": image[frame],
                    "keypoints": [p if isinstance(p, list) else [None, None, 0] for p in points],
                    "frame": frame,
                    "individual": individual,
                    "not_visible": [j for j, p in enumerate(points) if p == "hidden"],
                })  # fmt: skip
        return rows

    def set_labels(self, frame, individuals):
        """Saves one frame's labels: `individuals` a list (one per individual) of K joints, each
        [x, y] / [x, y, v], "hidden" or None. Written at once; returns the frame's labels."""
        with self.lock:
            if frame not in {f.id for f in self.frames}:
                raise ProjectError(f"frame {frame!r}: not one of the project's frames")
            if not isinstance(individuals, list) or len(individuals) != self.individuals:
                raise ProjectError(f"frame {frame!r}: expected {self.individuals} individual(s)")
            k, checked = self.skeleton.num_joints, []
            for i, points in enumerate(individuals):
                if points is None:
                    checked.append(None)
                    continue
                if not isinstance(points, list) or len(points) != k:
                    raise ProjectError(f"frame {frame!r}, individual {i}: expected {k} joints")
                try:
                    checked.append([self._point(p, {j} if p == "hidden" else set(), j)
                                    for j, p in enumerate(points)])  # fmt: skip
                except (TypeError, ValueError, IndexError) as error:
                    raise ProjectError(f"frame {frame!r}, individual {i}: {error}") from None
            if all(points is None for points in checked):
                self.labels.pop(frame, None)  # nothing placed: the frame is unlabelled again
            else:
                self.labels[frame] = checked
            files.write_json(self.path(LABELS_FILE), self.label_rows(), indent=None)
            return checked

    # --- frames --------------------------------------------------------------------------------

    def add_videos(self, videos):
        """Adds video files (each checked: it must decode)."""
        for video in videos:
            video = os.path.abspath(video)
            F.check_video(video)  # a VideoError names it when it does not decode
            if video not in self.videos:
                self.videos.append(video)
        with self.lock:
            self._save()

    def add_images(self, paths):
        """Adds photos as frames as they are (a folder: its photos, in name order), each checked
        (it must decode) and copied to frames/images/; returns the new `Frame`s."""
        from keras_hourglass.poses.media import InputError, read_image

        found = []
        for path in paths:
            if os.path.isdir(path):
                found += [os.path.join(path, name) for name in sorted(os.listdir(path))
                          if name.lower().endswith(IMAGE_SUFFIXES)]  # fmt: skip
            else:
                found.append(path)
        known, new = {f.id for f in self.frames}, []
        os.makedirs(self.path("frames", "images"), exist_ok=True)
        for path in found:
            try:
                read_image(path)  # a broken or cut photo is one line naming it
            except InputError as error:
                raise ProjectError(str(error)) from None
            name = os.path.basename(path)
            frame_id = f"images/{os.path.splitext(name)[0]}"
            if frame_id in known:
                continue
            target = self.path("frames", "images", name)
            with open(path, "rb") as source, files.atomic_write(target, "wb") as out:
                shutil.copyfileobj(source, out)
            known.add(frame_id)
            new.append(
                Frame(frame_id, os.path.relpath(target, self.folder), None, len(new), "image")
            )
        with self.lock:
            self.frames += new
            self._save()
        return new

    def pick(self, count, method="kmeans", source=None, videos=None):
        """Picks `count` new frames of the project's videos (`frames.pick_frames`), extracts
        them and adds them; returns the new `Frame`s."""
        videos = videos or self.videos
        if not videos:
            raise ProjectError("the project has no video: add one (--video FILE)")
        taken = {(f.video, f.index) for f in self.frames if f.video}
        picked = F.pick_frames(videos, count, method, exclude=taken)
        return self.add_picked(picked, source or method)

    def add_picked(self, picked, source):
        """Extracts the frames `picked` ([(video, index)]) and adds them as picked by `source`."""
        new = []
        for video in dict.fromkeys(v for v, _ in picked):
            indices = [i for v, i in picked if v == video]
            stem = os.path.splitext(os.path.basename(video))[0]
            paths = F.extract_frames(video, indices, self.path("frames", stem))
            for index, path in zip(indices, paths):
                image = os.path.relpath(path, self.folder)
                new.append(Frame(f"{stem}/{index:06d}", image, video, int(index), source))
        with self.lock:
            self.frames += new
            self._save()
        return new

    def unlabelled(self):
        """The frames with no label placed yet."""
        return [f for f in self.frames
                if not any(p is not None for p in self.labels.get(f.id, ()))]  # fmt: skip

    def set_predictions(self, predictions, round_number):
        """Stores a model's joints of unlabelled frames: {frame id: individuals' K [x, y,
        confidence]}."""
        with self.lock:
            self.predictions = {
                frame: {"round": round_number, "individuals": people}
                for frame, people in predictions.items()
            }
            files.write_json(self.path(PREDICTIONS_FILE), self.predictions, indent=None)

    def add_round(self, record):
        with self.lock:
            self.rounds.append(record)
            self._save()

    # --- export --------------------------------------------------------------------------------

    def export(self, folder=None):
        """Writes the complete labels as the custom JSON (`labels.json`, with the skeleton),
        COCO keypoints (`coco.json`) and a CSV per video (`<video>.csv`) into `folder`
        (default `export/`); returns their paths."""
        folder = folder or self.path("export")
        os.makedirs(folder, exist_ok=True)
        rows = self.label_rows(complete_only=True)
        written = [os.path.join(folder, "labels.json"), os.path.join(folder, "coco.json")]
        files.write_json(written[0], rows)
        shutil.copyfile(self.path(self.skeleton_file), os.path.join(folder, self.skeleton_file))
        files.write_json(written[1], self._coco(rows))
        by_video = {}
        frame_of = {f.id: f for f in self.frames}
        for row in rows:
            frame = frame_of[row["frame"]]
            stem = os.path.splitext(os.path.basename(frame.video or "images"))[0]
            by_video.setdefault(stem, []).append((frame, row))
        for stem, pairs in by_video.items():
            path = os.path.join(folder, f"{stem}.csv")
            files.write_text(path, self._csv(pairs))
            written.append(path)
        return written

    def _coco(self, rows):
        from PIL import Image

        names = list(self.skeleton.joint_names)
        images, annotations, ids = [], [], {}
        for row in rows:
            if row["image"] not in ids:
                ids[row["image"]] = len(ids) + 1
                with Image.open(self.path(row["image"])) as image:
                    width, height = image.size
                images.append({"id": ids[row["image"]], "file_name": row["image"],
                               "width": width, "height": height})  # fmt: skip
            flat, xs, ys = [], [], []
            for p in row["keypoints"]:
                placed = p[0] is not None
                flat += [round(p[0], 2), round(p[1], 2), p[2]] if placed else [0, 0, 0]
                if placed:
                    xs.append(p[0])
                    ys.append(p[1])
            box = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
            annotations.append({
                "id": len(annotations) + 1, "image_id": ids[row["image"]], "category_id": 1,
                "keypoints": flat, "num_keypoints": len(xs), "iscrowd": 0,
                "bbox": [round(v, 2) for v in box], "area": round(box[2] * box[3], 2),
            })  # fmt: skip
        limbs = [[a + 1, b + 1] for a, b in self.skeleton.limb_index]
        category = {"id": 1, "name": self.skeleton.name, "supercategory": self.skeleton.name,
                    "keypoints": names, "skeleton": limbs}  # fmt: skip
        return {"images": images, "annotations": annotations, "categories": [category]}

    def _csv(self, pairs):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        header = ["frame", "image", "individual"]
        for name in self.skeleton.joint_names:
            header += [f"{name}_x", f"{name}_y", f"{name}_v"]
        writer.writerow(header)
        for frame, row in sorted(pairs, key=lambda p: (p[0].index, p[1]["individual"])):
            values = [frame.index, row["image"], row["individual"]]
            for p in row["keypoints"]:
                values += (
                    [round(p[0], 2), round(p[1], 2), p[2]] if p[0] is not None else ["", "", 0]
                )
            writer.writerow(values)
        return out.getvalue()
