"""ImageSet: the one in-memory form of a labelled image collection that every stage passes on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["ImageSet", "check_same_kind"]


@dataclass(frozen=True)
class ImageSet:
    """Labelled images.

    images: float32 [N, C, H, W] in [0, 1]: a tensor, or ``StoredImages`` (medsyn.data.stored_images) whose
        pixels stay on disk in image stores and are read in batches (validated when the store was built)
    labels: int64 [N], each in [0, len(class_names))
    class_names: name of each class index
    source: where the images came from (a path or a data-set name), used in error messages and results
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    source: str = "<memory>"

    def __post_init__(self) -> None:
        from medsyn.data.stored_images import StoredImages

        where = f"ImageSet from {self.source}"
        if isinstance(self.images, StoredImages):  # its store checked every image when it was built
            self._check_label_shape(where)
            self._check_label_values(where)
            return
        if not isinstance(self.images, torch.Tensor) or self.images.ndim != 4:
            raise ValueError(f"{where}: images must be a float tensor [N,C,H,W], got {_describe(self.images)}")
        if self.images.dtype != torch.float32:
            raise ValueError(f"{where}: images must be float32, got {self.images.dtype}")
        self._check_label_shape(where)
        if len(self.images) and not torch.isfinite(self.images).all():
            raise ValueError(f"{where}: images contain NaN or inf")
        if len(self.images) and (self.images.min() < 0 or self.images.max() > 1):
            raise ValueError(
                f"{where}: images must lie in [0, 1], got [{self.images.min():.4g}, {self.images.max():.4g}]"
            )
        self._check_label_values(where)

    def _check_label_shape(self, where: str) -> None:
        if not isinstance(self.labels, torch.Tensor) or self.labels.ndim != 1:
            raise ValueError(f"{where}: labels must be an int64 tensor [N], got {_describe(self.labels)}")
        if self.labels.dtype != torch.int64:
            raise ValueError(f"{where}: labels must be int64, got {self.labels.dtype}")
        if len(self.labels) != len(self.images):
            raise ValueError(f"{where}: {len(self.images)} images but {len(self.labels)} labels")
        if len(self.class_names) == 0:
            raise ValueError(f"{where}: class_names is empty")

    def _check_label_values(self, where: str) -> None:
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ValueError(
                f"{where}: labels must lie in [0, {len(self.class_names)}), "
                f"got [{int(self.labels.min())}, {int(self.labels.max())}]"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def stored(self) -> bool:
        """Whether the pixels stay on disk (StoredImages) rather than in a tensor."""
        from medsyn.data.stored_images import StoredImages

        return isinstance(self.images, StoredImages)

    def subset(self, indices: Sequence[int] | torch.Tensor) -> ImageSet:
        index = torch.as_tensor(indices, dtype=torch.int64)
        images = self.images.take(index) if self.stored else self.images[index]
        return ImageSet(images, self.labels[index], self.class_names, self.source)

    def class_counts(self) -> list[int]:
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    return type(value).__name__


def check_same_kind(reference: ImageSet, other: ImageSet, *, reference_name: str, other_name: str) -> None:
    """ValueError unless ``other`` is an ImageSet with ``reference``'s image shape and classes (same order);
    the message names both sets, and labels ``other`` has that ``reference`` does not."""
    if not isinstance(other, ImageSet):
        raise ValueError(f"{other_name} must be an ImageSet, got {type(other).__name__}")
    if other.image_shape != reference.image_shape:
        raise ValueError(
            f"{other_name} ({other.source}) has images of (C,H,W)={other.image_shape} but {reference_name} "
            f"({reference.source}) has {reference.image_shape}; resample or convert them first"
        )
    if tuple(other.class_names) != tuple(reference.class_names):
        unknown = sorted(set(other.class_names) - set(reference.class_names))
        detail = f"labels unknown to the data set: {unknown}" if unknown else "a different class order"
        raise ValueError(
            f"{other_name} ({other.source}) has classes {list(other.class_names)} but {reference_name} "
            f"({reference.source}) has {list(reference.class_names)} ({detail})"
        )
