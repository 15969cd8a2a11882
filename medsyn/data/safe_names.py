"""Paths made from data that cannot leave their folder: class folder names and export destinations on the
way out, file paths listed in a CSV on the way in.

    class_folder_name("../../x")          -> "_._.._x"    (one path component, never hidden)
    class_folder_names(["a/b", "a:b"])    -> ValueError: both map to "a_b"
    destination_inside(out_dir, "pos/synthetic_000000.png")  -> out_dir/pos/..., or ValueError
    listed_path(root, "../real_patients/p1.dcm", where="labels CSV x.csv, row 3")  -> ValueError

A class name comes from a data set (a folder name, a CSV label, a checkpoint's metadata), so it may hold
a path separator, ``..``, an absolute path, control characters, or characters other file systems refuse.
Exporters write ``out_dir/<class_folder_name(name)>/...`` and keep the original name in ``labels.csv``
(the name <-> folder mapping); :func:`destination_inside` then resolves every destination (after symlinks)
and refuses one outside ``out_dir``.

A CSV row names a file relative to its data folder. :func:`listed_path` refuses a row that resolves, after
symlinks, outside that folder (``../real_patients/...``, an absolute path elsewhere, a symlink out), so a
"synthetic" set cannot pull in real patients' files by accident; ``allow_outside_root=True`` (the source
option ``allow_outside_root: true``) accepts such rows.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

__all__ = ["class_folder_name", "class_folder_names", "destination_inside", "listed_path"]

# Path separators, control characters and the characters Windows/SMB shares refuse in a name.
_UNSAFE = re.compile(r'[\\/\x00-\x1f\x7f:<>"|?*]')
_MAX_NAME_BYTES = 200  # below the 255-byte limit of common file systems, leaving room for suffixes


def class_folder_name(class_name: object) -> str:
    """One safe path component for ``class_name``: unsafe characters -> "_", no leading dot.

    A leading dot is replaced because it would make a hidden folder (which the ``image_folder`` source
    skips) and because "." and ".." are not names. ValueError for a name that is empty after stripping
    or longer than 200 UTF-8 bytes.
    """
    safe = _UNSAFE.sub("_", str(class_name)).strip()
    safe = re.sub(r"^\.", "_", safe)
    if not safe.strip("_"):
        raise ValueError(f"class name {class_name!r} cannot be used as a folder name (nothing printable left)")
    if len(safe.encode("utf-8")) > _MAX_NAME_BYTES:
        raise ValueError(
            f"class name {str(class_name)[:40]!r}... is longer than {_MAX_NAME_BYTES} bytes; "
            "shorten it to use it as a folder name"
        )
    return safe


def class_folder_names(class_names: Sequence[object]) -> list[str]:
    """``class_folder_name`` of each name; ValueError if two names map to one folder (case-insensitively,
    since macOS and Windows folders are)."""
    folders = [class_folder_name(name) for name in class_names]
    first: dict[str, int] = {}
    for position, folder in enumerate(folders):
        key = folder.casefold()
        if key in first:
            raise ValueError(
                f"class names {class_names[first[key]]!r} and {class_names[position]!r} map to the same "
                f"folder name {folder!r}; rename one of them"
            )
        first[key] = position
    return folders


def destination_inside(out_dir: str | os.PathLike, relative: str | os.PathLike) -> Path:
    """``out_dir / relative``, refused (ValueError naming both) unless it resolves, after symlinks,
    to a path strictly inside ``out_dir`` (also resolved)."""
    root = Path(out_dir).resolve()
    relative = Path(relative)
    target = (root / relative).resolve()
    if relative.is_absolute() or target == root or not target.is_relative_to(root):
        raise ValueError(
            f"refusing to write {relative}: it resolves to {target}, outside the output folder {root}"
        )
    return Path(out_dir) / relative


def listed_path(
    root: str | os.PathLike, listed: str | os.PathLike, *, where: str, allow_outside_root: bool = False
) -> Path:
    """``root / listed`` (an absolute ``listed`` as it is), refused with ValueError naming ``where`` (the CSV
    and row), the listed path and ``root`` when it resolves (after symlinks) outside ``root``, unless
    ``allow_outside_root``. Only the path is checked: a missing file is the caller's to report."""
    if not isinstance(allow_outside_root, bool):  # the string "false" must not read as consent
        raise ValueError(f"allow_outside_root must be true or false, got {allow_outside_root!r}")
    listed = Path(listed)
    path = listed if listed.is_absolute() else Path(root) / listed
    if allow_outside_root:
        return path
    resolved_root = Path(root).resolve()
    resolved = path.resolve()
    if resolved == resolved_root or not resolved.is_relative_to(resolved_root):
        raise ValueError(
            f"{where}: path {str(listed)!r} resolves to {resolved}, outside the data folder {resolved_root}; "
            "a listed file must lie inside it (set allow_outside_root: true to read files elsewhere)"
        )
    return path
