"""An external synthetic set: a folder of images plus a labels CSV, scored against a real data set.

    synthetic = load_labelled_folder("gan_out/", "gan_out/labels.csv", class_names=train.class_names,
                                     image_shape=train.image_shape)

The CSV has a header row with the columns ``filename`` and ``label``::

    filename,label
    img_0001.png,pneumonia
    img_0002.png,0

``filename`` is relative to the folder; ``label`` is a class name of the real data set or a class index
(a bare integer in [0, number of classes)); a name wins over an index when a class is itself named "0".
Images are decoded with their own channel count (grey stays 1 channel, RGB 3) and are NOT resized or
converted: a synthetic set whose size or channel count differs from the real data would be scored on
different terms, so it is an error. Rows are read in CSV order, which is the order of the returned set.

Bad input raises before any image is used: a missing folder or CSV, or a listed file that does not
exist -> FileNotFoundError naming it; a missing column, an empty or duplicated filename, an unknown label,
an undecodable image, or an image of the wrong (C, H, W) -> ValueError naming the CSV row or the file.
A filename that resolves (after symlinks) outside the folder, such as ``../real_patients/p1.png`` or an
absolute path elsewhere, is refused naming the CSV, row and path, so real images cannot be scored as
synthetic by accident; ``allow_outside_root=True`` accepts it.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from medsyn.data.image_folder import decode_image_bytes
from medsyn.data.image_set import ImageSet
from medsyn.data.safe_names import listed_path

__all__ = ["load_labelled_folder", "parse_label"]

_FILENAME_COLUMN = "filename"
_LABEL_COLUMN = "label"


def parse_label(value: str, class_names: Sequence[str], *, where: str) -> int:
    """A CSV label (class name, or class index as a bare integer) -> class index in [0, len(class_names))."""
    text = value.strip()
    if text in class_names:
        return list(class_names).index(text)
    if text.lstrip("-").isdigit():
        index = int(text)
        if 0 <= index < len(class_names):
            return index
    raise ValueError(
        f"{where}: label {value!r} is unknown to the data set; expected one of the class names "
        f"{list(class_names)} or an index in [0, {len(class_names)})"
    )


def _read_rows(csv_path: Path) -> list[tuple[int, str, str]]:
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [name for name in (_FILENAME_COLUMN, _LABEL_COLUMN) if name not in columns]
        if missing:
            raise ValueError(
                f"labels CSV {csv_path}: missing column(s) {missing}; expected a header 'filename,label', "
                f"got {columns}"
            )
        rows = []
        for row_number, row in enumerate(reader, start=1):
            rows.append((row_number, (row[_FILENAME_COLUMN] or "").strip(), row[_LABEL_COLUMN] or ""))
    return rows


def load_labelled_folder(
    folder: str | os.PathLike,
    labels_csv: str | os.PathLike,
    *,
    class_names: Sequence[str],
    image_shape: tuple[int, int, int],
    allow_outside_root: bool = False,
    store: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> ImageSet:
    """Read the images listed in ``labels_csv`` from ``folder``.

    class_names: the real data set's classes (label names and indices are resolved against them)
    image_shape: (C, H, W) of the real data; every image must have exactly this shape
    allow_outside_root: accept filenames that resolve outside ``folder`` (refused by default)
    store: decode once into an on-disk image store (medsyn.data.store; reused while the files, labels and
        order are unchanged) and return its StoredImages; cache_dir: where stores live (default
        MEDSYN_CACHE_DIR, else the user cache folder)
    returns: ImageSet, images float32 [N, C, H, W] in [0, 1] (8-bit PNG: value / 255), labels int64 [N]
    """
    folder = Path(folder)
    csv_path = Path(labels_csv)
    if not folder.is_dir():
        raise FileNotFoundError(f"synthetic image folder not found: {folder}")
    if not csv_path.is_file():
        raise FileNotFoundError(f"labels CSV not found: {csv_path}")
    if not class_names:
        raise ValueError("class_names is empty: the real data set's classes are needed to read labels")
    shape = tuple(int(size) for size in image_shape)
    if len(shape) != 3:
        raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
    rows = _read_rows(csv_path)
    if not rows:
        raise ValueError(f"labels CSV {csv_path} lists no images")

    # Every label and path is checked before any image is decoded, so a typo fails fast.
    seen: dict[str, int] = {}
    labels, paths = [], []
    for row_number, filename, label in rows:
        where = f"labels CSV {csv_path}, row {row_number}"
        if not filename:
            raise ValueError(f"{where}: empty filename")
        if filename in seen:
            raise ValueError(f"{where}: filename {filename!r} is listed twice (first in row {seen[filename]})")
        seen[filename] = row_number
        labels.append(parse_label(label, class_names, where=where))
        path = listed_path(folder, filename, where=where, allow_outside_root=allow_outside_root)
        if not path.is_file():
            raise FileNotFoundError(f"{where}: image file {path} does not exist")
        paths.append(path)

    def decode(index: int) -> torch.Tensor:
        path = paths[index]
        image = decode_image_bytes(path.read_bytes(), None, where=str(path))
        if tuple(image.shape) != shape:
            raise ValueError(
                f"{path}: image has (C,H,W)={tuple(image.shape)} but the real data has {shape}; "
                "resize or convert the synthetic images to the real data's size and channel count first"
            )
        return image

    label_tensor = torch.tensor(labels, dtype=torch.int64)
    if store:
        from medsyn.data.store import build_store
        from medsyn.data.stored_images import StoredImages

        built = build_store(kind="labelled_folder", root=folder, files=paths, labels=label_tensor,
                            class_names=tuple(class_names), image_shape=shape, decode=decode, options={},
                            cache_dir=cache_dir).store
        return ImageSet(StoredImages.of_store(built), label_tensor, tuple(class_names), str(folder))
    images = [decode(index) for index in range(len(paths))]
    return ImageSet(torch.stack(images).float().contiguous(), label_tensor, tuple(class_names), str(folder))
