"""How fast the commands answer: `--help`, a bad flag, and predict's first and second run on a
`.keras` model (the OpenVINO conversion, then its disk cache).

    python benchmarks/command_start.py                       # --help and a bad flag, 5 runs each
    python benchmarks/command_start.py --predict-stacks 8    # + predict on the paper's model

Each timing is a whole process (`python train/x.py ...`), the median of --runs. For predict, a
random-weights model of --predict-stacks (256 features, 256 px) is saved to a temporary file and
predicted on one photo twice with the conversion cache in a fresh temporary folder: the first run
traces and converts (and keeps the conversion), the second reads it back. Lines:
`command_start command=<script> case=<help|bad-flag> seconds=<s>` and
`command_start predict stacks=<n> first_s=<s> second_s=<s>` (with --predict-shipped also
`model=shipped`, the model that ships, the second run's figure the median of --runs).
"""

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
PHOTO = ROOT / "docs/images/coco_000000000785.jpg"
CASES = {
    "train/train.py": ["--stacks", "0"],
    "train/export.py": ["--model", "no-such-model"],
    "eval/evaluate.py": ["--batch-size", "0"],
    "eval/predict.py": ["a.jpg", "--bbox", "1,2,3"],
    "eval/serving_client.py": ["a.jpg"],
}


def timed(args, env=None, check=False):
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, *args], capture_output=True, env=env, cwd=ROOT, check=check, timeout=3600
    )
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--predict-stacks", type=int, nargs="*", default=[])
    parser.add_argument(
        "--predict-shipped",
        action="store_true",
        help="also predict's first and second run with the shipped model (no --model)",
    )
    parser.add_argument("--skip-flags", action="store_true", help="only the predict runs")
    args = parser.parse_args(argv)
    for script, bad in {} if args.skip_flags else CASES.items():
        for case, flags in (("help", ["--help"]), ("bad-flag", bad)):
            seconds = statistics.median(timed([script, *flags]) for _ in range(args.runs))
            print(f"command_start command={script} case={case} seconds={seconds:.2f}", flush=True)
    for stacks in args.predict_stacks:
        with tempfile.TemporaryDirectory() as tmp:
            code = (
                "import keras_hourglass as kh, sys; "
                f"kh.build_hourglass(num_stacks={stacks}, skeleton='lsp').save(sys.argv[1])"
            )
            model = os.path.join(tmp, "m.keras")
            subprocess.run([sys.executable, "-c", code, model], check=True, cwd=ROOT)
            env = dict(os.environ, KERAS_HOURGLASS_CACHE=os.path.join(tmp, "cache"))
            run = ["eval/predict.py", str(PHOTO), "--model", model, "--out", tmp, "-q"]
            first = timed(run, env, check=True)
            second = timed(run, env, check=True)
        print(f"command_start predict stacks={stacks} first_s={first:.1f} second_s={second:.1f}")
    if args.predict_shipped:
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, KERAS_HOURGLASS_CACHE=os.path.join(tmp, "cache"))
            run = ["eval/predict.py", str(PHOTO), "--out", tmp, "-q"]
            first = timed(run, env, check=True)
            second = statistics.median(timed(run, env, check=True) for _ in range(args.runs))
        print(f"command_start predict model=shipped first_s={first:.1f} second_s={second:.1f}")


if __name__ == "__main__":
    sys.exit(main())
