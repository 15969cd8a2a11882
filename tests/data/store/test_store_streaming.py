"""A build holds one chunk of images in memory, whatever the number of images (tracemalloc counts numpy's
buffers): the peak of a 4x larger source grows by far less than one image per added image."""

from __future__ import annotations

import tracemalloc

import numpy as np

from medsyn.data.store import build_store

SHAPE = (3, 64, 64)
FLOAT_BYTES = 4 * 3 * 64 * 64


def _peak_build_bytes(tmp_path, count: int) -> int:
    root = tmp_path / f"source{count}"
    root.mkdir()
    rng = np.random.default_rng(0)
    files = []
    for index in range(count):
        files.append(root / f"{index:04d}.npy")
        np.save(files[-1], rng.integers(0, 256, size=SHAPE, dtype=np.uint8))
    tracemalloc.start()
    try:
        build_store(
            kind="fake_folder", root=root, files=files, labels=[index % 2 for index in range(count)],
            class_names=("a", "b"), image_shape=SHAPE, decode=lambda i: np.load(files[i]).astype(np.float32) / 255,
            options={}, cache_dir=tmp_path / "cache", chunk_size=8,
        )
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_of_a_build_does_not_grow_with_the_number_of_images(tmp_path):
    small, large = _peak_build_bytes(tmp_path, 64), _peak_build_bytes(tmp_path, 256)
    assert large < 8 * 8 * FLOAT_BYTES  # a few chunks of 8 images, not 256 images (50 MB as float32)
    assert large - small < 192 * FLOAT_BYTES / 20  # 192 more images cost less than 1/20 of their float32 size
