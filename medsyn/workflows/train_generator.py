"""Workflow: prepare the data splits and train one generator (or one per sigma of a DP sweep).

This is the ``_target_`` every generator bundle's ``configs/train.yaml`` calls:

    train_generator(model="cvae", data={"kind": "digits", "options": {}}, output_dir="runs/cvae",
                    seed=0, per_class=None, model_config={...}, steps=2000, batch_size=32,
                    checkpoint_every=200, dp=None, progress=True, distributed=None)

``output_dir`` is claimed before anything is written (medsyn.io.output_folder): it must be new, empty or
a folder train_generator wrote, and a folder holding a run (finished or not) made with other data-affecting
settings (:func:`run_settings`: model, data, seed, per_class, the whole model config, batch_size, dp) is
refused naming every differing key. Only ``steps`` may grow (a resumed run continues) and ``checkpoint_every``,
``device``, ``progress`` and ``distributed`` may change. One run at a time writes a folder (under DDP rank 0
holds the lock and every rank stops if it is refused).

Writes into ``output_dir``:
    split_manifest.json     the stratified train/val/test split (medsyn.data.sources.prepare_splits)
    checkpoint.pt           the generator checkpoint (resumed from if it exists)
    training_summary.json   model, steps, final losses, parameter count, DP epsilon/delta

DP sweep: ``dp = {"noise_multiplier": [0.0, 0.5, 1.0], "max_grad_norm": 1.0}`` trains one model per
sigma into ``output_dir/sigma_<sigma>/`` (same split, same seed) and returns the list of checkpoints.
DDP: under ``torchrun`` set ``distributed: gloo`` (CPU) or ``nccl``; rank 0 writes every file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medsyn.config.data import DataSection
from medsyn.config.generators import parse_generator_overrides
from medsyn.config.strict import parse_section, strict_arguments
from medsyn.evaluation.generator_runs import (
    CHECKPOINT_NAME,
    MANIFEST_NAME,
    SUMMARY_NAME,
    run_settings,
    train_on_one_split,
)
from medsyn.io.output_folder import check_output_folder
from medsyn.models.registry import generator_class
from medsyn.training.device import resolve_device
from medsyn.training.distributed import (
    claim_on_main_process,
    init_distributed,
    is_distributed,
    shutdown_distributed,
)
from medsyn.training.dp_grid import dp_runs
from medsyn.training.settings import TrainingSettings

__all__ = ["CHECKPOINT_NAME", "MANIFEST_NAME", "SUMMARY_NAME", "WRITER", "run_settings", "train_generator"]

WRITER = "train_generator"


@strict_arguments
def train_generator(
    model: str,
    data: Mapping[str, Any],
    output_dir: str | Path,
    *,
    seed: int = 0,
    per_class: int | None = None,
    model_config: Mapping[str, Any] | None = None,
    steps: int = TrainingSettings.steps,  # the training defaults live in TrainingSettings only
    batch_size: int = TrainingSettings.batch_size,
    checkpoint_every: int = TrainingSettings.checkpoint_every,
    dp: Mapping[str, Any] | None = None,
    progress: bool = True,
    distributed: str | None = None,
    device: str = TrainingSettings.device,
) -> Path | list[Path]:
    """Train ``model`` on the training split of ``data``; return the checkpoint path (a list for a sweep).

    model: registry name ("cvae", "stylegan2", "ldm", "ddpm").
    data: {"kind": <source kind>, "options": {...}} as accepted by medsyn.data.sources.prepare_splits.
    per_class: scarcity subsample of the training split (k images per class), None for all.
    model_config: keys of the model's config dataclass (paper defaults for the keys left out).
    dp: None, or {"noise_multiplier": sigma or [sigmas], "max_grad_norm": C, "delta": d or null}.
    distributed: None for one process; "gloo"/"nccl"/"auto" to join torchrun's process group.
    device: "cpu", "cuda", "cuda:<i>" or "auto" (under DDP with CUDA, each rank uses GPU LOCAL_RANK).
    """
    # Everything that can be checked without data is checked first: a typo fails in milliseconds.
    # (@strict_arguments has checked every argument's type; "null"/"false" from the command line converted)
    generator_class(model)
    data_section = parse_section(DataSection, data, path="data")  # data.<key>, data.options.<key> named
    data = {"kind": data_section.kind, "options": dict(data_section.options)}
    model_config = parse_generator_overrides(model, model_config, path="model_config", training_keys=False)
    if distributed is not None and distributed not in ("gloo", "nccl", "auto"):
        raise ValueError(f"distributed must be null, 'gloo', 'nccl' or 'auto', got {distributed!r}")
    resolve_device(device)
    runs = dp_runs(dp)
    if distributed is not None and dp is not None:
        raise ValueError("dp (DP-SGD) runs in one process: set distributed to null or dp to null")
    for dp_run in runs:
        TrainingSettings(steps=steps, batch_size=batch_size, checkpoint_every=checkpoint_every, dp=dp_run)
    settings = run_settings(
        model, data, seed=seed, per_class=per_class, model_config=model_config, batch_size=batch_size, dp=dp
    )
    check_output_folder(output_dir, writer=WRITER, settings=settings)  # every rank, before the process group
    owns_process_group = distributed is not None and not is_distributed()
    if distributed is not None:
        init_distributed(None if distributed == "auto" else distributed)
    try:
        with claim_on_main_process(Path(output_dir), writer=WRITER, settings=settings):
            training = {"steps": steps, "batch_size": batch_size, "checkpoint_every": checkpoint_every,
                        "device": device}
            return train_on_one_split(model, data, Path(output_dir), seed=seed, per_class=per_class,
                                      model_config=model_config, dp_runs=runs, progress=progress, training=training)
    finally:
        if owns_process_group:
            shutdown_distributed()
