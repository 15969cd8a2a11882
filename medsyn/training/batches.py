"""Seeded, resumable mini-batch order over a training set.

The order is a function of (seed, position), and its state is part of every checkpoint, so a resumed
run sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import torch

__all__ = ["ShuffledBatches"]


class ShuffledBatches:
    """Epochs of a seeded permutation, cut into batches of ``batch_size`` (the last, short one dropped
    unless the data set is smaller than one batch)."""

    def __init__(self, num_items: int, batch_size: int, seed: int) -> None:
        if num_items <= 0:
            raise ValueError(f"num_items must be positive, got {num_items}")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.num_items = num_items
        self.batch_size = min(batch_size, num_items)
        self.seed = seed
        self.epoch = 0
        self.position = 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.num_items, generator=generator)

    def next(self) -> torch.Tensor:
        """Indices (int64 [batch_size]) of the next batch."""
        if self.position + self.batch_size > self.num_items:
            self.epoch += 1
            self.position = 0
            self._order = self._permutation(self.epoch)
        batch = self._order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return batch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed, "batch_size": self.batch_size}

    def load_state_dict(self, state: dict) -> None:
        if state["seed"] != self.seed or state["batch_size"] != self.batch_size:
            raise ValueError(
                f"batch order in checkpoint (seed {state['seed']}, batch {state['batch_size']}) does not match "
                f"this run (seed {self.seed}, batch {self.batch_size})"
            )
        self.epoch = state["epoch"]
        self.position = state["position"]
        self._order = self._permutation(self.epoch)
