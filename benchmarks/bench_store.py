"""On-disk image store (medsyn.data.store): build throughput, reuse check, random batch reads, bytes per image.

    python benchmarks/bench_store.py                            # the table in benchmarks/README.md
    python benchmarks/bench_store.py --count 8000 --size 256    # another size
    python -m pytest benchmarks/bench_store.py --benchmark-only

Source: COUNT RGB SIZE x SIZE images (default 2,000 at 64 px), one ``.npy`` file each in a temporary
folder (so the reuse check stats real files), decoded from memory by ``uint8 / 255`` (so the build time is
the store's own cost, not a codec's: a PNG decode and resize cost more than the whole build here).
"8-bit" data are stored as uint8; "resampled" data (the mean of two 8-bit neighbours, mostly off the
1/255 grid) go to uint16 under dtype "auto".

Timed (wall clock, best of ROUNDS):
  build            build_store into an empty cache: decode, check, encode, write, fsync, rename
  decode only      the same decode calls alone, for the share the store adds
  reuse            build_store again: fingerprint every file, read the manifest, open the memory map
  read             ImageStore.read of BATCH random indices (page cache warm), against indexing the
                   in-memory float32 tensor of the same images (what an ImageSet costs)
Disk: images.npy + labels.npy + manifest.json, per image.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from medsyn.data.store import build_store

COUNT = 2000
SIZE = 64
BATCH = 64
ROUNDS = 3
READ_CALLS = 200
CLASSES = ("a", "b", "c", "d")


class BenchSource:
    """COUNT random RGB images as files under ``root`` and in memory."""

    def __init__(self, root: Path, count: int = COUNT, size: int = SIZE, resampled: bool = False):
        rng = np.random.default_rng(0)
        self.root = root
        self.pixels = rng.integers(0, 256, size=(count, 3, size, size), dtype=np.uint8)
        self.labels = (np.arange(count) % len(CLASSES)).tolist()
        self.resampled = resampled
        root.mkdir(parents=True, exist_ok=True)
        self.files = []
        for index in range(count):
            path = root / f"{index:06d}.npy"
            np.save(path, self.pixels[index])
            self.files.append(path)

    def decode(self, index: int) -> np.ndarray:
        values = self.pixels[index].astype(np.float32) / 255
        if self.resampled:
            values = (values + np.roll(values, 1, axis=-1)) / np.float32(2)
        return values

    def build(self, cache: Path):
        count, _, size, _ = self.pixels.shape
        return build_store(
            kind="bench_folder", root=self.root, files=self.files, labels=self.labels, class_names=CLASSES,
            image_shape=(3, size, size), decode=self.decode, options={"size": size, "resampled": self.resampled},
            cache_dir=cache,
        )


def _best(function, rounds: int = ROUNDS, setup=None) -> float:
    best = float("inf")
    for _ in range(rounds):
        if setup is not None:
            setup()
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def read_batches(store, batches) -> None:
    """Each batch is dropped before the next, as a training loop does (keeping them all would time page faults)."""
    for batch in batches:
        store.read(batch)


def index_batches(images: torch.Tensor, batches) -> None:
    """The in-memory reference: what ``ImageSet.subset`` does with its images."""
    for batch in batches:
        images[batch]


def disk_bytes_per_image(store) -> float:
    return sum(path.stat().st_size for path in store.path.iterdir()) / len(store)


def measure(count: int = COUNT, size: int = SIZE, resampled: bool = False) -> dict:
    work = Path(tempfile.mkdtemp(prefix="medsyn-bench-store-"))
    try:
        source = BenchSource(work / "source", count, size, resampled)
        cache = work / "cache"
        build_seconds = _best(lambda: source.build(cache), setup=lambda: shutil.rmtree(cache, ignore_errors=True))
        decode_seconds = _best(lambda: [source.decode(i) for i in range(count)])
        store = source.build(cache).store
        reuse_seconds = _best(lambda: source.build(cache))
        rng = np.random.default_rng(1)
        batches = [rng.integers(0, count, size=BATCH) for _ in range(READ_CALLS)]
        store.read(np.arange(count))  # warm the page cache, as an epoch would
        read_seconds = _best(lambda: read_batches(store, batches))
        in_memory = torch.from_numpy(np.stack([source.decode(i) for i in range(count)]))
        tensors = [torch.from_numpy(batch) for batch in batches]
        memory_seconds = _best(lambda: index_batches(in_memory, tensors))
        return {
            "count": count, "size": size, "data": "resampled" if resampled else "8-bit",
            "storage_dtype": store.storage_dtype, "max_abs_error": store.max_abs_error,
            "build_images_per_s": count / build_seconds, "decode_only_images_per_s": count / decode_seconds,
            "reuse_seconds": reuse_seconds,
            "read_images_per_s": READ_CALLS * BATCH / read_seconds,
            "in_memory_images_per_s": READ_CALLS * BATCH / memory_seconds,
            "disk_bytes_per_image": disk_bytes_per_image(store),
            "float32_bytes_per_image": 4 * 3 * size * size,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def bench_source(tmp_path_factory):
    return BenchSource(tmp_path_factory.mktemp("store-source"))


@pytest.mark.parametrize("resampled", [False, True], ids=["8-bit", "resampled"])
def test_bench_store_build(benchmark, tmp_path, resampled):
    source = BenchSource(tmp_path / "source", resampled=resampled)
    cache = tmp_path / "cache"
    benchmark.pedantic(lambda: source.build(cache), setup=lambda: shutil.rmtree(cache, ignore_errors=True),
                       rounds=ROUNDS, iterations=1)
    store = source.build(cache).store
    benchmark.extra_info.update(
        images=COUNT, size=SIZE, storage_dtype=store.storage_dtype,
        images_per_s=COUNT / benchmark.stats.stats.min, disk_bytes_per_image=disk_bytes_per_image(store),
    )


def test_bench_store_reuse(benchmark, bench_source, tmp_path):
    bench_source.build(tmp_path)
    benchmark.pedantic(lambda: bench_source.build(tmp_path), rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update(images=COUNT, files_per_s=COUNT / benchmark.stats.stats.min)


def test_bench_store_random_batch_read(benchmark, bench_source, tmp_path):
    store = bench_source.build(tmp_path).store
    batches = [np.random.default_rng(seed).integers(0, COUNT, size=BATCH) for seed in range(READ_CALLS)]
    store.read(np.arange(COUNT))
    benchmark.pedantic(lambda: read_batches(store, batches), rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update(batch=BATCH, images_per_s=READ_CALLS * BATCH / benchmark.stats.stats.min,
                                bytes_per_image=store.bytes_per_image)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=COUNT)
    parser.add_argument("--size", type=int, default=SIZE)
    arguments = parser.parse_args()
    print(f"{arguments.count} RGB images of {arguments.size} px; best of {ROUNDS}; reads: {READ_CALLS} batches of {BATCH}")
    print("| data | stored | build img/s | decode-only img/s | reuse s | read img/s | in-memory img/s | disk B/img | float32 B/img |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for resampled in (False, True):
        r = measure(arguments.count, arguments.size, resampled)
        print(f"| {r['data']} | {r['storage_dtype']} | {r['build_images_per_s']:,.0f} | {r['decode_only_images_per_s']:,.0f} "
              f"| {r['reuse_seconds']:.3f} | {r['read_images_per_s']:,.0f} | {r['in_memory_images_per_s']:,.0f} "
              f"| {r['disk_bytes_per_image']:,.0f} | {r['float32_bytes_per_image']:,} |")
