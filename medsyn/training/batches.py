"""Seeded, resumable mini-batch orders over a training set.

Two orders, one convention (``next() -> indices``, ``state_dict()``/``load_state_dict()``, ``clone()``):

- ``ShuffledBatches``: epochs of a seeded permutation cut into fixed-size batches (ordinary training).
- ``PoissonBatches``: every item joins each batch independently with probability ``sample_rate``
  (DP-SGD: the RDP accountant's amplification-by-subsampling bound assumes exactly this sampling).

Either order is a pure function of (seed, position) and its state is part of every checkpoint, so a
resumed run sees exactly the batches the uninterrupted run would have seen.

``clone()`` is an independent order at the same position: a DataLoader may draw ahead on the clone while
the training loop's own order advances only with the batches consumed, so a checkpoint saves the position
of the last batch trained on (``medsyn.training.batch_loader``).

Under DDP every rank draws the same global batch and keeps its share (``shard_batch``), so the union
over ranks is the single-process batch.
"""

from __future__ import annotations

import torch

__all__ = ["PoissonBatches", "ShuffledBatches", "shard_batch"]

# Seeds of per-epoch / per-step generators are spread by a large prime so that (seed, position) pairs
# of different runs do not collide for any realistic number of epochs or steps.
_SEED_STRIDE = 1_000_003


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
        generator = torch.Generator().manual_seed(self.seed * _SEED_STRIDE + epoch)
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
        return {
            "kind": "shuffled",
            "epoch": self.epoch,
            "position": self.position,
            "seed": self.seed,
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind", "shuffled") != "shuffled":
            raise ValueError(
                f"batch order in checkpoint is {state.get('kind')!r}, this run uses shuffled batches"
            )
        if state["seed"] != self.seed or state["batch_size"] != self.batch_size:
            raise ValueError(
                f"batch order in checkpoint (seed {state['seed']}, batch {state['batch_size']}) does not match "
                f"this run (seed {self.seed}, batch {self.batch_size})"
            )
        self.epoch = state["epoch"]
        self.position = state["position"]
        self._order = self._permutation(self.epoch)

    def clone(self) -> ShuffledBatches:
        """An independent order at this position: it yields the batches this one would, and advancing
        either leaves the other where it was."""
        twin = ShuffledBatches(self.num_items, self.batch_size, self.seed)
        twin.load_state_dict(self.state_dict())
        return twin


class PoissonBatches:
    """Poisson subsampling: batch t holds each item independently with probability ``sample_rate``.

    Batch sizes vary (mean ``sample_rate * num_items``) and may be empty; the sorted indices of batch t
    depend only on (seed, t).
    """

    def __init__(self, num_items: int, sample_rate: float, seed: int) -> None:
        if num_items <= 0:
            raise ValueError(f"num_items must be positive, got {num_items}")
        if not 0.0 < sample_rate <= 1.0:
            raise ValueError(f"sample_rate must lie in (0, 1], got {sample_rate}")
        self.num_items = num_items
        self.sample_rate = float(sample_rate)
        self.seed = seed
        self.step = 0

    def next(self) -> torch.Tensor:
        """Indices (int64 [B], B ~ Binomial(num_items, sample_rate), possibly 0) of the next batch."""
        generator = torch.Generator().manual_seed(self.seed * _SEED_STRIDE + self.step)
        self.step += 1
        keep = torch.rand(self.num_items, generator=generator) < self.sample_rate
        return torch.nonzero(keep, as_tuple=False).flatten()

    def state_dict(self) -> dict:
        return {
            "kind": "poisson",
            "step": self.step,
            "seed": self.seed,
            "sample_rate": self.sample_rate,
            "num_items": self.num_items,
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != "poisson":
            raise ValueError(
                f"batch order in checkpoint is {state.get('kind', 'shuffled')!r}, this run uses Poisson"
            )
        mine = (self.seed, self.sample_rate, self.num_items)
        theirs = (state["seed"], state["sample_rate"], state["num_items"])
        if mine != theirs:
            raise ValueError(
                f"Poisson batch order in checkpoint (seed, sample_rate, num_items) = {theirs} does not match "
                f"this run {mine}"
            )
        self.step = state["step"]

    def clone(self) -> PoissonBatches:
        """An independent order at this step: it yields the batches this one would, and advancing either
        leaves the other where it was."""
        twin = PoissonBatches(self.num_items, self.sample_rate, self.seed)
        twin.load_state_dict(self.state_dict())
        return twin


def shard_batch(indices: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """This rank's share of a global batch: every ``world_size``-th index starting at ``rank``.

    With ``len(indices)`` divisible by ``world_size`` all shards have equal size, so the DDP gradient
    average equals the single-process mean over the global batch.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank must lie in [0, world_size), got rank {rank}, world_size {world_size}")
    return indices[rank::world_size]
