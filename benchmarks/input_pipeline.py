"""Throughput of the training input pipeline (decode, crop, augment, 8-stack heatmaps, batch).

    python benchmarks/input_pipeline.py --data-dir ../shared/data/lspet --images 2000

Measures images/s of `make_dataset` from raw JPEGs and from a crop cache (built first if missing,
its build time reported apart), and of a per-image Python baseline doing the same work with OpenCV
and NumPy in a 2-process pool (what a PyTorch DataLoader with num_workers=2 over a cv2 dataset
does). Each is warmed up with one batch, then timed over --images images. The last line is:

    input_pipeline raw_ips=<n> cache_ips=<n> baseline_ips=<n> ratio_cache_vs_baseline=<x>
"""

import argparse
import math
import multiprocessing
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

SIZE, HEATMAP, STACKS, SIGMA = 256, 64, 8, 1.0


def _baseline_sample(args):
    """One training sample with OpenCV + NumPy: the same augmentation and targets."""
    import cv2

    path, keypoints, annotated, center, scale, seed, flip_index = args
    rng = np.random.default_rng(seed)
    sf = np.clip(1 + 0.125 * rng.normal(), 0.75, 1.25)
    angle = np.clip(15 * rng.normal(), -30, 30) if rng.uniform() < 0.4 else 0.0
    flip = rng.uniform() < 0.5
    gains = rng.uniform(0.6, 1.4, 3)
    image = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    k = 200 * scale * sf / SIZE
    a = math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) * k
    if flip:
        rot = rot @ np.diag([-1.0, 1.0])
    m = (SIZE - 1) / 2
    src_from_crop = np.hstack([rot, (center - rot @ [m, m])[:, None]])
    crop = cv2.warpAffine(image, src_from_crop, (SIZE, SIZE),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    crop = np.clip(crop.astype(np.float32) / 255.0 * gains.astype(np.float32), 0, 1)
    kp = (np.linalg.inv(rot) @ (keypoints - center).T).T + m
    if flip:
        kp, annotated = kp[flip_index], annotated[flip_index]
    mu = (kp + 0.5) / (SIZE / HEATMAP) - 0.5
    xs = np.arange(HEATMAP, dtype=np.float32)
    inside = np.all((kp >= -0.5) & (kp < SIZE - 0.5), axis=1) & annotated
    gx = np.exp(-((xs[None] - mu[:, :1]) ** 2) / (2 * SIGMA**2)) * inside[:, None]
    gy = np.exp(-((xs[None] - mu[:, 1:]) ** 2) / (2 * SIGMA**2))
    heatmaps = np.einsum("kh,kw->hwk", gy, gx).astype(np.float32)
    return crop, heatmaps


def baseline(records, flip_index, images, batch_size):
    jobs = [(r.image_path, r.keypoints, r.annotated, r.center, r.scale, i, flip_index)
            for i, r in zip(range(images + batch_size), _cycle(records))]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.imap(_baseline_sample, jobs, chunksize=8)
        _batch(results, batch_size)  # warm-up batch
        start = time.perf_counter()
        for _ in range(images // batch_size):
            _batch(results, batch_size)
        return (images // batch_size) * batch_size / (time.perf_counter() - start)


def _cycle(records):
    while True:
        yield from records


def _batch(results, batch_size):
    samples = [next(results) for _ in range(batch_size)]
    images = np.stack([s[0] for s in samples])
    heatmaps = np.stack([s[1] for s in samples])
    return images, {f"heatmaps_{s}": heatmaps for s in range(STACKS)}


def tf_throughput(ds, images, batch_size):
    iterator = iter(ds)
    next(iterator)  # warm-up (graph tracing, first reads)
    start = time.perf_counter()
    for _ in range(images // batch_size):
        next(iterator)
    return (images // batch_size) * batch_size / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data/lspet", help="an LSP/LSPET folder")
    parser.add_argument("--images", type=int, default=2000, help="images timed per variant")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--cache-dir", default="/tmp/keras_hourglass_bench_cache",
                        help="crop cache folder (built if missing)")
    args = parser.parse_args(argv)

    import tensorflow as tf

    import keras_hourglass as kh
    from keras_hourglass.cache import write_crop_cache
    from keras_hourglass.datasets import read_dataset
    from keras_hourglass.pipeline import make_dataset

    records = read_dataset("lspet", args.data_dir, skip_bad=True)
    print(records.summary()[:160])
    codec = kh.HeatmapCodec(SIZE, HEATMAP, SIGMA)
    start = time.perf_counter()
    write_crop_cache(records, args.cache_dir, kh.LSP, SIZE, verbose=False)
    cache_build = time.perf_counter() - start

    raw = make_dataset(records, kh.LSP, codec, args.batch_size, True, STACKS, seed=0)
    cached = make_dataset(args.cache_dir, kh.LSP, codec, args.batch_size, True, STACKS, seed=0)
    raw_ips = tf_throughput(raw, args.images, args.batch_size)
    cache_ips = tf_throughput(cached, args.images, args.batch_size)
    baseline_ips = baseline(records, np.array(kh.LSP.flip_index), args.images, args.batch_size)

    print(f"\nmachine: {os.cpu_count()} cores, TensorFlow {tf.__version__}; "
          f"{args.images} images of {len(records)}, batch {args.batch_size}, {SIZE}px crops, "
          f"{STACKS} stacks of {HEATMAP}x{HEATMAP}x14 targets")
    print(f"crop cache build (or check): {cache_build:.1f} s")
    print(f"{'variant':<34}{'images/s':>10}")
    print(f"{'tf.data from raw JPEGs':<34}{raw_ips:>10.0f}")
    print(f"{'tf.data from the crop cache':<34}{cache_ips:>10.0f}")
    print(f"{'OpenCV + NumPy, 2 processes':<34}{baseline_ips:>10.0f}")
    print(f"input_pipeline raw_ips={raw_ips:.0f} cache_ips={cache_ips:.0f} "
          f"baseline_ips={baseline_ips:.0f} ratio_cache_vs_baseline={cache_ips / baseline_ips:.2f}")


if __name__ == "__main__":
    sys.exit(main())
