"""The training loop every generator uses: seeded batches, losses in a tqdm bar, atomic checkpoints
every N steps and at the end, and exact resume after a kill.

Resume restores modules, optimisers, the batch order, the torch RNG and the loss history, so a run
killed at step k and restarted reaches the state of an uninterrupted run with the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import torch
from tqdm.auto import tqdm

from medsyn.data.image_set import ImageSet
from medsyn.training.batches import ShuffledBatches
from medsyn.training.checkpoint import load_checkpoint, save_checkpoint

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
    """

    model_name: str
    config: dict[str, Any]
    stateful: Mapping[str, Stateful]
    checkpoint_path: Path
    steps: int
    batch_size: int
    seed: int
    checkpoint_every: int = 0  # 0: only at the end
    metadata: dict[str, Any] = field(default_factory=dict)
    progress: bool = True


def run_training(run: TrainingRun, train: ImageSet, step_fn: StepFn) -> list[dict[str, float]]:
    """Call ``step_fn(images [B,C,H,W], labels [B], step)`` for the remaining steps; return the loss history.

    ``step_fn`` does one optimisation step and returns its losses as floats.
    """
    if run.steps < 0:
        raise ValueError(f"steps must be >= 0, got {run.steps}")
    if len(train) == 0:
        raise ValueError(f"training set {train.source} is empty")
    batches = ShuffledBatches(len(train), run.batch_size, run.seed)
    history: list[dict[str, float]] = []
    start = 0
    checkpoint_path = Path(run.checkpoint_path)
    if checkpoint_path.exists():
        payload = load_checkpoint(checkpoint_path, model=run.model_name, config=run.config)
        for key, obj in run.stateful.items():
            obj.load_state_dict(payload["state"][key])
        batches.load_state_dict(payload["batches"])
        torch.set_rng_state(payload["torch_rng"])
        history = list(payload["history"])
        start = int(payload["step"])
        if start > run.steps:
            raise ValueError(
                f"checkpoint {checkpoint_path} is at step {start}, beyond the {run.steps} steps asked for"
            )
    else:
        torch.manual_seed(run.seed)

    def save(step: int) -> None:
        save_checkpoint(
            checkpoint_path,
            model=run.model_name,
            config=run.config,
            state={
                "step": step,
                "state": {key: obj.state_dict() for key, obj in run.stateful.items()},
                "batches": batches.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "history": history,
                "metadata": run.metadata,
            },
        )

    bar = tqdm(range(start, run.steps), desc=f"train {run.model_name}", disable=not run.progress, leave=False)
    for step in bar:
        index = batches.next()
        losses = {key: float(value) for key, value in step_fn(train.images[index], train.labels[index], step).items()}
        history.append(losses)
        bar.set_postfix({key: f"{value:.4g}" for key, value in losses.items()})
        if run.checkpoint_every and (step + 1) % run.checkpoint_every == 0 and step + 1 < run.steps:
            save(step + 1)
    if start < run.steps or not checkpoint_path.exists():
        save(run.steps)
    return history
