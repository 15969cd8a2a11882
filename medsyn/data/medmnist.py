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
from medsyn.data.split import SPLIT_NAMES

__all__ = ["load_medmnist_npz", "read_medmnist_npz"]


def _split_arrays(path: Path, archive: dict[str, np.ndarray], split: str) -> tuple[np.ndarray, np.ndarray]:
    image_key, label_key = f"{split}_images", f"{split}_labels"
    for key in (image_key, label_key):
        if key not in archive:
            raise ValueError(
                f"{path}: missing key {key!r} (MedMNIST .npz needs {split}_images and {split}_labels)"
            )
    images, labels = archive[image_key], archive[label_key]
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
        raise ValueError(f"{path}: key {image_key!r} must be [N,H,W] or [N,H,W,3], got shape {images.shape}")
    if images.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{path}: key {image_key!r} must be uint8 (or uint16), got {images.dtype}")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(
            f"{path}: key {label_key!r} must be [N] or [N,1] (one class per image), got shape {labels.shape}"
            " — multi-label MedMNIST sets are not supported"
        )
    if len(labels) != len(images):
        raise ValueError(
            f"{path}: key {label_key!r} has {len(labels)} labels but {image_key!r} has {len(images)} images"
        )
    if len(images) == 0:
        raise ValueError(f"{path}: key {image_key!r} is empty")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError(f"{path}: key {label_key!r} must hold non-negative integer class indices")
    return images, labels.astype(np.int64)


def read_medmnist_npz(
    path: str | os.PathLike,
    *,
    size: int | None = None,
    channels: int | None = None,
    class_names: Sequence[str] | None = None,
) -> SourceData:
    """The three official splits as ImageSets, float32 [N, C, size, size] in [0, 1]."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MedMNIST file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not an .npz archive (MedMNIST files are zip archives of arrays)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            raw = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:  # ValueError: pickled object arrays
        raise ValueError(f"{path}: not a readable .npz file ({error})") from error
    arrays = {split: _split_arrays(path, raw, split) for split in SPLIT_NAMES}
    num_classes = max(int(labels.max()) for _, labels in arrays.values()) + 1
    if class_names is None:
        class_names = [str(index) for index in range(num_classes)]
    elif len(class_names) < num_classes:
        raise ValueError(
            f"{path}: class_names has {len(class_names)} names but labels go up to {num_classes - 1}"
        )
    sets = {}
    for split, (images, labels) in arrays.items():
        unit = torch.from_numpy(integer_to_unit_range(images, where=f"{path} key '{split}_images'"))
        unit = unit.unsqueeze(1) if unit.ndim == 3 else unit.permute(0, 3, 1, 2)
        unit = resize_images(convert_channels(unit, channels, where=str(path)), size).contiguous()
        sets[split] = ImageSet(unit, torch.from_numpy(labels), tuple(class_names), source=str(path))
    return SourceData(sets=sets)


def load_medmnist_npz(path: str | os.PathLike, **options) -> dict[str, ImageSet]:
    """{"train", "val", "test"} -> ImageSet (see :func:`read_medmnist_npz`)."""
    return read_medmnist_npz(path, **options).sets  # type: ignore[return-value]
