"""Packs LSPET for a GPU call into an ignored folder of the checkout (carried with `run`).

    python benchmarks/pack_gpu_data.py                      # ../shared/data/lspet -> gpu_data/lspet
    python benchmarks/pack_gpu_data.py --quality 60         # one JPEG quality instead of the search
    python benchmarks/pack_gpu_data.py --zip-only           # gpu_data/lspet -> gpu_data/lspet.zip

The device call carries `gpu_data/lspet.zip` (ZIP_STORED: one file, about 100 bytes of overhead
per image where a folder of 9,000 small files or a tar's 512-byte blocks count several MiB more
towards the carry limit); `benchmarks/gpu_learning.sh` unpacks it into /tmp.

Everything carried to the GPU machine (`.whl`, the checkout and this folder) must stay under
64 MiB, and LSPET's 9,000 present images take 130 MiB. Each person is cut out of its photo with
the margin that holds any augmented crop (`Augmentation.margin`: 1.25x scale at 30 degrees, 1.71x
the person box), at the photo's own resolution (LSPET's people are 100-190 px tall, below the
256 px crop, so nothing is lost), and saved as baseline JPEG at the highest quality from
`--qualities` whose total fits `--limit-mib`. `joints.mat` keeps LSPET's layout (14 x 3 x 10000)
with each packed person's joints moved by the cut's offset, so `read_lsp` derives the same person
box (translated) and the same records. A record the library's checks refuse (e.g. 8074, a joint
145 px right of its 241 px image) is not packed: `--skip-bad` lists it as a missing image.

Prints what it packed: people, MiB, the quality, the mean PSNR of the packed cut against the same
region of the original, and the total with `.whl` and the tracked files. `gpu_data/` is
git-ignored; the folder is written under a temporary name and renamed when complete.
"""

import argparse
import io
import os
import shutil
import subprocess
import sys
import time
import zipfile

import numpy as np
import scipy.io
from PIL import Image


def folder_bytes(path):
    return sum(
        os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files
    )


def tracked_bytes():
    listed = subprocess.run(["git", "ls-files", "-z"], capture_output=True, check=True).stdout
    return sum(os.path.getsize(p) for p in listed.decode().split("\0") if os.path.isfile(p))


def cut_window(record, width, height, margin):
    """Integer pixel window (x0, y0, x1, y1) around the person, clipped to the image."""
    from keras_hourglass.geometry import PERSON_BOX_PX

    half = 0.5 * PERSON_BOX_PX * float(record.scale) * margin + 2.0  # 2 px for bilinear taps
    cx, cy = (float(v) for v in record.center)
    x0, y0 = max(0, int(np.floor(cx - half))), max(0, int(np.floor(cy - half)))
    x1, y1 = min(width, int(np.ceil(cx + half)) + 1), min(height, int(np.ceil(cy + half)) + 1)
    return x0, y0, x1, y1


def encode(image, quality):
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def psnr(a, b):
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--src", default="../shared/data/lspet")
    parser.add_argument("--out", default="gpu_data/lspet")
    parser.add_argument(
        "--qualities",
        default="75,70,65,60,55,50,45,40,35,30",
        help="JPEG qualities to try, best first; the first whose total fits is used",
    )
    parser.add_argument("--quality", type=int, help="use this quality (no search)")
    parser.add_argument(
        "--limit-mib",
        type=float,
        default=62.0,
        help="refuse when the packed folder + .whl + tracked files exceed this (the carry "
        "limit is 64; the default leaves 2 for files made before the call)",
    )
    parser.add_argument(
        "--zip-only", action="store_true", help="only (re)write <out>.zip from the packed folder"
    )
    args = parser.parse_args(argv)
    if args.zip_only:
        return write_zip(args.out)
    sys.path.insert(0, os.getcwd())
    from keras_hourglass.datasets import DatasetError, check_image_files, read_lsp
    from keras_hourglass.datasets.images import image_size
    from keras_hourglass.inputs.augmentation import Augmentation

    started = time.time()
    mat_path = os.path.join(args.src, "joints.mat")
    image_dir = os.path.join(args.src, "images")
    records = read_lsp(mat_path, image_dir, skip_bad=True)
    skipped = {reason: list(ids) for reason, ids in records.skipped.items()}
    margin = Augmentation().margin
    cuts = []  # (record index k, window, PIL image of the cut)
    for record in records:
        try:
            check_image_files([record])
        except DatasetError as error:
            skipped.setdefault("refused by check_image_files", []).append(record.record_id)
            print(f"not packed: {error}")
            continue
        with Image.open(record.image_path) as photo:
            photo = photo.convert("RGB")
            window = cut_window(record, *photo.size, margin)
            cuts.append((int(record.record_id), window, photo.crop(window)))
    others = tracked_bytes() + (folder_bytes(".whl") if os.path.isdir(".whl") else 0)
    budget = args.limit_mib * 2**20 - others - 2 * 2**20  # joints.mat: 1.8 MiB compressed
    qualities = [args.quality] if args.quality else [int(q) for q in args.qualities.split(",")]
    chosen = None
    for quality in qualities:
        encoded = [encode(cut, quality) for _, _, cut in cuts]
        total = sum(len(b) for b in encoded)
        print(f"quality {quality}: {len(encoded)} people, {total / 2**20:.1f} MiB")
        if total <= budget:
            chosen = quality
            break
    if chosen is None:
        raise SystemExit(
            f"even quality {qualities[-1]} takes {total / 2**20:.1f} MiB, above the "
            f"{budget / 2**20:.1f} MiB left under --limit-mib {args.limit_mib:g}"
        )
    joints = np.array(scipy.io.loadmat(mat_path)["joints"], np.float64)  # 14 x 3 x N, 1-based
    tmp = args.out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "images"))
    scores = []
    for (k, (x0, y0, _, _), cut), data in zip(cuts, encoded, strict=True):
        joints[:, 0, k] -= x0
        joints[:, 1, k] -= y0
        path = os.path.join(tmp, "images", f"im{k + 1:05d}.jpg")
        with open(path, "wb") as f:
            f.write(data)
        if k % 20 == 0:
            scores.append(psnr(cut, Image.open(io.BytesIO(data)).convert("RGB")))
    scipy.io.savemat(os.path.join(tmp, "joints.mat"), {"joints": joints}, do_compression=True)
    # The packed people must pass the same checks as the originals.
    packed = read_lsp(os.path.join(tmp, "joints.mat"), os.path.join(tmp, "images"), skip_bad=True)
    check_image_files(packed)
    assert len(packed) == len(cuts), (len(packed), len(cuts))
    sizes = [image_size(r.image_path) for r in packed]
    shutil.rmtree(args.out, ignore_errors=True)
    os.replace(tmp, args.out)
    folder = folder_bytes(args.out)
    total = folder + others
    print(
        f"packed {len(cuts)} people of {len(records) + sum(map(len, records.skipped.values()))}"
        f" records into {args.out}: {folder / 2**20:.1f} MiB at JPEG quality {chosen} "
        f"(mean PSNR {np.mean(scores):.1f} dB against the original cut; median cut "
        f"{int(np.median([w for w, _ in sizes]))} x {int(np.median([h for _, h in sizes]))} px); "
        f"with .whl and the tracked files: {total / 2**20:.1f} MiB of 64; "
        f"{time.time() - started:.0f} s"
    )
    for reason, ids in sorted(skipped.items()):
        print(f"  not packed ({reason}): {len(ids)} records, first {ids[:3]}")
    write_zip(args.out)


def write_zip(folder):
    """<folder>.zip, stored (JPEGs do not compress), paths relative to the folder's parent."""
    parent, name = os.path.split(os.path.normpath(folder))
    target = os.path.normpath(folder) + ".zip"
    with zipfile.ZipFile(target + ".tmp", "w", zipfile.ZIP_STORED) as archive:
        for root, _, files in sorted(os.walk(folder)):
            for f in sorted(files):
                path = os.path.join(root, f)
                archive.write(path, os.path.relpath(path, parent or "."))
    os.replace(target + ".tmp", target)
    others = tracked_bytes() + (folder_bytes(".whl") if os.path.isdir(".whl") else 0)
    size = os.path.getsize(target)
    print(
        f"wrote {target}: {size / 2**20:.1f} MiB; with .whl and the tracked files "
        f"{(size + others) / 2**20:.1f} MiB of 64"
    )


if __name__ == "__main__":
    sys.exit(main())
