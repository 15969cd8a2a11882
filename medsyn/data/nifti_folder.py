"""A folder of NIfTI volumes cut into 2D slices, with labels from a CSV (file path -> label) or folder names.

    read_nifti_folder("/data/mri", labels_csv="/data/labels.csv", axis=2, slices="middle", size=64)

Each volume (nibabel, scaling slope/intercept applied) is scaled to [0, 1] either by a fixed intensity
``window`` [low, high] or by per-volume ``percentiles`` [p_low, p_high] (default [0.5, 99.5], robust to a
few hot voxels), then cut along ``axis`` into 2D slices: every slice (``slices="all"``), the middle one, or
an explicit list of slice indices; ``drop_constant_slices`` leaves out slices that are one value (empty
slices at the edges of a volume). Slices of one volume share a split group, so a volume never straddles
train and test; with ``subject_column`` (a column of the labels CSV) or ``subject_pattern`` (a regular
expression on the file's relative path, see :mod:`medsyn.data.subjects`) all volumes of one subject share a
group, so a subject scanned twice never straddles them either. 4D volumes use ``volume`` (default 0) of the
last axis.

Bad input (each names the file): not NIfTI or unreadable, NaN/inf voxels, fewer than 3 dimensions, a slice
index out of range, a constant volume under percentile scaling -> ValueError, or skipped with
``on_error="skip"``. Files are read, never written. With ``store=True`` the headers give the slices, their
ids and groups on every run, and the slices are scaled, cut and resized once into an on-disk image store
(:mod:`medsyn.data.source_store`; no file or subject name reaches it), reused while the files are unchanged.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from medsyn.data.class_folders import files_by_class_folder
from medsyn.data.image_set import ImageSet
from medsyn.data.labels_csv import listed_files, read_labels_csv
from medsyn.data.pixels import min_max_to_unit_range
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
from medsyn.data.subjects import read_subject_column, subject_from_pattern, subject_group, subject_options

__all__ = ["NIFTI_SUFFIXES", "read_nifti_folder", "load_nifti_folder", "nifti_slices"]

NIFTI_SUFFIXES = (".nii", ".nii.gz")
DEFAULT_PERCENTILES = (0.5, 99.5)
_HEADER_BYTES = 540  # a NIfTI-2 header (a NIfTI-1 header is 348)


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES) and not path.name.startswith(".")


def _read_volume(data: bytes, *, where: str, volume: int) -> np.ndarray:
    """NIfTI file bytes -> float64 array with >= 3 dims (scaling applied)."""
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError
    from nibabel.spatialimages import HeaderDataError
    from nibabel.wrapstruct import WrapStructError

    try:
        raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data  # gzip magic: .nii.gz
        # Single-file NIfTI-1 has its magic at byte 344, NIfTI-2 at byte 4.
        if raw[344:348] == b"n+1\x00":
            image = nib.Nifti1Image.from_bytes(raw)
        elif raw[4:8] == b"n+2\x00":
            image = nib.Nifti2Image.from_bytes(raw)
        else:
            raise ValueError("no single-file NIfTI-1 or NIfTI-2 magic in the header")
        array = np.asarray(image.get_fdata(dtype=np.float64))
    except (
        ImageFileError, HeaderDataError, WrapStructError, OSError, EOFError, ValueError, TypeError,
        zlib.error,
    ) as error:
        raise ValueError(f"{where}: not a readable NIfTI file ({type(error).__name__}: {error})") from error
    shape = _volume_shape(array.shape, where=where, volume=volume)
    if array.ndim == 4:
        array = array[..., volume]
    array = array.reshape(shape)  # trailing axes of length 1 dropped
    if not np.isfinite(array).all():
        raise ValueError(f"{where}: volume contains NaN or inf voxels")
    return array


def _volume_shape(shape: Sequence[int], *, where: str, volume: int) -> tuple[int, int, int]:
    """The 3D shape read from a file whose data has ``shape``: ``volume`` of a 4D file, trailing axes of
    length 1 dropped; ValueError naming ``where`` for a volume out of range or another number of axes."""
    shape = tuple(int(n) for n in shape)
    if len(shape) == 4:
        if not 0 <= volume < shape[3]:
            raise ValueError(f"{where}: volume={volume} outside the {shape[3]} volumes of this 4D file")
        shape = shape[:3]
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        raise ValueError(f"{where}: expected a 3D (or 4D) volume, got shape {shape}")
    return shape  # type: ignore[return-value]


def _header_shape(path: Path, *, volume: int) -> tuple[int, int, int]:
    """The 3D shape of the NIfTI file at ``path`` from its header alone (see :func:`_read_volume`)."""
    import nibabel as nib
    from nibabel.spatialimages import HeaderDataError
    from nibabel.wrapstruct import WrapStructError

    where = str(path)
    try:
        with open(path, "rb") as handle:
            gzipped = handle.read(2) == b"\x1f\x8b"
        with (gzip.open if gzipped else open)(path, "rb") as handle:
            raw = handle.read(_HEADER_BYTES)
        if raw[344:348] == b"n+1\x00":
            header = nib.Nifti1Header.from_fileobj(io.BytesIO(raw))
        elif raw[4:8] == b"n+2\x00":
            header = nib.Nifti2Header.from_fileobj(io.BytesIO(raw))
        else:
            raise ValueError("no single-file NIfTI-1 or NIfTI-2 magic in the header")
        shape = header.get_data_shape()
    except (HeaderDataError, WrapStructError, OSError, EOFError, ValueError, zlib.error) as error:
        raise ValueError(f"{where}: not a readable NIfTI file ({type(error).__name__}: {error})") from error
    return _volume_shape(shape, where=where, volume=volume)


def _chosen_slices(count: int, slices: str | Sequence[int], *, where: str, axis: int) -> list[int]:
    """Indices along ``axis`` (``count`` slices) of ``slices``: "all", "middle" or a list of indices."""
    if slices == "all":
        return list(range(count))
    if slices == "middle":
        return [count // 2]
    if isinstance(slices, str):
        raise ValueError(f"slices must be 'all', 'middle' or a list of indices, got {slices!r}")
    chosen = [int(s) for s in slices]
    bad = [s for s in chosen if not 0 <= s < count]
    if bad:
        raise ValueError(f"{where}: slice indices {bad} outside [0, {count}) on axis {axis}")
    return chosen


def nifti_slices(
    volume: np.ndarray,
    *,
    where: str,
    axis: int = 2,
    slices: str | Sequence[int] = "all",
    window: Sequence[float] | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    drop_constant: bool = False,
) -> tuple[np.ndarray, list[int]]:
    """float [X, Y, Z] volume -> (float32 [S, 1, H, W] slices in [0, 1], index of each slice along ``axis``).

    drop_constant: leave out slices that are one value after scaling (empty slices at a volume's edges,
    which would otherwise become class-labelled images of nothing).
    """
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis!r}")
    if window is not None:
        low, high = (float(v) for v in window)
    else:
        p_low, p_high = (float(v) for v in percentiles)
        if not 0 <= p_low < p_high <= 100:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles!r}")
        low, high = np.percentile(volume, [p_low, p_high])
        if high <= low:
            low, high = float(volume.min()), float(volume.max())
        if high <= low:
            raise ValueError(f"{where}: constant volume (all voxels {low}); percentile scaling is undefined")
    unit = min_max_to_unit_range(volume, low, high, where=where)
    stacked = np.moveaxis(unit, axis, 0)  # [S, a, b]
    chosen = _chosen_slices(stacked.shape[0], slices, where=where, axis=axis)
    if drop_constant:
        chosen = [s for s in chosen if stacked[s].max() > stacked[s].min()]
    # NIfTI's first in-plane axis is i (columns): transpose so rows run along j, as radiologists view it.
    images = np.ascontiguousarray(stacked[chosen].transpose(0, 2, 1)[:, None]).astype(np.float32)
    return images, chosen


def _listed_volumes(
    root: Path, labels_csv: str | os.PathLike, label_column: str, class_names: Sequence[str] | None,
    subject_column: str | None, skipped: SkippedFiles, allow_outside_root: bool,
) -> tuple[list[tuple[Path, int]], tuple[str, ...], dict[Path, str]]:
    """(file, class index) pairs and class names from the labels CSV, and each file's subject when
    ``subject_column`` names one (a row with an empty subject is reported to ``skipped``)."""
    table = read_labels_csv(labels_csv, key_column=None, label_column=label_column,
                            class_names=class_names, skipped=skipped)
    if table.key_kind != "path":
        raise ValueError(f"labels CSV {labels_csv}: NIfTI labels need a path column")
    subject_of = read_subject_column(labels_csv, subject_column) if subject_column is not None else {}
    pairs = []
    subject_by_file: dict[Path, str] = {}
    listed = listed_files(
        table, root, skipped=skipped, allow_outside_root=allow_outside_root, csv_name=labels_csv
    )
    for key, file_path, label in listed:
        if subject_column is not None:
            subject, row = subject_of[key]
            if not subject:
                skipped.bad_file(f"{labels_csv}:row {row}", f"empty subject column {subject_column!r}")
                continue
            subject_by_file[file_path] = subject
        pairs.append((file_path, label))
    return pairs, table.class_names, subject_by_file


def _volume_subject(
    file_path: Path, relative: str, subject_by_file: dict[Path, str], subject_pattern: re.Pattern[str] | None
) -> str | None:
    """The volume's subject from the CSV column or the pattern (ValueError when the pattern misses)."""
    if subject_pattern is not None:
        return subject_from_pattern(subject_pattern, relative)
    return subject_by_file.get(file_path)


def _read_volumes(
    root: Path,
    pairs: list[tuple[Path, int]],
    skipped: SkippedFiles,
    *,
    subject_by_file: dict[Path, str],
    subject_pattern: re.Pattern[str] | None,
    volume: int,
    axis: int,
    slices: str | Sequence[int],
    window: Sequence[float] | None,
    percentiles: Sequence[float],
    drop_constant: bool,
) -> FolderItems:
    """Read each volume, in order, and cut it into slices (see :func:`nifti_slices`); the slices of a volume
    share its subject's group (from ``subject_by_file`` or ``subject_pattern``), else the volume's own.

    A volume that does not read, whose path the pattern does not match, or with no slice left is reported to
    ``skipped``.
    """
    items = FolderItems()
    for file_path, label in pairs:
        where = str(file_path)
        try:
            array = _read_volume(file_path.read_bytes(), where=where, volume=volume)
            unit, slice_indices = nifti_slices(array, where=where, axis=axis, slices=slices, window=window,
                                               percentiles=percentiles, drop_constant=drop_constant)
        except ValueError as error:
            skipped.bad_file(file_path, str(error).removeprefix(f"{where}: "))
            continue
        relative = file_item_id(root, file_path)
        try:
            subject = _volume_subject(file_path, relative, subject_by_file, subject_pattern)
        except ValueError as error:
            skipped.bad_file(file_path, str(error))
            continue
        group = subject_group(subject) if subject is not None else relative
        if len(unit) == 0:
            skipped.bad_file(file_path, f"no slice left after dropping constant slices along axis {axis}")
            continue
        for slice_index, image in zip(slice_indices, unit):
            items.add(torch.from_numpy(image), label, f"{relative}#slice{slice_index}", group)
    return items


def _listed_volumes_by_header(
    root: Path, pairs: list[tuple[Path, int]], *, subject_by_file: dict[Path, str],
    subject_pattern: re.Pattern[str] | None, volume: int, axis: int, slices: str | Sequence[int],
) -> ListedItems:
    """The items :func:`_read_volumes` gives (without dropping constant slices), from the headers alone."""
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis!r}")
    listing = ListedItems()
    for file_path, label in pairs:
        shape = _header_shape(file_path, volume=volume)
        chosen = _chosen_slices(shape[axis], slices, where=str(file_path), axis=axis)
        relative = file_item_id(root, file_path)
        try:
            subject = _volume_subject(file_path, relative, subject_by_file, subject_pattern)
        except ValueError as error:
            raise ValueError(f"{file_path}: {error}") from None
        in_plane = [n for dim, n in enumerate(shape) if dim != axis]  # [a, b], transposed to rows b
        listing.add_file(file_path, (1, in_plane[1], in_plane[0]), label,
                         [f"{relative}#slice{index}" for index in chosen],
                         subject_group(subject) if subject is not None else relative)
    return listing


def read_nifti_folder(
    path: str | os.PathLike,
    *,
    labels_csv: str | os.PathLike | None = None,
    label_column: str = "label",
    class_names: Sequence[str] | None = None,
    axis: int = 2,
    slices: str | Sequence[int] = "all",
    window: Sequence[float] | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    volume: int = 0,
    drop_constant_slices: bool = False,
    size: int | None = None,
    on_error: str = "raise",
    subject_column: str | None = None,
    subject_pattern: str | None = None,
    allow_outside_root: bool = False,
    store: bool = False,
    cache_dir: str | os.PathLike | None = None,
    store_dtype: StoreDtype = "auto",
) -> SourceData:
    """Read NIfTI volumes into float32 [N, 1, size, size] slices in [0, 1] (see module doc).

    subject_column: column of ``labels_csv`` naming each volume's subject; subject_pattern: regular expression
        whose match in the volume's relative path is its subject. Without either, a volume is its own group.
    allow_outside_root: accept CSV rows whose path resolves (after symlinks) outside ``path`` (default:
        ValueError naming the CSV, row and path)
    store: decode once into an on-disk image store and reuse it on later runs (:mod:`medsyn.data.source_store`:
        the headers give the slices, ids and groups; each volume is scaled and sliced as in memory);
        cache_dir: where stores live (default MEDSYN_CACHE_DIR, else the user cache folder); store_dtype:
        "auto" (the narrowest exact: uint8, uint16, else float32), "uint8", "uint16" or "float32".
        ``drop_constant_slices`` is refused with a store (which slices are kept depends on their pixels).
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"NIfTI folder not found: {root}")
    subjects = subject_options(subject_column, subject_pattern, labels_csv=labels_csv)
    check_store_options(store, store_dtype, on_error)
    if store and drop_constant_slices:
        raise ValueError(
            "drop_constant_slices: true cannot be used with store: true (which slices are kept depends on "
            "their pixels, and a store lists its items before decoding); list the slices to keep, or read "
            "without the store"
        )
    skipped = SkippedFiles(on_error)
    if labels_csv is None:
        pairs, names = files_by_class_folder(root, class_names, _is_nifti, "NIfTI files (.nii, .nii.gz)")
        subject_by_file: dict[Path, str] = {}
    else:
        pairs, names, subject_by_file = _listed_volumes(
            root, labels_csv, label_column, class_names, subjects.column, skipped, allow_outside_root
        )
    if store:
        listing = _listed_volumes_by_header(root, pairs, subject_by_file=subject_by_file,
                                            subject_pattern=subjects.pattern, volume=volume, axis=axis,
                                            slices=slices)

        def decode_file(index: int) -> torch.Tensor:
            file_path = listing.files[index]
            array = _read_volume(file_path.read_bytes(), where=str(file_path), volume=volume)
            unit, _ = nifti_slices(array, where=str(file_path), axis=axis, slices=slices, window=window,
                                   percentiles=percentiles)
            return torch.from_numpy(unit)

        options = {
            "size": size, "axis": axis, "slices": slices if isinstance(slices, str) else [int(s) for s in slices],
            "window": None if window is None else [float(v) for v in window],
            "percentiles": [float(v) for v in percentiles], "volume": volume,
            "listing": None if labels_csv is None else listing_digest(labels_csv),
        }
        check_every_class(listing.labels, names, what="NIfTI folder", root=root)
        return stored_source_data(
            listing, decode_file, kind="nifti_folder", root=root, class_names=names,
            size=size, options=options, cache_dir=cache_dir, dtype=store_dtype, source=str(root),
            group_key=subjects.group_key or "file",
        )
    items = _read_volumes(
        root, pairs, skipped, subject_by_file=subject_by_file, subject_pattern=subjects.pattern,
        volume=volume, axis=axis, slices=slices, window=window, percentiles=percentiles,
        drop_constant=drop_constant_slices,
    )
    skipped.warn_if_any(str(root))
    return source_data_from_items(
        root, items, what="NIfTI folder", class_names=names, skipped=skipped.entries, size=size,
        group_key=subjects.group_key or "file",
    )


def load_nifti_folder(path: str | os.PathLike, **options) -> ImageSet:
    """ImageSet of NIfTI slices (see :func:`read_nifti_folder`)."""
    return read_nifti_folder(path, **options).sets  # type: ignore[return-value]
