"""A generator's samples written straight into an image store, chunk by chunk, for stored real data.

    synthetic = samples_into_store(generator, labels, seed=1, train=train, run_dir=run_dir,
                                   checkpoint=run_dir / "checkpoint.pt", name="cvae seed 0")

When the real data is an image store (``train.stored``), a generator's synthetic set (3 x the real
training split in the 3x regimes: 19,200 RGB 256 px images for Kvasir, 15 GB as float32) is never held in
memory: ``generator.sample_batches`` yields it one chunk at a time into a store under
``<run_dir>/stores/`` (float32 unless the samples happen to lie on an integer grid: the store keeps every
value exactly, so the numbers are those of the in-memory path). The store is keyed by the checkpoint file
(path, size, mtime), the sampling seed and the labels: a re-run with the same checkpoint reuses the
samples without sampling again; a retrained generator resamples.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from medsyn.data.image_set import ImageSet
from medsyn.data.store import build_store
from medsyn.data.stored_images import StoredImages
from medsyn.io.output_folder import record_write

__all__ = ["STORE_FOLDER", "samples_into_store"]

STORE_FOLDER = "stores"


def samples_into_store(generator: Any, labels: torch.Tensor, *, seed: int, train: ImageSet, run_dir: Path,
                       checkpoint: Path, name: str) -> ImageSet:
    """The samples of ``generator`` for ``labels`` (sampling seed ``seed``) as a stored ImageSet."""
    batches = _sample_batches(generator, labels, seed)
    current: dict[str, Any] = {"start": 0, "chunk": torch.zeros(0)}

    def decode(index: int) -> torch.Tensor:  # items are asked for in order, once each
        while index >= current["start"] + len(current["chunk"]):
            current["start"] += len(current["chunk"])
            current["chunk"] = next(batches).float().clamp(0.0, 1.0)
        return current["chunk"][index - current["start"]]

    cache = run_dir / STORE_FOLDER
    record_write(cache)  # the store folder belongs to the run's claimed output folder
    checkpoint = Path(checkpoint)
    store = build_store(kind="generator_samples", root=checkpoint.parent, files=[checkpoint],
                        item_files=[0] * len(labels), labels=labels, class_names=train.class_names,
                        image_shape=train.image_shape, decode=decode, options={"seed": int(seed)},
                        cache_dir=cache).store
    return ImageSet(StoredImages.of_store(store), labels.clone(), train.class_names, name)


def _sample_batches(generator: Any, labels: torch.Tensor, seed: int) -> Iterator[torch.Tensor]:
    """``generator.sample_batches`` (one chunk in memory), or its whole ``sample`` for a generator that has
    no chunked sampler."""
    if hasattr(generator, "sample_batches"):
        return iter(generator.sample_batches(labels, seed=seed))
    return iter([generator.sample(labels, seed=seed)])
