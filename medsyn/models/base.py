"""The one interface every conditional generator implements.

A generator is built from a config (a dataclass whose defaults are the paper's values, cited there),
trained with ``fit`` (which writes and resumes from a checkpoint) and sampled with ``sample``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from medsyn.data.image_set import ImageSet

__all__ = ["ConditionalGenerator", "check_sample_labels"]


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
