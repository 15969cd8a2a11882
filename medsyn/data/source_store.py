"""A source's listed items decoded once into an on-disk image store (medsyn.data.store), reused after.

    read_dicom_folder("/data/ct", size=256, store=True)                 # cache: MEDSYN_CACHE_DIR / ~/.cache
    read_nifti_folder("/data/mri", size=128, store=True, cache_dir="/scratch/medsyn", store_dtype="uint16")

Every reader with a ``store`` option (image_folder, dicom_folder, nifti_folder, medmnist, chexpert) works in
two steps, so the stored set is the in-memory one:

1. It lists its items without decoding a pixel: each item's file, label, item id and split group, from file
   names, the labels CSV and headers (DICOM headers up to the pixel data, NIfTI headers, .npy headers). Item
   ids and groups are computed as in memory and held in memory only; the store records file digests, labels
   and the pixel options (medsyn.data.store.fingerprint, manifest), never a name, a path or a PatientID.
2. :func:`stored_image_set` hands the store builder a decode callback that runs the reader's in-memory code
   for an item's file (DICOM windowing, NIfTI scaling and slicing) and the same per-image resize
   (:func:`resized_item`), so the pixels are the in-memory ones bit for bit under ``store_dtype="auto"``.

A later run with the same files (path, size, mtime), labels, item order and options reuses the store
without decoding; a changed, added or removed file rebuilds it. ``on_error="skip"`` is refused with a store
(a store holds every listed item); remove the bad files or read in memory.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from medsyn.data.image_set import ImageSet
from medsyn.data.pixels import resize_images
from medsyn.data.source_data import SourceData
from medsyn.data.store import ImageStore, build_store
from medsyn.data.store.storage_dtype import DTYPE_REQUESTS
from medsyn.data.stored_images import StoredImages

__all__ = [
    "FileItemDecoder", "ListedItems", "StoreDtype", "build_source_store", "check_store_options",
    "listing_digest", "resized_item", "store_root", "stored_image_set", "stored_source_data",
]

# medsyn.data.store.storage_dtype.DTYPE_REQUESTS as a type, so the config checks a reader's store_dtype
# (tests/data/store/test_source_stores.py keeps the two equal)
StoreDtype = Literal["auto", "uint8", "uint16", "float32"]


def check_store_options(store: bool, store_dtype: str, on_error: str = "raise") -> None:
    """The ``store`` options of a reader, checked before any file is read (ValueError naming the option)."""
    if not isinstance(store, bool):
        raise ValueError(f"store must be true or false, got {store!r}")
    if not isinstance(store_dtype, str) or store_dtype not in DTYPE_REQUESTS:
        raise ValueError(f"store_dtype must be one of {list(DTYPE_REQUESTS)}, got {store_dtype!r}")
    if store and on_error != "raise":
        raise ValueError(f"on_error={on_error!r} cannot be used with store: true (a store holds every listed "
                         "file); remove the bad files or read without the store")


def listing_digest(path: str | os.PathLike) -> str:
    """16 hex digits of the resolved path of a file that decides what a source lists (a labels CSV, a .npz):
    in the store options, two listings of one folder keep two stores, and no name reaches the manifest."""
    return hashlib.sha256(str(Path(path).resolve()).encode("utf-8")).hexdigest()[:16]


def store_root(root: Path, files: Sequence[Path]) -> Path:
    """``root``, or the folder above it and every file when some lie elsewhere (``allow_outside_root``):
    the store fingerprints each file by its path under the root."""
    base = os.path.abspath(root)
    prefix = os.path.join(base, "")
    paths = [os.path.abspath(path) for path in files]
    if all(path.startswith(prefix) for path in paths):
        return root
    return Path(os.path.commonpath([base, *paths]))


def resized_item(image: torch.Tensor, size: int | None) -> torch.Tensor:
    """One float [C, H, W] image resized as :func:`medsyn.data.pixels.stack_images` resizes each image."""
    return image if size is None else resize_images(image.unsqueeze(0), size)[0]


class FileItemDecoder:
    """``decode(i)`` for items that come several to a file (DICOM frames, NIfTI slices).

    decode_file: file index -> float32 [k, C, H, W] (the reader's in-memory decoding of that file), kept
        for the next item of the same file (the builder decodes items in order, a file's items together)
    item_files / item_rows: each item's file index, and its row in that file's decoded images
    expected_rows: how many images each file must decode to (what the listing counted from its header)
    """

    def __init__(self, decode_file: Callable[[int], torch.Tensor], item_files: Sequence[int],
                 item_rows: Sequence[int], expected_rows: Sequence[int], names: Sequence[str],
                 size: int | None) -> None:
        self._decode_file = decode_file
        self._item_files, self._item_rows = list(item_files), list(item_rows)
        self._expected, self._names, self._size = list(expected_rows), list(names), size
        self._file: int | None = None
        self._images: torch.Tensor | None = None

    def __call__(self, index: int) -> torch.Tensor:
        file = self._item_files[index]
        if file != self._file:
            self._images, self._file = None, None  # release the previous file's images first
            images = self._decode_file(file)
            if len(images) != self._expected[file]:
                raise ValueError(f"{self._names[file]}: decoded {len(images)} image(s), its header gave "
                                 f"{self._expected[file]} (a header that does not describe the pixels)")
            self._images, self._file = images, file
        return resized_item(self._images[self._item_rows[index]], self._size)


def build_source_store(
    *,
    kind: str,
    root: Path,
    files: Sequence[Path],
    labels: Sequence[int],
    class_names: Sequence[str],
    image_shape: tuple[int, int, int],
    decode: Callable[[int], torch.Tensor],
    options: Mapping[str, Any],
    cache_dir: str | os.PathLike | None,
    dtype: str,
    item_files: Sequence[int] | None = None,
) -> ImageStore:
    """The store of the listed items, built on the first run, reused while nothing changed.

    files: every file the pixels come from (the store's root is :func:`store_root` of ``root`` and them);
    labels: one class index per item; item_files: each item's index in ``files`` (None: item i is
    files[i]); decode: item index -> float32 [C, H, W] in [0, 1] of ``image_shape``; options: JSON values
    that decide the pixels (no paths, no names: the manifest records them).
    """
    check_store_options(True, dtype)
    return build_store(kind=kind, root=store_root(root, files), files=files,
                       labels=np.asarray(labels, dtype=np.int64), class_names=tuple(class_names),
                       image_shape=image_shape, decode=decode, options=options, item_files=item_files,
                       dtype=dtype, cache_dir=cache_dir).store


def stored_image_set(*, source: str, **arguments: Any) -> ImageSet:
    """The ImageSet of :func:`build_source_store` (same arguments), its images StoredImages of the store."""
    store = build_source_store(**arguments)
    return ImageSet(StoredImages.of_store(store), store.labels, store.class_names, source)


@dataclass
class ListedItems:
    """A folder source's items as listed before decoding, in reading order.

    files / file_shapes / file_rows: each file, the (C, H, W) of its images before resizing and how many
    images it decodes to; labels / item_ids / groups / item_files / item_rows: per item, its class index,
    id, split group (held in memory only), file index and row in that file's decoded images.
    """

    files: list[Path] = field(default_factory=list)
    file_shapes: list[tuple[int, int, int]] = field(default_factory=list)
    file_rows: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    item_files: list[int] = field(default_factory=list)
    item_rows: list[int] = field(default_factory=list)

    def add_file(self, path: Path, shape: tuple[int, int, int], label: int, item_ids: Sequence[str],
                 group: str) -> None:
        """One file whose images (``len(item_ids)`` of ``shape``) are items of one split group."""
        index = len(self.files)
        self.files.append(path)
        self.file_shapes.append(tuple(int(n) for n in shape))  # type: ignore[arg-type]
        self.file_rows.append(len(item_ids))
        for row, item_id in enumerate(item_ids):
            self.labels.append(label)
            self.item_ids.append(item_id)
            self.groups.append(group)
            self.item_files.append(index)
            self.item_rows.append(row)

    def image_shape(self, size: int | None) -> tuple[int, int, int]:
        """(C, size, size), or the one shape of every image when size is None; the first file that differs
        is named as :func:`medsyn.data.pixels.stack_images` names it."""
        first_shape, first = self.file_shapes[0], self.files[0]
        for shape, path in zip(self.file_shapes, self.files):
            if shape[0] != first_shape[0]:
                raise ValueError(
                    f"{path}: {shape[0]} channel(s) but {first} has {first_shape[0]}; "
                    "convert colour to grey (or grey to RGB) so every image has the same channels"
                )
            if size is None and shape != first_shape:
                raise ValueError(f"{path}: image shape {shape} differs from {first} {first_shape}; "
                                 "set size to resize every image")
        return first_shape if size is None else (first_shape[0], int(size), int(size))


def stored_source_data(
    listing: ListedItems,
    decode_file: Callable[[int], torch.Tensor],
    *,
    kind: str,
    root: Path,
    class_names: tuple[str, ...],
    size: int | None,
    options: Mapping[str, Any],
    cache_dir: str | os.PathLike | None,
    dtype: str,
    source: str,
    group_key: str | None = "file",
    group_fallbacks: dict[str, int] | None = None,
) -> SourceData:
    """The SourceData of ``listing`` with its pixels in a store (built on the first run): what
    :func:`medsyn.data.source_data.source_data_from_items` gives in memory, item for item (a folder
    reader checks first that every class has an item, :func:`medsyn.data.source_data.check_every_class`).

    decode_file: file index -> float32 [k, C, H, W] in [0, 1], the file's images before resizing.
    """
    decode = FileItemDecoder(decode_file, listing.item_files, listing.item_rows, listing.file_rows,
                             [str(path) for path in listing.files], size)
    image_set = stored_image_set(
        kind=kind, root=root, files=listing.files, labels=listing.labels, class_names=class_names,
        image_shape=listing.image_shape(size), decode=decode, options=options, cache_dir=cache_dir,
        dtype=dtype, source=source, item_files=listing.item_files,
    )
    return SourceData(sets=image_set, item_ids=list(listing.item_ids), groups=list(listing.groups),
                      group_key=group_key, group_fallbacks=dict(group_fallbacks or {}))
