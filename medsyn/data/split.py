"""Split manifests: which item of a data set is in train, val or test, reproducible from a seed.

Paper 000 §3: every data set is split 80/10/10 hold-out with the class distribution kept the same in
the three subsets (stratified). Data scarcity is simulated by keeping only ``per_class`` training
images per class; val and test are never subsampled, so scores at different k stay comparable.

The manifest is written as JSON next to the run's results: it is the record of which real images the
generator saw (privacy metrics use exactly these training members) and which files were skipped as
unreadable.

Items can be grouped (the frames of a file, the slices of a volume, the files of a patient): whole groups are
then shuffled and cut, so no group straddles two splits. The manifest names what the groups are
(``group_key``, e.g. "PatientID") and how many fell in each split, never a group's value: a PatientID read
from a file never reaches the manifest.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medsyn.data.image_set import ImageSet
from medsyn.io.atomic import write_json_atomic

__all__ = [
    "SPLIT_NAMES",
    "DEFAULT_FRACTIONS",
    "SplitManifest",
    "make_split_manifest",
    "official_split_manifest",
    "save_split_manifest",
    "load_split_manifest",
    "apply_split",
    "groups_split_apart",
]

SPLIT_NAMES = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)  # paper 000 §3
MANIFEST_VERSION = 2  # 2: group_key, group_counts, group_fallbacks, mixed_label_groups
ITEM_GROUP_KEY = "item"  # group_key of a split made item by item (no groups)


@dataclass
class SplitManifest:
    """Indices (into the loaded ImageSet, sorted) of each split, plus how they were made.

    train/val/test: disjoint item indices; train is after the ``per_class`` subsample
    seed, fractions, per_class: the arguments that made the split (fractions are train/val/test)
    strategy: "stratified" (made here from the seed) or "official" (the source's own splits kept)
    source: the ImageSet's source; num_items: its length (checked by :func:`apply_split`)
    class_names: the ImageSet's class names
    class_counts: split name -> images per class in that split
    skipped: files the source left out with ``on_error="skip"``, each {"file": path, "reason": why}
    item_ids: optional name of every item (file path, #frame/#slice) so the manifest says which files
        were training members without needing the loader
    group_key: what the split kept whole: "item" (no groups), "file", "PatientID", "subject_column:<name>",
        ...; group_counts: split name -> number of groups in it (items when group_key is "item")
    group_fallbacks: how many items' group came from a fallback key, e.g. {"StudyInstanceUID": 2, "file": 1}
        for DICOM files without a PatientID
    mixed_label_groups: groups whose items carry more than one class (each counted as its majority class)
    """

    train: list[int]
    val: list[int]
    test: list[int]
    seed: int
    fractions: tuple[float, float, float]
    per_class: int | None
    source: str
    num_items: int
    class_names: tuple[str, ...]
    class_counts: dict[str, list[int]]
    strategy: str = "stratified"
    skipped: list[dict[str, str]] = field(default_factory=list)
    item_ids: list[str] | None = None
    group_key: str = ITEM_GROUP_KEY
    group_counts: dict[str, int] = field(default_factory=dict)
    group_fallbacks: dict[str, int] = field(default_factory=dict)
    mixed_label_groups: int = 0

    def indices(self, split: str) -> list[int]:
        if split not in SPLIT_NAMES:
            raise ValueError(f"split must be one of {SPLIT_NAMES}, got {split!r}")
        return getattr(self, split)

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["fractions"] = list(self.fractions)
        record["class_names"] = list(self.class_names)
        record["num_skipped"] = self.num_skipped
        record["version"] = MANIFEST_VERSION
        return record


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(value) for value in fractions)
    if len(values) != 3 or any(not math.isfinite(v) or v < 0 for v in values):
        raise ValueError(f"fractions must be three non-negative numbers (train, val, test), got {fractions}")
    if abs(sum(values) - 1.0) > 1e-6 or values[0] <= 0:
        raise ValueError(f"fractions must sum to 1 with a positive train fraction, got {fractions!r}")
    return values  # type: ignore[return-value]


def _check_labels(labels: Sequence[int] | np.ndarray | torch.Tensor) -> np.ndarray:
    array = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D sequence of class indices, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer) or array.min() < 0:
        raise ValueError(f"labels must be non-negative integers, got dtype {array.dtype}")
    return array.astype(np.int64)


def _check_per_class(per_class: int | None) -> int | None:
    if per_class is None:
        return None
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer or None, got {per_class!r}")
    return int(per_class)


def _subsample_train(
    train: np.ndarray, labels: np.ndarray, per_class: int, seed: int, class_names: Sequence[str]
) -> np.ndarray:
    """Keep ``per_class`` random training items of every class present in the training split."""
    kept = []
    for class_index in np.unique(labels):
        members = train[labels[train] == class_index]
        if len(members) < per_class:
            name = class_names[class_index] if class_index < len(class_names) else str(class_index)
            raise ValueError(
                f"per_class={per_class} but class {name!r} has only {len(members)} training images"
            )
        # A stream of its own per class (and apart from the split's), so k=5 and k=10 share nothing by
        # accident of draw order and adding a class does not reshuffle the others.
        rng = np.random.default_rng([seed, int(class_index), 1])
        kept.append(rng.permutation(members)[:per_class])
    return np.sort(np.concatenate(kept))


def _class_counts(
    labels: np.ndarray, splits: dict[str, np.ndarray], num_classes: int
) -> dict[str, list[int]]:
    return {name: np.bincount(labels[idx], minlength=num_classes).tolist() for name, idx in splits.items()}


def _round_half_up(value: float) -> int:
    """Round half up (5 items x 0.1 -> 1), not to even as round() does; 1e-9 absorbs float error in n*f."""
    return int(math.floor(value + 0.5 + 1e-9))


def _units(
    labels: np.ndarray, groups: Sequence[str] | None, class_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, int]:
    """(unit index of each item, class of each unit, number of units with several classes).

    Units are the items themselves, or their groups.
    """
    if groups is None:
        return np.arange(len(labels)), labels, 0
    if len(groups) != len(labels):
        raise ValueError(f"groups has {len(groups)} entries but labels has {len(labels)}")
    names, unit_of_item = np.unique(np.asarray([str(g) for g in groups]), return_inverse=True)
    # A group's class is its most common item class (ties: the smaller index); a patient with images of
    # several classes (a follow-up scan with another finding) stays whole, and stratification holds for the
    # groups. Refusing such patients would refuse most longitudinal data sets.
    votes = np.zeros((len(names), max(len(class_names), int(labels.max()) + 1)), dtype=np.int64)
    np.add.at(votes, (unit_of_item, labels), 1)
    unit_labels = votes.argmax(axis=1)
    mixed = int(((votes > 0).sum(axis=1) > 1).sum())
    return unit_of_item, unit_labels, mixed


def _group_counts(splits: dict[str, np.ndarray], unit_of_item: np.ndarray) -> dict[str, int]:
    return {name: len(np.unique(unit_of_item[idx])) for name, idx in splits.items()}


def _class_names(class_names: Sequence[str] | None, num_classes: int) -> tuple[str, ...]:
    """``class_names`` as a tuple, or "0", "1", ... for ``num_classes`` classes."""
    return tuple(class_names) if class_names is not None else tuple(str(c) for c in range(num_classes))


def _split_manifest(
    splits: dict[str, np.ndarray],
    labels: np.ndarray,
    unit_of_item: np.ndarray,
    *,
    seed: int,
    fractions: tuple[float, float, float],
    per_class: int | None,
    source: str,
    class_names: tuple[str, ...],
    skipped: Sequence[dict[str, str]],
    strategy: str,
    group_key: str = ITEM_GROUP_KEY,
    group_fallbacks: dict[str, int] | None = None,
    mixed_label_groups: int = 0,
) -> SplitManifest:
    """The manifest of ``splits`` (split name -> item indices), after the ``per_class`` subsample of train.

    unit_of_item: what the split kept whole for each item (its group, or the item itself), counted per split
    as ``group_counts``.
    """
    if per_class is not None:
        splits = {**splits, "train": _subsample_train(splits["train"], labels, per_class, seed, class_names)}
    return SplitManifest(
        train=splits["train"].tolist(),
        val=splits["val"].tolist(),
        test=splits["test"].tolist(),
        seed=seed,
        fractions=fractions,
        per_class=per_class,
        source=source,
        num_items=len(labels),
        class_names=class_names,
        class_counts=_class_counts(labels, splits, len(class_names)),
        strategy=strategy,
        skipped=[dict(entry) for entry in skipped],
        group_key=group_key,
        group_counts=_group_counts(splits, unit_of_item),
        group_fallbacks={str(key): int(count) for key, count in (group_fallbacks or {}).items()},
        mixed_label_groups=mixed_label_groups,
    )


def groups_split_apart(manifest: SplitManifest, groups: Sequence[str]) -> int:
    """How many groups have items in more than one split of ``manifest`` (0 for a patient-safe split).

    groups: the group of every item, as the source gives them (``len(groups) == manifest.num_items``).
    """
    if len(groups) != manifest.num_items:
        raise ValueError(f"groups has {len(groups)} entries but the manifest has {manifest.num_items} items")
    split_of_group: dict[str, set[str]] = {}
    for name in SPLIT_NAMES:
        for index in manifest.indices(name):
            split_of_group.setdefault(str(groups[index]), set()).add(name)
    return sum(len(names) > 1 for names in split_of_group.values())


def make_split_manifest(
    labels: Sequence[int] | np.ndarray | torch.Tensor,
    *,
    seed: int,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    per_class: int | None = None,
    source: str = "",
    class_names: Sequence[str] | None = None,
    skipped: Sequence[dict[str, str]] = (),
    groups: Sequence[str] | None = None,
    group_key: str | None = None,
    group_fallbacks: dict[str, int] | None = None,
) -> SplitManifest:
    """Stratified train/val/test split of items with class ``labels`` (int [N]).

    Within each class the items are shuffled with a generator seeded by (seed, class) and cut into
    n*f_val val, n*f_test test (each rounded half up) and the rest train; at least one item of a class goes
    to train, so a class of one item is train only.
    Every item is in exactly one split; then ``per_class=k`` keeps k random training items per class
    (ValueError naming per_class if a class has fewer).

    groups: optional group name per item (file, volume or patient). Then whole groups are shuffled and cut
    (counts are in groups), so no group straddles two splits; a group counts as its most common class.
    group_key: what the groups are ("PatientID", "file", ...), recorded in the manifest with the number of
        groups per split (the group names themselves are not recorded: they may be patient identifiers).
    group_fallbacks: recorded as given: items grouped by a fallback key, {key: count}.
    """
    label_array = _check_labels(labels)
    fraction_values = _check_fractions(fractions)
    per_class = _check_per_class(per_class)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    num_classes = int(label_array.max()) + 1
    names = _class_names(class_names, num_classes)
    if len(names) < num_classes:
        raise ValueError(f"class_names has {len(names)} names but labels go up to {num_classes - 1}")
    if groups is None and group_key not in (None, ITEM_GROUP_KEY):
        raise ValueError(f"group_key needs groups (got group_key={group_key!r} and no groups)")

    # The unit that is shuffled and cut: an item, or a whole group of items.
    unit_of_item, unit_labels, mixed_label_groups = _units(label_array, groups, names)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLIT_NAMES}
    for class_index in np.unique(unit_labels):
        members = np.flatnonzero(unit_labels == class_index)
        shuffled = np.random.default_rng([int(seed), int(class_index)]).permutation(members)
        n_val = _round_half_up(len(members) * fraction_values[1])
        n_test = _round_half_up(len(members) * fraction_values[2])
        n_val, n_test = min(n_val, len(members) - 1), min(n_test, max(len(members) - 1 - n_val, 0))
        parts["val"].append(shuffled[:n_val])
        parts["test"].append(shuffled[n_val : n_val + n_test])
        parts["train"].append(shuffled[n_val + n_test :])
    splits = {
        name: np.flatnonzero(np.isin(unit_of_item, np.concatenate(chunks))) for name, chunks in parts.items()
    }
    return _split_manifest(
        splits, label_array, unit_of_item, seed=int(seed), fractions=fraction_values, per_class=per_class,
        source=source, class_names=names, skipped=skipped, strategy="stratified",
        group_key=group_key or (ITEM_GROUP_KEY if groups is None else "group"),
        group_fallbacks=group_fallbacks, mixed_label_groups=mixed_label_groups,
    )


def official_split_manifest(
    split_sizes: dict[str, int],
    labels: Sequence[int] | np.ndarray | torch.Tensor,
    *,
    seed: int,
    per_class: int | None = None,
    source: str = "",
    class_names: Sequence[str] | None = None,
    skipped: Sequence[dict[str, str]] = (),
) -> SplitManifest:
    """Manifest for a source that ships its own splits (MedMNIST): the items are train, then val, then test
    concatenated (``split_sizes`` gives each length) and the official assignment is kept; only the
    ``per_class`` subsample of train is drawn from the seed.
    """
    label_array = _check_labels(labels)
    per_class = _check_per_class(per_class)
    if set(split_sizes) != set(SPLIT_NAMES) or sum(split_sizes.values()) != len(label_array):
        raise ValueError(
            f"split_sizes must give train/val/test sizes summing to {len(label_array)}, got {split_sizes}"
        )
    names = _class_names(class_names, int(label_array.max()) + 1)
    splits, start = {}, 0
    for name in SPLIT_NAMES:
        splits[name] = np.arange(start, start + split_sizes[name])
        start += split_sizes[name]
    fractions = tuple(split_sizes[name] / len(label_array) for name in SPLIT_NAMES)
    every_item = np.arange(len(label_array))  # each item is its own unit
    return _split_manifest(
        splits, label_array, every_item, seed=int(seed), fractions=fractions,  # type: ignore[arg-type]
        per_class=per_class, source=source, class_names=names, skipped=skipped, strategy="official",
    )


def save_split_manifest(manifest: SplitManifest, path: str | os.PathLike) -> Path:
    """Write the manifest as JSON (atomically); return the path."""
    _check_disjoint(manifest, where=str(path))
    return write_json_atomic(path, manifest.to_json())


def _check_disjoint(manifest: SplitManifest, *, where: str) -> None:
    seen: dict[int, str] = {}
    for name in SPLIT_NAMES:
        indices = manifest.indices(name)
        if len(set(indices)) != len(indices):
            raise ValueError(f"split manifest {where}: split {name!r} lists an item twice")
        for index in indices:
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < manifest.num_items:
                raise ValueError(
                    f"split manifest {where}: split {name!r} has index {index!r} outside "
                    f"[0, {manifest.num_items})"
                )
            if index in seen:
                raise ValueError(
                    f"split manifest {where}: item {index} is in both {seen[index]!r} and {name!r} "
                    "(the same image in two splits leaks test data into training)"
                )
            seen[index] = name


def load_split_manifest(path: str | os.PathLike) -> SplitManifest:
    """Read a manifest written by :func:`save_split_manifest`; checks its splits are disjoint and in range."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split manifest not found: {path}")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"split manifest {path} is not valid JSON: {error}") from error
    required = {
        "train", "val", "test", "seed", "fractions", "per_class", "source", "num_items", "class_names",
        "class_counts",
    }
    if not isinstance(record, dict) or not required <= set(record):
        missing = sorted(required - set(record)) if isinstance(record, dict) else sorted(required)
        raise ValueError(f"split manifest {path} lacks keys {missing}")
    manifest = SplitManifest(
        train=list(record["train"]),
        val=list(record["val"]),
        test=list(record["test"]),
        seed=record["seed"],
        fractions=tuple(record["fractions"]),  # type: ignore[arg-type]
        per_class=record["per_class"],
        source=record["source"],
        num_items=record["num_items"],
        class_names=tuple(record["class_names"]),
        class_counts=record["class_counts"],
        strategy=record.get("strategy", "stratified"),
        skipped=list(record.get("skipped", [])),
        item_ids=record.get("item_ids"),
        group_key=record.get("group_key", "unrecorded"),  # a version-1 manifest did not say
        group_counts=dict(record.get("group_counts", {})),
        group_fallbacks=dict(record.get("group_fallbacks", {})),
        mixed_label_groups=int(record.get("mixed_label_groups", 0)),
    )
    _check_disjoint(manifest, where=str(path))
    return manifest


def apply_split(image_set: ImageSet, manifest: SplitManifest) -> dict[str, ImageSet]:
    """{"train", "val", "test"} -> the subsets of ``image_set`` the manifest names.

    ValueError if the manifest was made for another set (different length, source or class names).
    """
    if manifest.num_items != len(image_set):
        raise ValueError(
            f"split manifest was made for {manifest.num_items} items of {manifest.source!r}, "
            f"but the image set from {image_set.source!r} has {len(image_set)}"
        )
    if manifest.source and manifest.source != image_set.source:
        raise ValueError(
            f"split manifest was made for source {manifest.source!r}, not {image_set.source!r}"
        )
    if tuple(manifest.class_names) != tuple(image_set.class_names):
        raise ValueError(
            f"split manifest class names {list(manifest.class_names)} differ from the image set's "
            f"{list(image_set.class_names)}"
        )
    _check_disjoint(manifest, where=f"for {image_set.source}")
    return {name: image_set.subset(manifest.indices(name)) for name in SPLIT_NAMES}
