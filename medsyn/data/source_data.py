"""SourceData: what every registered loader returns — the images plus what was left out and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from medsyn.data.image_set import ImageSet
from medsyn.data.pixels import stack_images

__all__ = [
    "SourceData", "FolderItems", "check_every_class", "file_item_id", "stacked_image_set", "source_data_from_items",
]


@dataclass
class SourceData:
    """A loaded source.

    sets: one ImageSet to be split by a stratified manifest, or {"train", "val", "test"} when the source
        ships official splits (MedMNIST)
    skipped: files left out under ``on_error="skip"``, each {"file": path, "reason": why}
    item_ids: optional name of each item (relative file path, frame/slice), in ImageSet order
    groups: optional group of each item (its file, or its patient); a split keeps a group together, so the
        frames of one multi-frame file, the slices of one volume or the files of one patient never straddle
        train and test. Held in memory only (a patient's group may be derived from an identifier).
    group_key: what ``groups`` are ("file", "PatientID", "subject_column:<name>", ...), for the manifest
    group_fallbacks: items whose group came from a fallback key, {key: count} (DICOM without PatientID)
    """

    sets: ImageSet | dict[str, ImageSet]
    skipped: list[dict[str, str]] = field(default_factory=list)
    item_ids: list[str] | None = None
    groups: list[str] | None = None
    group_key: str | None = None
    group_fallbacks: dict[str, int] = field(default_factory=dict)

    @property
    def has_official_splits(self) -> bool:
        return isinstance(self.sets, dict)


@dataclass
class FolderItems:
    """The items read so far from a folder of files, in reading order: each image (float [C, H, W] in
    [0, 1], any size) with its class index, its item id and its split group."""

    images: list[torch.Tensor] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    def add(self, image: torch.Tensor, label: int, item_id: str, group: str) -> None:
        self.images.append(image)
        self.labels.append(label)
        self.item_ids.append(item_id)
        self.groups.append(group)


def file_item_id(root: Path, path: Path) -> str:
    """The item id of a file read for the folder ``root``: its path relative to ``root``, or the path as it
    is when it lies elsewhere (a CSV row accepted with ``allow_outside_root``)."""
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def stacked_image_set(
    root: Path,
    images: list[torch.Tensor],
    labels: list[int],
    class_names: tuple[str, ...],
    item_ids: list[str],
    *,
    size: int | tuple[int, int] | None,
    source: str,
) -> ImageSet:
    """One ImageSet of the images read from files under ``root``, resized to ``size`` (see
    :func:`medsyn.data.pixels.stack_images`; a mismatch names the file as ``root / item id``)."""
    return ImageSet(
        images=stack_images(images, size, [str(root / item) for item in item_ids]),
        labels=torch.tensor(labels, dtype=torch.int64),
        class_names=class_names,
        source=source,
    )


def check_every_class(labels: list[int], class_names: tuple[str, ...], *, what: str, root: Path) -> None:
    """ValueError naming the folder and the classes without an item (all of them when there is none)."""
    counts = torch.bincount(torch.tensor(labels, dtype=torch.int64), minlength=len(class_names)).tolist()
    empty = [name for name, count in zip(class_names, counts) if count == 0]
    if not labels or empty:
        raise ValueError(f"{what} {root}: no readable images for class(es) {empty or list(class_names)}")


def source_data_from_items(
    root: Path,
    items: FolderItems,
    *,
    what: str,
    class_names: tuple[str, ...],
    skipped: list[dict[str, str]],
    size: int | tuple[int, int] | None,
    group_key: str = "file",
    group_fallbacks: dict[str, int] | None = None,
) -> SourceData:
    """Stack the items read from a folder of files into one SourceData; every class must have an image.

    what: the kind of folder for the error message ("DICOM folder", "NIfTI folder").
    """
    check_every_class(items.labels, class_names, what=what, root=root)
    image_set = stacked_image_set(
        root, items.images, items.labels, class_names, items.item_ids, size=size, source=str(root)
    )
    return SourceData(sets=image_set, skipped=skipped, item_ids=items.item_ids, groups=items.groups,
                      group_key=group_key, group_fallbacks=dict(group_fallbacks or {}))
