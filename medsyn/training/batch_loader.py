"""Training batches read through ``torch.utils.data.DataLoader``, optionally by worker processes.

    batches = ShuffledBatches(len(train), 32, seed)
    stream = load_batches(train.images, train.labels, (batches.next() for _ in range(steps)),
                          num_workers=2, device=device)
    with contextlib.closing(stream):
        for batch in stream:                              # LoadedBatch(index, images, labels), on the CPU
            images, labels = batch.images_and_labels(device)

Which images form a batch is decided in the main process: ``batch_indices`` yields each batch's int64
indices (from a seeded order, ``medsyn.training.batches``), and the DataLoader (``batch_size=None``) hands
each index tensor to a worker, which reads ``images[index]``. So the batches are exactly those of an
in-process loop, whatever ``num_workers``; workers only read (a tensor, or ``StoredImages`` whose image
stores pickle without their memory map and map the file again in each worker).

A DataLoader draws ``batch_indices`` ahead of the batches trained on (``prefetch_factor`` per worker): a
loop that checkpoints its batch order keeps the order it saves apart and advances it per consumed batch,
and gives the loader a ``clone()`` (``medsyn.training.loop``).

One DataLoader iterator spans a whole training run, so its worker pool is started once per run (not per
epoch) and shut down when the stream ends or is closed. ``num_workers=0`` reads in the main process when
the batch is asked for, as a plain loop would. Under CUDA the batches come in pinned memory and
``images_and_labels`` copies them with ``non_blocking=True``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["DEFAULT_NUM_WORKERS", "LoadedBatch", "check_num_workers", "load_batches"]

# In-process reading: no worker processes unless a config asks for them (TrainingSettings, ClassifierSection).
DEFAULT_NUM_WORKERS = 0


class LoadedBatch(NamedTuple):
    """One batch as read: index int64 [B] (positions in the training set), images float32 [B,C,H,W] in
    [0,1], labels int64 [B]. B may be 0 (an empty Poisson batch)."""

    index: torch.Tensor
    images: torch.Tensor
    labels: torch.Tensor

    def images_and_labels(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, labels) on ``device`` (asynchronous copies from pinned memory under CUDA)."""
        device = torch.device(device)
        non_blocking = device.type == "cuda"
        return self.images.to(device, non_blocking=non_blocking), self.labels.to(device, non_blocking=non_blocking)


class _BatchesOf(Dataset):
    """A map-style dataset keyed by index tensors: ``dataset[index]`` is the whole batch at ``index``."""

    def __init__(self, images: Any, labels: torch.Tensor) -> None:
        self.images = images  # float32 tensor [N,C,H,W] or StoredImages (indexing reads the batch)
        self.labels = labels

    def __getitem__(self, index: torch.Tensor) -> LoadedBatch:
        return LoadedBatch(index, self.images[index], self.labels[index])


def check_num_workers(value: Any, name: str = "num_workers") -> int:
    """``value`` if it is an integer >= 0; ValueError naming ``name`` otherwise."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name}: must be an integer >= 0, got {value!r}")
    return value


def load_batches(
    images: Any,
    labels: torch.Tensor,
    batch_indices: Iterable[torch.Tensor],
    *,
    num_workers: int = DEFAULT_NUM_WORKERS,
    device: torch.device | str = "cpu",
) -> Iterator[LoadedBatch]:
    """The batches ``images[index], labels[index]`` for each ``index`` of ``batch_indices``, in that order.

    images: float32 [N,C,H,W] in [0,1], a CPU tensor or ``StoredImages``; labels: int64 [N].
    batch_indices: int64 index tensors (any length, 0 included), iterated in this process.
    num_workers: worker processes that read the batches (0: read here, when asked for).
    device: where the batches will go; under CUDA they are read into pinned memory.
    Close the returned generator (``contextlib.closing``) to stop the workers of a stream left unfinished.
    """
    check_num_workers(num_workers)
    pin_memory = torch.device(device).type == "cuda" and images.device.type == "cpu"
    loader = DataLoader(
        _BatchesOf(images, labels),
        batch_size=None,  # each key is a whole batch's index tensor
        sampler=batch_indices,
        num_workers=num_workers,
        pin_memory=pin_memory,
        # Starting an iterator draws a base seed for the workers; from its own generator, so the global RNG
        # the training step draws from is left where it was (runs with 0 and N workers stay bit-identical).
        generator=torch.Generator().manual_seed(0),
    )
    return _stream(loader)


def _stream(loader: DataLoader) -> Iterator[LoadedBatch]:
    # A generator, so that close() drops the DataLoader iterator, whose finaliser stops the workers.
    yield from loader
