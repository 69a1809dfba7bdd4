"""How long saving a click takes on the labelling page: the PUT of one frame's labels, measured
from a client against `eval/label.py` (issue #51: under 50 ms on 2 cores).

    python benchmarks/label_save.py [--frames 200] [--saves 300]

Builds a project of `--frames` labelled frames (a generated video of the synthetic figure), then
sends `--saves` PUTs of one frame's labels (a click each: one joint moved) and prints the median, 95th
percentile and maximum round trip, and the server's own write time."""

import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--saves", type=int, default=300)
    args = parser.parse_args(argv)
    import numpy as np
    from conftest import PageServer
    from test_labelling import SKELETON, _video

    from keras_hourglass.labelling.project import Project

    work = tempfile.mkdtemp(prefix="label-bench-")
    with open(os.path.join(work, "figure.yaml"), "w") as f:
        f.write(SKELETON)
    truth = _video(os.path.join(work, "a.mp4"), args.frames, 1)
    project = Project.create(os.path.join(work, "proj"), os.path.join(work, "figure.yaml"))
    project.add_videos([os.path.join(work, "a.mp4")])
    project.pick(args.frames, "uniform")
    for frame in project.frames:
        project.set_labels(frame.id, [[[float(x), float(y), 2] for x, y in truth[frame.index]]])
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    server = PageServer("eval/label.py", work, env, project.folder)
    try:
        trips, writes = [], []
        frame = project.frames[len(project.frames) // 2]
        points = [[float(x), float(y), 2] for x, y in truth[frame.index]]
        for n in range(args.saves):
            points[n % len(points)][0] += 0.01  # a click moves one joint
            start = time.perf_counter()
            status, answer = server.send(
                "PUT", f"/api/labels/{frame.id}", {"individuals": [points]}
            )
            trips.append(1000 * (time.perf_counter() - start))
            assert status == 200, answer
            writes.append(answer["saved_ms"])
        size = os.path.getsize(os.path.join(project.folder, "labels.json"))
        print(
            f"label_save: {os.cpu_count()} CPUs, {args.frames} labelled frames "
            f"(labels.json {size / 1024:.0f} KiB), {args.saves} saves: round trip median "
            f"{np.median(trips):.1f} ms, p95 {np.percentile(trips, 95):.1f} ms, max "
            f"{max(trips):.1f} ms; the server's write median {np.median(writes):.1f} ms"
        )
        print(json.dumps({"median_ms": round(float(np.median(trips)), 2),
                          "p95_ms": round(float(np.percentile(trips, 95)), 2)}))  # fmt: skip
    finally:
        server.stop()


if __name__ == "__main__":
    main()
