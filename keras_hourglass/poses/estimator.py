"""Poses from a model file of any format, photo by photo or frame by frame: the pose loop that
`hourglass-predict` (photos, folders, video, camera) runs and the demo page will, in the
library (docs/layers.md: an application of the runtimes, export and model layers below it).

- `PoseEstimator(model_path, ...)`: loads a `.keras` file, an OpenVINO `.xml` or a SavedModel
  folder; `.image(data, pixels, persons)` gives one photo's people as `ImagePoses` (keypoints,
  scores, each person's score, the JSON records and the drawn image); `.people` gives the
  arrays of given crops.
- `predict_photos(estimator, inputs, out, boxes_of, ...)`: photos and folders to files (the
  drawn image and `<name>_pose.json` each, `preds.mat`, COCO results), one photo at a time.
- `predict_video(estimator, source, out, ...)`: a video file or a camera to `<name>_pose.mp4`
  and `<name>_pose.jsonl`, everyone followed with a track id (`tracking.PeopleTracker`),
  optionally shown live.

People are `boxes.Box`es (x, y, w, h in the image's pixels, with score): the model's person-box
unit stays inside (`Box.crop`). `hourglass-predict` only parses flags and calls these.
"""

import dataclasses
import json
import logging
import os

import numpy as np

from keras_hourglass.poses.media import (
    PAUSE_KEYS,
    QUIT_KEYS,
    InputError,
    VideoWriter,
    open_video,
    read_image,
)

__all__ = [
    "ImagePoses",
    "InputError",
    "PhotoRun",
    "PoseEstimator",
    "VideoRun",
    "predict_photos",
    "predict_video",
]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class FoundPeople:
    """`PoseEstimator.find_people`'s answer: keypoints (P, K, 2) in the photo's pixels, scores
    (P, K), box scores (P,), a record per person (bbox, the final crop, passes), how they were
    found ("given", "whole image", "detector", "closer", "turned", "whole") and how many were
    left out as not confident."""

    keypoints: np.ndarray
    scores: np.ndarray
    box_scores: list
    records: list
    how: str
    left_out: int


@dataclasses.dataclass
class ImagePoses:
    """One photo's people: keypoints (P, K, 2) in the photo's pixels, scores (P, K), each
    person's score (P,) (mean confident joint times box score), the people as
    `<name>_pose.json` records them, the photo with the skeletons drawn (PIL), how the people
    were found (`FoundPeople.how`) and how many were left out as not confident."""

    keypoints: np.ndarray
    scores: np.ndarray
    overall: np.ndarray
    people: list
    drawn: object
    found_by: str = "given"
    left_out: int = 0


class PoseEstimator:
    """A model file of any format -> poses: images (+ optional boxes) -> keypoints (N, K, 2) in
    image pixels and scores (N, K). Loads with `loader.load_model` (a `.keras` file on `runtime`,
    an OpenVINO `.xml`, a SavedModel folder, a shipped model's name); a `.keras` file or an
    `.xml` runs the library's pose loop (`deploy.estimate_keypoints`: NumPy crops), a SavedModel
    its own serving signatures (decoding in the graph), which give the same keypoints. Errors
    are one `InputError` line naming the file. `image()` gives one photo's people drawn and
    recorded as `hourglass-predict` writes them (and the demo page shows them)."""

    _SIGNATURES = ("predict_encoded", "predict_encoded_boxes", "serving_default", "serving_boxes")

    def __init__(
        self, model_path, skeleton_name=None, flip_test=True, runtime="auto", precision="auto",
        *, detector="auto", passes=None, min_person_score=None, detect_scales=None,
        detector_name="blazepose", framer="auto",
    ):  # fmt: skip
        from keras_hourglass.deployment.loader import ModelLoadError, load_model
        from keras_hourglass.poses import framing
        from keras_hourglass.poses.detect import DETECT_SCALES

        self._detector = detector  # "auto": made at first use (`detector`); None: none
        self._framer = framer  # "auto": made at first use (`framer`); None: the boxes as found
        self.detector_name = detector_name
        self.detect_scales = tuple(detect_scales or DETECT_SCALES)
        self.passes = framing.PASSES if passes is None else int(passes)
        self.min_person_score = (
            framing.MIN_PERSON_SCORE if min_person_score is None else float(min_person_score)
        )

        try:
            loaded = load_model(model_path, runtime, precision, flip_test, skeleton=skeleton_name)
            self.predictor = loaded.predictor  # a file without its skeleton: the error here
        except ModelLoadError as error:
            raise InputError(str(error)) from None
        self.loaded = loaded
        self.saved_model = loaded.format == "savedmodel"
        self.skeleton = loaded.skeleton
        self.flip_test, self.runtime, self.precision = (
            loaded.flip_test,
            loaded.runtime,
            loaded.precision,
        )
        self.model = loaded.model
        if self.saved_model:
            missing = [n for n in self._SIGNATURES if n not in loaded.serving.signatures]
            if missing:
                raise InputError(
                    f"--model: The SavedModel {loaded.path!r} lacks the signature(s) {missing}; "
                    "export the model with train/export.py."
                )
            self.signatures = loaded.serving.signatures
        if loaded.exported and not flip_test:
            log.warning(
                f"note: {'a SavedModel' if self.saved_model else 'an exported model'}'s flip test "
                "is fixed at export; --no-flip is ignored"
            )

    def image(self, data, pixels, boxes=None, batch=8, threshold=0.2, where="the image", *,
              whole_image=False, draw=True):  # fmt: skip
        """One photo's people, predicted, scored, drawn and recorded: `data` the file's bytes
        (unused: kept for callers), `pixels` (H, W, 3) uint8 RGB, upright (`media.read_image`
        applies the EXIF orientation).

        boxes: a list of `boxes.Box` (x, y, w, h in the photo's pixels, with score; [] for no
            one): those people, each reported; or None: the people found in the photo
            (`find_people`: the person detector, else the whole photo), those whose pose is not
            confident left out (a photo of nobody gives no one).
        whole_image: with boxes None, the whole photo is the one person's first box instead of
            the detector's (and is reported whatever its confidence).
        draw: False leaves `drawn` None (the demo page draws in the browser).
        Each person is re-framed from its pose as the model was trained and predicted again
        (`framing.refine`, `self.passes` network passes at most; 1: the box as given). A box
        outside the photo is a `BoxError` naming `where`. Returns `ImagePoses`."""
        from keras_hourglass.evaluation.metrics import person_scores
        from keras_hourglass.poses.output import draw_people, person_record

        people = self.find_people(pixels, boxes, where, whole_image)
        overall = person_scores(people.scores, people.box_scores)
        rows = list(zip(people.records, people.keypoints, people.scores, overall))
        drawn = None
        if draw:
            shown = [
                {"keypoints": kp, "scores": sc, "bbox": person["bbox"], "label": f"{score:.2f}"}
                for person, kp, sc, score in rows
            ]
            drawn = draw_people(pixels, shown, self.skeleton, threshold)
        records = [
            person_record(person, kp, sc, score, self.skeleton) for person, kp, sc, score in rows
        ]
        return ImagePoses(
            people.keypoints, people.scores, overall, records, drawn, people.how, people.left_out
        )

    @property
    def detector(self):
        """The person detector (`detect.make_detector`: `detector_name` over the tile grids
        `detect_scales`), made at first use; None when it cannot run here (mediapipe's wheel
        not installed: said once, and the whole photo is used)."""
        if self._detector == "auto":
            from keras_hourglass.poses.detect import make_detector

            self._detector = _made(
                lambda: make_detector(self.detector_name, self.detect_scales),
                "without it the whole photo is the person",
            )
        return self._detector

    @detector.setter
    def detector(self, detector):
        self._detector = detector

    @property
    def framer(self):
        """The first framing of the people found (`landmarks.LandmarkFramer`: BlazePose's
        landmark model), made at first use; None when it cannot run here (said once: the
        detector's boxes are the first crops)."""
        if self._framer == "auto":
            from keras_hourglass.poses.landmarks import LandmarkFramer

            self._framer = _made(
                LandmarkFramer, "without it the detector's boxes are the first crops"
            )
        return self._framer

    @framer.setter
    def framer(self, framer):
        self._framer = framer

    def find_people(self, pixels, boxes=None, where="the image", whole_image=False):
        """One photo's people as `FoundPeople`: given `boxes` (a list of `Box`), or (None) found
        by the detector (or the whole photo with `whole_image` or without a detector), each
        refined into the model's framing (`framing.refine`)."""
        from keras_hourglass.poses import framing

        height, width = pixels.shape[:2]
        floats = pixels.astype(np.float32) / 255.0
        predictor, passes = self.predictor, self.passes
        if boxes is not None or whole_image:
            given = boxes is not None
            if given:
                for box in boxes:
                    box.check_inside(width, height, where)
                framings = [framing.Framing.of_box(b) for b in boxes]
            else:
                framings = [framing.Framing.whole(height, width)]
            refined = framing.refine(predictor, floats, framings, self.skeleton, passes)
            box_scores = [float(b.score) for b in boxes] if given else [1.0]
            bboxes = [None if b.given_as_crop else b.xywh for b in boxes] if given else [None]
            how, left_out = ("given" if given else "whole image"), 0
        else:
            detector = self.detector
            found = framing.search_people(
                predictor, floats, pixels, self.skeleton, detector,
                passes=passes, min_score=self.min_person_score,
                framer=self.framer if detector is not None else None,
            )  # fmt: skip
            refined, box_scores, how, left_out = (
                found.people,
                found.box_scores,
                found.how,
                found.dropped,
            )
            bboxes = [None if b is None else b.xywh for b in found.boxes]
        records = []
        for bbox, frame, used in zip(bboxes, refined.framings, refined.passes):
            records.append(
                {
                    "bbox": bbox if bbox is not None else frame.bbox(),
                    "box": frame.crop_box(),
                    "crop": frame.record(),
                    "passes": used,
                }
            )
        for record, score in zip(records, box_scores):
            record["box_score"] = score
        return FoundPeople(refined.keypoints, refined.scores, box_scores, records, how, left_out)

    def people(self, data, pixels, boxes, batch=8):
        """One image's people, each predicted once in its box as given: `data` its JPEG/PNG
        bytes, `pixels` (H, W, 3) uint8, `boxes` a list of `Box` or [None] (the whole image) ->
        keypoints (P, K, 2), scores (P, K), `batch` people per network call. A SavedModel
        crops inside its graph (`predict_encoded_boxes`), from the boxes in its own unit."""
        squares = None if boxes == [None] else [box.square() for box in boxes]
        if not self.saved_model:
            from keras_hourglass.deployment.core import estimate_keypoints

            return estimate_keypoints(self.predictor, [pixels] * len(boxes), squares, batch)
        import tensorflow as tf

        unit = self.predictor.description.person_box_px  # the export's crop convention
        boxes = boxes if squares is None else [(cx, cy, s / unit) for cx, cy, s in squares]

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


def _made(make, without):
    """`make()`, or None when it cannot run here (a `detect.DetectorError`: said once, with
    what happens `without` it)."""
    from keras_hourglass.poses.detect import DetectorError

    try:
        return make()
    except DetectorError as error:
        log.warning(f"note: {error}; {without}")
        return None


# --- the loops: photos and folders, videos and cameras, to files ------------------------------


@dataclasses.dataclass
class PhotoRun:
    """What `predict_photos` did: the images written, the people predicted, and the images left
    out as unreadable (with `skip_bad`), one line each."""

    images: int
    people: int
    skipped: list


def predict_photos(
    estimator,
    inputs,
    out,
    boxes_of=None,
    *,
    batch=8,
    threshold=0.2,
    overlay_format="auto",
    max_image_pixels=None,
    skip_bad=False,
    coco_results=None,
    model_name=None,
    skipped=None,
    whole_image=False,
):
    """The photos, one at a time (bounded memory: each read and decoded once, its people
    predicted in batches of `batch`, drawn and written, then let go): `<stem>_pose.json` and the
    overlay per image in `out`, then `preds.mat` (and `coco_results`) for every person.

    estimator: a `PoseEstimator`. inputs: `pose_output.ImageInput`s (`expand_images`).
    boxes_of: (path, pixels) -> a list of `Box` (given boxes, another detector's) or None (the
        people are found: `PoseEstimator.image`); None: found in every photo. A `BoxError` it
        raises stops the run.
    whole_image: photos without given boxes are one person each, the whole photo.
    overlay_format: "auto" (the input's: JPEG for JPEG, PNG for PNG), "png" or "jpg".
    skip_bad: an image that fails to decode is added to `skipped` (a list, or a new one) and
        left out instead of stopping the run with its `InputError`.
    What ran is written completely also when a later image stops the run. Progress lines go to
    the `keras_hourglass.poses.estimator` logger. Returns `PhotoRun`."""
    from keras_hourglass import files
    from keras_hourglass.poses.output import coco_result, write_overlay

    skeleton = estimator.skeleton
    skipped = [] if skipped is None else skipped
    os.makedirs(out, exist_ok=True)
    every, coco = [], []
    try:
        for item in inputs:
            try:
                data, pixels = read_image(item.path, max_image_pixels)
            except InputError as error:
                if not skip_bad:
                    raise
                skipped.append(str(error))
                continue
            boxes = boxes_of(item.path, pixels) if boxes_of else None
            poses = estimator.image(
                data, pixels, boxes, batch, threshold, where=item.path, whole_image=whole_image
            )
            fmt = item.format if overlay_format == "auto" else overlay_format
            overlay = write_overlay(poses.drawn, out, item.stem, fmt)
            target = os.path.join(out, f"{item.stem}_pose.json")
            files.write_json(
                target, _photo_result(estimator, item, pixels, poses, threshold, model_name)
            )
            if coco_results:
                coco.extend(
                    coco_result(item.path, kp, sc, score)
                    for kp, sc, score in zip(poses.keypoints, poses.scores, poses.overall)
                )
            confident = int((poses.scores >= threshold).sum())
            count = len(poses.people)
            if count:
                found = f"{count} {'person' if count == 1 else 'people'}"
                found += f" ({poses.found_by})" if boxes is None else ""
                found += f", {confident}/{poses.scores.size} joints above {threshold}"
            else:
                found = "no person found"
            log.info(f"{item.path}: {found} -> {overlay}, {target}")
            every.extend(poses.keypoints)
    finally:  # what ran is written whole, also when a later file stops the run
        _write_people_files(every, coco, out, coco_results, skeleton)
    return PhotoRun(len(inputs) - len(skipped), len(every), skipped)


def _photo_result(estimator, item, pixels, poses, threshold, model_name):
    """`<stem>_pose.json`: the image, the model and its settings, and the people."""
    height, width = pixels.shape[:2]
    return {
        "image": os.path.abspath(item.path),
        "width": width,
        "height": height,
        "model": model_name or os.path.abspath(estimator.loaded.path),
        "skeleton": estimator.skeleton.name,
        "flip_test": estimator.flip_test,
        "runtime": estimator.runtime,
        "precision": estimator.precision,
        "threshold": threshold,
        "found_by": poses.found_by,
        "people": poses.people,
    }


def _write_people_files(every, coco, out, coco_results, skeleton):
    """`preds.mat` of every person predicted (1-based, MPII's tools' layout), and the COCO
    results file when asked."""
    from keras_hourglass import files
    from keras_hourglass.evaluation.protocols import write_prediction_file

    mat = os.path.join(out, "preds.mat")
    if every:
        write_prediction_file(np.stack(every), mat, base=1)
        log.info(
            f"{mat}: `preds` {len(every)} x {skeleton.num_joints} x 2 (every person, images "
            "in order), 1-based (MATLAB's, as MPII's tools)"
        )
    if coco_results:
        files.write_json(coco_results, coco)
        log.info(f"{coco_results}: {len(coco)} people in COCO's keypoint results format")


@dataclasses.dataclass
class VideoRun:
    """What `predict_video` did: frames written, seconds, how it ended ("" for the whole
    video), and the two files."""

    frames: int
    seconds: float
    ended: str
    video_path: str
    lines_path: str

    def summary(self, source):
        rate = self.frames / max(self.seconds, 1e-9)
        return (
            f"{source}: {self.frames} frames in {self.seconds:.1f} s ({rate:.1f} frames/s)"
            f"{self.ended} -> {self.video_path}, {self.lines_path}"
        )


@dataclasses.dataclass
class _VideoState:
    writer: object = None
    done: int = 0
    quit_asked: bool = False

    def write(self, drawn, path, fps):
        """A drawn frame to the overlay video at `path`, opened at the first frame's size."""
        if self.writer is None:
            self.writer = VideoWriter(path, fps, drawn.shape[1], drawn.shape[0])
        self.writer.write(drawn)


def smoothed_pose(person, weight):
    """A track's exponential moving average of its poses (`weight`: the past's; 0: off)."""
    if not weight:
        return person.keypoints
    past = person.smoothed
    person.smoothed = (
        person.keypoints if past is None else weight * past + (1 - weight) * person.keypoints
    )
    return person.smoothed


def predict_video(
    estimator,
    source,
    out,
    *,
    batch=8,
    threshold=0.2,
    box=None,
    track=True,
    smooth=0.0,
    max_frames=0,
    max_image_pixels=None,
    window=None,
    progress=None,
    where=None,
    whole_image=False,
    detect_every=None,
    max_people=0,
    tracker=None,
):
    """Every frame of a video file or camera through the model, everyone in it followed with a
    track id (the tracker `tracker` of `tracking.TRACKERS`; None: "pose", or "detect" when
    `track` is False), to `<name>_pose.mp4` (drawn, a colour per track) and
    `<name>_pose.jsonl` (a line per frame: {"frame", "time_s", "people": [person records with
    "track_id"]}) in `out`, and to `window` when given (q or Esc quits, space or p pauses).

    source: a video file's path or a camera index ("0"), or (a capture with read() and
        release(), name, fps, frame count) (tests pass a fake camera).
    box: a `Box` for every frame (one person, track 0); else the people are found by the
        estimator's detector every `detect_every` frames (default `tracking.DETECT_EVERY`) and
        followed from their poses between (`track`; False: found in every frame), or with
        `whole_image` (or no detector installed) the whole frame is the first person's crop.
    smooth: each track's exponential moving average weight of the past for joint positions.
    max_people: at most this many people followed (0: any). max_frames: stop after this many
        frames (0: all). max_image_pixels: the first frame's limit.
    progress: called with the number of frames done after each frame. batch: unused (a frame's
        people are one network call).
    where: how errors name the video (default: `--video SOURCE`).
    A video that ends early (a truncated file, a camera unplugged, Ctrl-C, q) keeps what was
    written. Returns `VideoRun`; a video with no readable frame is an `InputError`."""
    import time

    import cv2

    where = where or (f"--video {source}" if isinstance(source, str) else "the video")
    capture, name, fps, count = open_video(source) if isinstance(source, str) else source
    os.makedirs(out, exist_ok=True)
    video_path, lines_path, tmp_video = (
        os.path.join(out, f"{prefix}{name}_pose{suffix}")
        for prefix, suffix in (("", ".mp4"), ("", ".jsonl"), (".", ".tmp.mp4"))
    )
    tracker = _video_tracker(
        estimator, box, whole_image, tracker or ("pose" if track else "detect"), detect_every,
        max_people,
    )  # fmt: skip

    state = _VideoState()
    start = time.time()  # the detector is made: its compile is not the video's time
    interrupted = False

    def one_frame(frame, lines):
        people = tracker(frame)
        shown = [smoothed_pose(p, smooth) for p in people]
        drawn = _draw_frame(estimator, frame, people, shown, threshold)
        state.write(drawn, tmp_video, fps)
        record = _frame_record(state.done, fps, people, shown, estimator)
        lines.write(json.dumps(record) + "\n")
        state.done += 1
        if window is not None and not state.quit_asked:
            rate = state.done / max(time.time() - start, 1e-9)
            state.quit_asked = _show(window, drawn, rate)
        lines.flush()
        if progress is not None:
            progress(state.done)

    with open(lines_path, "w") as lines:
        try:
            while not state.quit_asked and (not max_frames or state.done < max_frames):
                ok, frame = capture.read()
                if not ok:
                    break
                if state.done == 0:
                    _check_first_frame(frame, box, where, max_image_pixels)
                one_frame(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), lines)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            capture.release()
            if window is not None:
                window.close()
            if state.writer is not None:
                state.writer.close()
                os.replace(tmp_video, video_path)
    if state.done == 0:
        os.remove(lines_path)
        raise InputError(f"{where}: no frame could be read (empty or broken video)")
    ended = _how_it_ended(state.quit_asked, interrupted, state.done, count, max_frames)
    return VideoRun(state.done, time.time() - start, ended, video_path, lines_path)


def _video_tracker(estimator, box, whole_image, name, detect_every, max_people):
    """`predict_video`'s tracker (`tracking.make_tracker(name, ...)`) from its arguments."""
    from keras_hourglass.poses import tracking

    return tracking.make_tracker(
        name,
        estimator.predictor,
        estimator.skeleton,
        None if (whole_image or box is not None) else estimator.detector,
        box=box,
        detect_every=detect_every or tracking.DETECT_EVERY,
        max_people=max_people,
        min_score=0.0 if whole_image else estimator.min_person_score,
        passes=estimator.passes,
    )


def _check_first_frame(frame, box, where, max_pixels):
    """The first frame's checks: at most `max_pixels` (as photos), and the fixed box inside."""
    from keras_hourglass.datasets import DatasetError, check_image_size
    from keras_hourglass.poses.boxes import BoxError

    try:
        check_image_size(frame.shape[1], frame.shape[0], where, max_pixels)
        if box is not None:
            box.check_inside(frame.shape[1], frame.shape[0], where)
    except (DatasetError, BoxError) as error:
        raise InputError(str(error)) from None


def _draw_frame(estimator, frame, people, shown, threshold):
    """A frame with its people drawn, each box in its track's colour and labelled with its id,
    as (H, W, 3) uint8 RGB."""
    from keras_hourglass.poses.output import draw_people, track_colour

    drawn = [
        {
            "keypoints": kp,
            "scores": p.scores,
            "bbox": p.framing.bbox(),
            "label": f"id {p.track_id}",
            "colour": track_colour(p.track_id),
        }
        for p, kp in zip(people, shown)
    ]
    return np.asarray(draw_people(frame, drawn, estimator.skeleton, threshold))


def _frame_record(index, fps, people, shown, estimator):
    """One line of <name>_pose.jsonl: the frame, its time and its people, each as the photos'
    person record (`pose_output.person_record`) with its "track_id"."""
    from keras_hourglass.evaluation.metrics import person_scores
    from keras_hourglass.poses.output import person_record

    records = []
    for p, kp in zip(people, shown):
        person = {
            "bbox": p.framing.bbox(),
            "box": p.framing.crop_box(),
            "crop": p.framing.record(),
            "box_score": p.box_score,
        }
        score = float(person_scores(p.scores[None], p.box_score)[0])
        record = person_record(person, kp, p.scores, score, estimator.skeleton)
        records.append({"track_id": int(p.track_id), **record})
    return {"frame": index, "time_s": round(index / fps, 4), "people": records}


def _show(window, drawn_rgb, rate):
    """Shows a drawn frame with the frames per second in `window`; True when the user quits
    (q or Esc; space or p pauses until the next key)."""
    import cv2

    drawn = cv2.cvtColor(drawn_rgb, cv2.COLOR_RGB2BGR)  # the window's order
    cv2.putText(
        drawn, f"{rate:.1f} fps", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2,
        cv2.LINE_AA,
    )  # fmt: skip
    key = window.show(drawn)
    if key in PAUSE_KEYS:
        key = window.wait()  # any key resumes; q or Esc quits
    return key in QUIT_KEYS


def _how_it_ended(quit_asked, interrupted, done, count, max_frames):
    """What the summary line adds about the end of a video run."""
    if quit_asked:
        return " (quit: kept what was read)"
    if count and done < min(count, max_frames or count) and not interrupted:
        return f" (the video ended after {done} of {count} frames: kept what was read)"
    if interrupted:
        return " (interrupted: kept what was read)"
    return ""
