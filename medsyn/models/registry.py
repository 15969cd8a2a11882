"""Generator registry: model name -> class, resolved lazily, plus building and checkpoint loading.

    build_generator("cvae", num_classes=10, image_shape=(1, 32, 32), hidden_dims=[8, 16, 32], steps=200)
    load_generator("runs/cvae/checkpoint.pt")      # the right class, config and trained weights

Overrides are flat: keys of ``medsyn.training.settings.TrainingSettings`` (steps, batch_size,
checkpoint_every, dp) go to the training settings, every other key to the model's config dataclass.
An unknown key, an unknown model, or a checkpoint of another model raises ValueError naming it.

The contract a registered class fulfils (``medsyn.models.cvae.CVAE`` is the reference):

    class SomeGenerator:
        name: str                                   # the registry key
        config_class: type                          # frozen dataclass, paper defaults cited to the section
        num_classes: int; image_shape: tuple[int, int, int]
        @classmethod
        def from_config(cls, config: Mapping | None, *, num_classes: int, image_shape: tuple[int, int, int],
                        training: Mapping | TrainingSettings | None = None) -> "SomeGenerator"
        def fit(self, train: ImageSet, checkpoint_path, *, seed: int = 0, progress: bool = True) -> Path
        def sample(self, labels: Tensor, seed: int = 0) -> Tensor      # int64 [N] -> float32 [N,C,H,W] in [0,1]
        def load_weights(self, payload: dict) -> None                   # payload = load_checkpoint(...) result

Its checkpoint's "config" is ``generator_checkpoint_config(config, training, num_classes=..., image_shape=...)``
and its metadata holds "class_names" (used by generate_images to name folders).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medsyn.training.checkpoint import load_checkpoint
from medsyn.training.settings import (
    TrainingSettings,
    config_to_dict,
    split_training_keys,
)

__all__ = [
    "GENERATORS",
    "build_generator",
    "generator_class",
    "generator_settings",
    "load_generator",
    "model_config_of",
]

GENERATORS: dict[str, str] = {
    "cvae": "medsyn.models.cvae:CVAE",
    "stylegan2": "medsyn.models.stylegan2:ConditionalStyleGAN2",
    "ldm": "medsyn.models.ldm:ConditionalLDM",
    "ddpm": "medsyn.models.ddpm:ConditionalDDPM",
}


def generator_class(name: str) -> type:
    """The class registered under ``name`` (imported on first use)."""
    if name not in GENERATORS:
        raise ValueError(f"unknown model {name!r}; known models: {sorted(GENERATORS)}")
    module_name, _, class_name = GENERATORS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"model {name!r} is registered as {GENERATORS[name]} but cannot be imported: {error}"
        ) from error
    try:
        return getattr(module, class_name)
    except AttributeError as error:
        raise ValueError(
            f"model {name!r} is registered as {GENERATORS[name]} but {module_name} has no {class_name}"
        ) from error


def model_config_of(name: str, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The whole model config of generator ``name`` (its paper defaults with ``overrides`` applied) as plain
    JSON types: what a run's settings record, so ``{}`` and the defaults spelled out compare equal."""
    return config_to_dict(generator_class(name).parse_model_config(overrides))  # stylegan2: presets applied


def generator_settings(name: str, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """What decides the weights a generator's flat ``overrides`` (as for :func:`build_generator`) train:
    {"model": name, "model_config": the whole model config, "batch_size", "dp"}. steps, checkpoint_every and
    device are left out: a resumed run may train longer, checkpoint more often or move to another device."""
    model_keys, training_keys = split_training_keys(dict(overrides or {}))
    return {
        "model": name,
        "model_config": model_config_of(name, model_keys),
        "batch_size": training_keys.get("batch_size", TrainingSettings.batch_size),
        "dp": training_keys.get("dp"),
    }


def build_generator(
    name: str, *, num_classes: int, image_shape: tuple[int, int, int], **config_overrides: Any
):
    """A fresh (untrained) generator; ``config_overrides`` are model-config and training-setting keys."""
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    shape = tuple(image_shape)
    if len(shape) != 3 or not all(isinstance(size, int) and size > 0 for size in shape):
        raise ValueError(f"image_shape must be (C, H, W) of positive integers, got {image_shape!r}")
    model_config, training = split_training_keys(config_overrides)
    return generator_class(name).from_config(
        model_config, num_classes=num_classes, image_shape=shape, training=training
    )


def load_generator(checkpoint_path: str | Path):
    """The generator a checkpoint was made by, with its trained weights (ready to ``sample``)."""
    payload = load_checkpoint(checkpoint_path)
    name = payload["model"]
    cls = generator_class(name)
    config = payload["config"]
    expected = {"model_config", "num_classes", "image_shape", "training"}
    if not isinstance(config, dict) or not expected <= set(config):
        raise ValueError(
            f"checkpoint {checkpoint_path} has no generator config (expected keys {sorted(expected)})"
        )
    return cls.from_checkpoint_payload(payload)
