"""StoredImages: a float32 [N, C, H, W] image batch whose pixels stay on disk in image stores, read on demand.

    images = StoredImages.of_store(store)              # every image of a store (medsyn.data.store)
    images.shape, len(images), images.dtype            # torch.Size([N, C, H, W]), N, torch.float32
    images[17], images[10:20], images[index_tensor]    # float32 tensors, read from disk now
    images.take(index_tensor)                          # a view: nothing is read
    StoredImages.concatenate([a, b])                   # a view of a's images then b's (b may be a tensor)
    for batch in images.batches(256): ...              # float32 [<=256, C, H, W] tensors, in order
    image_tensor(images)                               # the whole batch in memory (small sets only)

An ``ImageSet`` holds its images as a tensor or as StoredImages; a stage that walks the set in batches
(training loops, feature extraction, DeepFool, blocked scans) never holds more than a batch, whatever N.
A view is a sequence of parts, each a store with int64 indices into it or an in-memory float32 tensor, so
subsets and concatenations (the utility regimes' real + synthetic training sets) copy no pixels.

Stores are validated when built (each image finite, in [0, 1], of one shape), so a view is not scanned
again. Two views hold "the same images" when they have the same parts (``same_images``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from medsyn.data.store.image_store import ImageStore, as_index_array

__all__ = ["StoredImages", "image_batches", "image_tensor"]


@dataclass(frozen=True)
class _Part:
    """One run of a view: ``store`` at ``indices``, or the rows of ``tensor``."""

    store: ImageStore | None
    indices: np.ndarray | None
    tensor: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.indices) if self.store is not None else len(self.tensor)

    def read(self, positions: np.ndarray) -> torch.Tensor:
        if self.store is not None:
            return self.store.read(self.indices[positions])
        return self.tensor[torch.from_numpy(positions)]

    def take(self, positions: np.ndarray) -> _Part:
        if self.store is not None:
            return _Part(self.store, self.indices[positions], None)
        return _Part(None, None, self.tensor[torch.from_numpy(positions)])

    def key(self) -> tuple:
        if self.store is not None:
            return ("store", str(self.store.path), self.store.manifest.build_id, self.indices.tobytes())
        return ("tensor", id(self.tensor))


class StoredImages:
    """float32 images [N, C, H, W] in [0, 1] read from image stores on demand (module doc)."""

    def __init__(self, parts: Sequence[_Part], image_shape: tuple[int, int, int]) -> None:
        self._parts = tuple(part for part in parts if len(part))
        self._image_shape = tuple(image_shape)
        self._starts = np.cumsum([0] + [len(part) for part in self._parts])

    @classmethod
    def of_store(cls, store: ImageStore, indices: Sequence[int] | np.ndarray | torch.Tensor | None = None
                 ) -> StoredImages:
        where = (np.arange(len(store), dtype=np.int64) if indices is None
                 else as_index_array(indices, len(store), what=f"indices into {store!r}"))
        return cls([_Part(store, where, None)], store.image_shape)

    @classmethod
    def concatenate(cls, batches: Sequence[StoredImages | torch.Tensor]) -> StoredImages:
        """One view of ``batches`` in order (tensors are kept as they are, float32 [n, C, H, W])."""
        shapes = {tuple(batch.shape[1:]) for batch in batches}
        if len(shapes) != 1:
            raise ValueError(f"cannot concatenate images of different (C,H,W): {sorted(shapes)}")
        parts: list[_Part] = []
        for batch in batches:
            if isinstance(batch, StoredImages):
                parts += batch._parts
            elif isinstance(batch, torch.Tensor) and batch.dtype == torch.float32 and batch.ndim == 4:
                parts.append(_Part(None, None, batch))
            else:
                raise TypeError(f"expected StoredImages or a float32 tensor [N,C,H,W], got {type(batch).__name__}")
        return cls(parts, shapes.pop())

    # --- what stages read of a tensor ------------------------------------------------------------------

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self), *self._image_shape))

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def ndim(self) -> int:
        return 4

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __repr__(self) -> str:
        c, h, w = self._image_shape
        return f"StoredImages({len(self)} images of {c}x{h}x{w} in {len(self._parts)} part(s))"

    def __getitem__(self, key: int | slice | Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """float32 images read now: ``[i]`` -> [C, H, W]; a slice or 1-D integer index -> [n, C, H, W]."""
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            position = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= position < len(self):
                raise IndexError(f"image {key} is outside {self!r}")
            return self.read(np.array([position]))[0]
        if isinstance(key, slice):
            return self.read(np.arange(len(self))[key])
        if isinstance(key, torch.Tensor) and key.dtype == torch.bool:
            key = torch.nonzero(key, as_tuple=True)[0]
        return self.read(key)

    # --- views and batches --------------------------------------------------------------------------------

    def read(self, positions: Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """float32 [len(positions), C, H, W]: the images at ``positions``, in that order."""
        where = as_index_array(positions, len(self), what=f"positions in {self!r}")
        if len(self._parts) == 1:  # one store (or tensor): its read already returns them in order
            return self._parts[0].read(where)
        out = torch.empty((len(where), *self._image_shape), dtype=torch.float32)
        part_of = np.searchsorted(self._starts, where, side="right") - 1
        for number in np.unique(part_of):
            mask = part_of == number
            out[torch.from_numpy(np.flatnonzero(mask))] = self._parts[number].read(where[mask] - self._starts[number])
        return out

    def take(self, positions: Sequence[int] | np.ndarray | torch.Tensor) -> StoredImages:
        """A view of the images at ``positions`` (in that order); nothing is read."""
        where = as_index_array(positions, len(self), what=f"positions in {self!r}")
        part_of = np.searchsorted(self._starts, where, side="right") - 1
        parts: list[_Part] = []
        start = 0
        while start < len(where):  # runs of consecutive positions in one part stay one part
            stop = start + 1
            while stop < len(where) and part_of[stop] == part_of[start]:
                stop += 1
            number = part_of[start]
            parts.append(self._parts[number].take(where[start:stop] - self._starts[number]))
            start = stop
        return StoredImages(parts, self._image_shape)

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        """The images in order, ``batch_size`` at a time, as float32 tensors."""
        for start in range(0, len(self), batch_size):
            yield self.read(np.arange(start, min(start + batch_size, len(self))))

    def same_images(self, other: StoredImages) -> bool:
        """Whether ``other`` is a view of the same stored images in the same order (no pixel is read)."""
        return [part.key() for part in self._parts] == [part.key() for part in other._parts]


def image_tensor(images: torch.Tensor | StoredImages) -> torch.Tensor:
    """The images as one in-memory float32 tensor: ``images`` itself, or every stored image read now (for
    the stages that need the whole batch at once; their memory grows with N)."""
    return images[:] if isinstance(images, StoredImages) else images


def image_batches(images: torch.Tensor | StoredImages, batch_size: int) -> Iterator[torch.Tensor]:
    """``images`` in order, ``batch_size`` at a time (slices of a tensor, reads of stored images)."""
    if isinstance(images, StoredImages):
        yield from images.batches(batch_size)
        return
    for start in range(0, len(images), batch_size):
        yield images[start:start + batch_size]
