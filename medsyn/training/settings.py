"""Training settings shared by every generator, and strict config parsing.

A generator is configured by two things: its model config (a frozen dataclass per model whose defaults
are the paper's values, cited there) and these ``TrainingSettings`` (steps, batch size, checkpoint
interval, optional DP-SGD, DataLoader workers). ``config_from_mapping`` turns a plain dict (from a bundle YAML) into a
config dataclass and rejects unknown keys by name, so a typo fails before training starts.

The checkpoint of a generator stores ``generator_checkpoint_config(...)``: the model config, the class
count, the image shape and the training settings a resumed run must share (batch size and DP).
A checkpoint whose stored config differs from the current one refuses to load.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from medsyn.config.strict import parse_section
from medsyn.training.batch_loader import DEFAULT_NUM_WORKERS

__all__ = [
    "DPSettings",
    "TrainingSettings",
    "config_from_mapping",
    "config_to_dict",
    "generator_checkpoint_config",
    "parse_generator_config",
    "split_training_keys",
]

ConfigT = TypeVar("ConfigT")


@dataclass(frozen=True)
class DPSettings:
    """DP-SGD settings (paper 001 §3.1).

    noise_multiplier: sigma >= 0, noise std relative to max_grad_norm.
    max_grad_norm: per-sample clipping bound C > 0.
    delta: target delta; None means 1 / (training-set size).
    """

    noise_multiplier: float
    max_grad_norm: float = 1.0
    delta: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.noise_multiplier, (int, float)) or not math.isfinite(self.noise_multiplier):
            raise ValueError(f"dp.noise_multiplier must be a finite number, got {self.noise_multiplier!r}")
        if self.noise_multiplier < 0:
            raise ValueError(f"dp.noise_multiplier (sigma) must be >= 0, got {self.noise_multiplier}")
        if not isinstance(self.max_grad_norm, (int, float)) or not self.max_grad_norm > 0:
            raise ValueError(f"dp.max_grad_norm must be > 0, got {self.max_grad_norm!r}")
        if self.delta is not None and not 0 < self.delta < 1:
            raise ValueError(f"dp.delta must lie in (0, 1) or be null, got {self.delta!r}")


@dataclass(frozen=True)
class TrainingSettings:
    """How long and how a generator trains (model-independent).

    steps: optimiser steps in total (a resumed run continues up to this number).
    batch_size: images per step (under DP: the expected size of a Poisson batch).
    checkpoint_every: write a checkpoint every this many steps (0: only at the end).
    dp: DP-SGD settings, or None for ordinary training.
    device: "cpu" (default), "cuda", "cuda:<i>" or "auto" (medsyn.training.device.resolve_device).
        Not part of the resume identity: a run may continue on another device.
    num_workers: DataLoader worker processes reading the training batches (0: read in the training
        process). The batches do not depend on it, so neither does the resume identity.
    """

    steps: int = 1000
    batch_size: int = 32
    checkpoint_every: int = 0
    dp: DPSettings | None = None
    device: str = "cpu"
    num_workers: int = DEFAULT_NUM_WORKERS

    def __post_init__(self) -> None:
        # "key: ..." so that config parsing names the key path (training.num_workers: must be ...)
        for key, minimum in (("steps", 0), ("batch_size", 1), ("checkpoint_every", 0), ("num_workers", 0)):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"{key}: must be an integer >= {minimum}, got {value!r}")
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:<index>' or 'auto', got {self.device!r}")
        if isinstance(self.dp, Mapping):
            object.__setattr__(self, "dp", config_from_mapping(DPSettings, self.dp, what="dp"))
        elif self.dp is not None and not isinstance(self.dp, DPSettings):
            raise ValueError(f"dp must be a mapping of DP settings or null, got {type(self.dp).__name__}")

    def resume_identity(self) -> dict[str, Any]:
        """What a resumed run must share with the checkpoint (steps, checkpoint_every, device and
        num_workers may change)."""
        return {"batch_size": self.batch_size, "dp": None if self.dp is None else dataclasses.asdict(self.dp)}


TRAINING_KEYS = tuple(field.name for field in dataclasses.fields(TrainingSettings))


def config_from_mapping(
    config_class: type[ConfigT], mapping: Mapping[str, Any] | None, *, what: str
) -> ConfigT:
    """Build ``config_class`` from ``mapping`` by ``medsyn.config.strict.parse_section``: an unknown key
    raises ConfigError (a ValueError) naming its path and the closest valid key
    (``model_config.latent_dimm: unknown key; did you mean 'latent_dim'?``), an ill-typed value names
    the key and the expected type, a missing required key is named.

    what: the key path of ``mapping`` in the config, e.g. "model_config", "dp".
    """
    return parse_section(config_class, mapping, path=what)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a plain dict of JSON types (tuples become lists)."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {key: plain(item) for key, item in dataclasses.asdict(value).items()}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        return value

    return plain(config)


def split_training_keys(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split flat overrides into (model-config keys, TrainingSettings keys)."""
    model = {key: value for key, value in overrides.items() if key not in TRAINING_KEYS}
    training = {key: value for key, value in overrides.items() if key in TRAINING_KEYS}
    return model, training


def generator_checkpoint_config(
    model_config: Any,
    training: TrainingSettings,
    *,
    num_classes: int,
    image_shape: tuple[int, int, int],
) -> dict[str, Any]:
    """The ``"config"`` a generator checkpoint stores; ``load_generator`` rebuilds the generator from it."""
    return {
        "model_config": config_to_dict(model_config),
        "num_classes": int(num_classes),
        "image_shape": [int(size) for size in image_shape],
        "training": training.resume_identity(),
    }


def parse_generator_config(
    config_class: type[ConfigT],
    config: Mapping[str, Any] | None,
    training: Mapping[str, Any] | TrainingSettings | None,
    *,
    model_name: str,
) -> tuple[ConfigT, TrainingSettings]:
    """(model config, training settings) of a generator's ``from_config``; unknown keys name the model."""
    model_config = config_from_mapping(config_class, config, what="model_config")
    if not isinstance(training, TrainingSettings):
        training = config_from_mapping(TrainingSettings, training, what="training")
    return model_config, training
