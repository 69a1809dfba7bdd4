"""Recall and precision of the automatic person boxes (`keras_hourglass.poses.detect.PersonDetector`,
`hourglass-predict --detect`, the demo page) on the real annotated people in ../shared:
COCO's 4 val2017 images (14 people, every person of each image annotated: recall and
precision) and MPII's 5 samples (one annotated person each, others unannotated: recall only).

A detection finds a person when the crop the network would see (`Box.crop`: the square of the
box's longer side x 1.25) overlaps that person's crop (from COCO's box; from the annotated
joints' extent for MPII) by IoU >= 0.5, one detection per person (greedy, highest score
first). A second line per set without the size limit shows what small people cost.

    python benchmarks/person_detector.py [--data ../shared/data] [--min-score 0.5] \
        [--detect-scales 1,2,3]
"""

import argparse
import json
import os
import pathlib
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _square(x, y, w, h):
    side = max(w, h) * 1.25
    return (x + w / 2 - side / 2, y + h / 2 - side / 2, side, side)


def _match(found, people):
    """(true positives, false positives) of one image's detections against its people."""
    from keras_hourglass.poses.boxes import box_iou

    used, tp = set(), 0
    for box in found:
        crop = _square(*box.xywh)
        options = [(i, box_iou(crop, _square(*p))) for i, p in enumerate(people) if i not in used]
        best = max(options, key=lambda o: o[1], default=(None, 0.0))
        if best[1] >= 0.5:
            used.add(best[0])
            tp += 1
    return tp, len(found) - tp


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data"))
    parser.add_argument("--min-score", type=float, default=0.5)
    parser.add_argument(
        "--detect-scales", default="1", help="tile grids, as hourglass-predict's (default: 1)"
    )
    args = parser.parse_args(argv)

    from keras_hourglass.poses.detect import PersonDetector, TiledDetector, parse_scales
    from keras_hourglass.poses.media import read_image

    detector = TiledDetector(PersonDetector(args.min_score), parse_scales(args.detect_scales))
    data = pathlib.Path(args.data)
    coco = json.loads((data / "coco_samples/test_coco.json").read_text())
    mpii = json.loads((data / "mpii_samples/test_mpii.json").read_text())
    times, rows = [], []
    for name, images in (
        (
            "coco_samples",
            [
                (
                    data / "coco_samples" / im["file_name"],
                    [a["bbox"] for a in coco["annotations"] if a["image_id"] == im["id"]],
                )
                for im in coco["images"]
            ],
        ),
        (
            "mpii_samples",
            [(data / "mpii_samples" / p["image"], [_joint_box(p)]) for p in mpii],
        ),
    ):
        tp = fp = people = big = big_tp = 0
        for path, boxes in images:
            _, pixels = read_image(str(path))
            start = time.perf_counter()
            found = detector(pixels)
            times.append(time.perf_counter() - start)
            t, f = _match(found, boxes)
            tp, fp, people = tp + t, fp + f, people + len(boxes)
            tall = [b for b in boxes if b[3] >= pixels.shape[0] / 4]  # a quarter of the height
            big += len(tall)
            big_tp += _match(found, tall)[0]
        precision = (
            f"{tp / max(tp + fp, 1):.0%} ({tp}/{tp + fp})" if name == "coco_samples" else "n/a"
        )
        rows.append(
            f"{name}: recall {tp / people:.0%} ({tp}/{people}), precision {precision}; "
            f"people at least a quarter of the image tall: recall {big_tp / max(big, 1):.0%} "
            f"({big_tp}/{big})"
        )
    for row in rows:
        print(row)
    print(
        f"detector time: median {1000 * np.median(times):.1f} ms per image on {os.cpu_count()} "
        f"CPUs (min score {args.min_score})"
    )


def _joint_box(person):
    joints = np.array(person["joints"], float)[np.array(person["joints_vis"]) > 0]
    (x0, y0), (x1, y1) = joints.min(0), joints.max(0)
    return [x0, y0, x1 - x0, y1 - y0]


if __name__ == "__main__":
    main()
