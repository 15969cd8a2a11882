"""Train one generator, or one per sigma of a DP grid, on one drawn split, into a run folder.

    checkpoints = train_on_one_split("cvae", {"kind": "digits", "options": {}}, Path("runs/cvae"), seed=0,
                                     per_class=None, model_config={}, dp_runs=[None], progress=False,
                                     training={"steps": 2000, "batch_size": 32, "checkpoint_every": 200,
                                               "device": "cpu"})

Writes (rank 0 only under DDP):
    split_manifest.json            the split (medsyn.data.sources.draw_splits), the same for every sigma
    [sigma_<s>/]checkpoint.pt      the generator checkpoint (resumed from if it exists)
    [sigma_<s>/]training_summary.json   model, steps, final losses, parameter count, DP epsilon/delta

The model config is checked against the data (image size, classes) before the first byte is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medsyn.io.atomic import write_json_atomic
from medsyn.io.json_values import finite_or_none
from medsyn.models.registry import build_generator, model_config_of
from medsyn.training.distributed import barrier, is_main_process
from medsyn.training.dp_grid import sigma_name

__all__ = [
    "CHECKPOINT_NAME", "MANIFEST_NAME", "SUMMARY_NAME", "run_settings", "train_on_one_split", "write_training_summary",
]

CHECKPOINT_NAME = "checkpoint.pt"
MANIFEST_NAME = "split_manifest.json"
SUMMARY_NAME = "training_summary.json"


def run_settings(
    model: str,
    data: Mapping[str, Any],
    *,
    seed: int,
    per_class: int | None,
    model_config: Mapping[str, Any] | None,
    batch_size: int,
    dp: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The settings that decide what a run's files hold (its split, its weights): recorded in the output
    folder's ownership manifest; a re-run into the folder must give the same ones."""
    return {
        "model": model,
        "data": {"kind": data["kind"], "options": dict(data.get("options") or {})},
        "seed": seed,
        "per_class": per_class,
        "model_config": model_config_of(model, model_config),
        "batch_size": batch_size,
        "dp": None if dp is None else dict(dp),
    }


def train_on_one_split(model: str, data: Mapping[str, Any], output_dir: Path, *, seed: int, per_class: int | None,
                       model_config: Mapping[str, Any] | None, dp_runs: list[dict[str, Any] | None],
                       progress: bool, training: Mapping[str, Any]) -> Path | list[Path]:
    """The checkpoint path; a list of them (one per sigma, under ``sigma_<s>/``) for several DP runs."""
    from medsyn.data.sources import draw_splits
    from medsyn.data.split import save_split_manifest

    splits, split_manifest = draw_splits(data["kind"], dict(data.get("options") or {}), seed=seed,
                                         per_class=per_class)
    train = splits["train"]

    def build(dp_run: dict[str, Any] | None) -> Any:
        return build_generator(model, num_classes=train.num_classes, image_shape=train.image_shape,
                               **dict(model_config or {}), **training, dp=dp_run)

    first = build(dp_runs[0])  # the model config against the data (image size, classes) before any write
    if is_main_process():
        save_split_manifest(split_manifest, output_dir / MANIFEST_NAME)
    checkpoints = []
    for position, dp_run in enumerate(dp_runs):
        run_dir = output_dir if len(dp_runs) == 1 else output_dir / sigma_name(dp_run["noise_multiplier"])
        generator = first if position == 0 else build(dp_run)
        checkpoint = generator.fit(train, run_dir / CHECKPOINT_NAME, seed=seed, progress=progress)
        if is_main_process():
            write_training_summary(run_dir / SUMMARY_NAME, generator, checkpoint, model=model, data=data,
                                   seed=seed, per_class=per_class, num_train=len(train), training=training)
        barrier()
        checkpoints.append(checkpoint)
    return checkpoints[0] if len(checkpoints) == 1 else checkpoints


def write_training_summary(path: Path, generator: Any, checkpoint: Path, *, model: str, data: Mapping[str, Any],
                           seed: int, per_class: int | None, num_train: int, training: Mapping[str, Any]) -> Path:
    """training_summary.json: model, checkpoint, settings, final losses and the generator's metadata
    (parameter count, DP epsilon/delta); an infinite epsilon (sigma = 0) is written as null."""
    history = getattr(generator, "history", [])
    return write_json_atomic(path, finite_or_none({
        "model": model,
        "checkpoint": str(checkpoint),
        "seed": seed,
        "steps": training["steps"],
        "batch_size": training["batch_size"],
        "per_class": per_class,
        "data": {"kind": data["kind"], "options": dict(data.get("options") or {})},
        "num_train": num_train,
        "final_losses": history[-1] if history else {},
        "metadata": getattr(generator, "metadata", {}),
        "note": "epsilon null means infinite (sigma = 0: clipping without noise)",
    }))
