"""Class-per-folder image sets (Kvasir, PlantVillage and its Corn subset; paper 000 §3).

Layout: ``root/<class name>/<image file>`` (images may sit in sub-folders of a class folder). Class indices
follow the sorted folder names. PNG, JPEG, BMP, TIFF and WebP files are decoded at their real range
(:mod:`medsyn.data.image_decode`: 8-bit / 255, 16-bit / 65535, float TIFFs as they are when in [0, 1], or a
declared ``value_range`` [low, high]; never clipped to 8 bits); other files (README.txt, .DS_Store) are
ignored. Files are opened read-only; nothing is written next to them.

Float images read with ``value_range="auto"`` are taken as already in [0, 1]; one warning names how many,
the first file and the range found. A float image outside [0, 1] (auto) or any image outside the declared
range is an error naming the file: declare the range, nothing is clipped.

Subjects: ``subject_pattern`` (a regular expression on the file's path relative to the root, see
:mod:`medsyn.data.subjects`) groups the images of one subject, so a split keeps each subject whole; without
it each image is split on its own.

Bad input: a missing root -> FileNotFoundError; a class folder with no images -> ValueError naming it
(always, since dropping a class silently would change the label set); an undecodable image or a file
with the same bytes as an earlier one (the same image would otherwise land in two splits) -> ValueError
naming the file, or with ``on_error="skip"`` the file is left out and listed.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from medsyn.data.class_folders import class_folder_files, list_class_folders
from medsyn.data.image_decode import decode_image
from medsyn.data.image_set import ImageSet
from medsyn.data.pixels import VALUE_RANGE_AUTO, check_value_range
from medsyn.data.read_errors import SkippedFiles
from medsyn.data.source_data import SourceData, stacked_image_set
from medsyn.data.subjects import subject_from_pattern, subject_group, subject_options

__all__ = ["IMAGE_EXTENSIONS", "read_image_folder", "load_image_folder", "decode_image_bytes"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def decode_image_bytes(
    data: bytes, channels: int, *, where: str, value_range: str | Sequence[float] = VALUE_RANGE_AUTO
) -> torch.Tensor:
    """Encoded image bytes -> float32 [channels, H, W] in [0, 1] at the image's real range (16-bit keeps its
    16 bits, float TIFFs their values); a float image taken as [0, 1] under "auto" is warned about by name.
    """
    image, detected = decode_image(data, channels, where=where, value_range=value_range)
    if detected is not None:
        warnings.warn(_assumed_range_message(1, where, detected, detected), UserWarning, stacklevel=2)
    return image


def _assumed_range_message(count: int, first: str, first_range: tuple[float, float],
                           overall: tuple[float, float]) -> str:
    return (
        f"{count} float image(s) taken as already in [0, 1] (value_range 'auto'), e.g. {first} with values "
        f"[{first_range[0]:g}, {first_range[1]:g}]; all together [{overall[0]:g}, {overall[1]:g}]. "
        "Declare value_range: [0, 1] (or the data's own range) to make this explicit"
    )


def _is_image_file(path: Path) -> bool:
    """Whether ``path`` has one of :data:`IMAGE_EXTENSIONS` (any case) and is not hidden."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def read_image_folder(
    path: str | os.PathLike,
    *,
    size: int | None = None,
    channels: int = 3,
    classes: Sequence[str] | None = None,
    class_prefix: str | Sequence[str] | None = None,
    on_error: str = "raise",
    source: str | None = None,
    value_range: str | Sequence[float] = VALUE_RANGE_AUTO,
    subject_pattern: str | None = None,
    store: bool = False,
    cache_dir: str | os.PathLike | None = None,
    store_dtype: str = "auto",
) -> SourceData:
    """Read ``path/<class>/<image>`` into float32 [N, channels, size, size] in [0, 1] (see module doc).

    value_range: "auto" (by dtype; floats must be in [0, 1]) or the stored [low, high] of every image
    subject_pattern: regular expression whose match in an image's relative path is its subject
    store: decode once into an on-disk image store and reuse it on later runs
        (:mod:`medsyn.data.image_folder_store`); cache_dir: where stores live (default: MEDSYN_CACHE_DIR,
        else the user cache folder); store_dtype: "auto" (uint8 where exact, else uint16), "uint8",
        "uint16" or "float32"
    """
    root = Path(path)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    value_range = check_value_range(value_range)
    subjects = subject_options(None, subject_pattern, column_allowed=False)
    skipped = SkippedFiles(on_error)
    if store:
        return _read_through_store(root, classes, class_prefix, on_error, size=size, channels=channels,
                                   value_range=value_range, cache_dir=cache_dir, dtype=store_dtype,
                                   source=source or str(root), subjects=subjects)
    folders = list_class_folders(root, classes, class_prefix)
    images: list[torch.Tensor] = []
    labels: list[int] = []
    item_ids: list[str] = []
    groups: list[str] = []
    assumed: list[tuple[str, tuple[float, float]]] = []  # float images taken as [0, 1] under "auto"
    first_by_digest: dict[str, str] = {}
    for class_index, folder in enumerate(folders):
        files = class_folder_files(folder, _is_image_file, f"image files ({', '.join(IMAGE_EXTENSIONS)})")
        before = len(images)
        for path in files:
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest in first_by_digest:
                skipped.bad_file(path, f"same bytes as {first_by_digest[digest]} (duplicate image)")
                continue
            relative = str(path.relative_to(root))
            try:
                image, detected = decode_image(data, channels, where=str(path), value_range=value_range)
                subject = None if subjects.pattern is None else subject_from_pattern(subjects.pattern, relative)
            except ValueError as error:
                skipped.bad_file(path, str(error).removeprefix(f"{path}: "))
                continue
            first_by_digest[digest] = str(path)
            if detected is not None:
                assumed.append((str(path), detected))
            images.append(image)
            labels.append(class_index)
            item_ids.append(relative)
            if subject is not None:
                groups.append(subject_group(subject))
        if len(images) == before:
            raise ValueError(f"class folder {folder} has no readable images (all were skipped)")
    skipped.warn_if_any(str(root))
    if assumed:
        overall = (min(r[0] for _, r in assumed), max(r[1] for _, r in assumed))
        warnings.warn(f"image folder {root}: " + _assumed_range_message(len(assumed), *assumed[0], overall),
                      UserWarning, stacklevel=2)
    names = tuple(folder.name for folder in folders)
    image_set = stacked_image_set(root, images, labels, names, item_ids, size=size, source=source or str(root))
    if subjects.pattern is None:
        return SourceData(sets=image_set, skipped=skipped.entries, item_ids=item_ids)
    return SourceData(sets=image_set, skipped=skipped.entries, item_ids=item_ids, groups=groups,
                      group_key=subjects.group_key)


def _read_through_store(root: Path, classes: Sequence[str] | None, class_prefix: str | Sequence[str] | None,
                        on_error: str, *, size: int | None, channels: int, value_range: str | Sequence[float],
                        cache_dir: str | os.PathLike | None, dtype: str, source: str, subjects) -> SourceData:
    """read_image_folder with ``store=True``: the same files, labels, item ids and groups, pixels from the
    store (built on the first run)."""
    from medsyn.data.image_folder_store import stored_image_folder

    if on_error != "raise":
        raise ValueError(f"on_error={on_error!r} cannot be used with store: true (a store holds every listed "
                         "file); remove the bad files or read without the store")
    folders = list_class_folders(root, classes, class_prefix)
    files_by_class = []
    for class_index, folder in enumerate(folders):
        files = class_folder_files(folder, _is_image_file, f"image files ({', '.join(IMAGE_EXTENSIONS)})")
        files_by_class += [(path, class_index) for path in files]
    item_ids = [str(path.relative_to(root)) for path, _ in files_by_class]
    groups = None
    if subjects.pattern is not None:  # before any decoding: a path without a subject fails at once
        groups = []
        for (path, _), relative in zip(files_by_class, item_ids):
            try:
                groups.append(subject_group(subject_from_pattern(subjects.pattern, relative)))
            except ValueError as error:
                raise ValueError(f"{path}: {str(error).removeprefix(f'{path}: ')}") from None
    names = tuple(folder.name for folder in folders)
    image_set = stored_image_folder(root, files_by_class, names, size=size, channels=channels,
                                    value_range=value_range, cache_dir=cache_dir, dtype=dtype, source=source,
                                    assumed_range_message=_assumed_range_message)
    if groups is None:
        return SourceData(sets=image_set, item_ids=item_ids)
    return SourceData(sets=image_set, item_ids=item_ids, groups=groups, group_key=subjects.group_key)


def load_image_folder(path: str | os.PathLike, **options) -> ImageSet:
    """ImageSet of ``path/<class>/<image>`` (see :func:`read_image_folder`)."""
    return read_image_folder(path, **options).sets  # type: ignore[return-value]
