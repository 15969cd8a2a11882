"""Sample the same number of images of every class from a trained generator's checkpoint.

    generator = load_generator(Path("runs/cvae/checkpoint.pt"))
    names = class_names_of(generator, "runs/cvae/checkpoint.pt")
    images, labels = sample_per_class(generator, per_class=10, seed=0,
                                      sampling={"sampler": "ddim", "sampling_steps": 50})

Classes come in index order; ``sampling`` holds keyword overrides of the model's ``sample`` and a key it
does not take is refused by name (never silently ignored).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["check_sampling_overrides", "class_names_of", "sample_per_class"]


def class_names_of(generator: Any, checkpoint: str | Path) -> list[str]:
    """The class names stored with the checkpoint (their indices when none are stored)."""
    class_names = list(getattr(generator, "metadata", {}).get("class_names") or range(generator.num_classes))
    class_names = [str(name) for name in class_names]
    if len(class_names) != generator.num_classes:
        raise ValueError(
            f"checkpoint {checkpoint} names {len(class_names)} classes but the model has {generator.num_classes}"
        )
    return class_names


def sample_per_class(generator: Any, per_class: int, seed: int, sampling: Mapping[str, Any] | None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(images float32 [N,C,H,W] in [0,1], labels int64 [N]): ``per_class`` of each class, in index order."""
    labels = torch.arange(generator.num_classes).repeat_interleave(per_class)
    sampling = dict(sampling or {})
    check_sampling_overrides(generator, sampling)
    images = generator.sample(labels, seed=seed, **sampling)
    expected = (len(labels), *generator.image_shape)
    if tuple(images.shape) != expected or images.dtype != torch.float32:
        raise ValueError(f"generator returned {tuple(images.shape)} {images.dtype}, expected {expected} float32")
    return images, labels


def check_sampling_overrides(generator: Any, sampling: Mapping[str, Any]) -> None:
    """ValueError naming the keys of ``sampling`` that ``generator.sample`` does not take (``labels`` and
    ``seed`` are set by the caller, never by an override)."""
    if not sampling:
        return
    accepted = inspect.signature(generator.sample).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    unknown = [key for key in sampling if key not in accepted and not takes_any]
    if unknown or "labels" in sampling or "seed" in sampling:
        raise ValueError(
            f"sampling has keys {sorted(sampling)} that {type(generator).__name__}.sample does not take "
            f"(it takes {sorted(k for k in accepted if k not in ('labels', 'seed'))})"
        )
