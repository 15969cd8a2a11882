"""MedMNIST-format ``.npz`` files (Yang et al. 2023): the official train/val/test splits, kept as they are.

Keys: ``train_images``, ``train_labels``, ``val_images``, ``val_labels``, ``test_images``, ``test_labels``.
Images are uint8 [N, H, W] (grey) or [N, H, W, 3] (RGB); labels are int [N, 1] (or [N]), one class each.
Multi-label files (ChestMNIST, labels [N, 14]) are refused: medsyn's generators are single-class conditional.

The official splits are kept (their patients are disjoint across splits by construction, which a random
image-level split would not guarantee); the split manifest records them with ``strategy="official"`` and
only the ``per_class`` subsample of train is drawn from the seed.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from medsyn.data.image_set import ImageSet
from medsyn.data.pixels import convert_channels, integer_to_unit_range, resize_images
from medsyn.data.source_data import SourceData
from medsyn.data.source_store import StoreDtype, build_source_store, check_store_options, listing_digest
from medsyn.data.split import SPLIT_NAMES
from medsyn.data.stored_images import StoredImages

__all__ = ["load_medmnist_npz", "read_medmnist_npz"]


def _split_arrays(path: Path, archive: dict[str, np.ndarray], split: str) -> tuple[np.ndarray, np.ndarray]:
    image_key, label_key = _checked_keys(path, archive, split)
    images = archive[image_key]
    _check_split(path, split, images.shape, images.dtype, archive[label_key])
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    return images, _labels(archive[label_key])


def _checked_keys(path: Path, keys, split: str) -> tuple[str, str]:
    image_key, label_key = f"{split}_images", f"{split}_labels"
    for key in (image_key, label_key):
        if key not in keys:
            raise ValueError(
                f"{path}: missing key {key!r} (MedMNIST .npz needs {split}_images and {split}_labels)"
            )
    return image_key, label_key


def _labels(labels: np.ndarray) -> np.ndarray:
    return (labels[:, 0] if labels.ndim == 2 and labels.shape[1] == 1 else labels).astype(np.int64)


def _check_split(path: Path, split: str, shape: tuple[int, ...], dtype: np.dtype, labels: np.ndarray) -> None:
    """The images (by shape and dtype: they need not be loaded) and labels of one split, or ValueError."""
    image_key, label_key = f"{split}_images", f"{split}_labels"
    if len(shape) == 4 and shape[-1] == 1:
        shape = shape[:3]
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[-1] != 3):
        raise ValueError(f"{path}: key {image_key!r} must be [N,H,W] or [N,H,W,3], got shape {shape}")
    if dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{path}: key {image_key!r} must be uint8 (or uint16), got {dtype}")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(
            f"{path}: key {label_key!r} must be [N] or [N,1] (one class per image), got shape {labels.shape}"
            " — multi-label MedMNIST sets are not supported"
        )
    if len(labels) != shape[0]:
        raise ValueError(
            f"{path}: key {label_key!r} has {len(labels)} labels but {image_key!r} has {shape[0]} images"
        )
    if shape[0] == 0:
        raise ValueError(f"{path}: key {image_key!r} is empty")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError(f"{path}: key {label_key!r} must hold non-negative integer class indices")


def _checked_file(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"MedMNIST file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not an .npz archive (MedMNIST files are zip archives of arrays)")


def _class_names(path: Path, labels: list[np.ndarray], class_names: Sequence[str] | None) -> tuple[str, ...]:
    num_classes = max(int(split_labels.max()) for split_labels in labels) + 1
    if class_names is None:
        return tuple(str(index) for index in range(num_classes))
    if len(class_names) < num_classes:
        raise ValueError(
            f"{path}: class_names has {len(class_names)} names but labels go up to {num_classes - 1}"
        )
    return tuple(class_names)


def _unit_images(images: np.ndarray, channels: int | None, size: int | None, *, where: str, path: Path
                 ) -> torch.Tensor:
    """uint8/uint16 [n, H, W] or [n, H, W, 3] -> float32 [n, C, size, size] in [0, 1]."""
    unit = torch.from_numpy(integer_to_unit_range(images, where=where))
    unit = unit.unsqueeze(1) if unit.ndim == 3 else unit.permute(0, 3, 1, 2)
    return resize_images(convert_channels(unit, channels, where=str(path)), size).contiguous()


def read_medmnist_npz(
    path: str | os.PathLike,
    *,
    size: int | None = None,
    channels: int | None = None,
    class_names: Sequence[str] | None = None,
    store: bool = False,
    cache_dir: str | os.PathLike | None = None,
    store_dtype: StoreDtype = "auto",
) -> SourceData:
    """The three official splits as ImageSets, float32 [N, C, size, size] in [0, 1].

    store: decode once into an on-disk image store (one for the three splits) and reuse it on later runs
        (:mod:`medsyn.data.source_store`; the labels and the images' .npy headers are read on every run,
        the pixels only when the store is built); cache_dir: where stores live (default MEDSYN_CACHE_DIR,
        else the user cache folder); store_dtype: "auto" (the narrowest exact), "uint8", "uint16" or
        "float32"
    """
    path = Path(path)
    check_store_options(store, store_dtype)
    _checked_file(path)
    if store:
        return _stored_splits(path, size=size, channels=channels, class_names=class_names,
                              cache_dir=cache_dir, dtype=store_dtype)
    try:
        with np.load(path, allow_pickle=False) as archive:
            raw = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:  # ValueError: pickled object arrays
        raise ValueError(f"{path}: not a readable .npz file ({error})") from error
    arrays = {split: _split_arrays(path, raw, split) for split in SPLIT_NAMES}
    names = _class_names(path, [labels for _, labels in arrays.values()], class_names)
    sets = {}
    for split, (images, labels) in arrays.items():
        unit = _unit_images(images, channels, size, where=f"{path} key '{split}_images'", path=path)
        sets[split] = ImageSet(unit, torch.from_numpy(labels), names, source=str(path))
    return SourceData(sets=sets)


def _npz_layout(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype, np.ndarray]]:
    """split -> (images shape, images dtype, labels) of each official split; the images are not loaded
    (their shape and dtype come from the .npy header inside the archive)."""
    try:
        with zipfile.ZipFile(path) as archive, np.load(path, allow_pickle=False) as arrays:
            layout = {}
            for split in SPLIT_NAMES:
                image_key, label_key = _checked_keys(path, arrays.files, split)
                with archive.open(f"{image_key}.npy") as member:
                    version = np.lib.format.read_magic(member)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _fortran, dtype = read_header(member)
                layout[split] = (tuple(shape), np.dtype(dtype), arrays[label_key])
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, ValueError) as error:
        if isinstance(error, ValueError) and str(error).startswith(f"{path}:"):
            raise
        raise ValueError(f"{path}: not a readable .npz file ({error})") from error
    for split, (shape, dtype, labels) in layout.items():
        _check_split(path, split, shape, dtype, labels)
    return layout


def _stored_splits(path: Path, *, size: int | None, channels: int | None, class_names: Sequence[str] | None,
                   cache_dir: str | os.PathLike | None, dtype: str) -> SourceData:
    """read_medmnist_npz with ``store=True``: the three splits as views of one store, train then val then
    test; building it decodes one split's images at a time, each image as the in-memory path does."""
    layout = _npz_layout(path)
    labels = {split: _labels(split_labels) for split, (_, _, split_labels) in layout.items()}
    names = _class_names(path, list(labels.values()), class_names)
    counts = [len(labels[split]) for split in SPLIT_NAMES]
    starts = np.cumsum([0, *counts])
    shape = layout[SPLIT_NAMES[0]][0]
    height, width = shape[1:3]
    image_channels = channels or (3 if len(shape) == 4 and shape[-1] == 3 else 1)
    loaded: dict[str, np.ndarray] = {}  # the split being decoded (one at a time)

    def decode(index: int) -> torch.Tensor:
        number = int(np.searchsorted(starts, index, side="right")) - 1
        split = SPLIT_NAMES[number]
        if split not in loaded:
            loaded.clear()
            with np.load(path, allow_pickle=False) as archive:
                images = archive[f"{split}_images"]
            loaded[split] = images[..., 0] if images.ndim == 4 and images.shape[-1] == 1 else images
        row = index - int(starts[number])
        return _unit_images(loaded[split][row:row + 1], channels, size, where=f"{path} key '{split}_images'",
                            path=path)[0]

    store = build_source_store(
        kind="medmnist", root=path.parent, files=[path], labels=np.concatenate(list(labels.values())),
        class_names=names, item_files=[0] * int(starts[-1]),
        image_shape=(image_channels, *((size, size) if size is not None else (height, width))),
        decode=decode, options={"size": size, "channels": channels, "listing": listing_digest(path)},
        cache_dir=cache_dir, dtype=dtype,
    )
    sets = {
        split: ImageSet(StoredImages.of_store(store, np.arange(starts[number], starts[number + 1])),
                        torch.from_numpy(labels[split]), names, source=str(path))
        for number, split in enumerate(SPLIT_NAMES)
    }
    return SourceData(sets=sets)


def load_medmnist_npz(path: str | os.PathLike, **options) -> dict[str, ImageSet]:
    """{"train", "val", "test"} -> ImageSet (see :func:`read_medmnist_npz`)."""
    return read_medmnist_npz(path, **options).sets  # type: ignore[return-value]
