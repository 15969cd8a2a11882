"""StoreView: a labelled selection of a store's images, usable as a ``torch.utils.data.Dataset``;
``to_image_set`` materialises a (small) view in memory for the stages that take an ImageSet.

    view = StoreView(store)                          # every image, the store's labels
    train = view.subset(split_indices)               # positions within the view
    loader = DataLoader(train, batch_size=64, shuffle=True, num_workers=4)
    image_set = to_image_set(train)                  # float32 [N, C, H, W] in RAM

A view is the store plus int64 ``indices`` into it plus int64 ``labels`` (the store's labels at those
indices unless given: a relabelled or class-merged view keeps the same images). ``view[i]`` is
(float32 [C, H, W] image, int64 label) like a TensorDataset; a DataLoader fetches a whole batch with one
sorted gather (``__getitems__``). Views pickle without the memory map (medsyn.data.store.image_store), so
DataLoader workers, forked or spawned, map the file themselves and yield the same batches as no worker.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from medsyn.data.image_set import ImageSet
from medsyn.data.store.image_store import ImageStore, as_index_array

__all__ = ["StoreView", "to_image_set"]

_MATERIALISE_CHUNK = 256


class StoreView(Dataset):
    """Images ``store[indices]`` with ``labels`` (module doc)."""

    def __init__(
        self,
        store: ImageStore,
        indices: Sequence[int] | np.ndarray | torch.Tensor | None = None,
        labels: Sequence[int] | np.ndarray | torch.Tensor | None = None,
    ) -> None:
        self.store = store
        if indices is None:
            self.indices = torch.arange(len(store), dtype=torch.int64)
        else:
            where = as_index_array(indices, len(store), what=f"indices into {store!r}")
            self.indices = torch.from_numpy(where)
        if labels is None:
            self.labels = store.labels[self.indices]
        else:
            self.labels = _checked_labels(labels, len(self.indices), store.num_classes)

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return f"StoreView({len(self)} of {self.store!r})"

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.store.class_names

    @property
    def num_classes(self) -> int:
        return self.store.num_classes

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.store.image_shape

    def read(self, positions: Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """float32 [len(positions), C, H, W]: the images at ``positions`` within this view, in that order."""
        where = as_index_array(positions, len(self), what=f"positions in {self!r}")
        return self.store.read(self.indices.numpy()[where])

    def __getitem__(self, position: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= position < len(self):
            raise IndexError(f"position {position} is outside {self!r}")
        position %= len(self)
        return self.read([position])[0], self.labels[position]

    def __getitems__(self, positions: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A DataLoader batch: one sorted gather for all of ``positions``."""
        images = self.read(positions)
        labels = self.labels[torch.as_tensor(positions, dtype=torch.int64)]
        return list(zip(images, labels))

    def subset(self, positions: Sequence[int] | np.ndarray | torch.Tensor) -> StoreView:
        """The view of ``positions`` within this one (its images and labels)."""
        where = torch.from_numpy(as_index_array(positions, len(self), what=f"positions in {self!r}"))
        return StoreView(self.store, self.indices[where], self.labels[where])

    def class_counts(self) -> list[int]:
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()


def to_image_set(view: StoreView, *, source: str | None = None) -> ImageSet:
    """The view's images and labels as an in-memory ImageSet (float32 [N, C, H, W]; read in chunks of 256).

    source: the ImageSet's source (error messages, results); defaults to the store's folder, whose name is
    a digest and carries nothing of the source. Equal (torch.equal) to the ImageSet of the decoded images
    when the store is exact (``view.store.exact``).
    """
    images = torch.empty((len(view), *view.image_shape), dtype=torch.float32)
    for start in range(0, len(view), _MATERIALISE_CHUNK):
        stop = min(start + _MATERIALISE_CHUNK, len(view))
        images[start:stop] = view.read(np.arange(start, stop))
    return ImageSet(images, view.labels.clone(), view.class_names, source or str(view.store.path))


def _checked_labels(
    labels: Sequence[int] | np.ndarray | torch.Tensor, count: int, num_classes: int
) -> torch.Tensor:
    tensor = torch.as_tensor(labels)
    integers = not (tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool)
    if tensor.ndim != 1 or len(tensor) != count or not integers:
        raise ValueError(
            f"labels must be {count} integers (one per index), "
            f"got {tensor.dtype} of shape {tuple(tensor.shape)}"
        )
    tensor = tensor.to(torch.int64)
    if count and (tensor.min() < 0 or tensor.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got [{int(tensor.min())}, {int(tensor.max())}]"
        )
    return tensor
