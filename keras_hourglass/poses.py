"""Poses from a model file of any format, photo by photo or frame by frame: the pose loop that
`hourglass-predict` (photos, folders, video, camera) runs and the demo page will, in the
library (docs/layers.md: an application of the runtimes, export and model layers below it).

- `PoseEstimator(model_path, ...)`: loads a `.keras` file, an OpenVINO `.xml` or a SavedModel
  folder; `.image(data, pixels, persons)` gives one photo's people as `ImagePoses` (keypoints,
  scores, each person's score, the JSON records and the drawn image); `.people` and `.frames`
  give the arrays.
- `follow(...)`: the next video frame's person box from this frame's pose.
"""

import dataclasses
import os
import sys

import numpy as np

from keras_hourglass.geometry import PERSON_BOX_PX
from keras_hourglass.media import InputError

__all__ = ["ImagePoses", "InputError", "PoseEstimator", "follow"]


def _load_keras():
    """Keras (TensorFlow's start-up kept quiet where a command asked) and the model class
    registered, once a model file needs them."""
    from keras_hourglass.quiet import quiet_tensorflow_startup

    quiet_tensorflow_startup()
    # Every class a .keras file of this project may name, registered with Keras.
    import keras_hourglass.codec  # noqa: F401
    import keras_hourglass.model  # noqa: F401
    import keras_hourglass.optimizers  # noqa: F401
    import keras_hourglass.pck_metric  # noqa: F401


def _note(text):
    print(text, file=sys.stderr)


@dataclasses.dataclass
class ImagePoses:
    """One photo's people: keypoints (P, K, 2) in the photo's pixels, scores (P, K), each
    person's score (P,) (mean confident joint times box score), the people as
    `<name>_pose.json` records them, and the photo with the skeletons drawn (PIL)."""

    keypoints: np.ndarray
    scores: np.ndarray
    overall: np.ndarray
    people: list
    drawn: object


class PoseEstimator:
    """A model file of any format -> poses: images (+ optional boxes) -> keypoints (N, K, 2) in
    image pixels and scores (N, K). A `.keras` file runs the library's pose loop
    (`deploy.estimate_keypoints`) on `runtime` (OpenVINO: converted once, later read back from
    the conversion cache without Keras), an exported OpenVINO `.xml` the same loop without
    Keras, a SavedModel version folder its own serving signatures (decoding in the graph).
    Errors are one `InputError` line naming the file. `image()` gives one photo's people
    drawn and recorded as `hourglass-predict` writes them (and the demo page shows them)."""

    def __init__(
        self, model_path, skeleton_name=None, flip_test=True, runtime="auto", precision="auto"
    ):
        self.saved_model = os.path.isdir(model_path)
        self.runtime, self.precision = "tensorflow", "fp32"
        if self.saved_model:
            self._load_saved_model(model_path, flip_test, runtime)
        elif not os.path.isfile(model_path):
            raise InputError(
                f"--model {model_path!r}: no such .keras file, OpenVINO .xml or SavedModel folder"
            )
        elif model_path.endswith(".xml"):
            self._load_openvino(model_path, flip_test, runtime, precision)
        elif model_path.endswith(".keras"):
            self._load_keras(model_path, skeleton_name, flip_test, runtime, precision)
        else:
            raise InputError(
                f"--model {model_path!r}: expected a .keras file from "
                "train/train.py, an OpenVINO .xml from train/export.py or a SavedModel version "
                "folder"
            )

    def _load_saved_model(self, model_path, flip_test, runtime):
        """A SavedModel version folder: its serving signatures, on TensorFlow."""
        if runtime == "openvino":
            raise InputError(
                f"--model {model_path!r} is a SavedModel, which runs on TensorFlow: for "
                "--runtime openvino pass the .keras file or its export (train/export.py "
                "--format openvino)"
            )
        _load_keras()  # TensorFlow, its start-up kept quiet
        from keras_hourglass.deploy import DescriptionError, ModelDescription
        from keras_hourglass.export import ServingModelError, load_serving_model

        need = ("predict_encoded", "predict_encoded_boxes", "serving_default", "serving_boxes")
        try:
            loaded, meta = load_serving_model(model_path, need=need)
            description = ModelDescription.from_dict(meta, f"--model {model_path!r}")
        except (ServingModelError, DescriptionError) as error:
            raise InputError(f"--model: {error}") from None
        except Exception as error:  # a corrupt SavedModel
            raise InputError(
                f"--model {model_path!r}: cannot load the SavedModel ({str(error).splitlines()[0]})"
            ) from None
        self.signatures = loaded.signatures
        self.skeleton = description.skeleton
        self.person_box_px = description.person_box_px
        self.flip_test = description.flip_test
        if not flip_test:
            _note("note: a SavedModel's flip test is fixed at export; --no-flip is ignored")

    def _load_openvino(self, model_path, flip_test, runtime, precision):
        """An exported OpenVINO .xml (with its .json description), without Keras."""
        from keras_hourglass import deploy

        if runtime not in ("auto", "openvino"):
            raise InputError(f"--model {model_path!r} is an OpenVINO model: --runtime openvino")
        try:
            deploy.require_openvino()
            self.predictor = deploy.OpenVINOPredictor.from_file(model_path, precision)
        except deploy.RuntimeChoiceError as error:
            raise InputError(f"--model: {error}") from None
        except Exception as error:  # a corrupt .xml or .bin
            raise InputError(
                f"--model {model_path!r}: cannot load the OpenVINO model "
                f"({str(error).splitlines()[0] if str(error) else type(error).__name__})"
            ) from None
        self.skeleton = self.predictor.skeleton
        self.person_box_px = self.predictor.person_box_px
        self.flip_test = self.predictor.flip_test
        self.runtime, self.precision = "openvino", self.predictor.precision
        if not flip_test:
            _note("note: an exported model's flip test is fixed at export; --no-flip is ignored")

    def _load_keras(self, model_path, skeleton_name, flip_test, runtime, precision):
        """A .keras file on `runtime`: its OpenVINO conversion from the cache when an earlier run
        made it (no Keras), else the model loaded (and converted, and the conversion noted)."""
        from keras_hourglass import deploy

        if deploy.openvino_for(runtime) and self._converted_before(
            model_path, skeleton_name, flip_test, precision
        ):
            return  # no Keras needed
        _load_keras()  # Keras and the model class
        from keras_hourglass import runtimes
        from keras_hourglass.export import model_skeleton
        from keras_hourglass.model import load_model_file

        try:
            model = load_model_file(model_path)
        except ValueError as error:
            raise InputError(f"--model {error}") from None
        try:
            self.skeleton = model_skeleton(model, skeleton_name)
        except ValueError as error:
            raise InputError(f"--model {model_path!r}: {error}") from None
        if model.skeleton is None:  # a file saved before models carried their skeleton
            model.skeleton = self.skeleton
        self.model = model
        self.person_box_px = model.person_box_px
        try:
            self.runtime = runtimes.resolve_runtime(runtime)
            self.precision = runtimes.resolve_precision(precision, self.runtime)
            self.predictor = runtimes.predictor(model, flip_test, self.runtime, self.precision)
        except runtimes.RuntimeChoiceError as error:
            raise InputError(f"--runtime/--precision: {error}") from None
        self.flip_test = flip_test
        if self.runtime == "openvino":  # the next run finds it without Keras
            runtimes.note_file_conversion(
                model_path, model, flip_test, skeleton_name, self.skeleton
            )

    def _converted_before(self, model_path, skeleton_name, flip_test, precision):
        """Takes the OpenVINO conversion of the `.keras` file that an earlier run recorded in
        the conversion cache (`deploy.cached_file_predictor`): True when there was one."""
        from keras_hourglass import deploy

        try:
            made = deploy.cached_file_predictor(model_path, flip_test, skeleton_name, precision)
        except deploy.RuntimeChoiceError as error:
            raise InputError(f"--runtime/--precision: {error}") from None
        if made is None:
            return False
        self.predictor, self.skeleton = made, made.skeleton
        self.person_box_px, self.flip_test = made.person_box_px, bool(flip_test)
        self.runtime, self.precision = "openvino", made.precision
        return True

    def image(self, data, pixels, persons, batch=8, threshold=0.2):
        """One photo's people, predicted (`batch` per network call), scored, drawn and
        recorded: `data` the file's bytes, `pixels` (H, W, 3) uint8 RGB, `persons` as
        `pose_output`'s people ({"box": (cx, cy, scale) or None, "bbox", "box_score"}; [] for
        none). Returns `ImagePoses`."""
        from keras_hourglass.boxes import person_scores
        from keras_hourglass.pose_output import draw_people, person_record

        skeleton = self.skeleton
        if persons:
            keypoints, scores = self.people(data, pixels, [p["box"] for p in persons], batch)
        else:  # no box for this image: recorded with no people
            keypoints = np.zeros((0, skeleton.num_joints, 2))
            scores = np.zeros((0, skeleton.num_joints))
        overall = person_scores(scores, [p["box_score"] for p in persons])
        rows = list(zip(persons, keypoints, scores, overall))
        drawn = draw_people(
            pixels,
            [
                {"keypoints": kp, "scores": sc, "bbox": person["bbox"], "label": f"{score:.2f}"}
                for person, kp, sc, score in rows
            ],
            skeleton,
            threshold,
        )
        records = [person_record(person, kp, sc, score, skeleton) for person, kp, sc, score in rows]
        return ImagePoses(keypoints, scores, overall, records, drawn)

    def frames(self, frames, box=None):
        """(B, H, W, 3) uint8 RGB frames -> keypoints (B, K, 2), scores (B, K), with one box (or
        the whole frame) for all."""
        boxes = None if box is None else [box] * len(frames)
        if not self.saved_model:
            from keras_hourglass.deploy import estimate_keypoints

            return estimate_keypoints(
                self.predictor, list(frames), boxes, self.person_box_px, len(frames)
            )
        import tensorflow as tf

        images = tf.constant(frames, tf.uint8)
        if box is None:
            out = self.signatures["serving_default"](images=images)
        else:
            out = self.signatures["serving_boxes"](
                images=images, boxes=tf.constant(boxes, tf.float32)
            )
        return out["keypoints"].numpy(), out["scores"].numpy()

    def people(self, data, pixels, boxes, batch=8):
        """One image's people: `data` its JPEG/PNG bytes, `pixels` (H, W, 3) uint8, `boxes` a
        list of (centre x, centre y, scale) or [None] (the whole image) -> keypoints (P, K, 2),
        scores (P, K), `batch` people per network call."""
        if not self.saved_model:
            from keras_hourglass.deploy import estimate_keypoints

            whole = boxes == [None]
            return estimate_keypoints(
                self.predictor,
                [pixels] * len(boxes),
                None if whole else boxes,
                self.person_box_px,
                batch,
            )
        import tensorflow as tf

        keypoints, scores = [], []
        for start in range(0, len(boxes), batch):
            part = boxes[start : start + batch]
            images = tf.constant([data] * len(part))
            if part == [None]:
                out = self.signatures["predict_encoded"](images=images)
            else:
                out = self.signatures["predict_encoded_boxes"](
                    images=images, boxes=tf.constant(part, tf.float32)
                )
            keypoints.append(out["keypoints"].numpy())
            scores.append(out["scores"].numpy())
        return np.concatenate(keypoints), np.concatenate(scores)


def follow(keypoints, scores, shape, threshold, person_box_px, min_joints=None):
    """The next frame's person box from this frame's pose: the square around the joints whose
    confidence is at least `threshold`, enlarged 1.25x (the data's joint-box convention), as
    (centre x, centre y, scale in `person_box_px` boxes); None (the whole frame) when the pose is
    lost: fewer than `min_joints` confident joints (default: half of them) or a box centre
    outside the frame. The box is at least an eighth of the frame's longer side."""
    from keras_hourglass.datasets import box_from_joints

    confident = np.asarray(scores) >= threshold
    needed = min_joints or max(2, (len(confident) + 1) // 2)
    if confident.sum() < needed:
        return None
    center, scale = box_from_joints(np.asarray(keypoints, np.float64), confident)
    height, width = shape[:2]
    if not (0 <= center[0] <= width - 1 and 0 <= center[1] <= height - 1):
        return None
    side = max(scale * PERSON_BOX_PX, max(height, width) / 8)  # box_from_joints: 200-px units
    return [float(center[0]), float(center[1]), side / person_box_px]
