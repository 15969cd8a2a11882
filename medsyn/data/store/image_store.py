"""ImageStore: a built store opened read-only; batches of images come back as float32 [n, C, H, W] in [0, 1].

    store = open_store(path)              # or build_store(...).store
    images = store.read([17, 3, 17])      # float32 tensor [3, C, H, W], in the order asked
    store.labels, store.class_names, store.image_shape, len(store)

The images stay on disk: ``images.npy`` is opened as a memory map (``np.load(mmap_mode="r")``: its
header and shape checked, nothing read), and ``read`` fetches rows with ``pread`` (runs of consecutive
rows in one call; the page cache keeps what is read often, and the process's RSS does not grow with
what it has read, as it would reading through the map). It gathers the rows in ascending index order
(sequential within the file, duplicates read once per occurrence), puts them back in the order asked
while they are still 1 or 2 bytes a value, then converts them with ``storage_dtype.decode_values``, the
function that checked exactness at build time. Labels (8 bytes an image) are held in memory.

Processes: the memory map belongs to the process that opened it. A store that is pickled (a DataLoader
worker under "spawn" or "forkserver") carries its path, manifest and labels but not the map, and a store
used in another process than the one that opened it (a forked worker) maps the file again there. Each
new map checks that the folder still holds the same build (the manifest's ``build_id``): a store rebuilt
in the meantime is a StoreChangedError, never a silent mix of two builds.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medsyn.data.store.manifest import IMAGES_NAME, LABELS_NAME, StoreManifest, read_manifest
from medsyn.data.store.storage_dtype import decode_values

__all__ = ["ImageStore", "StoreChangedError", "open_store", "as_index_array"]


class StoreChangedError(RuntimeError):
    """The store's folder was rebuilt or removed after the store was opened."""


class ImageStore:
    """A store opened read-only (use :func:`open_store` or ``build_store(...).store``)."""

    def __init__(self, path: Path, manifest: StoreManifest, labels: torch.Tensor) -> None:
        self.path = path
        self.manifest = manifest
        self._labels = labels
        self._images: np.ndarray | None = None
        self._images_pid: int | None = None

    def __len__(self) -> int:
        return self.manifest.count

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        return f"ImageStore({self.path}, {len(self)} images of {c}x{h}x{w}, stored as {self.storage_dtype})"

    @property
    def labels(self) -> torch.Tensor:
        """int64 [N] (a copy: changing it does not change the store)."""
        return self._labels.clone()

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.manifest.class_names

    @property
    def num_classes(self) -> int:
        return len(self.manifest.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        return self.manifest.image_shape

    @property
    def storage_dtype(self) -> str:
        return self.manifest.storage_dtype

    @property
    def exact(self) -> bool:
        """Every image reads back as the float32 the source decoder produced (max_abs_error == 0)."""
        return self.manifest.exact

    @property
    def max_abs_error(self) -> float:
        """Largest |read back - decoded| over every stored value (uint16 rounding of resampled values)."""
        return self.manifest.max_abs_error

    @property
    def bytes_per_image(self) -> int:
        c, h, w = self.image_shape
        return c * h * w * np.dtype(self.storage_dtype).itemsize

    def read(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """float32 [len(indices), C, H, W] in [0, 1]: the images at ``indices`` (0 <= i < N), in that
        order."""
        index = as_index_array(indices, len(self), what=f"indices into {self!r}")
        order = np.argsort(index, kind="stable")
        rows = self._read_rows(index[order])
        if np.any(order != np.arange(len(index))):  # back to the order asked, while still 1-2 bytes a value
            in_order = np.empty_like(rows)
            in_order[order] = rows
            rows = in_order
        return torch.from_numpy(decode_values(rows))

    def _read_rows(self, sorted_index: np.ndarray) -> np.ndarray:
        """The stored rows at ``sorted_index`` (ascending), read with ``pread`` one run of consecutive rows
        at a time. Not through the memory map: pages read through a map stay in the process's resident set
        (RssFile) until it exits, so scanning a 10 GB store would count 10 GB of RSS; pread copies from
        the page cache into this buffer only."""
        mapped = self._mapped_images()  # checks the build and gives the data offset
        rows = np.empty((len(sorted_index), *self.image_shape), dtype=mapped.dtype)
        if not len(sorted_index):
            return rows
        row_bytes = self.bytes_per_image
        flat = rows.reshape(len(sorted_index), -1).view(np.uint8)
        breaks = np.flatnonzero(np.diff(sorted_index) != 1) + 1
        fd = os.open(self.path / IMAGES_NAME, os.O_RDONLY)
        try:
            for start, stop in zip(np.r_[0, breaks], np.r_[breaks, len(sorted_index)]):
                want = (stop - start) * row_bytes
                where = mapped.offset + int(sorted_index[start]) * row_bytes
                got = os.preadv(fd, [memoryview(flat[start:stop]).cast("B")], where)
                if got != want:
                    raise StoreChangedError(f"image store {self.path}: {IMAGES_NAME} is shorter than its "
                                            "manifest says; rebuild the store")
        finally:
            os.close(fd)
        return rows

    def _mapped_images(self) -> np.ndarray:
        """This process's memory map of images.npy (module doc: mapped again in each process)."""
        if self._images is None or self._images_pid != os.getpid():
            images = _map_images(self.path, self.manifest)
            current = _current_build_id(self.path)
            if current != self.manifest.build_id:
                raise StoreChangedError(
                    f"image store {self.path} was {'removed' if current is None else 'rebuilt'} after it was "
                    "opened; open it again (build_store or open_store) to read the current build"
                )
            self._images, self._images_pid = images, os.getpid()
        return self._images

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "manifest": self.manifest, "labels": self._labels}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path, self.manifest, self._labels = state["path"], state["manifest"], state["labels"]
        self._images, self._images_pid = None, None


def open_store(path: str | os.PathLike) -> ImageStore:
    """Open the store in folder ``path`` read-only; errors name the folder and what is wrong with it
    (medsyn.data.store.manifest.read_manifest, plus arrays that disagree with the manifest)."""
    folder = Path(path)
    manifest = read_manifest(folder)
    labels_path = folder / LABELS_NAME
    labels = np.load(labels_path, allow_pickle=False)
    if labels.dtype != np.int64 or labels.shape != (manifest.count,):
        raise ValueError(
            f"image store {folder}: {labels_path} holds {labels.dtype} {labels.shape}, the manifest "
            f"expects int64 ({manifest.count},); rebuild the store"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= len(manifest.class_names)):
        raise ValueError(
            f"image store {folder}: {labels_path} has labels outside [0, {len(manifest.class_names)}); "
            "rebuild the store"
        )
    store = ImageStore(folder, manifest, torch.from_numpy(labels))
    store._mapped_images()
    return store


def _map_images(folder: Path, manifest: StoreManifest) -> np.ndarray:
    images_path = folder / IMAGES_NAME
    images = np.load(images_path, mmap_mode="r", allow_pickle=False)
    expected = (manifest.count, *manifest.image_shape)
    if images.dtype != np.dtype(manifest.storage_dtype) or images.shape != expected:
        raise ValueError(
            f"image store {folder}: {images_path} holds {images.dtype} {images.shape}, the manifest expects "
            f"{manifest.storage_dtype} {expected}; rebuild the store"
        )
    return images


def _current_build_id(folder: Path) -> str | None:
    try:
        return read_manifest(folder).build_id
    except (OSError, ValueError):
        return None


def as_index_array(indices: Sequence[int] | np.ndarray | torch.Tensor, size: int, *, what: str) -> np.ndarray:
    """int64 [n] numpy copy of ``indices`` (a sequence, array or tensor of integers), each in [0, size);
    IndexError / TypeError naming ``what`` and the first bad value."""
    if isinstance(indices, torch.Tensor):
        indices = indices.detach().cpu().numpy()
    array = np.asarray(indices)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise TypeError(
            f"{what} must be a 1-D sequence of integers, got {array.dtype} of shape {array.shape}"
        )
    array = array.astype(np.int64)
    bad = np.flatnonzero((array < 0) | (array >= size))
    if len(bad):
        raise IndexError(f"{what}: index {int(array[bad[0]])} is outside [0, {size})")
    return array
