"""A class-per-folder image set decoded once into an on-disk image store (medsyn.data.source_store).

    read_image_folder("kvasir/", size=256, store=True)                       # cache: MEDSYN_CACHE_DIR / ~/.cache
    read_image_folder("kvasir/", size=256, store=True, cache_dir="/scratch/medsyn")

The first run decodes every file (as ``read_image_folder`` does in memory: the same decoder, the same
per-image resize, the same checks: a duplicate file or an undecodable image is an error naming the file)
and writes the pixels at 1 byte a value where that is exact (8-bit images at their own size), else at
2 bytes; a later run with the same files (path, size, mtime), classes and options reuses the store
without decoding anything, and a changed, added or removed file rebuilds it. ``on_error="skip"`` is
refused with a store (a store holds every listed file; skip in memory, or remove the bad files). The
"float images taken as [0, 1]" warning is given when the images are decoded, not on reuse.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from medsyn.data.image_decode import decode_image
from medsyn.data.image_set import ImageSet
from medsyn.data.source_store import check_store_options, resized_item, stored_image_set

__all__ = ["stored_image_folder"]


def stored_image_folder(
    root: Path,
    files_by_class: Sequence[tuple[Path, int]],
    class_names: tuple[str, ...],
    *,
    size: int | None,
    channels: int,
    value_range: str | Sequence[float],
    cache_dir: str | os.PathLike | None,
    dtype: str,
    source: str,
    assumed_range_message: Callable[[int, str, tuple[float, float], tuple[float, float]], str],
) -> ImageSet:
    """The ImageSet of ``files_by_class`` ((file, class index) in reading order), its images StoredImages
    of the store (read in batches by every stage)."""
    check_store_options(True, dtype)
    files = [path for path, _ in files_by_class]
    labels = np.asarray([label for _, label in files_by_class], dtype=np.int64)
    first_by_digest: dict[str, str] = {}
    assumed: list[tuple[str, tuple[float, float]]] = []

    def decode(index: int) -> torch.Tensor:
        path = files[index]
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest in first_by_digest:
            raise ValueError(f"{path}: same bytes as {first_by_digest[digest]} (duplicate image)")
        first_by_digest[digest] = str(path)
        image, detected = decode_image(data, channels, where=str(path), value_range=value_range)
        if detected is not None:
            assumed.append((str(path), detected))
        if size is not None:
            return resized_item(image, size)
        if tuple(image.shape) != shape:
            raise ValueError(f"{path}: image shape {tuple(image.shape)} differs from {files[0]} {shape}; "
                             "set size to resize every image")
        return image

    shape = _image_shape(files[0], channels, size, value_range)
    options = {"size": size, "channels": channels,
               "value_range": value_range if isinstance(value_range, str) else [float(v) for v in value_range]}
    image_set = stored_image_set(kind="image_folder", root=root, files=files, labels=labels,
                                 class_names=class_names, image_shape=shape, decode=decode, options=options,
                                 dtype=dtype, cache_dir=cache_dir, source=source)
    if assumed:
        overall = (min(r[0] for _, r in assumed), max(r[1] for _, r in assumed))
        warnings.warn(f"image folder {root}: " + assumed_range_message(len(assumed), *assumed[0], overall),
                      UserWarning, stacklevel=3)
    return image_set


def _image_shape(first: Path, channels: int, size: int | None, value_range: str | Sequence[float]
                 ) -> tuple[int, int, int]:
    """(C, H, W) of every item: (channels, size, size), or the first image's own size when size is None."""
    if size is not None:
        return (channels, size, size)
    image, _ = decode_image(first.read_bytes(), channels, where=str(first), value_range=value_range)
    return tuple(image.shape)  # type: ignore[return-value]
