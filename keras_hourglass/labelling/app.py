"""The labelling page's server: a Starlette app (the demo page's stack) over one `Project`.

    GET  /                       the page (label_page/: HTML, JavaScript, CSS; nothing from the
                                 internet)
    GET  /api/project            the skeleton (joints, limbs, colours), individuals, frames (with
                                 how many joints are placed, whether a pre-fill waits), rounds,
                                 the job running; {"error"} when a project file is broken
    GET  /frames/<path>          a frame's JPEG
    GET  /api/labels/<frame>     {"individuals": labels, "prediction": pre-filled joints or null}
    PUT  /api/labels/<frame>     {"individuals": [[[x, y, v] | "hidden" | null, ...], ...]}:
                                 saved at once -> {"individuals", "saved_ms"}
    POST /api/videos             {"path"}: a video file on this machine added (checked: it must
                                 decode)
    POST /api/pick               {"count", "method": "kmeans" | "uniform"}: new frames
    POST /api/suggest            {"count"}: frames where the last model is least sure
    POST /api/train              {"epochs"?, "minutes"?}: a round of training, then pre-fill
    GET  /api/job                the running or last job: {"kind", "state", "progress", "log",
                                 "error", "command"}
    POST /api/export             {"models": [formats]}: labels (custom JSON, COCO, CSV per video)
                                 and the last round's model in each format -> {"written"}

Errors are 4xx JSON {"error": "..."} naming the file, record or argument; a project file edited
by hand into nonsense is reported, and not overwritten, until it is fixed.
"""

import json
import logging
import os
import re
import subprocess
import sys
import threading
import time

from keras_hourglass.labelling import frames as F
from keras_hourglass.labelling.project import Project, ProjectError

log = logging.getLogger(__name__)

__all__ = ["Jobs", "LabelApi", "make_labelling_app", "training_flags"]

PAGE = "label_page"
COLOURS = {"left": "#3c8cff", "right": "#ff5a3c", "centre": "#ffd23c"}


def training_flags(project, labelled, epochs=None, minutes=None):
    """`hourglass-train`'s flags for a round on `labelled` labels: the CPU recipe sized to the
    label count (docs/labeling.md): one stack of 32 features on 64 px crops below 200 labels,
    two of 64 on 128 px above; a fifth of the labels (at least 2) held out for the round's PCK;
    epochs of 20 steps, more with more labels."""
    small = labelled < 200
    epochs = epochs or min(60, max(8, labelled // 2))
    flags = [
        "--dataset", "custom", "--annotations", project.path("export", "train.json"),
        "--skeleton", project.path(project.skeleton_file), "--data-dir", project.folder,
        "--runs-dir", project.path("runs"), "--name", f"round-{len(project.rounds) + 1}",
        "--stacks", "1" if small else "2", "--filters", "32" if small else "64",
        "--depth", "3" if small else "4", "--input-size", "64" if small else "128",
        "--batch-size", "8", "--epochs", str(epochs), "--steps-per-epoch", "20",
        "--val-count", str(max(2, labelled // 5)), "--learning-rate", "2.5e-3",
        "--aug-rotation", "15", "--verbose", "0",
    ]  # fmt: skip
    if minutes:
        flags += ["--max-minutes", str(minutes)]
    return flags


class Jobs:
    """One background job at a time (training, pre-filling, suggesting): its state for the page."""

    def __init__(self, project):
        self.project = project
        self.state = {"kind": None, "state": "idle", "progress": 0.0, "log": [], "error": None}
        self.lock = threading.Lock()

    def start(self, kind, work):
        with self.lock:
            if self.state["state"] == "running":
                raise ProjectError(f"a {self.state['kind']} job is running: wait for it")
            self.state = {"kind": kind, "state": "running", "progress": 0.0, "log": [],
                          "error": None, "command": None}  # fmt: skip

        def run():
            try:
                work(self.state)
                self.state["state"], self.state["progress"] = "done", 1.0
            except Exception as error:  # shown on the page, one line
                log.warning(f"{kind}: {error}")
                self.state["state"], self.state["error"] = "failed", str(error).splitlines()[0]

        threading.Thread(target=run, daemon=True).start()


def train_round(project, state, epochs=None, minutes=None):
    """A round: the complete labels to export/train.json, `hourglass-train` in its own process
    (progress from its log), the held-out PCK recorded, then the unlabelled frames pre-filled."""
    from keras_hourglass import files

    rows = project.label_rows(complete_only=True)
    if len(rows) < 4:
        raise ProjectError(f"{len(rows)} complete label(s): label at least 4 frames to train")
    os.makedirs(project.path("export"), exist_ok=True)
    files.write_json(project.path("export", "train.json"), rows)
    flags = training_flags(project, len(rows), epochs, minutes)
    command = [sys.executable, "-c", "import hourglass_commands as h; h.train()", *flags]
    state["command"] = "hourglass-train " + " ".join(flags)
    epochs = int(flags[flags.index("--epochs") + 1])
    run_dir = project.path("runs", flags[flags.index("--name") + 1])
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=project.folder
    )
    for line in process.stdout:
        state["log"] = (state["log"] + [line.rstrip()])[-20:]
        try:
            with open(os.path.join(run_dir, "log.csv")) as f:
                done = max(0, sum(1 for _ in f) - 1)
            state["progress"] = min(0.9, 0.9 * done / epochs)
        except OSError:
            pass
    if process.wait() != 0:
        raise ProjectError("training failed: " + (state["log"][-1] if state["log"] else "?"))
    found = re.search(r"Best val_pck: ([0-9.]+)", "\n".join(state["log"]))
    model = os.path.join(run_dir, "best.keras")
    record = {"round": len(project.rounds) + 1, "model": os.path.relpath(model, project.folder),
              "labels": len(rows), "pck": float(found.group(1)) if found else None,
              "finished": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
    project.add_round(record)
    state["progress"] = 0.9
    prefill(project, state)


def _estimator(project):
    from keras_hourglass.poses.estimator import PoseEstimator

    if not project.rounds:
        raise ProjectError("no trained model yet: train a round first")
    return PoseEstimator(project.path(project.rounds[-1]["model"]), passes=1)


def _joints(estimator, pixels):
    """The model's joints of a frame, the whole frame one individual: K [x, y, confidence]."""
    poses = estimator.image(b"", pixels, whole_image=True, draw=False)
    joints = poses.people[0]["joints"] if poses.people else {}
    return [
        [round(j["x"], 2), round(j["y"], 2), round(j["confidence"], 4)] for j in joints.values()
    ]


def prefill(project, state):
    """The last round's model on every unlabelled frame: its joints stored as predictions."""
    from keras_hourglass.poses.media import read_image

    estimator, frames = _estimator(project), project.unlabelled()
    predicted = {}
    for n, frame in enumerate(frames):
        pixels = read_image(project.path(frame.image))[1]
        first = _joints(estimator, pixels)
        predicted[frame.id] = [first] + [None] * (project.individuals - 1)
        state["progress"] = 0.9 + 0.1 * (n + 1) / max(len(frames), 1)
    project.set_predictions(predicted, project.rounds[-1]["round"])


def suggest(project, state, count):
    """`count` new frames where the last model is least sure: candidate frames spread evenly
    over the videos, each scored by its joints' mean confidence less how far its joints jumped
    from the candidate before it (in frame sizes); the lowest added as "suggested"."""
    import cv2
    import numpy as np

    estimator = _estimator(project)
    taken = {(f.video, f.index) for f in project.frames if f.video}
    candidates = F.pick_frames(project.videos, 4 * count, "uniform", exclude=taken)
    scores, last = [], {}
    for n, (video, index) in enumerate(candidates):
        capture = cv2.VideoCapture(video)
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        capture.release()
        if not ok:
            continue
        pixels = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        joints = np.array(_joints(estimator, pixels))
        jump = 0.0
        if video in last and len(joints):
            jump = float(np.median(np.linalg.norm(joints[:, :2] - last[video], axis=1)))
            jump /= max(pixels.shape[:2])
        last[video] = joints[:, :2] if len(joints) else last.get(video)
        scores.append((float(joints[:, 2].mean()) - jump if len(joints) else 0.0, video, index))
        state["progress"] = 0.9 * (n + 1) / len(candidates)
    picked = [(v, i) for _, v, i in sorted(scores)[:count]]
    if picked:
        project.add_picked(sorted(picked), "suggested")


class LabelApi:
    """The page's API over `project` (the routes of `make_labelling_app`)."""

    def __init__(self, project):
        self.project, self.jobs, self.broken = project, Jobs(project), None
        self._seen = None  # the files' stamps when last read

    @staticmethod
    def fail(error, status=400):
        from starlette.responses import JSONResponse

        return JSONResponse({"error": str(error)}, status_code=status)

    def stamps(self):
        """The project files' modification times (what a hand edit changes)."""
        project, stamps = self.project, []
        for name in ("project.json", "labels.json", "predictions.json", project.skeleton_file):
            try:
                stamps.append(os.stat(project.path(name)).st_mtime_ns)
            except OSError:
                stamps.append(None)
        return stamps

    def reload_if_changed(self):
        """Reads the project again when a file changed on disk since (a hand edit; the page's
        own saves change it too, harmlessly), under the project's lock so that no save is
        lost between the read and the swap; a broken file is reported, not overwritten, until
        it is fixed."""
        with self.project.lock:
            stamps = self.stamps()
            if stamps == self._seen and not self.broken:
                return
            try:
                fresh = Project(self.project.folder)
                kept = {k: v for k, v in fresh.__dict__.items() if k != "lock"}
                self.project.__dict__.update(kept)
                self.broken = None
            except ProjectError as error:
                self.broken = str(error)
            self._seen = stamps

    def info(self):
        project, skeleton = self.project, self.project.skeleton
        frames = []
        for f in project.frames:
            placed = sum(isinstance(p, list) or p == "hidden"
                         for points in project.labels.get(f.id, ()) if points
                         for p in points)  # fmt: skip
            frames.append({"id": f.id, "image": f.image, "index": f.index, "source": f.source,
                           "video": f.video and os.path.basename(f.video), "placed": placed,
                           "prefilled": f.id in project.predictions})  # fmt: skip
        return {
            "folder": project.folder,
            "skeleton": {
                "name": skeleton.name,
                "joints": list(skeleton.joint_names),
                "colours": [COLOURS[s] for s in skeleton.side],
                "limbs": [list(pair) for pair in skeleton.limb_index],
            },
            "individuals": project.individuals,
            "videos": project.videos,
            "frames": frames,
            "joints_per_frame": skeleton.num_joints * project.individuals,
            "rounds": project.rounds,
            "job": self.jobs.state,
        }

    async def api_project(self, request):
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        await run_in_threadpool(self.reload_if_changed)
        if self.broken:
            return self.fail(self.broken, 409)
        return JSONResponse(self.info())

    async def frame_image(self, request):
        from starlette.responses import FileResponse

        relative = request.path_params["path"]
        frames = os.path.realpath(self.project.path("frames"))
        path = os.path.realpath(os.path.join(frames, relative))
        if not path.startswith(frames + os.sep):
            return self.fail(f"{relative}: not a frame of the project", 404)
        if not os.path.isfile(path):
            return self.fail(f"frames/{relative}: no such frame", 404)
        return FileResponse(path, media_type="image/jpeg")

    async def labels(self, request):
        from starlette.responses import JSONResponse

        project, frame = self.project, request.path_params["frame"]
        if request.method == "GET":
            prediction = project.predictions.get(frame)
            return JSONResponse({
                "individuals": project.labels.get(frame, [None] * project.individuals),
                "prediction": prediction["individuals"] if prediction else None,
            })  # fmt: skip
        if self.broken:
            return self.fail(f"not saved: {self.broken}", 409)
        start = time.perf_counter()
        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict):
                raise ProjectError("the request: expected a JSON object")
            saved = project.set_labels(frame, body.get("individuals"))
        except ValueError as error:  # ProjectError, or a body that is not JSON
            return self.fail(error)
        return JSONResponse(
            {"individuals": saved, "saved_ms": round(1000 * (time.perf_counter() - start), 2)}
        )

    @staticmethod
    async def body_of(request):
        try:
            body = json.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")
            return body
        except ValueError as error:
            raise ProjectError(f"the request: {error}") from None

    async def pick(self, request):
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        try:
            body = await self.body_of(request)
            count, method = int(body.get("count", 20)), body.get("method", "kmeans")
            new = await run_in_threadpool(self.project.pick, count, method)
        except (ValueError, TypeError) as error:  # ProjectError, VideoError, a bad count
            return self.fail(error)
        return JSONResponse({"added": [f.id for f in new]})

    async def add_video(self, request):
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        try:
            path = (await self.body_of(request)).get("path")
            if not isinstance(path, str) or not path:
                raise ProjectError('the request: expected {"path": a video file}')
            await run_in_threadpool(self.project.add_videos, [os.path.expanduser(path)])
        except ValueError as error:  # ProjectError, VideoError
            return self.fail(error)
        return JSONResponse({"videos": self.project.videos})

    async def start_job(self, request):
        from starlette.responses import JSONResponse

        kind, project = request.url.path.rsplit("/", 1)[1], self.project
        try:
            body = await self.body_of(request)
            if kind == "train":
                epochs, minutes = body.get("epochs"), body.get("minutes")
                self.jobs.start("train", lambda s: train_round(project, s, epochs, minutes))
            else:
                count = int(body.get("count", 10))
                self.jobs.start("suggest", lambda s: suggest(project, s, count))
        except ValueError as error:
            return self.fail(error, 409 if "running" in str(error) else 400)
        return JSONResponse(self.jobs.state)

    async def job(self, request):
        from starlette.responses import JSONResponse

        return JSONResponse(self.jobs.state)

    async def export(self, request):
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        try:
            body = await self.body_of(request)
            written = await run_in_threadpool(export_all, self.project, body.get("models", []))
        except ValueError as error:
            return self.fail(error)
        folder = self.project.folder
        return JSONResponse({"written": [os.path.relpath(p, folder) for p in written]})


def make_labelling_app(project):
    """The Starlette app of the labelling page over `project` (a `Project`)."""
    from importlib import resources

    from starlette.applications import Starlette
    from starlette.responses import FileResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    page = resources.files("keras_hourglass.labelling") / PAGE
    api = LabelApi(project)

    async def index(request):
        return FileResponse(str(page / "index.html"), media_type="text/html")

    async def not_found(request, exc):
        return api.fail(f"{request.url.path}: no such page", 404)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/project", api.api_project),
            Route("/frames/{path:path}", api.frame_image),
            Route("/api/labels/{frame:path}", api.labels, methods=["GET", "PUT"]),
            Route("/api/videos", api.add_video, methods=["POST"]),
            Route("/api/pick", api.pick, methods=["POST"]),
            Route("/api/train", api.start_job, methods=["POST"]),
            Route("/api/suggest", api.start_job, methods=["POST"]),
            Route("/api/job", api.job),
            Route("/api/export", api.export, methods=["POST"]),
            Mount("/static", StaticFiles(directory=str(page)), name="static"),
        ],
        exception_handlers={404: not_found},
    )


def export_all(project, formats=()):
    """The labels (`Project.export`) and the last round's model in each of `formats` (every
    format `hourglass-export` writes) into export/."""
    from keras_hourglass.deployment.core import EXPORT_FORMATS

    written = project.export()
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown:
        raise ProjectError(f"models: unknown format(s) {unknown}; known: {list(EXPORT_FORMATS)}")
    if formats:
        if not project.rounds:
            raise ProjectError("no trained model to export: train a round first")
        from keras_hourglass.deployment.export import export_model
        from keras_hourglass.deployment.loader import load_model

        model = load_model(project.path(project.rounds[-1]["model"]), runtime="keras").model
        names = {"savedmodel": "savedmodel", "onnx": "model.onnx", "tflite": "model.tflite",
                 "openvino": "model.xml"}  # fmt: skip
        for fmt in formats:
            written.append(export_model(model, project.path("export", names[fmt]), fmt))
    return written
