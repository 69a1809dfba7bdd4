"""Frames per second of the live camera loop (`eval/predict.py --video 0`) on this machine's CPU:
the whole loop a user runs (frame -> person box -> crop -> network with flip test -> decoding ->
drawing -> mp4 and JSON lines), at batch 1, for the paper's 2-stack and 8-stack models.

    python benchmarks/camera_fps.py --stacks 2 8 --frames 30
    python benchmarks/camera_fps.py --model lspet-hg2-128 --frames 300   # a trained model

The camera is a stand-in that returns a 640x480 frame made from --image (default: a real MPII
sample when ../shared is beside the repository, else noise) as fast as asked, so the figure is
the loop's own rate (a real camera caps it at its frame rate). Weights are random (speed does not
depend on them); the person box follows the pose as it does by default. The first frames
(compilation) are timed apart. `--model` (a .keras file or a shipped model's name) times that
model instead of the paper's random ones, through the runtime predict.py picks by default
(OpenVINO where installed). Last lines: `camera_fps model=<name or stacks> batch=1 flip=1
fps=<f> ms_per_frame=<m>`.
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared/data/mpii_samples/004645041.jpg"


class Camera:
    def __init__(self, frame, count):
        self.frame, self.count = frame, count

    def read(self):
        if self.count == 0:
            return False, None
        self.count -= 1
        return True, self.frame.copy()

    def release(self):
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stacks", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--model", nargs="+", help="trained models to time instead (file or name)")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--image", default=str(SAMPLE) if SAMPLE.is_file() else None)
    args = parser.parse_args(argv)

    import cv2
    import keras

    import keras_hourglass as kh
    from keras_hourglass.poses.estimator import PoseEstimator, predict_video

    if args.image:
        frame = cv2.resize(cv2.imread(args.image), (640, 480), interpolation=cv2.INTER_AREA)
    else:
        frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8)
    print(
        f"camera_fps: {os.cpu_count()} CPUs, Keras {keras.__version__} "
        f"({keras.backend.backend()}), image {args.image or 'noise'}"
    )
    from keras_hourglass.presets import resolve_model

    results = []
    for stacks in args.model or args.stacks:
        with tempfile.TemporaryDirectory() as tmp:
            if args.model:
                path, _ = resolve_model(stacks)
            else:
                model = kh.build_hourglass(num_stacks=stacks, skeleton="mpii")
                path = os.path.join(tmp, "m.keras")
                model.save(path)
            predictor = PoseEstimator(path)
            start = time.perf_counter()
            predict_video(predictor, (Camera(frame, args.warmup), "w", 30.0, 0), tmp, batch=1)
            warmup = time.perf_counter() - start
            start = time.perf_counter()
            predict_video(predictor, (Camera(frame, args.frames), "c", 30.0, 0), tmp, batch=1)
            elapsed = time.perf_counter() - start
        fps = args.frames / elapsed
        results.append(
            f"camera_fps {'model' if args.model else 'stacks'}={stacks} batch=1 flip=1 fps={fps:.2f} "
            f"ms_per_frame={1000 / fps:.0f} first_{args.warmup}_frames_s={warmup:.1f} "
            f"runtime={predictor.runtime}/{predictor.precision}"
        )
        print(results[-1], flush=True)
    print("\n".join(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
