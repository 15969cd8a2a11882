"""The training loop every generator uses: seeded batches, losses in a tqdm bar, atomic checkpoints
every N steps and at the end, exact resume after a kill, optional DDP and DP-SGD batch sampling.

Resume restores every object in ``TrainingRun.stateful`` (modules, optimisers, EMA, DP accountant),
the batch order, the torch RNG and the loss history, so a run killed at step k and restarted reaches
the state of an uninterrupted run with the same seed.

Under DDP (a process group is up, see ``medsyn.training.distributed``) every rank draws the same global
batch and trains on its shard; losses are averaged over ranks; only rank 0 writes checkpoints.
With ``poisson_sampling=True`` batches are Poisson-subsampled (``PoissonBatches``), which the DP-SGD
accountant requires.

Batches are read through a DataLoader (``medsyn.training.batch_loader``; ``num_workers`` processes, 0 reads
in this process). The loader draws its batch indices from a clone of the run's batch order and may run
ahead; the run's own order advances once per batch trained on, so a checkpoint saves the position of the
batches consumed, not of those prefetched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from medsyn.data.image_set import ImageSet
from medsyn.training.batch_loader import DEFAULT_NUM_WORKERS, check_num_workers, load_batches
from medsyn.training.batches import PoissonBatches, ShuffledBatches, shard_batch
from medsyn.training.checkpoint import load_checkpoint, save_checkpoint
from medsyn.training.distributed import all_reduce_mean, barrier, broadcast_buffers, rank_and_world_size

__all__ = ["Stateful", "TrainingRun", "run_training"]

StepFn = Callable[[torch.Tensor, torch.Tensor, int], Mapping[str, float]]


class Stateful(Protocol):
    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> Any: ...


@dataclass
class TrainingRun:
    """What to train and where to keep it.

    model_name / config identify the checkpoint (a checkpoint of another model or config refuses to load).
    stateful: every object whose state must survive a restart (modules, optimisers, EMA, DP accountant).
    checkpoint_every: write a checkpoint every this many steps (0: only at the end).
    metadata: stored in every checkpoint under "metadata"; metadata_fn() (e.g. the epsilon spent so far)
        is evaluated at each save and merged over it.
    poisson_sampling: Poisson batches with sample rate batch_size / len(train) (DP-SGD) instead of
        shuffled fixed-size batches.
    device: where each batch is moved before ``step_fn`` (the modules must already be there); the
        training set itself stays on the CPU.
    num_workers: DataLoader worker processes reading the batches (0: read in this process); the batches,
        and so the run, are the same for any number.
    """

    model_name: str
    config: dict[str, Any]
    stateful: Mapping[str, Stateful]
    checkpoint_path: Path
    steps: int
    batch_size: int
    seed: int
    checkpoint_every: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    poisson_sampling: bool = False
    metadata_fn: Callable[[], dict[str, Any]] | None = None
    device: torch.device | str = "cpu"
    num_workers: int = DEFAULT_NUM_WORKERS


def run_training(run: TrainingRun, train: ImageSet, step_fn: StepFn) -> list[dict[str, float]]:
    """Call ``step_fn(images [B,C,H,W], labels [B], step)`` for the remaining steps; return the loss history.

    ``step_fn`` does one optimisation step and returns its losses as floats. Under Poisson sampling B
    varies and may be 0 (the step must still be taken: DP-SGD adds noise to an empty batch's gradient).
    The history holds one dict per step since step 0 (restored from the checkpoint on resume).
    """
    if run.steps < 0:
        raise ValueError(f"steps must be >= 0, got {run.steps}")
    if run.checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be >= 0, got {run.checkpoint_every}")
    check_num_workers(run.num_workers)
    if len(train) == 0:
        raise ValueError(f"training set {train.source} is empty")
    rank, world_size = rank_and_world_size()
    device = torch.device(run.device)
    batches = _batch_sampler(run, len(train), world_size)
    checkpoint_path = Path(run.checkpoint_path)
    if checkpoint_path.exists():
        start, history = _resume(run, checkpoint_path, batches)
    else:
        start, history = 0, []
        torch.manual_seed(run.seed)

    def save(step: int) -> None:
        if rank == 0:
            _save(run, checkpoint_path, step, batches, history, world_size)
        barrier()  # no rank runs ahead (or exits) before the checkpoint is on disk

    bar = tqdm(
        range(start, run.steps),
        desc=f"train {run.model_name}",
        disable=not run.progress or rank != 0,
        leave=False,
    )
    # The loader draws from a clone (and runs ahead); ``batches`` advances per batch trained on and is saved.
    ahead = _sharded(batches.clone(), run.steps - start, rank, world_size)
    stream = load_batches(train.images, train.labels, ahead, num_workers=run.num_workers, device=device)
    with closing(stream):
        for step, batch in zip(bar, stream):
            index = shard_batch(batches.next(), rank, world_size)
            if not torch.equal(index, batch.index):  # a broken invariant, never data-dependent
                raise RuntimeError(f"step {step}: the batch read is not the batch of the run's order")
            images, labels = batch.images_and_labels(device)
            losses = {key: float(value) for key, value in step_fn(images, labels, step).items()}
            losses = all_reduce_mean(losses)
            history.append(losses)
            bar.set_postfix({key: f"{value:.4g}" for key, value in losses.items()})
            if run.checkpoint_every and (step + 1) % run.checkpoint_every == 0 and step + 1 < run.steps:
                save(step + 1)
    if world_size > 1:
        for obj in run.stateful.values():
            if isinstance(obj, torch.nn.Module):
                broadcast_buffers(obj)
    if start < run.steps or not checkpoint_path.exists():
        save(run.steps)
    return history


def _sharded(order: ShuffledBatches | PoissonBatches, count: int, rank: int, world_size: int
             ) -> Iterator[torch.Tensor]:
    """This rank's share of the next ``count`` batches of ``order``."""
    for _ in range(count):
        yield shard_batch(order.next(), rank, world_size)


def _batch_sampler(run: TrainingRun, size: int, world_size: int) -> ShuffledBatches | PoissonBatches:
    """Shuffled fixed-size batches, or Poisson sampling at rate batch_size / size under DP-SGD."""
    if not run.poisson_sampling:
        return ShuffledBatches(size, run.batch_size, run.seed)
    if world_size > 1:
        raise ValueError("Poisson sampling (DP-SGD) is not supported together with DDP; run DP in one process")
    return PoissonBatches(size, min(1.0, run.batch_size / size), run.seed)


def _resume(run: TrainingRun, checkpoint_path: Path, batches: ShuffledBatches | PoissonBatches
            ) -> tuple[int, list[dict[str, float]]]:
    """Restore every stateful object, the batch sampler and the RNGs; return (next step, loss history)."""
    payload = load_checkpoint(checkpoint_path, model=run.model_name, config=run.config)
    missing = sorted(set(run.stateful) - set(payload["state"]))
    if missing:
        raise ValueError(f"checkpoint {checkpoint_path} has no state for {missing}")
    start = int(payload["step"])
    if start > run.steps:
        raise ValueError(f"checkpoint {checkpoint_path} is at step {start}, beyond the {run.steps} steps asked for")
    for key, obj in run.stateful.items():
        obj.load_state_dict(payload["state"][key])
    batches.load_state_dict(payload["batches"])
    torch.set_rng_state(payload["torch_rng"])
    if payload.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
    return start, list(payload["history"])


def _save(run: TrainingRun, checkpoint_path: Path, step: int, batches: ShuffledBatches | PoissonBatches,
          history: list[dict[str, float]], world_size: int) -> None:
    """The checkpoint at ``step``: states, sampler, RNGs, history and metadata (written atomically)."""
    metadata = dict(run.metadata)
    if run.metadata_fn is not None:
        metadata.update(run.metadata_fn())
    save_checkpoint(
        checkpoint_path,
        model=run.model_name,
        config=run.config,
        state={
            "step": step,
            "state": {key: obj.state_dict() for key, obj in run.stateful.items()},
            "batches": batches.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "history": history,
            "metadata": metadata,
            "world_size": world_size,
        },
    )
