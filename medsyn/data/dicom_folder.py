"""A folder of DICOM files with labels from a CSV (file path or SOPInstanceUID -> label) or from folder names.

    read_dicom_folder("/data/study", labels_csv="/data/labels.csv", size=64)
    read_dicom_folder("/data/by_class", size=64)          # /data/by_class/<label>/<any depth>/<file>.dcm

Each file is decoded by :func:`medsyn.data.dicom_pixels.dicom_frames` (modality LUT, VOI LUT/window or a
configured window, MONOCHROME1 inverted, multi-frame per frame or the middle frame, colour kept or grey),
resized to ``size`` and stacked into an ImageSet in [0, 1]. Frames of one file share a split group, so a
multi-frame file never straddles train and test.

Files are read into memory once and parsed from those bytes; the folder is never written to. In folder-name
mode, files with suffix .dcm/.dicom/.ima or no suffix are read (DICOM files often have none), except
DICOMDIR; others are ignored.

Bad input (each names the file): not DICOM, truncated, no pixel data, undecodable compression, a second file
with the same SOPInstanceUID or the same bytes, a CSV row naming a missing file/UID or an unknown label ->
ValueError / FileNotFoundError, or with ``on_error="skip"`` left out, warned about and listed in the manifest.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from collections.abc import Sequence
from pathlib import Path

import torch

from medsyn.data.image_folder import list_class_folders
from medsyn.data.image_set import ImageSet
from medsyn.data.labels_csv import read_labels_csv
from medsyn.data.read_errors import SkippedFiles
from medsyn.data.source_data import SourceData, source_data_from_items

__all__ = ["DICOM_SUFFIXES", "read_dicom_folder", "load_dicom_folder", "read_dicom_bytes"]

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima", "")  # .ima: Siemens; DICOM files often have no suffix

# What pydicom raises on broken files varies with the damage; each is turned into an error naming the file.
_DECODE_ERRORS = (
    ValueError, RuntimeError, AttributeError, NotImplementedError, TypeError, KeyError, IndexError,
    EOFError, OSError, struct.error,
)


def read_dicom_bytes(data: bytes, *, where: str, stop_before_pixels: bool = False):
    """DICOM Part 10 file bytes -> pydicom Dataset; ValueError naming ``where`` if it is not DICOM."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=stop_before_pixels)
    except InvalidDicomError as error:
        raise ValueError(f"{where}: not a DICOM file ({error})") from error
    except _DECODE_ERRORS as error:
        raise ValueError(f"{where}: unreadable DICOM ({type(error).__name__}: {error})") from error


def _dicom_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in DICOM_SUFFIXES and not p.name.startswith(".")
        and p.name.upper() != "DICOMDIR"  # the index file of a DICOM CD, not an image
    )


def _labelled_files(
    root: Path, labels_csv: str | os.PathLike | None, key_column: str | None, label_column: str,
    class_names: Sequence[str] | None, skipped: SkippedFiles,
) -> tuple[list[tuple[Path, int]], tuple[str, ...]]:
    """(file, class index) pairs and the class names, from the CSV or from the class folders."""
    if labels_csv is None:
        folders = list_class_folders(root, class_names)
        pairs = []
        for class_index, folder in enumerate(folders):
            files = _dicom_files(folder)
            if not files:
                raise ValueError(f"class folder {folder} has no DICOM files (.dcm, .dicom, .ima, no suffix)")
            pairs += [(path, class_index) for path in files]
        return pairs, tuple(folder.name for folder in folders)

    table = read_labels_csv(
        labels_csv, key_column=key_column, label_column=label_column, class_names=class_names, skipped=skipped
    )
    pairs = []
    if table.key_kind == "path":
        for key, label in table.labels.items():
            path = Path(key) if Path(key).is_absolute() else root / key
            if not path.is_file():
                skipped.bad_file(path, f"listed in {table.csv_path} row {table.rows[key]} but not found",
                                 missing=True)
                continue
            pairs.append((path, label))
        return pairs, table.class_names

    # SOPInstanceUID keys: read every header once to find the files.
    path_by_uid: dict[str, Path] = {}
    for path in _dicom_files(root):
        try:
            header = read_dicom_bytes(path.read_bytes(), where=str(path), stop_before_pixels=True)
        except ValueError as error:
            skipped.bad_file(path, str(error).removeprefix(f"{path}: "))
            continue
        uid = str(header.get("SOPInstanceUID", ""))
        if uid in table.labels:
            path_by_uid.setdefault(uid, path)
    for uid, label in table.labels.items():
        if uid not in path_by_uid:
            skipped.bad_file(f"{table.csv_path}:row {table.rows[uid]}",
                             f"SOPInstanceUID {uid} not found in any DICOM file under {root}", missing=True)
            continue
        pairs.append((path_by_uid[uid], label))
    pairs.sort(key=lambda pair: str(pair[0]))
    return pairs, table.class_names


def read_dicom_folder(
    path: str | os.PathLike,
    *,
    labels_csv: str | os.PathLike | None = None,
    key_column: str | None = None,
    label_column: str = "label",
    class_names: Sequence[str] | None = None,
    size: int | None = None,
    window: str | Sequence[float] = "auto",
    frames: str = "all",
    color: str = "grey",
    on_error: str = "raise",
) -> SourceData:
    """Read a DICOM folder into float32 [N, C, size, size] in [0, 1] (see module doc and ``dicom_frames``)."""
    from medsyn.data.dicom_pixels import dicom_frames

    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"DICOM folder not found: {root}")
    if labels_csv is not None and not Path(labels_csv).is_file():
        raise FileNotFoundError(f"labels CSV not found: {labels_csv}")
    skipped = SkippedFiles(on_error)
    pairs, names = _labelled_files(root, labels_csv, key_column, label_column, class_names, skipped)

    images: list[torch.Tensor] = []
    labels: list[int] = []
    item_ids: list[str] = []
    groups: list[str] = []
    first_by_digest: dict[str, str] = {}
    first_by_uid: dict[str, str] = {}
    for file_path, label in pairs:
        data = file_path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest in first_by_digest:
            skipped.bad_file(file_path, f"same bytes as {first_by_digest[digest]} (duplicate file)")
            continue
        try:
            ds = read_dicom_bytes(data, where=str(file_path))
            uid = str(ds.get("SOPInstanceUID", ""))
            if uid and uid in first_by_uid:
                raise ValueError(
                    f"{file_path}: SOPInstanceUID {uid} is also in {first_by_uid[uid]} (same image twice)"
                )
            unit = dicom_frames(ds, where=str(file_path), window=window, frames=frames, color=color)
        except ValueError as error:
            skipped.bad_file(file_path, str(error).removeprefix(f"{file_path}: "))
            continue
        except _DECODE_ERRORS as error:
            skipped.bad_file(file_path, f"pixel data not decodable ({type(error).__name__}: {error})")
            continue
        first_by_digest[digest] = str(file_path)
        if uid:
            first_by_uid[uid] = str(file_path)
        relative = str(file_path.relative_to(root)) if file_path.is_relative_to(root) else str(file_path)
        for frame_index, frame in enumerate(unit):
            images.append(torch.from_numpy(frame))
            labels.append(label)
            item_ids.append(relative if len(unit) == 1 else f"{relative}#frame{frame_index}")
            groups.append(relative)
    skipped.warn_if_any(str(root))
    return source_data_from_items(
        root, what="DICOM folder", images=images, labels=labels, class_names=names, item_ids=item_ids,
        groups=groups, skipped=skipped.entries, size=size,
    )


def load_dicom_folder(path: str | os.PathLike, **options) -> ImageSet:
    """ImageSet of a DICOM folder (see :func:`read_dicom_folder`)."""
    return read_dicom_folder(path, **options).sets  # type: ignore[return-value]
