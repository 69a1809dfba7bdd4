"""The demo page's server: a small Starlette app that serves the page (keras_hourglass/poses/demo_page:
plain HTML, JavaScript and CSS from the package, nothing from the internet) and the JSON API
it uses (docs/demo.md).

    GET  /                 the page
    GET  /api/info         the model, its joints and limbs (names, sides, colours), the limits
    POST /api/poses        body: a JPEG or PNG file's bytes; query: boxes=[[x, y, w, h], ...]
                           (JSON, the image's pixels; given boxes win), detect=1|0 (default 1:
                           the person detector's boxes when no box is given), threshold
                           -> {"width", "height", "boxes_from", "people": [...], "time_ms"}

`people` are the records `hourglass-predict` writes (`<name>_pose.json`): box, bbox, box_score,
score and the named joints {x, y, confidence} in the image's pixels. Bad input is a 4xx JSON
`{"error": "..."}` naming what is wrong (413: the upload is over the size limit, or the image
over the pixel limit; 415: not a JPEG or PNG; 400: a truncated or broken image, malformed
boxes; 422: a box outside the image; 503: too many requests waiting). Nothing is written to
disk: uploads are decoded in memory. One request runs the network at a time (the OpenVINO
predictor holds one inference request); the others wait their turn, at most `max_waiting`.
"""

import json
import math
import threading
import time

from keras_hourglass.drawing import SIDE_COLOURS
from keras_hourglass.poses.boxes import Box, BoxError
from keras_hourglass.poses.media import InputError, decode_image

__all__ = ["DemoLimits", "make_app"]

PAGE = "demo_page"
STATUS = {  # media.InputError.kind -> HTTP status
    "too large": 413,
    "not an image": 415,
    "empty": 400,
    "truncated": 400,
    "broken": 400,
}


class DemoLimits:
    """What one request may bring: `upload_bytes` (default 20 MB), `image_pixels` (default
    `datasets.MAX_IMAGE_PIXELS`), `people` per photo (default 20), `waiting` requests."""

    def __init__(self, upload_bytes=20_000_000, image_pixels=None, people=20, waiting=64):
        from keras_hourglass.datasets import MAX_IMAGE_PIXELS

        self.upload_bytes = int(upload_bytes)
        self.image_pixels = int(image_pixels or MAX_IMAGE_PIXELS)
        self.people = int(people)
        self.waiting = int(waiting)


class _Refused(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def skeleton_info(skeleton):
    """The joints and limbs the page draws, with the colours `drawing.draw_pose` uses."""
    sides = skeleton.side

    def colour(side):
        return "#%02x%02x%02x" % SIDE_COLOURS[side]

    return {
        "name": skeleton.name,
        "joints": list(skeleton.joint_names),
        "joint_colours": [colour(s) for s in sides],
        "limbs": [list(pair) for pair in skeleton.limb_index],
        "limb_colours": [
            colour(sides[a] if sides[a] != "centre" else sides[b]) for a, b in skeleton.limb_index
        ],
    }


def parse_boxes(text, limit):
    """`boxes=[[x, y, w, h], ...]` (JSON) -> [Box]; `_Refused` (400) for anything else."""
    try:
        try:
            values = json.loads(text)
        except ValueError:
            values = None
        if not isinstance(values, list) or len(values) > limit:
            raise ValueError(f"a JSON list of at most {limit} boxes [x, y, w, h]")
        boxes = []
        for value in values:
            if not isinstance(value, list) or len(value) != 4:
                raise ValueError("each box is [x, y, w, h] (4 numbers)")
            numbers = [float(v) for v in value]
            if not all(math.isfinite(v) for v in numbers) or numbers[2] <= 0 or numbers[3] <= 0:
                raise ValueError("each box needs finite numbers and a positive width and height")
            boxes.append(Box(*numbers))
        return boxes
    except (TypeError, ValueError) as error:  # json.JSONDecodeError is a ValueError
        raise _Refused(400, f"boxes={text[:80]!r}: expected {error}") from None


def _threshold(text):
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise _Refused(400, f"threshold={text[:20]!r}: expected a number between 0 and 1")
    return value


def make_app(estimator, detector=None, limits=None, model_name=None):
    """The Starlette app of the demo: `estimator` a `poses.PoseEstimator`, `detector` a
    person detector (`detect.make_detector`; None: no automatic boxes; a photo without boxes is one person,
    the whole photo), `limits` a `DemoLimits`."""
    from importlib import resources

    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    limits = limits or DemoLimits()
    estimator.detector = detector  # the people found on the page: this detector's, re-framed
    page = resources.files("keras_hourglass.poses") / PAGE
    lock, state = threading.Lock(), {"waiting": 0, "served": 0}
    info = {
        "model": model_name or estimator.loaded.path,
        "runtime": f"{estimator.runtime}/{estimator.precision}",
        "flip_test": estimator.flip_test,
        "skeleton": skeleton_info(estimator.skeleton),
        "detector": detector is not None,
        "limits": {
            "upload_bytes": limits.upload_bytes,
            "image_pixels": limits.image_pixels,
            "people": limits.people,
        },
    }

    def predict(data, boxes, detect, threshold):
        """Runs in a worker thread, one at a time."""
        with lock:
            start = time.perf_counter()
            pixels = decode_image(data, "the upload", limits.image_pixels)  # upright (EXIF)
            height, width = pixels.shape[:2]
            whole = boxes is None and not (detect and detector is not None)
            poses = estimator.image(
                data, pixels, boxes, 8, threshold, where="the upload", whole_image=whole,
                draw=False,  # the page draws in the browser
            )  # fmt: skip
            people = poses.people[: limits.people]
            return {
                "width": width,
                "height": height,
                "boxes_from": poses.found_by,
                "threshold": threshold,
                "people": people,
                "time_ms": round(1000 * (time.perf_counter() - start), 1),
            }

    async def poses(request):
        try:
            query = request.query_params
            boxes = parse_boxes(query["boxes"], limits.people) if "boxes" in query else None
            detect = query.get("detect", "1") not in ("0", "false", "no")
            threshold = _threshold(query.get("threshold", "0.2"))
            data = await _body(request, limits.upload_bytes)
            if state["waiting"] >= limits.waiting:
                raise _Refused(503, "the server is busy: too many photos waiting; try again")
            state["waiting"] += 1
            try:
                result = await run_in_threadpool(predict, data, boxes, detect, threshold)
            finally:
                state["waiting"] -= 1
            state["served"] += 1
            return JSONResponse(result)
        except _Refused as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)
        except InputError as error:
            status = STATUS.get(error.kind, 400)
            return JSONResponse({"error": str(error)}, status_code=status)
        except BoxError as error:
            return JSONResponse({"error": str(error)}, status_code=422)

    async def index(request):
        return FileResponse(str(page / "index.html"), media_type="text/html")

    async def api_info(request):
        return JSONResponse(info)

    async def not_found(request, exc):
        return JSONResponse({"error": f"{request.url.path}: no such page"}, status_code=404)

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/info", api_info),
            Route("/api/poses", poses, methods=["POST"]),
            Mount("/static", StaticFiles(directory=str(page)), name="static"),
        ],
        exception_handlers={404: not_found},
    )
    app.state.served = state
    return app


async def _body(request, limit):
    """The request's body, refused (413) past `limit` bytes without reading the rest."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _Refused(
            413, f"the upload is {int(declared):,} bytes, over the limit of {limit:,} bytes"
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refused(413, f"the upload is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise _Refused(400, "the request has no image: POST a JPEG or PNG file's bytes")
    return data
