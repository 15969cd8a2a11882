"""The one interface every conditional generator implements.

A generator is built from a config (a dataclass whose defaults are the paper's values, cited there),
trained with ``fit`` (which writes and resumes from a checkpoint) and sampled with ``sample``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch

from medsyn.data.image_set import ImageSet
from medsyn.training.settings import (
    TrainingSettings,
    config_from_mapping,
    generator_checkpoint_config,
    parse_generator_config,
)

__all__ = [
    "ConditionalGenerator",
    "GeneratorConfiguration",
    "check_generator_arguments",
    "check_sample_labels",
    "check_training_set",
]


@runtime_checkable
class ConditionalGenerator(Protocol):
    name: str
    num_classes: int
    image_shape: tuple[int, int, int]  # (C, H, W)

    def fit(self, train: ImageSet, checkpoint_path: str | Path, *, seed: int = 0, progress: bool = True) -> Path:
        """Train on ``train`` (resuming from ``checkpoint_path`` if it exists); return the checkpoint path."""
        ...

    def sample(self, labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
        """labels: int64 [N] in [0, num_classes) -> images float32 [N, C, H, W] in [0, 1]."""
        ...


def check_sample_labels(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Validate the ``labels`` argument of ``sample`` and return it as int64 [N]."""
    labels = torch.as_tensor(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-d tensor of class indices, got shape {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    labels = labels.to(torch.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}) for this generator, got [{int(labels.min())}, {int(labels.max())}]"
        )
    return labels


def check_generator_arguments(
    config: Any, config_class: type, num_classes: int, image_shape: tuple[int, int, int]
) -> tuple[int, int, int]:
    """Validate a generator constructor's ``config``, ``num_classes`` and ``image_shape``; returns the
    shape as a tuple of three ints. ValueError names the argument."""
    if not isinstance(config, config_class):
        raise ValueError(f"config must be a {config_class.__name__}, got {type(config).__name__}")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    shape = tuple(int(size) for size in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"image_shape must be (C, H, W) of positive integers, got {image_shape!r}")
    return shape  # type: ignore[return-value]


def check_training_set(train: ImageSet, num_classes: int, image_shape: tuple[int, int, int]) -> None:
    """ValueError unless ``train`` has the classes and the image shape the generator was built for."""
    if train.num_classes != num_classes:
        raise ValueError(
            f"training set {train.source} has {train.num_classes} classes, but the model was built for "
            f"num_classes {num_classes}"
        )
    if train.image_shape != tuple(image_shape):
        raise ValueError(
            f"training set {train.source} has images of shape {train.image_shape}, but the model was built for "
            f"image_shape {tuple(image_shape)}"
        )


class GeneratorConfiguration:
    """``from_config`` and ``checkpoint_config`` for a generator class that sets ``name`` and ``config_class``
    and keeps ``config``, ``training``, ``num_classes`` and ``image_shape`` (the registry contract)."""

    name: ClassVar[str]
    config_class: ClassVar[type]
    config: Any
    training: TrainingSettings
    num_classes: int
    image_shape: tuple[int, int, int]

    @classmethod
    def parse_model_config(cls, config: Mapping[str, Any] | None) -> Any:
        """The model config dataclass from plain overrides (bundle YAML): unknown or ill-typed keys raise
        ConfigError naming ``model_config.<key>`` (``medsyn.config.strict``)."""
        return config_from_mapping(cls.config_class, config, what="model_config")

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any] | None,
        *,
        num_classes: int,
        image_shape: tuple[int, int, int],
        training: Mapping[str, Any] | TrainingSettings | None = None,
    ):
        """Build from plain mappings (bundle YAML); unknown keys raise ValueError naming the model."""
        model_config, settings = parse_generator_config(cls.config_class, config, training, model_name=cls.name)
        return cls(model_config, num_classes=num_classes, image_shape=image_shape, training=settings)

    def checkpoint_config(self) -> dict[str, Any]:
        """The ``"config"`` this model's checkpoints store (and must match to load)."""
        return generator_checkpoint_config(
            self.config, self.training, num_classes=self.num_classes, image_shape=self.image_shape
        )
