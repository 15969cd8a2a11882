"""SourceData: what every registered loader returns — the images plus what was left out and why."""

from __future__ import annotations

from dataclasses import dataclass, field

from medsyn.data.image_set import ImageSet

__all__ = ["SourceData"]


@dataclass
class SourceData:
    """A loaded source.

    sets: one ImageSet to be split by a stratified manifest, or {"train", "val", "test"} when the source
        ships official splits (MedMNIST)
    skipped: files left out under ``on_error="skip"``, each {"file": path, "reason": why}
    item_ids: optional name of each item (relative file path, frame/slice), in ImageSet order
    groups: optional group of each item (its file, or its patient); a split keeps a group together, so the
        frames of one multi-frame file or the slices of one volume never straddle train and test
    """

    sets: ImageSet | dict[str, ImageSet]
    skipped: list[dict[str, str]] = field(default_factory=list)
    item_ids: list[str] | None = None
    groups: list[str] | None = None

    @property
    def has_official_splits(self) -> bool:
        return isinstance(self.sets, dict)
