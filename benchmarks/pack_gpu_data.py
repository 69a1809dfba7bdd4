"""Packs LSPET for a GPU call into an ignored folder of the checkout (carried with `run`).

    python benchmarks/pack_gpu_data.py                # ../shared/data/lspet_gpu -> gpu_data/lspet
    python benchmarks/pack_gpu_data.py --images 3500  # fewer images when space is short

Copies `joints.mat` and images im00001 ... im<N>.jpg (default: all 4,000 of the re-encoded
`lspet_gpu` folder, JPEG quality 60, see its SOURCE.md). Everything carried to the GPU machine,
`.whl` and the checkout included, must stay under 64 MiB: the command prints the packed size and
the total with `.whl` and refuses to write more than --limit-mib. `gpu_data/` is git-ignored.
"""

import argparse
import os
import shutil
import subprocess
import sys


def folder_bytes(path):
    return sum(
        os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files
    )


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--src", default="../shared/data/lspet_gpu")
    parser.add_argument("--out", default="gpu_data/lspet")
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument(
        "--limit-mib",
        type=float,
        default=64.0,
        help="refuse when the packed folder + .whl + tracked files exceed this",
    )
    args = parser.parse_args(argv)
    names = [f"im{i:05d}.jpg" for i in range(1, args.images + 1)]
    missing = [n for n in names if not os.path.isfile(os.path.join(args.src, "images", n))]
    if missing or not os.path.isfile(os.path.join(args.src, "joints.mat")):
        raise SystemExit(
            f"{args.src}: missing joints.mat or {len(missing)} images (first: {missing[:3]})"
        )
    tracked = subprocess.run(["git", "ls-files", "-z"], capture_output=True, check=True).stdout
    tracked_bytes = sum(
        os.path.getsize(p) for p in tracked.decode().split("\0") if os.path.isfile(p)
    )
    wheels = folder_bytes(".whl") if os.path.isdir(".whl") else 0
    packed = os.path.getsize(os.path.join(args.src, "joints.mat")) + sum(
        os.path.getsize(os.path.join(args.src, "images", n)) for n in names
    )
    total = (packed + wheels + tracked_bytes) / 2**20
    print(
        f"packing {args.images} images: {packed / 2**20:.1f} MiB; with .whl "
        f"({wheels / 2**20:.1f} MiB) and the tracked files ({tracked_bytes / 2**20:.1f} MiB): "
        f"{total:.1f} MiB of {args.limit_mib:g}"
    )
    if total > args.limit_mib:
        raise SystemExit("too large: pass fewer --images")
    tmp = args.out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "images"))
    shutil.copy2(os.path.join(args.src, "joints.mat"), tmp)
    for n in names:
        shutil.copy2(os.path.join(args.src, "images", n), os.path.join(tmp, "images", n))
    shutil.rmtree(args.out, ignore_errors=True)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
