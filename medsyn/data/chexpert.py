"""CheXpert (Irvin et al. 2019) filtered as in paper 000 §3: frontal AP radiographs with exactly one finding.

The CSV (``train.csv`` / ``valid.csv`` of CheXpert-v1.0 or -small) has columns Path, Sex, Age,
Frontal/Lateral, AP/PA and the 14 observations below, each 1.0 (positive), 0.0 (negative), -1.0
(uncertain) or empty (not mentioned). Uncertain counts as positive (U-Ones, paper 000 §3 after [43]);
empty counts as negative. Kept: Frontal/Lateral == "Frontal", AP/PA == "AP", and exactly one positive
observation after U-Ones; that observation is the class. Images are read as grey and resized to
256x256 (paper 000 §3). The 14 class names are always all 14 observations (in CSV order), so class
indices mean the same in every subset even if a class ends up empty.

Paths in the CSV start with the data-set folder (``CheXpert-v1.0-small/train/patient00001/...``); they
are resolved against ``image_root`` (default: the folder above the CSV's folder when the first path part
is the CSV's folder name, else the CSV's folder). Images of one patient share a split group. A path that
resolves (after symlinks) outside ``image_root`` is refused naming the CSV row, unless
``allow_outside_root=True``.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np
import torch

from medsyn.data.image_folder import decode_image_bytes
from medsyn.data.image_set import ImageSet
from medsyn.data.read_errors import SkippedFiles
from medsyn.data.safe_names import listed_path
from medsyn.data.source_data import SourceData, stacked_image_set
from medsyn.data.source_store import (
    ListedItems,
    StoreDtype,
    check_store_options,
    listing_digest,
    stored_source_data,
)

__all__ = ["CHEXPERT_FINDINGS", "CHEXPERT_SIZE", "select_chexpert_rows", "read_chexpert", "load_chexpert"]

CHEXPERT_FINDINGS = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
    "Fracture", "Support Devices",
)
CHEXPERT_SIZE = 256  # paper 000 §3: CheXpert images resized to 256 x 256


def _finding_value(text: str, *, where: str) -> float:
    text = (text or "").strip()
    if text == "":
        return 0.0  # not mentioned in the report
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: finding value {text!r} is not 1, 0, -1 or empty") from None
    if value not in (1.0, 0.0, -1.0) or math.isnan(value):
        raise ValueError(f"{where}: finding value {text!r} is not 1, 0, -1 or empty")
    return value


def select_chexpert_rows(
    csv_path: str | os.PathLike, *, skipped: SkippedFiles | None = None
) -> list[tuple[str, int]]:
    """(Path as written, class index) of every row kept by the paper 000 §3 filter, in CSV order."""
    return [(path, label) for _row, path, label in _numbered_rows(csv_path, skipped)]


def _numbered_rows(csv_path: str | os.PathLike, skipped: SkippedFiles | None) -> list[tuple[int, str, int]]:
    """(CSV row number, Path as written, class index) of every kept row (see ``select_chexpert_rows``)."""
    csv_path = Path(csv_path)
    skipped = skipped if skipped is not None else SkippedFiles("raise")
    if not csv_path.is_file():
        raise FileNotFoundError(f"CheXpert CSV not found: {csv_path}")
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        required = ["Path", "Frontal/Lateral", "AP/PA", *CHEXPERT_FINDINGS]
        missing = [column for column in required if column not in header]
        if missing:
            raise ValueError(f"CheXpert CSV {csv_path}: missing column(s) {missing}")
        kept = []
        for row_number, record in enumerate(reader, start=1):
            where = f"{csv_path}:row {row_number}"
            if record["Frontal/Lateral"].strip() != "Frontal" or record["AP/PA"].strip() != "AP":
                continue
            try:
                values = np.array([_finding_value(record[name], where=where) for name in CHEXPERT_FINDINGS])
            except ValueError as error:
                skipped.bad_file(where, str(error).removeprefix(f"{where}: "))
                continue
            positive = np.flatnonzero(values != 0.0)  # U-Ones: -1 (uncertain) counts as positive
            if len(positive) == 1:
                kept.append((row_number, record["Path"].strip(), int(positive[0])))
    return kept


def read_chexpert(
    path: str | os.PathLike,
    *,
    image_root: str | os.PathLike | None = None,
    size: int = CHEXPERT_SIZE,
    limit: int | None = None,
    on_error: str = "raise",
    allow_outside_root: bool = False,
    store: bool = False,
    cache_dir: str | os.PathLike | None = None,
    store_dtype: StoreDtype = "auto",
) -> SourceData:
    """Frontal AP single-finding CheXpert images, float32 [N, 1, size, size] in [0, 1], 14 classes.

    path: the CheXpert CSV (train.csv / valid.csv)
    limit: read only the first ``limit`` kept rows (for a quick look at a large CSV).
    allow_outside_root: accept CSV paths that resolve outside ``image_root`` (default: ValueError naming
        the CSV, row and path)
    store: decode once into an on-disk image store and reuse it on later runs (:mod:`medsyn.data.source_store`;
        the CSV gives the items and patient groups on every run, no path reaches the store); cache_dir:
        where stores live (default MEDSYN_CACHE_DIR, else the user cache folder); store_dtype: "auto" (the
        narrowest exact), "uint8", "uint16" or "float32"
    """
    csv_path = Path(path)
    check_store_options(store, store_dtype, on_error)
    skipped = SkippedFiles(on_error)
    rows = _numbered_rows(csv_path, skipped)
    if limit is not None:
        rows = rows[: int(limit)]
    if not rows:
        raise ValueError(f"CheXpert CSV {csv_path}: no frontal AP image with exactly one finding")
    if image_root is None:
        first_part = Path(rows[0][1]).parts[0]
        image_root = csv_path.parent.parent if first_part == csv_path.parent.name else csv_path.parent
    image_root = Path(image_root)
    if store:
        return _stored_chexpert(csv_path, image_root, rows, size=size, allow_outside_root=allow_outside_root,
                                cache_dir=cache_dir, dtype=store_dtype, limit=limit)
    images: list[torch.Tensor] = []
    labels: list[int] = []
    item_ids: list[str] = []
    groups: list[str] = []
    for row_number, relative, label in rows:
        path = _image_path(csv_path, image_root, row_number, relative, allow_outside_root)
        if not path.is_file():
            skipped.bad_file(path, f"listed in {csv_path} but not found", missing=True)
            continue
        try:
            image = decode_image_bytes(path.read_bytes(), 1, where=str(path))
        except ValueError as error:
            skipped.bad_file(path, str(error).removeprefix(f"{path}: "))
            continue
        images.append(image)
        labels.append(label)
        item_ids.append(relative)
        groups.append(_patient_group(relative))
    skipped.warn_if_any(str(csv_path))
    if not images:
        raise ValueError(f"CheXpert CSV {csv_path}: none of the selected images could be read")
    image_set = stacked_image_set(
        image_root, images, labels, CHEXPERT_FINDINGS, item_ids, size=size, source=str(csv_path)
    )
    return SourceData(sets=image_set, skipped=skipped.entries, item_ids=item_ids, groups=groups)


def _image_path(csv_path: Path, image_root: Path, row_number: int, relative: str, allow_outside_root: bool
                ) -> Path:
    return listed_path(image_root, relative, where=f"CheXpert CSV {csv_path}, row {row_number}",
                       allow_outside_root=allow_outside_root)


def _patient_group(relative: str) -> str:
    """.../train/patient00001/study1/view1_frontal.jpg: the patient folder groups their studies."""
    parts = Path(relative).parts
    return next((part for part in parts if part.startswith("patient")), relative)


def _stored_chexpert(csv_path: Path, image_root: Path, rows: list[tuple[int, str, int]], *, size: int | None,
                     allow_outside_root: bool, cache_dir: str | os.PathLike | None, dtype: str,
                     limit: int | None) -> SourceData:
    """read_chexpert with ``store=True``: the same items, labels and patient groups, pixels from the store."""
    listing = ListedItems()
    for row_number, relative, label in rows:
        path = _image_path(csv_path, image_root, row_number, relative, allow_outside_root)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: listed in {csv_path} but not found")
        listing.add_file(path, (1, *_encoded_size(path, size)), label, [relative], _patient_group(relative))

    def decode_file(index: int) -> torch.Tensor:
        path = listing.files[index]
        return decode_image_bytes(path.read_bytes(), 1, where=str(path)).unsqueeze(0)

    options = {"size": size, "limit": limit, "listing": listing_digest(csv_path)}
    return stored_source_data(
        listing, decode_file, kind="chexpert", root=image_root,
        class_names=CHEXPERT_FINDINGS, size=size, options=options, cache_dir=cache_dir, dtype=dtype,
        source=str(csv_path), group_key=None,
    )


def _encoded_size(path: Path, size: int | None) -> tuple[int, int]:
    """(height, width) of the image at ``path`` from its header (only read when ``size`` is None)."""
    if size is not None:
        return (int(size), int(size))
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from error
    return (height, width)


def load_chexpert(path: str | os.PathLike, **options) -> ImageSet:
    """ImageSet of the paper 000 §3 CheXpert selection (see :func:`read_chexpert`)."""
    return read_chexpert(path, **options).sets  # type: ignore[return-value]
