"""MNIST and Fashion-MNIST (LeCun et al. 1998; Xiao et al. 2017) as shipped: IDX files or a Keras-style .npz.

    read_mnist("data/fashion-mnist/")                 # a folder of the four IDX files (gzipped or plain)
    read_mnist("mnist.npz", parts="train")            # x_train, y_train, x_test, y_test

The IDX format (http://yann.lecun.com/exdb/mnist/): a big-endian header, two zero bytes, a type code (0x08:
uint8), the number of dimensions, then one uint32 per dimension, then the values in C order. A file is read
as gzip when it starts with the gzip magic bytes, whatever its name. Images are uint8 [N, 28, 28] in
[0, 255], labels uint8 [N] with one class each.

``parts`` chooses the official parts to use ("all": train and test together, the default; "train"; "test").
The chosen images form one ImageSet that medsyn splits stratified 80/10/10 from the seed like any source,
so the holdout of paper 001's DP sweep (the test split) is never seen by the generator. Paper 001 §4 uses
MNIST; Fashion-MNIST has the same layout (``fashion_mnist`` registers it with its class names).
"""

from __future__ import annotations

import gzip
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from medsyn.data.image_set import ImageSet
from medsyn.data.pixels import integer_to_unit_range, resize_images
from medsyn.data.source_data import SourceData

__all__ = ["FASHION_MNIST_CLASSES", "IDX_FILES", "read_idx", "read_mnist"]

Parts = Literal["all", "train", "test"]

# part -> (images, labels) file names as distributed (each may carry a .gz suffix)
IDX_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Xiao et al. 2017, Table 1 (label 0..9)
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array of one IDX file (gzip or plain), native byte order; ValueError naming ``path`` for a bad
    header (magic, type code, dimensions) or a size that does not match it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise ValueError(f"{path}: not a readable gzip file ({error})") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (expected the header to start with two zero bytes, got "
                         f"{raw[:4].hex() or 'an empty file'})")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{type_code:02x} (expected one of "
                         f"{[f'0x{code:02x}' for code in _IDX_TYPES]})")
    if ndim == 0 or len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: IDX header declares {ndim} dimensions but the file has {len(raw)} bytes")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_TYPES[type_code]
    expected = int(np.prod(shape)) * dtype.itemsize
    body = raw[4 + 4 * ndim:]
    if len(body) != expected:
        raise ValueError(f"{path}: IDX header declares shape {shape} ({expected} bytes of data), the file holds "
                         f"{len(body)}")
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _idx_file(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{folder}: no {name} or {name}.gz (an MNIST folder holds "
                            f"{[n for pair in IDX_FILES.values() for n in pair]}, each optionally gzipped)")


def _idx_part(folder: Path, part: str) -> tuple[np.ndarray, np.ndarray, str]:
    image_name, label_name = IDX_FILES[part]
    image_file, label_file = _idx_file(folder, image_name), _idx_file(folder, label_name)
    images, labels = read_idx(image_file), read_idx(label_file)
    _check_part(images, labels, f"{image_file}", f"{label_file}")
    return images, labels, str(image_file)


def _npz_part(path: Path, archive: np.lib.npyio.NpzFile, part: str) -> tuple[np.ndarray, np.ndarray, str]:
    image_key, label_key = f"x_{part}", f"y_{part}"
    for key in (image_key, label_key):
        if key not in archive.files:
            raise ValueError(f"{path}: missing key {key!r} (an MNIST .npz holds x_train, y_train, x_test, y_test; "
                             f"found {sorted(archive.files)})")
    images, labels = archive[image_key], archive[label_key]
    _check_part(images, labels, f"{path} key {image_key!r}", f"{path} key {label_key!r}")
    return images, labels, str(path)


def _check_part(images: np.ndarray, labels: np.ndarray, image_where: str, label_where: str) -> None:
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"{image_where}: expected uint8 images [N, H, W], got {images.dtype} {images.shape}")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{label_where}: expected integer labels [N], got {labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise ValueError(f"{label_where}: {len(labels)} labels for {len(images)} images in {image_where}")
    if len(images) == 0:
        raise ValueError(f"{image_where}: no images")
    if labels.min() < 0:
        raise ValueError(f"{label_where}: labels must be non-negative class indices, got {int(labels.min())}")


def read_mnist(
    path: str | os.PathLike,
    *,
    parts: Parts = "all",
    size: int | None = None,
    class_names: Sequence[str] | None = None,
) -> SourceData:
    """MNIST-layout images as one ImageSet, float32 [N, 1, size, size] in [0, 1] (size None: 28).

    path: a folder with the IDX files of ``IDX_FILES`` (each plain or ``.gz``), or an ``.npz`` with x_train,
        y_train, x_test, y_test; parts: "all" (train then test), "train" or "test"; class_names: one per label
        (default "0", "1", ...).
    """
    path = Path(path)
    if parts not in ("all", "train", "test"):
        raise ValueError(f"parts must be 'all', 'train' or 'test', got {parts!r}")
    chosen = ("train", "test") if parts == "all" else (parts,)
    if path.is_dir():
        loaded = [_idx_part(path, part) for part in chosen]
    elif path.is_file():
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path}: neither a folder of IDX files nor an .npz archive")
        try:
            with np.load(path, allow_pickle=False) as archive:
                loaded = [_npz_part(path, archive, part) for part in chosen]
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise ValueError(f"{path}: not a readable .npz file ({error})") from error
    else:
        raise FileNotFoundError(f"MNIST data not found: {path} (a folder of IDX files or an .npz)")
    shapes = {images.shape[1:] for images, _labels, _where in loaded}
    if len(shapes) != 1:
        raise ValueError(f"{path}: the parts have different image sizes {sorted(shapes)}")
    images = np.concatenate([images for images, _labels, _where in loaded])
    labels = np.concatenate([labels for _images, labels, _where in loaded]).astype(np.int64)
    num_classes = int(labels.max()) + 1
    if class_names is None:
        names = tuple(str(index) for index in range(num_classes))
    elif len(class_names) < num_classes:
        raise ValueError(f"{path}: class_names has {len(class_names)} names but labels go up to {num_classes - 1}")
    else:
        names = tuple(class_names)
    unit = torch.from_numpy(integer_to_unit_range(images, where=str(path))).unsqueeze(1)
    return SourceData(sets=ImageSet(resize_images(unit, size).contiguous(), torch.from_numpy(labels), names,
                                    source=str(path)))
