"""A folder of DICOM files with labels from a CSV (file path or SOPInstanceUID -> label) or from folder names.

    read_dicom_folder("/data/study", labels_csv="/data/labels.csv", size=64)
    read_dicom_folder("/data/by_class", size=64)          # /data/by_class/<label>/<any depth>/<file>.dcm

Each file is decoded by :func:`medsyn.data.dicom_pixels.dicom_frames` (modality LUT, VOI LUT/window or a
configured window, MONOCHROME1 inverted, multi-frame per frame or the middle frame, colour kept or grey),
resized to ``size`` and stacked into an ImageSet in [0, 1].

Patients stay whole: every file is grouped by its PatientID (``group_by``), so all frames and files of one
patient land in one split. A file without a PatientID (missing or blank) falls back to its StudyInstanceUID,
then to the file itself; how many files fell back is warned about (naming the first) and recorded in the split
manifest as ``group_fallbacks``. The group is a hash of the identifier; no PatientID reaches the manifest.
``group_by="StudyInstanceUID"`` groups by study (fallback: the file), ``group_by="file"`` by file only.

One modality per folder: files of several Modality values (CT and MR, or CT and an RT dose) are refused,
naming the modalities and their file counts, unless ``allow_mixed_modalities=True`` (then a warning). Files
of several frame sizes are resized to ``size`` with a warning naming the sizes and counts (pixel spacing
then differs between them); with ``size=None`` they are refused.

Files are read into memory once and parsed from those bytes; the folder is never written to. With
``store=True`` the headers (read up to the pixel data) give the items, their ids and groups and the checks
above on every run, and the pixels are decoded once into an on-disk image store (:mod:`medsyn.data.source_store`;
no PatientID or file name reaches it) and reused while the files are unchanged. In folder-name
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
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from medsyn.data.class_folders import files_by_class_folder, files_under
from medsyn.data.image_set import ImageSet
from medsyn.data.labels_csv import LabelTable, listed_files, read_labels_csv
from medsyn.data.read_errors import SkippedFiles
from medsyn.data.source_data import (
    FolderItems,
    SourceData,
    check_every_class,
    file_item_id,
    source_data_from_items,
)
from medsyn.data.source_store import (
    ListedItems,
    StoreDtype,
    check_store_options,
    listing_digest,
    stored_source_data,
)

__all__ = ["DICOM_SUFFIXES", "GROUP_BY_CHOICES", "read_dicom_folder", "load_dicom_folder", "read_dicom_bytes"]

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima", "")  # .ima: Siemens; DICOM files often have no suffix
# What a split keeps whole, and the fallbacks tried in order when a file lacks the attribute.
_GROUP_FALLBACKS = {
    "PatientID": ("PatientID", "StudyInstanceUID", "file"),
    "StudyInstanceUID": ("StudyInstanceUID", "file"),
    "file": ("file",),
}
GROUP_BY_CHOICES = tuple(_GROUP_FALLBACKS)

# What pydicom raises on broken files varies with the damage; each is turned into an error naming the file.
_DECODE_ERRORS = (
    ValueError, RuntimeError, AttributeError, NotImplementedError, TypeError, KeyError, IndexError,
    EOFError, OSError, struct.error,
)


def read_dicom_bytes(data: bytes, *, where: str, stop_before_pixels: bool = False):
    """DICOM Part 10 file bytes -> pydicom Dataset; ValueError naming ``where`` if it is not DICOM."""
    return _parse_dicom(io.BytesIO(data), where=where, stop_before_pixels=stop_before_pixels)


def _read_dicom_header(path: Path):
    """The data set of the file at ``path`` up to its pixel data (the rest of the file is not read)."""
    with open(path, "rb") as handle:
        return _parse_dicom(handle, where=str(path), stop_before_pixels=True)


def _parse_dicom(handle, *, where: str, stop_before_pixels: bool):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(handle, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError as error:
        raise ValueError(f"{where}: not a DICOM file ({error})") from error
    except _DECODE_ERRORS as error:
        raise ValueError(f"{where}: unreadable DICOM ({type(error).__name__}: {error})") from error


def _split_group(ds, relative: str, group_by: str) -> tuple[str, str]:
    """(group of this file, the key it came from): the first non-blank key of ``group_by``'s fallbacks.

    Identifier values are hashed, so the group can be held and compared without keeping the PatientID.
    """
    for key in _GROUP_FALLBACKS[group_by]:
        if key == "file":
            return f"file:{relative}", key
        value = str(ds.get(key, "") or "").strip()
        if value:
            return f"{key}:{hashlib.sha256(value.encode('utf-8')).hexdigest()[:16]}", key
    raise AssertionError("unreachable: 'file' ends every fallback list")


def _check_consistency(
    root: Path, modalities: Counter, sizes: Counter, *, allow_mixed_modalities: bool, size: int | None
) -> None:
    """Refuse (or, if allowed, warn about) mixed modalities; warn about mixed frame sizes being resized."""
    if len(modalities) > 1:
        found = ", ".join(f"{name}: {count}" for name, count in sorted(modalities.items()))
        message = f"DICOM folder {root} mixes {len(modalities)} modalities (files per Modality: {found})"
        if not allow_mixed_modalities:
            raise ValueError(
                f"{message}; a generator and its scores should cover one modality: read one modality's "
                "folder, or set allow_mixed_modalities: true to read them together"
            )
        warnings.warn(f"{message}; read together (allow_mixed_modalities=True)", UserWarning, stacklevel=3)
    if len(sizes) > 1 and size is not None:
        found = ", ".join(f"{rows}x{cols}: {count}" for (rows, cols), count in sorted(sizes.items()))
        warnings.warn(
            f"DICOM folder {root}: frames of {len(sizes)} sizes (files per rows x columns: {found}) are all "
            f"resized to {size}x{size}, so their pixel spacing differs",
            UserWarning,
            stacklevel=3,
        )


def _warn_about_fallbacks(root: Path, group_by: str, fallbacks: Counter, first_fallback: str | None) -> None:
    """Say how many files were grouped by a fallback key (naming the first), as the manifest records."""
    if not fallbacks:
        return
    found = ", ".join(f"{key}: {fallbacks[key]}" for key in _GROUP_FALLBACKS[group_by] if fallbacks[key])
    warnings.warn(
        f"DICOM folder {root}: {sum(fallbacks.values())} file(s) have no {group_by} and are grouped by a "
        f"fallback ({found}), e.g. {first_fallback}; recorded in the split manifest",
        UserWarning,
        stacklevel=3,
    )


def _is_dicom_file(path: Path) -> bool:
    """Whether the folder reader takes ``path`` for DICOM: suffix .dcm/.dicom/.ima or none, not hidden."""
    return (
        path.suffix.lower() in DICOM_SUFFIXES and not path.name.startswith(".")
        and path.name.upper() != "DICOMDIR"  # the index file of a DICOM CD, not an image
    )


def _labelled_files(
    root: Path, labels_csv: str | os.PathLike | None, key_column: str | None, label_column: str,
    class_names: Sequence[str] | None, skipped: SkippedFiles, allow_outside_root: bool = False,
) -> tuple[list[tuple[Path, int]], tuple[str, ...]]:
    """(file, class index) pairs and the class names, from the CSV or from the class folders."""
    if labels_csv is None:
        return files_by_class_folder(
            root, class_names, _is_dicom_file, "DICOM files (.dcm, .dicom, .ima, no suffix)"
        )
    table = read_labels_csv(
        labels_csv, key_column=key_column, label_column=label_column, class_names=class_names, skipped=skipped
    )
    if table.key_kind == "path":
        listed = listed_files(table, root, skipped=skipped, allow_outside_root=allow_outside_root)
        return [(path, label) for _key, path, label in listed], table.class_names
    return _files_by_uid(root, table, skipped), table.class_names


def _files_by_uid(root: Path, table: LabelTable, skipped: SkippedFiles) -> list[tuple[Path, int]]:
    """(file, class index) of each SOPInstanceUID row of ``table``, sorted by path; every DICOM header under
    ``root`` is read once to find the files."""
    path_by_uid: dict[str, Path] = {}
    for path in files_under(root, _is_dicom_file):
        try:
            header = read_dicom_bytes(path.read_bytes(), where=str(path), stop_before_pixels=True)
        except ValueError as error:
            skipped.bad_file(path, str(error).removeprefix(f"{path}: "))
            continue
        uid = str(header.get("SOPInstanceUID", ""))
        if uid in table.labels:
            path_by_uid.setdefault(uid, path)
    pairs = []
    for uid, label in table.labels.items():
        if uid not in path_by_uid:
            skipped.bad_file(f"{table.csv_path}:row {table.rows[uid]}",
                             f"SOPInstanceUID {uid} not found in any DICOM file under {root}", missing=True)
            continue
        pairs.append((path_by_uid[uid], label))
    pairs.sort(key=lambda pair: str(pair[0]))
    return pairs


@dataclass
class _FolderRead:
    """What the files of a DICOM folder gave: their items, and the counts checked once every file is read."""

    items: FolderItems = field(default_factory=FolderItems)
    fallbacks: Counter = field(default_factory=Counter)  # files grouped by a fallback key, per key
    first_fallback: str | None = None
    modalities: Counter = field(default_factory=Counter)  # files per Modality value
    sizes: Counter = field(default_factory=Counter)  # files per frame size (rows, columns)

    def add_file(self, ds, frames: np.ndarray, label: int, relative: str, group_by: str) -> None:
        """Record one decoded file: its frames as items of one split group; its group key, modality, size."""
        group = self.note_file(ds, frames.shape[-2:], relative, group_by)
        for frame, item_id in zip(frames, _frame_item_ids(relative, len(frames))):
            self.items.add(torch.from_numpy(frame), label, item_id, group)

    def note_file(self, ds, frame_size: Sequence[int], relative: str, group_by: str) -> str:
        """Count one file's group key, modality and frame size (rows, columns); returns its split group."""
        group, key = _split_group(ds, relative, group_by)
        if key != group_by:
            self.fallbacks[key] += 1
            self.first_fallback = self.first_fallback or relative
        self.modalities[str(ds.get("Modality", "") or "").strip() or "(none)"] += 1
        self.sizes[tuple(int(n) for n in frame_size)] += 1
        return group


def _frame_item_ids(relative: str, count: int) -> list[str]:
    """The item ids of a file's ``count`` images: the file, or one per frame."""
    return [relative] if count == 1 else [f"{relative}#frame{index}" for index in range(count)]


@dataclass
class _SeenFiles:
    """The files decoded so far by their bytes and by their SOPInstanceUID (a repeat is the same image)."""

    by_digest: dict[str, str] = field(default_factory=dict)
    by_uid: dict[str, str] = field(default_factory=dict)


def _decoded_file(
    file_path: Path, skipped: SkippedFiles, seen: _SeenFiles, *, window: str | Sequence[float], frames: str,
    color: str,
):
    """(data set, float32 [F, C, H, W] frames) of one file (:func:`medsyn.data.dicom_pixels.dicom_frames`),
    or None when ``skipped`` takes it: not decodable, or the bytes or SOPInstanceUID of an earlier file."""
    from medsyn.data.dicom_pixels import dicom_frames

    data = file_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest in seen.by_digest:
        skipped.bad_file(file_path, f"same bytes as {seen.by_digest[digest]} (duplicate file)")
        return None
    try:
        ds = read_dicom_bytes(data, where=str(file_path))
        uid = str(ds.get("SOPInstanceUID", ""))
        if uid and uid in seen.by_uid:
            raise ValueError(
                f"{file_path}: SOPInstanceUID {uid} is also in {seen.by_uid[uid]} (same image twice)"
            )
        unit = dicom_frames(ds, where=str(file_path), window=window, frames=frames, color=color)
    except ValueError as error:
        skipped.bad_file(file_path, str(error).removeprefix(f"{file_path}: "))
        return None
    except _DECODE_ERRORS as error:
        skipped.bad_file(file_path, f"pixel data not decodable ({type(error).__name__}: {error})")
        return None
    seen.by_digest[digest] = str(file_path)
    if uid:
        seen.by_uid[uid] = str(file_path)
    return ds, unit


def _read_files(
    root: Path, pairs: list[tuple[Path, int]], skipped: SkippedFiles, *, window: str | Sequence[float],
    frames: str, color: str, group_by: str,
) -> _FolderRead:
    """Read and decode each file once, in order (see :func:`_decoded_file`); a file that does not decode or
    repeats an earlier one (it would land in two splits) is reported to ``skipped``."""
    read = _FolderRead()
    seen = _SeenFiles()
    for file_path, label in pairs:
        decoded = _decoded_file(file_path, skipped, seen, window=window, frames=frames, color=color)
        if decoded is not None:
            read.add_file(decoded[0], decoded[1], label, file_item_id(root, file_path), group_by)
    return read


def _listed_headers(
    root: Path, pairs: list[tuple[Path, int]], *, frames: str, color: str, group_by: str
) -> tuple[_FolderRead, ListedItems]:
    """What :func:`_read_files` records, from the headers alone (for the store: no pixel is decoded), and the
    items each file will decode to (frames: NumberOfFrames, or the middle one; channels: 3 for kept colour)."""
    from medsyn.data.dicom_pixels import COLOR_CHOICES, COLOR_PHOTOMETRICS, FRAME_CHOICES

    if frames not in FRAME_CHOICES:
        raise ValueError(f"frames must be one of {FRAME_CHOICES}, got {frames!r}")
    if color not in COLOR_CHOICES:
        raise ValueError(f"color must be one of {COLOR_CHOICES}, got {color!r}")
    read, listing = _FolderRead(), ListedItems()
    first_by_uid: dict[str, str] = {}
    for file_path, label in pairs:
        header = _read_dicom_header(file_path)
        uid = str(header.get("SOPInstanceUID", ""))
        if uid and uid in first_by_uid:
            raise ValueError(f"{file_path}: SOPInstanceUID {uid} is also in {first_by_uid[uid]} (same image twice)")
        if uid:
            first_by_uid[uid] = str(file_path)
        if header.get("Rows") is None or header.get("Columns") is None:
            raise ValueError(f"{file_path}: no Rows and Columns (not an image object, e.g. a structured report)")
        frame_size = (int(header.Rows), int(header.Columns))
        count = 1 if frames == "middle" else int(header.get("NumberOfFrames", 1) or 1)
        colour = str(header.get("PhotometricInterpretation", "")).strip() in COLOR_PHOTOMETRICS
        relative = file_item_id(root, file_path)
        group = read.note_file(header, frame_size, relative, group_by)
        listing.add_file(file_path, (3 if colour and color == "keep" else 1, *frame_size), label,
                         _frame_item_ids(relative, count), group)
    return read, listing


def _check_options(
    root: Path, labels_csv: str | os.PathLike | None, *, group_by: str, allow_mixed_modalities: bool
) -> None:
    """The options and paths of :func:`read_dicom_folder`, checked before any file is read."""
    if group_by not in GROUP_BY_CHOICES:
        raise ValueError(f"group_by must be one of {GROUP_BY_CHOICES}, got {group_by!r}")
    if not isinstance(allow_mixed_modalities, bool):
        raise ValueError(f"allow_mixed_modalities must be true or false, got {allow_mixed_modalities!r}")
    if not root.is_dir():
        raise FileNotFoundError(f"DICOM folder not found: {root}")
    if labels_csv is not None and not Path(labels_csv).is_file():
        raise FileNotFoundError(f"labels CSV not found: {labels_csv}")


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
    group_by: str = "PatientID",
    allow_mixed_modalities: bool = False,
    allow_outside_root: bool = False,
    store: bool = False,
    cache_dir: str | os.PathLike | None = None,
    store_dtype: StoreDtype = "auto",
) -> SourceData:
    """Read a DICOM folder into float32 [N, C, size, size] in [0, 1] (see module doc and ``dicom_frames``).

    group_by: "PatientID" (fallback StudyInstanceUID, then the file), "StudyInstanceUID" or "file": what a
        split keeps whole
    allow_mixed_modalities: read a folder whose files have several Modality values (default: refused)
    allow_outside_root: accept CSV rows whose path resolves (after symlinks) outside ``path`` (default:
        ValueError naming the CSV, row and path)
    store: decode once into an on-disk image store and reuse it on later runs (:mod:`medsyn.data.source_store`:
        the headers give the items, ids and groups, the pixels are decoded and windowed as in memory);
        cache_dir: where stores live (default MEDSYN_CACHE_DIR, else the user cache folder); store_dtype:
        "auto" (the narrowest exact: uint8, uint16, else float32), "uint8", "uint16" or "float32"
    """
    root = Path(path)
    _check_options(root, labels_csv, group_by=group_by, allow_mixed_modalities=allow_mixed_modalities)
    check_store_options(store, store_dtype, on_error)
    skipped = SkippedFiles(on_error)
    pairs, names = _labelled_files(
        root, labels_csv, key_column, label_column, class_names, skipped, allow_outside_root
    )
    if store:
        read, listing = _listed_headers(root, pairs, frames=frames, color=color, group_by=group_by)
        _warn_about_fallbacks(root, group_by, read.fallbacks, read.first_fallback)
        _check_consistency(
            root, read.modalities, read.sizes, allow_mixed_modalities=allow_mixed_modalities, size=size
        )
        seen = _SeenFiles()

        def decode_file(index: int) -> torch.Tensor:
            decoded = _decoded_file(listing.files[index], SkippedFiles("raise"), seen, window=window,
                                    frames=frames, color=color)
            return torch.from_numpy(decoded[1])  # type: ignore[index]  # "raise" returns or raises

        options = {"size": size, "window": window if isinstance(window, str) else [float(v) for v in window],
                   "frames": frames, "color": color,
                   "listing": None if labels_csv is None else listing_digest(labels_csv)}
        check_every_class(listing.labels, names, what="DICOM folder", root=root)
        return stored_source_data(
            listing, decode_file, kind="dicom_folder", root=root, class_names=names,
            size=size, options=options, cache_dir=cache_dir, dtype=store_dtype, source=str(root),
            group_key=group_by, group_fallbacks=dict(read.fallbacks),
        )
    read = _read_files(root, pairs, skipped, window=window, frames=frames, color=color, group_by=group_by)
    skipped.warn_if_any(str(root))
    _warn_about_fallbacks(root, group_by, read.fallbacks, read.first_fallback)
    _check_consistency(
        root, read.modalities, read.sizes, allow_mixed_modalities=allow_mixed_modalities, size=size
    )
    return source_data_from_items(
        root, read.items, what="DICOM folder", class_names=names, skipped=skipped.entries, size=size,
        group_key=group_by, group_fallbacks=dict(read.fallbacks),
    )


def load_dicom_folder(path: str | os.PathLike, **options) -> ImageSet:
    """ImageSet of a DICOM folder (see :func:`read_dicom_folder`)."""
    return read_dicom_folder(path, **options).sets  # type: ignore[return-value]
