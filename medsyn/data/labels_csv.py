"""Labels from a spreadsheet: a CSV mapping a file path (or a DICOM SOPInstanceUID) to a class name.

    path,label                         SOPInstanceUID,label
    patient1/img1.dcm,pneumonia        1.2.840.113619.2.1.1.1,pneumonia
    patient2/img7.dcm,normal           ...

The key column is found by name (``path``, ``file``, ``filename``, ``SOPInstanceUID``; or give
``key_column``); the class column is ``label`` unless ``label_column`` says otherwise. Paths are relative to
the data folder; the readers (``dicom_folder``, ``nifti_folder``) take the files with :func:`listed_files`,
which resolves each path with :func:`medsyn.data.safe_names.listed_path` and so refuses one that ends up
outside the data folder (``..``, an absolute path elsewhere, a symlink out) unless ``allow_outside_root``.
Class indices follow ``class_names`` when given, otherwise the sorted distinct labels.

Bad input: a missing CSV -> FileNotFoundError; a missing column, an empty key or label, a key listed twice,
or a label outside ``class_names`` -> ValueError naming the CSV and its row (or, under ``on_error="skip"``,
the row is left out and listed as ``<csv>:row <n>``). A path row whose file does not exist ->
FileNotFoundError naming the file and the row (:func:`listed_files`; skipped and listed under
``on_error="skip"``).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from medsyn.data.read_errors import SkippedFiles
from medsyn.data.safe_names import listed_path

__all__ = [
    "KEY_COLUMNS", "LabelTable", "read_csv_records", "find_key_column", "read_labels_csv", "listed_files",
]

KEY_COLUMNS = ("path", "file", "filename", "SOPInstanceUID")


@dataclass(frozen=True)
class LabelTable:
    """key -> class index, in CSV row order.

    key_kind: "path" (keys are file paths as written in the CSV) or "SOPInstanceUID"
    rows: CSV row number (1 = first data row) of each key, for error messages
    """

    csv_path: Path
    key_kind: str
    labels: dict[str, int]
    rows: dict[str, int]
    class_names: tuple[str, ...]


def read_csv_records(csv_path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(header, one dict per data row) of a CSV read as UTF-8 (a byte-order mark is dropped).

    ValueError naming the CSV when it is not CSV text (another encoding, a NUL byte).
    """
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            records = list(reader)
    except (UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"labels CSV {csv_path} is not readable CSV text: {error}") from error
    return header, records


def find_key_column(csv_path: Path, header: list[str], requested: str | None = None) -> str:
    """The column that keys each row: ``requested`` if given, else the first of :data:`KEY_COLUMNS` in
    ``header``; ValueError naming the CSV when that column is not in ``header``."""
    key_column = requested or next((name for name in KEY_COLUMNS if name in header), None)
    if key_column is None or key_column not in header:
        raise ValueError(f"labels CSV {csv_path}: no key column; expected one of {KEY_COLUMNS}, got {header}")
    return key_column


def read_labels_csv(
    csv_path: str | os.PathLike,
    *,
    key_column: str | None = None,
    label_column: str = "label",
    class_names: Sequence[str] | None = None,
    skipped: SkippedFiles | None = None,
) -> LabelTable:
    """Read a labels CSV (see module doc). ``skipped`` collects bad rows under ``on_error="skip"``."""
    csv_path = Path(csv_path)
    skipped = skipped if skipped is not None else SkippedFiles("raise")
    if not csv_path.is_file():
        raise FileNotFoundError(f"labels CSV not found: {csv_path}")
    header, records = read_csv_records(csv_path)
    if key_column is None:
        key_column = find_key_column(csv_path, header)
    for column in (key_column, label_column):
        if column not in header:
            raise ValueError(f"labels CSV {csv_path}: missing column {column!r} (columns: {header})")
    if not records:
        raise ValueError(f"labels CSV {csv_path} has no data rows")

    raw: dict[str, str] = {}
    rows: dict[str, int] = {}
    for row_number, record in enumerate(records, start=1):
        where = f"{csv_path}:row {row_number}"
        key = (record.get(key_column) or "").strip()
        label = (record.get(label_column) or "").strip()
        if not key or not label:
            skipped.bad_file(where, f"empty {key_column!r} or {label_column!r}")
            continue
        if key in raw:
            skipped.bad_file(where, f"{key!r} is already listed on row {rows[key]} (one label per image)")
            continue
        if class_names is not None and label not in class_names:
            skipped.bad_file(where, f"unknown label {label!r}; expected one of {list(class_names)}")
            continue
        raw[key] = label
        rows[key] = row_number
    if not raw:
        raise ValueError(f"labels CSV {csv_path}: no usable rows")
    names = tuple(class_names) if class_names is not None else tuple(sorted(set(raw.values())))
    index = {name: position for position, name in enumerate(names)}
    kind = "SOPInstanceUID" if key_column == "SOPInstanceUID" else "path"
    return LabelTable(csv_path, kind, {key: index[label] for key, label in raw.items()}, rows, names)


def listed_files(
    table: LabelTable,
    root: Path,
    *,
    skipped: SkippedFiles,
    allow_outside_root: bool = False,
    csv_name: str | os.PathLike | None = None,
) -> Iterator[tuple[str, Path, int]]:
    """(key, file, class index) of each path row of ``table`` whose file exists, in CSV row order.

    Each path is resolved against ``root`` by :func:`medsyn.data.safe_names.listed_path` (ValueError naming
    the CSV and row when it lies outside ``root``, unless ``allow_outside_root``); a missing file is reported
    to ``skipped``. Rows are checked one at a time as the caller takes them, so a check the caller makes on a
    row comes before the checks of the next row.

    csv_name: how messages name the CSV (default ``table.csv_path``).
    """
    shown = table.csv_path if csv_name is None else csv_name
    for key, label in table.labels.items():
        row = table.rows[key]
        where = f"labels CSV {shown}, row {row}"
        path = listed_path(root, key, where=where, allow_outside_root=allow_outside_root)
        if not path.is_file():
            skipped.bad_file(path, f"listed in {shown} row {row} but not found", missing=True)
            continue
        yield key, path, label
