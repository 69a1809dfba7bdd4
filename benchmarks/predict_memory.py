"""Peak memory of `eval/predict.py` over many photos: the photo loop streams (each image read,
decoded once, predicted, drawn and written, then let go), so its peak resident memory should not
grow with the number of images.

    python benchmarks/predict_memory.py --images 1000            # LSPET photos from ../shared
    python benchmarks/predict_memory.py --images 100 --folder ~/photos

Runs predict.py (the shipped model by default, the default runtime) in a child process on the
first --images JPEGs of --folder (copied nowhere: read in place), twice (N/10 and N images), and
reports each run's peak RSS (`ru_maxrss` of the child) and wall time. Last line:
`predict_memory images=<n> peak_mib=<m> peak_mib_tenth=<m10> seconds=<s>`.
"""

import argparse
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(images, model, out):
    command = [sys.executable, str(ROOT / "eval/predict.py"), *images, "--out", out, "-q"]
    command += ["--model", model] if model else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(command, check=True)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(peak, before) / 1024, elapsed  # ru_maxrss is in KiB on Linux


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--folder", default=str(ROOT.parent / "shared/data/lspet/images"))
    parser.add_argument("--model", default=None, help="default: the shipped model")
    args = parser.parse_args(argv)
    images = sorted(str(p) for p in pathlib.Path(args.folder).glob("*.jpg"))[: args.images]
    if len(images) < args.images:
        raise SystemExit(f"{args.folder}: only {len(images)} JPEGs")
    with tempfile.TemporaryDirectory() as tmp:
        # Each run in its own child: ru_maxrss of children is the largest one so far, so the
        # small run goes first.
        tenth, _ = run(images[: max(1, args.images // 10)], args.model, os.path.join(tmp, "a"))
        peak, seconds = run(images, args.model, os.path.join(tmp, "b"))
    print(
        f"predict_memory images={args.images} peak_mib={peak:.0f} "
        f"peak_mib_tenth={tenth:.0f} seconds={seconds:.1f}"
    )


if __name__ == "__main__":
    sys.exit(main())
