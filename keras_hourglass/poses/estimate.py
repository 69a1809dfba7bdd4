"""`estimate_poses`: the library's Python call from images to people, the pose layer's entry for
notebooks and scripts (the commands go through `poses.estimator.PoseEstimator`, the same
people). People are found by the person detector (`poses.detect`), re-framed from their pose
as the model was trained (`poses.framing`) and predicted on any runtime
(`deployment.runtimes.predictor`). It is also the model's method: `StackedHourglass.estimate_poses`
is lent from here (`network.model.LENT`), so the network's module imports nothing above it.
"""

import logging
import os

import numpy as np

from keras_hourglass.deployment import runtimes
from keras_hourglass.deployment.core import estimate_keypoints
from keras_hourglass.network.model import LENT
from keras_hourglass.skeletons import named_joints

log = logging.getLogger(__name__)

__all__ = ["estimate_poses"]


def _model_predictor(model, flip_test, runtime, precision):
    return runtimes.predictor(model, flip_test, runtime, precision)


def estimate_poses(
    model,
    images,
    boxes=None,
    flip_test=True,
    batch_size=16,
    predictor=None,
    runtime="auto",
    precision="auto",
    whole_image=False,
):
    """Named keypoints of the people in each image, in the image's own pixels.

    Each person is cropped as in training (NumPy/OpenCV, anti-aliased when shrinking), the crops
    go through `KerasCropPredictor` (flip test, the model's codec) and the keypoints are mapped back
    to the image. Runs on any Keras backend, without TensorFlow.

    Args:
        model: a stacked hourglass that knows its skeleton (`model.skeleton`).
        images: an image or a list of them: (H, W, 3) uint8 (or [0, 1] float) RGB arrays, or
            paths of photo files (read upright: `media.read_image`).
        boxes: the people, per image (one entry per image; for a single image, its entry):
            - None (default): found: the person detector's people (mediapipe's wheel; without
              it the whole image), each first framed by BlazePose's landmark model (from the
              same wheel: `landmarks.LandmarkFramer`) and re-framed from its pose as the model
              was trained (`framing.search_people`); people whose pose is not confident and
              whose body the landmark model does not see are left out;
            - a list of boxes: `boxes.Box` (x, y, w, h in pixels, as `Box.around(cx, cy,
              side)` for a crop given by its centre), or [x, y, w, h] (COCO's), each person
              re-framed from its pose and reported;
            - (centre x, centre y, scale): one person whose crop is the square of side
              `model.person_box_px * scale` (MPII's convention), predicted once, as given.
        whole_image: with boxes None, the whole image is one person, predicted once (the
            behaviour before people were found).
        flip_test: average with the mirrored crop.
        batch_size: crops per network call.
        predictor: a crop predictor to use (default: `runtimes.predictor(model, flip_test,
            runtime, precision)`).
        runtime: where the network runs: "keras" (this backend, float32: `crop_predictor`),
            "openvino" (converted once per model and weights; the fastest on CPUs), or "auto"
            (default): the environment's `KERAS_HOURGLASS_RUNTIME` if set, else openvino when
            it is installed and the backend is TensorFlow, else keras (docs/runtimes.md).
        precision: OpenVINO's: "bf16", "fp32", or "auto" (`KERAS_HOURGLASS_PRECISION` if set,
            else bf16 where the CPU computes it natively).

    Returns:
        a list, per image: for people found or a list of boxes, a list of people, each
        {joint name: {"x", "y", "confidence"}} (`skeletons.named_joints`), the most confident
        first; for a (centre x, centre y, scale) box or `whole_image`, that one person's dict.
    """
    skeleton = getattr(model, "skeleton", None)
    if skeleton is None:
        raise ValueError(
            "This model was saved without its skeleton: rebuild it with `skeleton=` (or use the "
            "commands' --skeleton) to name its keypoints."
        )
    if predictor is None:
        predictor = _model_predictor(model, flip_test, runtime, precision)
    single = isinstance(images, (str, os.PathLike)) or (
        isinstance(images, np.ndarray) and images.ndim == 3
    )
    images = (
        [_image_array(images, 0)]
        if single
        else [_image_array(image, i) for i, image in enumerate(images)]
    )
    if boxes is not None:
        boxes = [boxes] if single else list(boxes)
        if len(boxes) != len(images):
            raise ValueError(f"boxes: {len(boxes)} boxes for {len(images)} images")
    if boxes is None and whole_image or boxes is not None and all(map(_is_crop, boxes)):
        # MPII's (centre, scale) in the model's own person boxes: the square the crop shows.
        unit = model.person_box_px
        squares = None if boxes is None else [(cx, cy, s * unit) for cx, cy, s in boxes]
        keypoints, scores = estimate_keypoints(predictor, images, squares, batch_size)
        return [named_joints(skeleton.joint_names, kp, sc) for kp, sc in zip(keypoints, scores)]
    poses = []
    for i, image in enumerate(images):
        given = None if boxes is None else _person_boxes(boxes[i], i)
        keypoints, scores = _people_of(predictor, image, given, skeleton, i)
        poses.append(
            [named_joints(skeleton.joint_names, kp, sc) for kp, sc in zip(keypoints, scores)]
        )
    return poses


def _image_array(image, index):
    """An image argument as an (H, W, 3) array: a path is read upright (`media.read_image`)."""
    if isinstance(image, (str, os.PathLike)):
        from keras_hourglass.poses.media import read_image

        return read_image(os.fspath(image))[1]
    return np.asarray(image)


def _is_crop(box):
    """Whether one image's `boxes` entry is MPII's (centre x, centre y, scale) triple."""
    from keras_hourglass.poses.boxes import Box  # the data layer's: not imported with the model

    return (
        box is not None and not isinstance(box, (list, Box)) and np.ndim(box) == 1 and len(box) == 3
    )


def _person_boxes(entry, index):
    """One image's list of boxes (`Box` or [x, y, w, h]) as `Box`es; a `BoxError` naming the
    image's index otherwise."""
    from keras_hourglass.poses.boxes import Box, BoxError, to_box

    if entry is None:
        return None
    if isinstance(entry, Box):
        entry = [entry]
    if not isinstance(entry, (list, tuple)):
        raise BoxError(
            f"boxes[{index}]: expected a list of Box or [x, y, w, h], or (cx, cy, scale); got "
            f"{type(entry).__name__}"
        )
    return [to_box(box, f"boxes[{index}][{j}]") for j, box in enumerate(entry)]


_DETECTOR = {}


def _people_of(predictor, image, boxes, skeleton, index):
    """One image's people: given `boxes` refined, or (None) found; (keypoints, scores)."""
    from keras_hourglass.poses import framing

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or min(image.shape[:2]) < 1:
        raise ValueError(f"images[{index}]: expected (H, W, 3) RGB, got {image.shape}")
    if image.dtype == np.uint8:
        pixels, floats = image, image.astype(np.float32) / 255.0
    else:
        floats = np.asarray(image, np.float32)
        pixels = np.clip(np.round(floats * 255.0), 0, 255).astype(np.uint8)
    if boxes is not None:
        height, width = image.shape[:2]
        for box in boxes:
            box.check_inside(width, height, f"images[{index}]")
        framings = [framing.Framing.of_box(box) for box in boxes]
        refined = framing.refine(predictor, floats, framings, skeleton)
        return refined.keypoints, refined.scores
    if "detector" not in _DETECTOR:
        from keras_hourglass.poses.detect import DetectorError, PersonDetector
        from keras_hourglass.poses.landmarks import LandmarkFramer

        try:
            _DETECTOR["detector"] = PersonDetector()
            _DETECTOR["framer"] = LandmarkFramer()
        except DetectorError as error:
            log.warning(f"{error}; without it the whole image is the first box")
            _DETECTOR["detector"] = _DETECTOR["framer"] = None
    found = framing.search_people(
        predictor, floats, pixels, skeleton, _DETECTOR["detector"], framer=_DETECTOR["framer"]
    )
    return found.people.keypoints, found.people.scores


LENT["estimate_poses"] = estimate_poses  # StackedHourglass.estimate_poses
