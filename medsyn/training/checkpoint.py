"""Checkpoints that refuse to load into the wrong model and never lose a finished one.

A checkpoint is a dict with ``"format"``, ``"model"`` (the generator's name), ``"config"`` (its config
as a plain dict) and whatever state the training loop saved. It is written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from medsyn.report.atomic import torch_save_atomic

__all__ = ["CHECKPOINT_FORMAT", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "medsyn-checkpoint-v1"


def save_checkpoint(path: str | Path, *, model: str, config: dict[str, Any], state: dict[str, Any]) -> Path:
    payload = {"format": CHECKPOINT_FORMAT, "model": model, "config": config, **state}
    return torch_save_atomic(path, payload)


def load_checkpoint(
    path: str | Path, *, model: str | None = None, config: dict[str, Any] | None = None
) -> dict:
    """Load ``path``; if ``model``/``config`` are given they must match what the checkpoint was made with."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises several types for a corrupt file
        raise ValueError(f"checkpoint {path} could not be read: {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a medsyn checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    if model is not None and payload["model"] != model:
        raise ValueError(f"checkpoint {path} holds a {payload['model']!r} model, not a {model!r} model")
    if config is not None and payload["config"] != config:
        differing = sorted(
            key
            for key in set(config) | set(payload["config"])
            if config.get(key, "<missing>") != payload["config"].get(key, "<missing>")
        )
        raise ValueError(
            f"checkpoint {path} was made with a different {payload['model']} config; differing keys: {differing}"
        )
    return payload
