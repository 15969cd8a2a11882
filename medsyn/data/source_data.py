"""SourceData: what every registered loader returns — the images plus what was left out and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from medsyn.data.image_set import ImageSet
from medsyn.data.pixels import stack_images

__all__ = ["SourceData", "source_data_from_items"]


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


def source_data_from_items(
    root: Path,
    *,
    what: str,
    images: list[torch.Tensor],
    labels: list[int],
    class_names: tuple[str, ...],
    item_ids: list[str],
    groups: list[str],
    skipped: list[dict[str, str]],
    size: int | tuple[int, int] | None,
    group_key: str = "file",
    group_fallbacks: dict[str, int] | None = None,
) -> SourceData:
    """Stack the items read from a folder of files into one SourceData; every class must have an image.

    what: the kind of folder for the error message ("DICOM folder", "NIfTI folder").
    """
    counts = torch.bincount(torch.tensor(labels, dtype=torch.int64), minlength=len(class_names)).tolist()
    empty = [name for name, count in zip(class_names, counts) if count == 0]
    if not images or empty:
        raise ValueError(f"{what} {root}: no readable images for class(es) {empty or list(class_names)}")
    image_set = ImageSet(
        images=stack_images(images, size, [str(root / item) for item in item_ids]),
        labels=torch.tensor(labels, dtype=torch.int64),
        class_names=class_names,
        source=str(root),
    )
    return SourceData(sets=image_set, skipped=skipped, item_ids=item_ids, groups=groups, group_key=group_key,
                      group_fallbacks=dict(group_fallbacks or {}))
