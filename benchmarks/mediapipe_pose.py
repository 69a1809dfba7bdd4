"""MediaPipe Pose on a folder of photos, written as `hourglass-predict` writes its poses (LSP's
14 named joints per person in `<stem>_pose.json`), for `benchmarks/photo_accuracy.py`.

    /path/to/mediapipe-venv/bin/python benchmarks/mediapipe_pose.py photos/ --out mediapipe/

Runs in a Python of its own with `mediapipe==0.10.21` (its NumPy 1 and protobuf 4 pins clash
with TensorFlow 2.21's, so not in the project's environment): the legacy `solutions.pose`
(BlazePose, its own person detector and landmark model; `--complexity 1` is "full", the default
of MediaPipe's own examples), static images, one person per photo. Its 33 landmarks map to LSP's
joints by name (left/right as the person's, as LSP's); LSP's neck is the shoulders' midpoint and
its head top the nose moved away from the neck by half the nose-neck distance (MediaPipe has no
head-top landmark, so the benchmark's headline uses the 12 limb joints only). A joint's
confidence is MediaPipe's visibility.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

# LSP's 14 joints -> MediaPipe Pose's landmark indices.
LSP_FROM_MEDIAPIPE = {
    "right_ankle": 28,
    "right_knee": 26,
    "right_hip": 24,
    "left_hip": 23,
    "left_knee": 25,
    "left_ankle": 27,
    "right_wrist": 16,
    "right_elbow": 14,
    "right_shoulder": 12,
    "left_shoulder": 11,
    "left_elbow": 13,
    "left_wrist": 15,
}
NOSE, LEFT_SHOULDER, RIGHT_SHOULDER = 0, 11, 12


def lsp_joints(landmarks, width, height):
    """MediaPipe's normalised landmarks -> {LSP joint: {x, y, confidence}} in pixels."""
    xy = np.array([[p.x * width, p.y * height] for p in landmarks.landmark])
    vis = np.array([p.visibility for p in landmarks.landmark])
    joints = {
        name: {"x": float(xy[i, 0]), "y": float(xy[i, 1]), "confidence": float(vis[i])}
        for name, i in LSP_FROM_MEDIAPIPE.items()
    }
    neck = (xy[LEFT_SHOULDER] + xy[RIGHT_SHOULDER]) / 2.0
    top = xy[NOSE] + 0.5 * (xy[NOSE] - neck)
    shoulders = float(min(vis[LEFT_SHOULDER], vis[RIGHT_SHOULDER]))
    joints["neck"] = {"x": float(neck[0]), "y": float(neck[1]), "confidence": shoulders}
    joints["head_top"] = {"x": float(top[0]), "y": float(top[1]), "confidence": float(vis[NOSE])}
    return joints


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", help="a folder of JPEG/PNG photos")
    parser.add_argument("--out", required=True, help="where the <stem>_pose.json files go")
    parser.add_argument("--complexity", type=int, default=1, choices=(0, 1, 2))
    args = parser.parse_args(argv)
    import cv2
    import mediapipe as mp

    os.makedirs(args.out, exist_ok=True)
    names = sorted(
        n for n in os.listdir(args.folder) if n.lower().endswith((".jpg", ".jpeg", ".png"))
    )
    start = time.time()
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=args.complexity) as pose:
        for name in names:
            bgr = cv2.imread(os.path.join(args.folder, name))
            if bgr is None:
                raise SystemExit(f"error: {name}: not an image OpenCV reads")
            height, width = bgr.shape[:2]
            found = pose.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).pose_landmarks
            people = [] if found is None else [{"joints": lsp_joints(found, width, height)}]
            stem = os.path.splitext(name)[0]
            with open(os.path.join(args.out, f"{stem}_pose.json"), "w") as f:
                json.dump({"image": name, "width": width, "height": height, "people": people}, f)
    seconds = time.time() - start
    print(f"MediaPipe Pose: {len(names)} photos in {seconds:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
