"""Throughput of the training input pipeline (decode, crop, augment, heatmap targets, batch).

    python benchmarks/input_pipeline.py --data-dir ../shared/data/lspet --images 2000

Measures images/s of `make_dataset` from raw JPEGs and from a crop cache (built first if missing,
its build time reported apart), of the TensorFlow-free executor (`inputs.numpy_data.PoseSequence`) with one
worker (the per-core rate), with one thread per core and with one process per core, and of a
per-image Python baseline doing the same work with OpenCV and NumPy in a pool of one process per
core (what a PyTorch DataLoader with num_workers=cores over a cv2 dataset does). Each is warmed up
with one batch, then timed over --images images. `--no-tf` measures only what runs without
TensorFlow (the GPU machines). The last line is:

    input_pipeline raw_ips=<n> cache_ips=<n> numpy_ips=<n> numpy_processes_ips=<n>
        numpy_per_worker_ips=<n> baseline_ips=<n> cores=<n>

`--device` measures only the device executor (`inputs.device_data`: the bank of person cuts,
then batches made by JAX on its default device) and prints

    input_pipeline device_ips=<n> bank_people_per_s=<n> cores=<n>
"""

import argparse
import math
import multiprocessing
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

SIZE, HEATMAP, SIGMA = 256, 64, 1.0


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
    crop = cv2.warpAffine(
        image,
        src_from_crop,
        (SIZE, SIZE),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
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


def baseline(records, flip_index, images, batch_size, processes):
    jobs = [
        (r.image_path, r.keypoints, r.annotated, r.center, r.scale, i, flip_index)
        for i, r in zip(range(images + batch_size), _cycle(records))
    ]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
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
    return images, heatmaps


def tf_throughput(ds, images, batch_size):
    iterator = iter(ds)
    next(iterator)  # warm-up (graph tracing, first reads)
    start = time.perf_counter()
    for _ in range(images // batch_size):
        next(iterator)
    return (images // batch_size) * batch_size / (time.perf_counter() - start)


_FORKED = None


def _forked_batch(index):
    images, targets = _FORKED[index]
    return images, targets  # sent back as a process pool does (the baseline too)


def numpy_throughput(records, codec, images, batch_size, workers, processes=False):
    """images/s of PoseSequence: one worker in this thread, `workers` threads, or `workers`
    forked processes, each preparing whole batches."""
    import keras_hourglass as kh
    from keras_hourglass.inputs import batches
    from keras_hourglass.inputs.numpy_data import PoseSequence

    n = images // batch_size + 1
    many = [records[i % len(records)] for i in range(n * batch_size)]
    ds = PoseSequence(
        many,
        kh.LSP,
        codec,
        batch_size,
        training=True,
        seed=0,
        repeat=False,
        shuffle=False,
        workers=workers,
    )
    ds[0]  # warm-up (imports, first reads)
    start = time.perf_counter()
    if workers == 1:
        for i in range(1, n):
            ds[i]
    elif processes:
        global _FORKED
        _FORKED = ds  # inherited by the forked workers: nothing pickled per batch but the index
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for _ in pool.imap(_forked_batch, range(1, n)):
                pass
    else:
        iterator = batches(ds)
        next(iterator)
        start = time.perf_counter()
        for _ in iterator:
            pass
        n -= 1
    return (n - 1) * batch_size / (time.perf_counter() - start)


def device_throughput(records, codec, images, batch_size, workers):
    """(images/s of the device executor's batches, people/s of its bank's cutting): the bank
    holds up to `images` people (cut with `workers` threads), then batches are timed until the
    device has finished them (on the GPU machines the GPU, here JAX on the CPU)."""
    import jax

    import keras_hourglass as kh
    from keras_hourglass.inputs.device_data import DevicePoseSequence, PersonBank

    people = records[: max(batch_size, min(len(records), images))]
    bank = PersonBank.build(people, codec, workers=workers)
    print(f"{bank}, cut in {bank.build_seconds:.1f} s")
    ds = DevicePoseSequence(bank, kh.LSP, codec, batch_size, training=True, seed=0)
    jax.block_until_ready(ds[0])  # warm-up: compiles
    n = max(images // batch_size, 2)
    start = time.perf_counter()
    for i in range(1, n + 1):
        last = ds[i]
    jax.block_until_ready(last)
    return n * batch_size / (time.perf_counter() - start), len(people) / bank.build_seconds


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default="../shared/data/lspet", help="an LSP/LSPET folder")
    parser.add_argument("--images", type=int, default=2000, help="images timed per variant")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--cache-dir",
        default="/tmp/keras_hourglass_bench_cache",
        help="crop cache folder (built if missing)",
    )
    parser.add_argument(
        "--no-tf",
        action="store_true",
        help="skip the tf.data variants (for machines without TensorFlow)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="threads/processes of the parallel variants (default: the cores)",
    )
    parser.add_argument(
        "--device",
        action="store_true",
        help="measure only the device executor (JAX; what gpu_learning.sh trains with)",
    )
    args = parser.parse_args(argv)

    import keras_hourglass as kh
    from keras_hourglass.datasets import read_dataset
    from keras_hourglass.inputs import default_workers

    cores = args.workers or default_workers()
    records = read_dataset("lspet", args.data_dir, skip_bad=True)
    print(records.summary()[:160])
    codec = kh.HeatmapCodec(SIZE, HEATMAP, SIGMA)
    if args.device:
        device_ips, cut_ps = device_throughput(records, codec, args.images, args.batch_size, cores)
        import jax

        print(
            f"\ndevice executor on {jax.devices()[0]}: {args.images} images of "
            f"{len(records)}, batch {args.batch_size}, {SIZE}px crops"
        )
        print(
            f"input_pipeline device_ips={device_ips:.0f} bank_people_per_s={cut_ps:.0f} cores={cores}"
        )
        return
    raw_ips = cache_ips = float("nan")
    version = "absent"
    if not args.no_tf:
        import tensorflow as tf

        from keras_hourglass.inputs.cache import write_crop_cache
        from keras_hourglass.inputs.tf_data import make_dataset

        version = tf.__version__
        start = time.perf_counter()
        write_crop_cache(records, args.cache_dir, kh.LSP, SIZE, verbose=False)
        print(f"crop cache build (or check): {time.perf_counter() - start:.1f} s")
        raw = make_dataset(records, kh.LSP, codec, args.batch_size, True, seed=0)
        cached = make_dataset(args.cache_dir, kh.LSP, codec, args.batch_size, True, seed=0)
        raw_ips = tf_throughput(raw, args.images, args.batch_size)
        cache_ips = tf_throughput(cached, args.images, args.batch_size)
    one = numpy_throughput(records, codec, min(args.images, 400), args.batch_size, 1)
    threads = numpy_throughput(records, codec, args.images, args.batch_size, cores)
    processes = numpy_throughput(records, codec, args.images, args.batch_size, cores, True)
    baseline_ips = baseline(
        records, np.array(kh.LSP.flip_index), args.images, args.batch_size, cores
    )

    print(
        f"\nmachine: {os.cpu_count()} cores ({cores} used), TensorFlow {version}; "
        f"{args.images} images of {len(records)}, batch {args.batch_size}, {SIZE}px crops, "
        f"{HEATMAP}x{HEATMAP}x14 targets (one per image, whatever the stacks)"
    )
    print(f"{'variant':<44}{'images/s':>10}")
    print(f"{'tf.data from raw JPEGs':<44}{raw_ips:>10.0f}")
    print(f"{'tf.data from the crop cache':<44}{cache_ips:>10.0f}")
    print(f"{'numpy executor, 1 worker (per core)':<44}{one:>10.0f}")
    print(f"{f'numpy executor, {cores} threads':<44}{threads:>10.0f}")
    print(f"{f'numpy executor, {cores} processes':<44}{processes:>10.0f}")
    print(f"{f'OpenCV + NumPy baseline, {cores} processes':<44}{baseline_ips:>10.0f}")
    print(
        f"input_pipeline raw_ips={raw_ips:.0f} cache_ips={cache_ips:.0f} numpy_ips={threads:.0f} "
        f"numpy_processes_ips={processes:.0f} numpy_per_worker_ips={one:.0f} "
        f"baseline_ips={baseline_ips:.0f} cores={cores}"
    )


if __name__ == "__main__":
    sys.exit(main())
