"""The one interface every conditional generator implements, and the base class the registered ones share.

A generator is built from a config (a dataclass whose defaults are the paper's values, cited there),
trained with ``fit`` (which writes and resumes from a checkpoint) and sampled with ``sample`` (all N images
as one tensor) or ``sample_batches`` (the same images, streamed chunk by chunk, for N too large to hold).
``RegisteredGenerator`` holds what every generator of ``medsyn.models.registry`` does alike: validating
and keeping its constructor arguments, building from plain mappings, describing and loading its
checkpoints; ``run_generator_training`` is the training loop call their ``fit`` shares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import nn

from medsyn.data.image_set import ImageSet
from medsyn.training.loop import StepFn, TrainingRun, run_training
from medsyn.training.settings import (
    TrainingSettings,
    config_from_mapping,
    generator_checkpoint_config,
    parse_generator_config,
)

__all__ = [
    "ConditionalGenerator",
    "RegisteredGenerator",
    "check_divisible",
    "check_generator_arguments",
    "check_sample_labels",
    "check_training_set",
    "count_parameters",
    "join_batches",
    "rechunk",
    "run_generator_training",
    "training_set_metadata",
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
        """labels: int64 [N] in [0, num_classes) -> images float32 [N, C, H, W] in [0, 1] (N = 0: an empty
        [0, C, H, W] tensor). Takes the same keyword overrides as ``sample_batches`` and returns
        ``torch.cat(list(sample_batches(labels, seed, ...)))``."""
        ...

    def sample_batches(self, labels: torch.Tensor, seed: int = 0) -> Iterator[torch.Tensor]:
        """The images ``sample(labels, seed, ...)`` returns, bit for bit and in order, as consecutive float32
        chunks [n_i, C, H, W] (n_i >= 1; the model's own sampling chunk size, the last chunk possibly
        smaller; nothing for N = 0), so only one chunk of images is held at a time. Same keyword overrides
        as ``sample``. The arguments are validated when it is called (bad labels or overrides raise then,
        before any image is made); the images are generated lazily, one chunk per ``next()``."""
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


def join_batches(batches: Iterable[torch.Tensor], image_shape: tuple[int, int, int]) -> torch.Tensor:
    """The chunks a ``sample_batches`` yields, concatenated: float32 [N, C, H, W] (an empty [0, C, H, W]
    tensor when there are none). What every generator's ``sample`` returns."""
    images = list(batches)
    if not images:
        return torch.zeros(0, *image_shape)
    return torch.cat(images)


def rechunk(batches: Iterable[torch.Tensor], size: int) -> Iterator[torch.Tensor]:
    """The rows of ``batches`` (tensors concatenated along dim 0), in order, as consecutive chunks of
    exactly ``size`` rows (the last one possibly fewer; nothing when there are no rows): the chunks
    ``torch.cat(list(batches)).split(size)`` would give, holding no more than one input batch (while its
    chunks are used), the fewer than ``size`` rows left over from the batch before, and one chunk."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    pending: list[torch.Tensor] = []
    count = 0
    for batch in batches:
        start = 0
        while start < len(batch):
            take = min(size - count, len(batch) - start)
            pending.append(batch[start : start + take])
            count += take
            start += take
            if count == size:
                yield pending[0] if len(pending) == 1 else torch.cat(pending)
                pending, count = [], 0
        if pending:  # a copy of the rows left over, so the batch they come from can be freed
            pending = [torch.cat(pending)]
        del batch
    if pending:
        yield pending[0] if len(pending) == 1 else torch.cat(pending)


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


def check_divisible(image_shape: tuple[int, int, int], factor: int, what: str, why: str) -> None:
    """Raise ValueError unless H and W are divisible by ``factor``."""
    _, height, width = image_shape
    if height % factor or width % factor:
        raise ValueError(f"{what}: {why}, so image height and width must be divisible by {factor}; got {height}x{width}")


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


def count_parameters(*modules: nn.Module) -> int:
    """Number of parameters of ``modules`` together."""
    return sum(parameter.numel() for module in modules for parameter in module.parameters())


def training_set_metadata(train: ImageSet) -> dict[str, Any]:
    """What a generator's checkpoint metadata records of its training set (``generate_images`` names the
    class folders by ``class_names``)."""
    return {"class_names": list(train.class_names), "num_train": len(train)}


def run_generator_training(
    step: StepFn,
    train: ImageSet,
    *,
    model_name: str,
    checkpoint_config: dict[str, Any],
    checkpoint_path: str | Path,
    stateful: Mapping[str, Any],
    metadata: dict[str, Any],
    metadata_fn: Callable[[], dict[str, Any]] | None,
    training: TrainingSettings,
    seed: int,
    progress: bool,
    device: torch.device | str = "cpu",
) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """``run_training`` of a generator's ``step`` as its training settings say: ``training.steps`` steps of
    ``training.batch_size`` images (Poisson-sampled under ``training.dp``), a checkpoint every
    ``training.checkpoint_every`` steps, resuming from ``checkpoint_path``. device: where each batch is
    moved before ``step`` (the default leaves it on the CPU, for a step that moves it itself).
    Returns (loss history, ``metadata`` with the final ``metadata_fn()``, e.g. the epsilon spent, merged in).
    """
    run = TrainingRun(
        model_name=model_name,
        config=checkpoint_config,
        stateful=stateful,
        checkpoint_path=Path(checkpoint_path),
        steps=training.steps,
        batch_size=training.batch_size,
        seed=seed,
        checkpoint_every=training.checkpoint_every,
        metadata=metadata,
        progress=progress,
        poisson_sampling=training.dp is not None,
        metadata_fn=metadata_fn,
        device=device,
        num_workers=training.num_workers,
    )
    history = run_training(run, train, step)
    return history, {**metadata, **(metadata_fn() if metadata_fn else {})}


class RegisteredGenerator:
    """Base class of the generators in ``medsyn.models.registry``: a subclass sets ``name`` and
    ``config_class``, builds its networks after ``__init__`` and implements ``load_state``; it gets the
    registry contract's ``from_config``, ``checkpoint_config`` and ``load_weights``. Each subclass implements
    ``sample_batches`` (the one sampling loop: it validates its arguments when called and returns an iterator
    of image chunks) and a ``sample`` that is ``join_batches`` of it, with the same keyword overrides.

    Attributes every one keeps: ``config``, ``training``, ``num_classes``, ``image_shape``, and the
    ``metadata`` and loss ``history`` of its last ``fit`` (or loaded checkpoint).
    """

    name: ClassVar[str]
    config_class: ClassVar[type]
    config: Any
    training: TrainingSettings
    num_classes: int
    image_shape: tuple[int, int, int]

    def __init__(
        self,
        config: Any,
        *,
        num_classes: int,
        image_shape: tuple[int, int, int],
        training: TrainingSettings | None = None,
    ) -> None:
        """Validate and keep the arguments (ValueError names a bad one); ``training`` None: the defaults."""
        self.image_shape = check_generator_arguments(config, self.config_class, num_classes, image_shape)
        self.config = config
        self.num_classes = num_classes
        self.training = training if training is not None else TrainingSettings()
        self.metadata: dict[str, Any] = {}
        self.history: list[dict[str, float]] = []

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

    @classmethod
    def from_checkpoint_payload(cls, payload: dict, **build_options: Any):
        """The model a checkpoint payload (``load_checkpoint``'s result) holds: rebuilt from its ``"config"``
        (keys model_config, num_classes, image_shape, training), with its trained weights loaded.
        build_options: more keyword arguments of ``from_config`` (the StyleGAN2's ``device``)."""
        config = payload["config"]
        generator = cls.from_config(
            config["model_config"],
            num_classes=int(config["num_classes"]),
            image_shape=tuple(config["image_shape"]),
            training=config["training"],
            **build_options,
        )
        generator.load_weights(payload)
        return generator

    def checkpoint_config(self) -> dict[str, Any]:
        """The ``"config"`` this model's checkpoints store (and must match to load)."""
        return generator_checkpoint_config(
            self.config, self.training, num_classes=self.num_classes, image_shape=self.image_shape
        )

    def load_weights(self, payload: dict) -> None:
        """Load the trained state, metadata and loss history of a checkpoint payload (``load_checkpoint``'s
        result) made by this model with this exact config; ValueError for another model or config."""
        if payload.get("model") != self.name:
            raise ValueError(f"checkpoint holds a {payload.get('model')!r} model, not a {self.name!r} model")
        if payload.get("config") != self.checkpoint_config():
            raise ValueError(self.config_mismatch_message(payload.get("config")))
        self.load_state(payload["state"])
        self.metadata = dict(payload.get("metadata", {}))
        self.history = list(payload.get("history", []))

    def config_mismatch_message(self, checkpoint_config: Any) -> str:
        """Why ``load_weights`` refuses a checkpoint whose ``"config"`` is ``checkpoint_config``."""
        return f"checkpoint was made with a different {self.name} config; rebuild with load_generator"

    def load_state(self, state: dict[str, Any]) -> None:
        """Load the networks (and EMA) from a checkpoint's ``"state"``, the entries ``fit`` checkpoints."""
        raise NotImplementedError(f"{type(self).__name__} does not implement load_state")
