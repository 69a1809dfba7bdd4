"""What the pose commands write, in one place: the inputs a command is given (files, folders,
globs), one person's JSON record, the drawing of a frame's people, the overlay file and COCO's
keypoint results format.

    for item in expand_images(["photos/", "*.png", "one.jpg"]):   # item.path, item.stem
        ...
    drawn = draw_people(pixels, people, skeleton, threshold=0.2)
    write_overlay(drawn, out_dir, item.stem, item.format)            # poses/<stem>_pose.jpg
"""

import dataclasses
import glob
import os

import numpy as np

from keras_hourglass import files

# What a folder or a glob contributes (case-insensitive); a file named explicitly is taken
# whatever its name, and its content decides (JPEG or PNG).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
OVERLAY_FORMATS = ("auto", "png", "jpg")


class InputListError(ValueError):
    """A path, folder or pattern that names no image, or two inputs that would write the same
    output files."""


@dataclasses.dataclass(frozen=True)
class ImageInput:
    """One image a command predicts: its path and the stem of its output files (the file's name
    without extension; under a folder, its path relative to the folder, so that a/x.jpg and
    b/x.jpg write a/x_pose.* and b/x_pose.*)."""

    path: str
    stem: str

    @property
    def format(self):
        """ "jpg" for a .jpg/.jpeg input, else "png" (the overlay keeps the input's kind)."""
        return "jpg" if self.path.lower().endswith((".jpg", ".jpeg")) else "png"


def _is_image_name(name):
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def expand_images(items):
    """The images named by `items` in order: files as given, folders searched recursively
    (images by extension, sorted, hidden files left out), glob patterns (`*`, `?`, `[...]`,
    `**`) expanded and sorted. Raises `InputListError` for an item that names nothing and for
    two inputs with the same output stem."""
    found = []
    for item in items:
        if os.path.isdir(item):
            images = []
            for root, dirs, names in os.walk(item):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                images.extend(os.path.join(root, n) for n in sorted(names) if _is_image_name(n))
            if not images:
                raise InputListError(
                    f"{item}: a folder without photos ({', '.join(IMAGE_EXTENSIONS)})"
                )
            for path in sorted(images):
                relative = os.path.relpath(path, item)
                found.append(ImageInput(path, os.path.splitext(relative)[0]))
        elif os.path.exists(item) or not glob.has_magic(item):
            found.append(ImageInput(item, os.path.splitext(os.path.basename(item))[0]))
        else:
            matches = sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p))
            if not matches:
                raise InputListError(f"{item}: no file matches this pattern")
            for path in matches:
                found.append(ImageInput(path, os.path.splitext(os.path.basename(path))[0]))
    stems = {}
    for image in found:
        if image.stem in stems and stems[image.stem] != image.path:
            raise InputListError(
                f"{stems[image.stem]} and {image.path} would both write {image.stem}_pose.* "
                "into --out; predict them in separate runs or rename one"
            )
        stems[image.stem] = image.path
    unique, seen = [], set()
    for image in found:  # a file named twice (a folder and a glob) is predicted once
        if image.path not in seen:
            seen.add(image.path)
            unique.append(image)
    return unique


def named_joints_json(skeleton, keypoints, scores):
    """One person's named joints as the outputs hold them: {name: {x, y, confidence}}, positions
    to 0.01 px, confidences to 1e-4 (`skeletons.named_joints`)."""
    from keras_hourglass.skeletons import named_joints

    return named_joints(skeleton.joint_names, keypoints, scores, decimals=(2, 4))


def person_record(person, keypoints, scores, score, skeleton):
    """One person of a photo as `<name>_pose.json` holds it: the crop the network saw last
    ("box": its centre and scale; "crop": centre, side and turn in pixels, with the network
    passes it took, when the pose loop re-framed the person), the given or detected box
    ("bbox" [x, y, w, h]) and its score, the person's score and the named joints."""
    box = person.get("box")
    record = {
        "box": "whole image" if box is None else {"center": box[:2], "scale": box[2]},
        "bbox": None
        if person.get("bbox") is None
        else [round(float(v), 2) for v in person["bbox"]],
        "box_score": round(float(person.get("box_score", 1.0)), 6),
        "score": round(float(score), 6),
    }
    if "crop" in person:
        record["crop"] = {**person["crop"], "passes": int(person.get("passes", 1))}
    record["joints"] = named_joints_json(skeleton, keypoints, scores)
    return record


TRACK_COLOURS = (
    (80, 160, 255),
    (255, 170, 60),
    (120, 220, 120),
    (240, 100, 200),
    (255, 240, 90),
    (90, 230, 230),
    (200, 140, 255),
    (255, 110, 110),
)  # a video's people by track id (the first is the photos' box colour)


def track_colour(track_id):
    """The box colour of track `track_id` in a video's overlay."""
    return TRACK_COLOURS[int(track_id) % len(TRACK_COLOURS)]


def draw_people(image, people, skeleton, threshold=0.2):
    """An RGB image (PIL or (H, W, 3) uint8) with each person's skeleton drawn (joints below
    `threshold` dimmed) and each person's box, labelled with the score when given. `people`:
    [{"keypoints" (K, 2), "scores" (K,), "bbox" [x, y, w, h] or None, "label" or None, and
    optionally "colour" (r, g, b) of the box: a video's track}]. Line widths follow the image's
    size. Returns a PIL image."""
    from PIL import ImageDraw

    from keras_hourglass.drawing import box_on, pose_on, rgb_canvas

    drawn = rgb_canvas(image)  # one copy; every person drawn onto it
    poses, boxes = ImageDraw.Draw(drawn, "RGBA"), ImageDraw.Draw(drawn)
    size = max(drawn.size)
    for person in people:
        pose_on(
            poses,
            person["keypoints"],
            skeleton,
            scores=person["scores"],
            threshold=threshold,
            radius=max(3, round(size / 150)),
            width=max(2, round(size / 250)),
        )
        if person.get("bbox") is not None:
            colour = person.get("colour")
            box_on(
                boxes,
                person["bbox"],
                person.get("label"),
                max(1, round(size / 400)),
                *(() if colour is None else (tuple(colour),)),
            )
    return drawn


def write_overlay(drawn, out_dir, stem, fmt="png"):
    """Writes the drawn image as `<out_dir>/<stem>_pose.png` or `.jpg` (quality 90), atomically;
    returns the path."""
    path = os.path.join(out_dir, f"{stem}_pose.{fmt}")
    with files.atomic_path(path) as tmp:
        if fmt == "jpg":
            drawn.convert("RGB").save(tmp, format="JPEG", quality=90)
        else:
            drawn.save(tmp, format="PNG")
    return path


def coco_image_id(path):
    """COCO's image id of a file: the number its name ends with (000000397133.jpg, and
    COCO_val2014_000000397133.jpg, are 397133), else the file name."""
    stem = os.path.splitext(os.path.basename(path))[0]
    digits = stem.rsplit("_", 1)[-1]
    return int(digits) if digits.isdigit() else stem


def coco_result(image_path, keypoints, scores, score):
    """One person in COCO's keypoint results format (what COCO's evaluator and mmpose read):
    image_id, category_id 1 (person), keypoints as [x, y, confidence] per joint in the model's
    joint order and the image's pixels (as `coco_eval.coco_results` writes them), score."""
    flat = np.concatenate([np.asarray(keypoints, np.float64), np.asarray(scores)[:, None]], 1)
    return {
        "image_id": coco_image_id(image_path),
        "category_id": 1,
        "keypoints": [round(float(v), 3) for v in flat.ravel()],
        "score": round(float(score), 6),
    }
