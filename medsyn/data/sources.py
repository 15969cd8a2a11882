"""One entry point for every data source, chosen by name from a registry (so a config picks the data set).

    load_source("digits", size=32)                          -> ImageSet
    load_source("medmnist", path="pathmnist.npz", size=28)  -> {"train", "val", "test"} official splits
    load_source("image_folder", path="kvasir/", size=64)    -> ImageSet
    prepare_splits("digits", {"size": 32}, seed=0, per_class=10, manifest_path="runs/x/split_manifest.json")

``prepare_splits`` is what workflows call: it loads, splits (stratified 80/10/10 from the seed, or the
source's official splits for MedMNIST), applies the ``per_class`` scarcity subsample to train, and writes
the split manifest (including files skipped under ``on_error="skip"``).

Registered kinds (options after ``path``; see each reader's docstring):

    digits         size                                   embedded sklearn digits, no download
    medmnist       size, channels, class_names            MedMNIST .npz, official splits kept
    mnist, fashion_mnist  parts, size, class_names        IDX folder (plain or .gz) or .npz; parts "all" |
                                                          "train" | "test" pooled, then split 80/10/10
    image_folder   size, channels, classes, class_prefix, value_range, subject_pattern
                                                          root/<class>/<image>
    kvasir, plantvillage, corn                            image_folder at 256x256 RGB; corn = prefix "Corn"
    dicom_folder   labels_csv, key_column, label_column, class_names, size, window, frames, color,
                   group_by, allow_mixed_modalities       a patient (PatientID) stays in one split
    nifti_folder   labels_csv, class_names, axis, slices, window, percentiles, volume, drop_constant_slices,
                   subject_column, subject_pattern        a volume (or subject) stays in one split
    chexpert       image_root, size, limit                CSV filtered as paper 000 §3
    (all folder kinds also take on_error="raise" | "skip"; dicom_folder, nifti_folder and chexpert take
    allow_outside_root=False: a CSV row whose path resolves outside the data folder is refused unless true;
    image_folder and its presets, dicom_folder, nifti_folder, medmnist and chexpert take store=False,
    cache_dir, store_dtype="auto": decode once into an on-disk image store, medsyn.data.source_store)

A new source is a function ``(**options) -> SourceData`` added with :func:`register_source`.
"""

from __future__ import annotations

import functools
import inspect
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from medsyn.data.chexpert import read_chexpert
from medsyn.data.dicom_folder import read_dicom_folder
from medsyn.data.image_folder import read_image_folder
from medsyn.data.image_set import ImageSet
from medsyn.data.medmnist import read_medmnist_npz
from medsyn.data.mnist_idx import FASHION_MNIST_CLASSES, read_mnist
from medsyn.data.nifti_folder import read_nifti_folder
from medsyn.data.source_data import SourceData
from medsyn.data.split import (
    DEFAULT_FRACTIONS,
    SPLIT_NAMES,
    SplitManifest,
    apply_split,
    groups_split_apart,
    load_split_manifest,
    make_split_manifest,
    official_split_manifest,
    save_split_manifest,
)
from medsyn.data.stored_images import StoredImages

__all__ = [
    "SOURCES",
    "draw_splits",
    "register_source",
    "read_source",
    "load_source",
    "prepare_splits",
    "source_names",
]

SourceLoader = Callable[..., SourceData]
SOURCES: dict[str, SourceLoader] = {}


def register_source(name: str) -> Callable[[SourceLoader], SourceLoader]:
    """Decorator: make ``loader(**options) -> SourceData`` available as ``load_source(name, **options)``."""

    def add(loader: SourceLoader) -> SourceLoader:
        if name in SOURCES:
            raise ValueError(f"data source {name!r} is already registered")
        SOURCES[name] = loader
        return loader

    return add


def source_names() -> list[str]:
    return sorted(SOURCES)


def read_source(kind: str, **options: Any) -> SourceData:
    """Load source ``kind`` with its ``options``; returns the images plus what was skipped."""
    if kind not in SOURCES:
        raise ValueError(f"unknown data source kind {kind!r}; known kinds: {source_names()}")
    loader = SOURCES[kind]
    try:
        inspect.signature(loader).bind(**options)
    except TypeError as error:
        accepted = list(inspect.signature(loader).parameters)
        raise ValueError(
            f"data source {kind!r}: bad options {sorted(options)} ({error}); accepted: {accepted}"
        ) from error
    return loader(**options)


def load_source(kind: str, **options: Any) -> ImageSet | dict[str, ImageSet]:
    """The ImageSet of source ``kind`` (or its official {"train", "val", "test"} splits)."""
    return read_source(kind, **options).sets


def _concatenate(splits: Mapping[str, ImageSet]) -> ImageSet:
    """train, val, test concatenated in that order (the item numbering an official-split manifest uses)."""
    parts = [splits[name] for name in SPLIT_NAMES]
    class_names = parts[0].class_names
    for name, part in zip(SPLIT_NAMES, parts):
        if part.class_names != class_names or part.image_shape != parts[0].image_shape:
            raise ValueError(
                f"official split {name!r} of {part.source} differs in class names or image shape"
            )
    stored = any(part.stored for part in parts)  # MedMNIST read with store: views of one store
    return ImageSet(
        StoredImages.concatenate([part.images for part in parts]) if stored
        else torch.cat([part.images for part in parts]),
        torch.cat([part.labels for part in parts]),
        class_names,
        parts[0].source,
    )


def prepare_splits(
    kind: str,
    options: Mapping[str, Any] | None = None,
    *,
    seed: int,
    per_class: int | None = None,
    manifest_path: str | os.PathLike | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    existing_manifest: str | os.PathLike | None = None,
) -> dict[str, ImageSet]:
    """Load source ``kind``, split it and (if ``manifest_path``) write the split manifest.

    Returns {"train", "val", "test"} -> ImageSet. Sources with official splits keep them (``fractions``
    is then unused); ``per_class=k`` keeps k training images per class in both cases.

    existing_manifest: reuse this manifest instead of drawing a split (``seed``, ``per_class`` and
        ``fractions`` are then ignored), e.g. to score a new synthetic set against the same real split.
        ValueError if the source no longer matches it (item count, source, classes, or item names), or if it
        puts a group of the source (a patient, a volume) in two splits.
    """
    splits, manifest = draw_splits(
        kind, options, seed=seed, per_class=per_class, fractions=fractions, existing_manifest=existing_manifest
    )
    if manifest_path is not None:
        save_split_manifest(manifest, manifest_path)
    return splits


def draw_splits(
    kind: str,
    options: Mapping[str, Any] | None = None,
    *,
    seed: int,
    per_class: int | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    existing_manifest: str | os.PathLike | None = None,
) -> tuple[dict[str, ImageSet], SplitManifest]:
    """``prepare_splits`` without writing: (splits, their manifest), so a workflow can check every input
    before it writes the manifest with ``medsyn.data.split.save_split_manifest``."""
    loaded = read_source(kind, **dict(options or {}))
    if loaded.has_official_splits:
        full = _concatenate(loaded.sets)  # type: ignore[arg-type]
    else:
        full = loaded.sets  # type: ignore[assignment]
    if loaded.item_ids is not None and len(loaded.item_ids) != len(full):
        raise ValueError(f"source {kind!r} returned {len(loaded.item_ids)} item ids for {len(full)} items")

    if existing_manifest is not None:
        manifest = load_split_manifest(existing_manifest)
        both_named = manifest.item_ids is not None and loaded.item_ids is not None
        if both_named and manifest.item_ids != loaded.item_ids:
            changed = next(
                (f"{a!r} -> {b!r}" for a, b in zip(manifest.item_ids, loaded.item_ids) if a != b),
                f"{len(manifest.item_ids)} -> {len(loaded.item_ids)} items",
            )
            raise ValueError(
                f"split manifest {existing_manifest} does not match the files of {full.source} now "
                f"(first difference: {changed})"
            )
        if loaded.groups is not None and len(loaded.groups) == manifest.num_items:
            apart = groups_split_apart(manifest, loaded.groups)
            if apart:
                raise ValueError(
                    f"split manifest {existing_manifest} puts {apart} of the {len(set(loaded.groups))} "
                    f"{loaded.group_key or 'group'} groups in more than one split (a patient or volume in "
                    "train and test inflates every utility score); draw a new split instead of reusing it"
                )
    elif loaded.has_official_splits:
        sizes = {name: len(loaded.sets[name]) for name in SPLIT_NAMES}  # type: ignore[index]
        manifest = official_split_manifest(
            sizes, full.labels, seed=seed, per_class=per_class, source=full.source,
            class_names=full.class_names, skipped=loaded.skipped,
        )
    else:
        manifest = make_split_manifest(
            full.labels, seed=seed, fractions=fractions, per_class=per_class, source=full.source,
            class_names=full.class_names, skipped=loaded.skipped, groups=loaded.groups,
            group_key=loaded.group_key, group_fallbacks=loaded.group_fallbacks,
        )
    if loaded.item_ids is not None and manifest.item_ids is None:
        manifest.item_ids = list(loaded.item_ids)
    splits = apply_split(full, manifest)
    empty = [name for name in SPLIT_NAMES if len(splits[name]) == 0]
    if empty:
        warnings.warn(
            f"{full.source}: split(s) {empty} are empty — too few items (or files/patients, which are kept "
            f"whole) per class for fractions {tuple(manifest.fractions)}; "
            f"class counts {manifest.class_counts}; {manifest.group_key} groups per split "
            f"{manifest.group_counts}",
            UserWarning,
            stacklevel=2,
        )
    return splits, manifest


# --- registered sources -------------------------------------------------------------------------------------
# Each reader takes the data path as ``path`` plus keyword options, and imports its heavy dependency
# (pydicom, nibabel, Pillow) only when called.


@register_source("digits")
def _digits(size: int = 32) -> SourceData:
    from medsyn.data.digits import load_digits_images

    return SourceData(sets=load_digits_images(size))


register_source("medmnist")(read_medmnist_npz)
# Paper 001 §4's MNIST (and Fashion-MNIST, same layout): IDX files or a Keras-style .npz, split 80/10/10 here.
register_source("mnist")(read_mnist)
register_source("fashion_mnist")(functools.partial(read_mnist, class_names=FASHION_MNIST_CLASSES))
register_source("image_folder")(read_image_folder)
register_source("dicom_folder")(read_dicom_folder)
register_source("nifti_folder")(read_nifti_folder)
register_source("chexpert")(read_chexpert)
# Paper 000 §3 class-per-folder data sets, 256 x 256 RGB. Corn is PlantVillage restricted to the classes
# whose folder name starts with "Corn" (PlantVillage names them "Corn_(maize)___Common_rust_", ...).
register_source("kvasir")(functools.partial(read_image_folder, size=256, channels=3))
register_source("plantvillage")(functools.partial(read_image_folder, size=256, channels=3))
register_source("corn")(functools.partial(read_image_folder, size=256, channels=3, class_prefix="Corn"))
