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

import math
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from medsyn.config.data import DataSection
from medsyn.config.generators import parse_generator_overrides
from medsyn.config.strict import parse_section, strict_arguments
from medsyn.io.atomic import write_json_atomic
from medsyn.io.output_folder import check_output_folder, claim_output_folder
from medsyn.models.registry import build_generator, generator_class, model_config_of
from medsyn.training.device import resolve_device
from medsyn.training.distributed import (
    barrier,
    broadcast_from_main,
    init_distributed,
    is_distributed,
    is_main_process,
    shutdown_distributed,
)
from medsyn.training.settings import DPSettings, TrainingSettings, config_from_mapping

__all__ = [
    "CHECKPOINT_NAME",
    "MANIFEST_NAME",
    "SUMMARY_NAME",
    "WRITER",
    "run_settings",
    "sigma_directory_name",
    "train_generator",
]

CHECKPOINT_NAME = "checkpoint.pt"
MANIFEST_NAME = "split_manifest.json"
SUMMARY_NAME = "training_summary.json"
WRITER = "train_generator"


def sigma_directory_name(sigma: float) -> str:
    """Folder of one model of a DP sweep, e.g. ``sigma_0.5``."""
    return f"sigma_{sigma:g}"


def _dp_runs(dp: Mapping[str, Any] | None) -> list[dict[str, Any] | None]:
    """One DP mapping per model to train: [None] without DP, one per sigma for a sweep."""
    if dp is None:
        return [None]
    if not isinstance(dp, Mapping):
        # a config error, like every other one: ValueError naming the key (project convention)
        raise ValueError(f"dp must be a mapping (noise_multiplier, max_grad_norm, delta) or null, got {dp!r}")
    sigmas = dp.get("noise_multiplier")
    if isinstance(sigmas, (list, tuple)):
        if not sigmas:
            raise ValueError("dp.noise_multiplier is an empty list; give one sigma or a list of sigmas")
        if len(set(sigmas)) != len(sigmas):
            raise ValueError(f"dp.noise_multiplier lists a sigma twice: {list(sigmas)}")
        runs = [{**dp, "noise_multiplier": sigma} for sigma in sigmas]
    else:
        runs = [dict(dp)]
    for run in runs:  # validate every sigma before any training starts
        config_from_mapping(DPSettings, run, what="dp")
    return runs


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


@contextmanager
def _claim_on_main_process(output_dir: Path, settings: dict[str, Any]) -> Iterator[None]:
    """Rank 0 (the only writer) claims ``output_dir``; every rank learns whether it was refused, so no rank
    waits at a collective for one that stopped."""
    with ExitStack() as stack:
        refusal: BaseException | None = None
        if is_main_process():
            try:
                stack.enter_context(claim_output_folder(output_dir, writer=WRITER, settings=settings))
            except (OSError, ValueError, RuntimeError) as error:
                refusal = error
        message = broadcast_from_main(None if refusal is None else f"{type(refusal).__name__}: {refusal}")
        if refusal is not None:
            raise refusal
        if message is not None:
            raise RuntimeError(f"rank 0 refused the run: {message}")
        yield


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    return value


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
    dp_runs = _dp_runs(dp)
    if distributed is not None and dp is not None:
        raise ValueError("dp (DP-SGD) runs in one process: set distributed to null or dp to null")
    for dp_run in dp_runs:
        TrainingSettings(steps=steps, batch_size=batch_size, checkpoint_every=checkpoint_every, dp=dp_run)
    settings = run_settings(
        model, data, seed=seed, per_class=per_class, model_config=model_config, batch_size=batch_size, dp=dp
    )
    check_output_folder(output_dir, writer=WRITER, settings=settings)  # every rank, before the process group
    owns_process_group = distributed is not None and not is_distributed()
    if distributed is not None:
        init_distributed(None if distributed == "auto" else distributed)
    try:
        with _claim_on_main_process(Path(output_dir), settings):
            return _prepare_and_train(
                model,
                data,
                Path(output_dir),
                seed=seed,
                per_class=per_class,
                model_config=model_config,
                dp_runs=dp_runs,
                progress=progress,
                training={
                    "steps": steps,
                    "batch_size": batch_size,
                    "checkpoint_every": checkpoint_every,
                    "device": device,
                },
            )
    finally:
        if owns_process_group:
            shutdown_distributed()


def _prepare_and_train(
    model: str,
    data: Mapping[str, Any],
    output_dir: Path,
    *,
    seed: int,
    per_class: int | None,
    model_config: Mapping[str, Any] | None,
    dp_runs: list[dict[str, Any] | None],
    progress: bool,
    training: dict[str, Any],
) -> Path | list[Path]:
    # the data layer; imported here to keep start-up light
    from medsyn.data.sources import draw_splits
    from medsyn.data.split import save_split_manifest

    splits, split_manifest = draw_splits(
        data["kind"], dict(data.get("options") or {}), seed=seed, per_class=per_class
    )
    train = splits["train"]

    def build(dp_run: dict[str, Any] | None) -> Any:
        return build_generator(
            model,
            num_classes=train.num_classes,
            image_shape=train.image_shape,
            **dict(model_config or {}),
            **training,
            dp=dp_run,
        )

    first = build(dp_runs[0])  # the model config against the data (image size, classes) before any write
    if is_main_process():
        save_split_manifest(split_manifest, output_dir / MANIFEST_NAME)

    checkpoints = []
    for position, dp_run in enumerate(dp_runs):
        run_dir = (
            output_dir if len(dp_runs) == 1 else output_dir / sigma_directory_name(dp_run["noise_multiplier"])
        )
        generator = first if position == 0 else build(dp_run)
        checkpoint = generator.fit(train, run_dir / CHECKPOINT_NAME, seed=seed, progress=progress)
        if is_main_process():
            history = getattr(generator, "history", [])
            write_json_atomic(
                run_dir / SUMMARY_NAME,
                _finite_or_none(
                    {
                        "model": model,
                        "checkpoint": str(checkpoint),
                        "seed": seed,
                        "steps": training["steps"],
                        "batch_size": training["batch_size"],
                        "per_class": per_class,
                        "data": {"kind": data["kind"], "options": dict(data.get("options") or {})},
                        "num_train": len(train),
                        "final_losses": history[-1] if history else {},
                        "metadata": getattr(generator, "metadata", {}),
                        "note": "epsilon null means infinite (sigma = 0: clipping without noise)",
                    }
                ),
            )
        barrier()
        checkpoints.append(checkpoint)
    return checkpoints[0] if len(checkpoints) == 1 else checkpoints
