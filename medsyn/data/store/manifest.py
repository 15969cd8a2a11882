"""The folder of one image store and its manifest: what the store holds and what it was built from.

A store folder holds exactly three files:

    images.npy      [N, C, H, W] uint8, uint16 or float32 (medsyn.data.store.storage_dtype)
    labels.npy      [N] int64
    manifest.json   written last (atomically), so a folder with a manifest is a complete store

Why ``.npy``: numpy's own format is a fixed header and then the raw array, so ``np.load(mmap_mode="r")``
maps it without reading it, ``np.lib.format.open_memmap`` writes it chunk by chunk, any numpy reads it,
and it needs no new dependency (zarr or HDF5 would add one, and chunked compression buys little on
photographs and scans that are read at random).

The manifest (JSON, sorted keys):

    {"format": "medsyn-image-store-v1",
     "key": sha256 of (kind, source root, options, dtype): also names the folder (medsyn.data.store.location),
     "build_id": random hex, new at every build (an open store notices it was rebuilt under it),
     "kind": "image_folder", "options": {...the caller's build options, canonical...},
     "dtype": {"requested": "auto", "stored": "uint8", "max_abs_error": 0.0},
     "images": {"count": N, "shape": [C, H, W]}, "class_names": [...],
     "source_files": {"scheme": "stat", "digests": [sorted per-file digests]},
     "items_digest": sha256 of the file digests in item order, each item's file and the labels}

It holds no file name, size, date or source path (medsyn.data.store.fingerprint says why). A folder is
a medsyn store when it holds only those three names and its manifest's format starts with
``medsyn-image-store-``; anything else is a foreign folder medsyn never replaces or deletes.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsyn.data.store.build_options import canonical_json
from medsyn.data.store.fingerprint import FINGERPRINT_SCHEMES
from medsyn.data.store.storage_dtype import DTYPE_REQUESTS, STORAGE_DTYPES
from medsyn.io.atomic import write_json_atomic

__all__ = [
    "IMAGES_NAME", "LABELS_NAME", "MANIFEST_NAME", "STORE_FORMAT", "ForeignStoreFolderError",
    "StoreFormatError", "StoreManifest", "read_manifest", "write_manifest",
]

STORE_FORMAT = "medsyn-image-store-v1"
_FORMAT_PREFIX = "medsyn-image-store-"
IMAGES_NAME = "images.npy"
LABELS_NAME = "labels.npy"
MANIFEST_NAME = "manifest.json"
_STORE_ENTRIES = frozenset((IMAGES_NAME, LABELS_NAME, MANIFEST_NAME))
_HEX = re.compile(r"[0-9a-f]+")


class ForeignStoreFolderError(FileExistsError):
    """A store's folder exists but medsyn did not write it; it is neither used nor replaced."""


class StoreFormatError(ValueError):
    """A medsyn store of another format version, or one whose manifest lacks what this version needs."""


@dataclass(frozen=True)
class StoreManifest:
    """The parsed manifest (module doc); ``file_digests`` are sorted."""

    key: str
    build_id: str
    kind: str
    options: dict[str, Any]
    requested_dtype: str
    storage_dtype: str
    max_abs_error: float
    count: int
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    fingerprint_scheme: str
    file_digests: tuple[str, ...]
    items_digest: str

    @property
    def exact(self) -> bool:
        """Every stored value reads back as the float32 the source decoder produced."""
        return self.max_abs_error == 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STORE_FORMAT,
            "key": self.key,
            "build_id": self.build_id,
            "kind": self.kind,
            "options": self.options,
            "dtype": {"requested": self.requested_dtype, "stored": self.storage_dtype,
                      "max_abs_error": self.max_abs_error},
            "images": {"count": self.count, "shape": list(self.image_shape)},
            "class_names": list(self.class_names),
            "source_files": {"scheme": self.fingerprint_scheme, "digests": list(self.file_digests)},
            "items_digest": self.items_digest,
        }

    def same_build_inputs(self, other: StoreManifest) -> bool:
        """Everything but what a build decides (build id, stored dtype, measured error) is equal."""
        def inputs(manifest: StoreManifest) -> str:
            record = manifest.to_json()
            record.pop("build_id")
            record["dtype"] = record["dtype"]["requested"]
            return canonical_json(record)

        return inputs(self) == inputs(other)


def write_manifest(folder: Path, manifest: StoreManifest) -> Path:
    return write_json_atomic(folder / MANIFEST_NAME, manifest.to_json())


def read_manifest(folder: str | os.PathLike) -> StoreManifest:
    """The manifest of the store in ``folder``.

    FileNotFoundError: no such folder. ForeignStoreFolderError: the folder is not a medsyn store (module
    doc), naming it and what was found. StoreFormatError: a medsyn store of another format version or with
    a damaged manifest (a build replaces it; reading it needs a rebuild).
    """
    folder = Path(folder)
    if not folder.exists() and not folder.is_symlink():
        raise FileNotFoundError(f"image store {folder} does not exist")
    if folder.is_symlink() or not folder.is_dir():
        raise ForeignStoreFolderError(
            f"image store path {folder} is not a folder medsyn wrote; medsyn leaves it alone"
        )
    names = sorted(os.listdir(folder))
    foreign = [name for name in names if name not in _STORE_ENTRIES]
    if foreign or MANIFEST_NAME not in names:
        found = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise ForeignStoreFolderError(
            f"image store folder {folder} exists but is not a medsyn store (found {found or 'nothing'}; a "
            f"store holds only {', '.join(sorted(_STORE_ENTRIES))}); medsyn neither uses nor replaces it: "
            "move it away, or choose another cache_dir"
        )
    path = folder / MANIFEST_NAME
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ForeignStoreFolderError(
            f"image store folder {folder}: its manifest {path} cannot be read as JSON ({error}); medsyn "
            "writes it atomically, so it is not medsyn's: move the folder away, or choose another cache_dir"
        ) from error
    store_format = record.get("format") if isinstance(record, dict) else None
    if not isinstance(store_format, str) or not store_format.startswith(_FORMAT_PREFIX):
        raise ForeignStoreFolderError(
            f"image store folder {folder}: {path} is not a medsyn store manifest (format {store_format!r}, "
            f"expected {STORE_FORMAT!r}); medsyn neither uses nor replaces it: move it away, or choose "
            "another cache_dir"
        )
    if store_format != STORE_FORMAT:
        raise StoreFormatError(
            f"image store {folder} has format {store_format!r}, this medsyn reads {STORE_FORMAT!r}"
        )
    try:
        return _parse(record)
    except (KeyError, TypeError, ValueError) as error:
        raise StoreFormatError(f"image store {folder}: {path} is damaged ({error})") from error


def _parse(record: dict[str, Any]) -> StoreManifest:
    dtype, images, files = record["dtype"], record["images"], record["source_files"]
    shape = tuple(_integer(value, "images.shape") for value in images["shape"])
    manifest = StoreManifest(
        key=_hex(record["key"], "key"),
        build_id=_hex(record["build_id"], "build_id"),
        kind=_text(record["kind"], "kind"),
        options=_mapping(record["options"], "options"),
        requested_dtype=_choice(dtype["requested"], DTYPE_REQUESTS, "dtype.requested"),
        storage_dtype=_choice(dtype["stored"], STORAGE_DTYPES, "dtype.stored"),
        max_abs_error=_error_bound(dtype["max_abs_error"]),
        count=_integer(images["count"], "images.count"),
        image_shape=shape,  # type: ignore[arg-type]
        class_names=tuple(_text(name, "class_names") for name in record["class_names"]),
        fingerprint_scheme=_choice(files["scheme"], FINGERPRINT_SCHEMES, "source_files.scheme"),
        file_digests=tuple(_hex(digest, "source_files.digests") for digest in files["digests"]),
        items_digest=_hex(record["items_digest"], "items_digest"),
    )
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"images.shape must be [C, H, W] of positive sizes, got {list(shape)}")
    if not manifest.class_names:
        raise ValueError("class_names is empty")
    return manifest


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a string, got {value!r}")
    return value


def _hex(value: Any, field: str) -> str:
    text = _text(value, field)
    if not _HEX.fullmatch(text):
        raise ValueError(f"{field} must be lower-case hex digits, got {value!r}")
    return text


def _choice(value: Any, choices: tuple[str, ...], field: str) -> str:
    if value not in choices:
        raise ValueError(f"{field} must be one of {list(choices)}, got {value!r}")
    return value


def _integer(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"{field} must be a non-negative integer, got {value!r}")
    return value


def _mapping(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{field} must be a mapping, got {value!r}")
    return value


def _error_bound(value: Any) -> float:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < 0:
        raise ValueError(f"dtype.max_abs_error must be a finite number >= 0, got {value!r}")
    return float(value)
