"""Frames worth labelling, picked from videos: spread over what the videos show (k-means on small
downsampled frames, the frame nearest each centre: DeepLabCut's default way), evenly in time
(`uniform`), or where a trained model is least sure (`least_confident`).

    picked = pick_frames(["a.mp4", "b.mp4"], 20)           # [(video, frame index), ...]
    paths = extract_frames("a.mp4", [3, 17], "frames/a")   # JPEG files, one per frame
"""

import logging
import os

import numpy as np

from keras_hourglass import files

log = logging.getLogger(__name__)

__all__ = [
    "METHODS",
    "VideoError",
    "check_video",
    "extract_frames",
    "pick_frames",
    "read_thumbnails",
]

METHODS = ("kmeans", "uniform")
THUMBNAIL = (32, 24)  # width, height of the frames k-means compares (grey)
MAX_FRAMES_READ = 3000  # per video: longer videos are read with a stride


class VideoError(ValueError):
    """A video that cannot be used: one line naming the file."""


def _capture(path):
    import cv2

    from keras_hourglass.poses.media import InputError, check_video_container

    if not os.path.isfile(path):
        raise VideoError(f"{path}: no such video file")
    try:
        check_video_container(path)
    except InputError as error:
        raise VideoError(str(error).replace("--video ", "")) from None
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise VideoError(f"{path}: not a video OpenCV can decode")
    return capture


def check_video(path):
    """A `VideoError` naming `path` unless it is a video whose first frame decodes."""
    capture = _capture(path)
    try:
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok or frame is None:
        raise VideoError(f"{path}: no frame could be decoded")


def read_thumbnails(path):
    """(frame indices, (N, h * w) float32 grey thumbnails in [0, 1]) of a video, at most
    `MAX_FRAMES_READ` frames (evenly strided). A `VideoError` when no frame decodes."""
    import cv2

    capture = _capture(path)
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        stride = max(1, -(-count // MAX_FRAMES_READ)) if count > 0 else 1
        indices, thumbs, index = [], [], 0
        while True:
            ok = capture.grab()
            if not ok:
                break
            if index % stride == 0:
                ok, frame = capture.retrieve()
                if ok and frame is not None:
                    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                    small = cv2.resize(grey, THUMBNAIL, interpolation=cv2.INTER_AREA)
                    indices.append(index)
                    thumbs.append(small.astype(np.float32).ravel() / 255.0)
            index += 1
    finally:
        capture.release()
    if not thumbs:
        raise VideoError(f"{path}: no frame could be decoded")
    return np.array(indices), np.stack(thumbs)


def _kmeans(points, count, seed):
    """The index of the point nearest each of `count` k-means centres (k-means++ start, Lloyd's
    iterations), distinct, in order."""
    from scipy.cluster.vq import kmeans2

    count = min(count, len(points))
    centres, labels = kmeans2(points, count, minit="++", seed=seed, iter=20)
    chosen = set()
    for c in range(count):
        members = np.flatnonzero(labels == c)
        if members.size == 0:
            continue
        distance = np.linalg.norm(points[members] - centres[c], axis=1)
        chosen.add(int(members[np.argmin(distance)]))
    # Empty clusters: the farthest points from those chosen, so the count is kept.
    while len(chosen) < count:
        taken = points[sorted(chosen)] if chosen else points[:1]
        far = np.min(np.linalg.norm(points[:, None] - taken[None], axis=2), axis=1)
        far[sorted(chosen)] = -1
        chosen.add(int(np.argmax(far)))
    return sorted(chosen)


def pick_frames(videos, count, method="kmeans", seed=0, exclude=()):
    """`count` frames of `videos` worth labelling, as [(video, frame index)]: with "kmeans" the
    frames nearest the centres of k-means over every video's small grey frames together (so
    the pick spreads over what the videos show, each video getting at least one while
    `count` allows), with "uniform" evenly spaced in each video (the count shared by
    length). `exclude`: (video, index) pairs picked before, not picked again."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    read = {video: read_thumbnails(video) for video in videos}
    pool = [
        (video, int(i), thumb)
        for video, (indices, thumbs) in read.items()
        for i, thumb in zip(indices, thumbs)
        if (video, int(i)) not in set(exclude)
    ]
    if not pool:
        return []
    if method == "uniform":
        picked = []
        total = len(pool)
        for video in videos:
            own = [p for p in pool if p[0] == video]
            share = max(1, round(count * len(own) / total)) if own else 0
            spots = np.unique(np.linspace(0, len(own) - 1, min(share, len(own))).round())
            picked += [(own[int(s)][0], own[int(s)][1]) for s in spots]
        return picked[:count]
    chosen = _kmeans(np.stack([p[2] for p in pool]), count, seed)
    picked = [(pool[i][0], pool[i][1]) for i in chosen]
    for video in videos:  # every video at least once, while the count allows
        if count >= len(videos) and not any(v == video for v, _ in picked):
            own = [(v, i) for v, i, _ in pool if v == video]
            if own:
                most = max({v for v, _ in picked}, key=lambda v: sum(p[0] == v for p in picked))
                drop = next(j for j, p in enumerate(picked) if p[0] == most)
                picked[drop] = own[len(own) // 2]
    return sorted(picked, key=lambda p: (videos.index(p[0]), p[1]))


def extract_frames(video, indices, folder, quality=95):
    """Writes the frames `indices` of `video` as JPEG files `<folder>/<index:06d>.jpg` (each
    written whole or not at all); returns their paths in the order of `indices`."""
    import cv2

    wanted = set(int(i) for i in indices)
    os.makedirs(folder, exist_ok=True)
    capture = _capture(video)
    written = {}
    try:
        index = 0
        while wanted - set(written):
            if not capture.grab():
                break
            if index in wanted:
                ok, frame = capture.retrieve()
                if ok and frame is not None:
                    path = os.path.join(folder, f"{index:06d}.jpg")
                    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
                    with files.atomic_write(path, "wb") as f:
                        f.write(encoded.tobytes())
                    written[index] = path
            index += 1
    finally:
        capture.release()
    missing = sorted(wanted - set(written))
    if missing:
        raise VideoError(f"{video}: frame(s) {missing[:5]} could not be decoded")
    return [written[int(i)] for i in indices]
