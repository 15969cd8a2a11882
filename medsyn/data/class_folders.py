"""The class-per-folder layout shared by the folder sources: ``root/<class name>/<any depth>/<file>``.

    list_class_folders(root, ["benign", "malignant"])       -> [root/benign, root/malignant]
    files_by_class_folder(root, None, is_dicom, "DICOM files (.dcm, ...)")
                                                            -> [(file, class index), ...], class names

Class indices follow the sorted folder names; a hidden folder (leading dot) is not a class. Which files a
class holds is the source's to say (an ``accepts`` test on the path: its suffixes, no hidden files). A class
folder without a single such file is an error naming it (always, also under ``on_error="skip"``), since
dropping a class silently would change the label set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["list_class_folders", "files_under", "class_folder_files", "files_by_class_folder"]


def list_class_folders(
    root: Path, classes: Sequence[str] | None = None, class_prefix: str | Sequence[str] | None = None
) -> list[Path]:
    """Sorted class folders of ``root``, restricted to ``classes`` (exact names) and/or ``class_prefix``."""
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes is not None:
        wanted = list(classes)
        missing = [name for name in wanted if not (root / name).is_dir()]
        if missing:
            raise FileNotFoundError(f"class folder(s) {missing} not found in {root}")
        folders = [folder for folder in folders if folder.name in wanted]
    if class_prefix is not None:
        prefixes = (class_prefix,) if isinstance(class_prefix, str) else tuple(class_prefix)
        folders = [folder for folder in folders if folder.name.startswith(prefixes)]
    if not folders:
        raise ValueError(
            f"{root}: no class folders" + (f" matching prefix {class_prefix!r}" if class_prefix else "")
        )
    return folders


def files_under(folder: Path, accepts: Callable[[Path], bool]) -> list[Path]:
    """Every file below ``folder`` (any depth) that ``accepts`` takes, sorted by path."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and accepts(p))


def class_folder_files(folder: Path, accepts: Callable[[Path], bool], described: str) -> list[Path]:
    """``files_under(folder, accepts)``; ValueError naming the class folder when there is none.

    described: what the source reads, for the message ("DICOM files (.dcm, .dicom, .ima, no suffix)").
    """
    files = files_under(folder, accepts)
    if not files:
        raise ValueError(f"class folder {folder} has no {described}")
    return files


def files_by_class_folder(
    root: Path, class_names: Sequence[str] | None, accepts: Callable[[Path], bool], described: str
) -> tuple[list[tuple[Path, int]], tuple[str, ...]]:
    """(file, class index) of every accepted file of every class folder, and the class names (folder names).

    Every class folder is checked to hold a file before any file is read.
    """
    folders = list_class_folders(root, class_names)
    pairs = []
    for class_index, folder in enumerate(folders):
        pairs += [(path, class_index) for path in class_folder_files(folder, accepts, described)]
    return pairs, tuple(folder.name for folder in folders)
