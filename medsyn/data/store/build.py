"""build_store: decode a source's images once into an on-disk store, or reuse the store built before.

    build = build_store(
        kind="image_folder", root="data/kvasir", files=paths, labels=labels, class_names=classes,
        image_shape=(3, 256, 256), decode=lambda i: decode_and_resize(paths[i]),
        options={"size": 256, "channels": 3, "value_range": "auto"},
    )
    build.store          # ImageStore; build.reused, build.reason say what happened

Generic over sources: the caller lists the files the images come from (their fingerprints decide
reuse), gives one label per item and a ``decode(i)`` returning item i as float32 [C, H, W] in [0, 1]
(items may share a file: ``item_files[i]`` is the index in ``files`` of item i's file, e.g. the slices of
one volume; by default item i is ``files[i]``), and ``options``: every setting that decides the decoded
pixels (size, channels, window, value range...). The same kind, root and options always decode the same
files to the same pixels: that is the caller's side of the contract.

Reuse: the store's folder (medsyn.data.store.location) is found by (kind, root, options, dtype); it is
reused, without a single decode, when its manifest records the same file fingerprints, labels, item
order, class names and image shape. Otherwise it is rebuilt, and ``reason`` says why (new store; which
current files are new or changed and how many recorded ones are gone; labels or shape changed; another
store format). Other options or dtype give another folder; the store made with the old ones stays in the
cache. Files are fingerprinted before decoding, so a file changed while the build reads it makes the
next build rebuild.

Safety:
- The build writes into ``.<folder>.medsyn-build-<random>`` next to the store, the manifest last, then
  renames it into place (an old store is first renamed to ``.<folder>.medsyn-retired-<random>`` and then
  deleted): at every moment the store's folder is absent or a complete store. An exception removes the
  temporary folder; one left by a kill is removed by the next build of the same store.
- One build at a time per store (medsyn.data.store.build_lock): a second one waits, by default, and
  then reuses what the first built.
- A store's folder that medsyn did not write is never used, replaced or deleted: ForeignStoreFolderError
  naming it. Only folders named as above, for this store, are ever removed.
- Each decoded image is checked (float32, shape, finite, in [0, 1]); an error names the item and its file.
- The dtype rule (medsyn.data.store.storage_dtype) never loses precision silently: "uint8" is exact or
  an error naming the first image off the 1/255 grid; the manifest records the largest change uint16
  rounding made (``store.max_abs_error``; 0 when exact).
- Store folders are made private to their user (mode 0700, as mkdtemp creates them): they hold patient
  images in a shared cache.

Memory: one chunk (``chunk_size`` images, default 64) of float32 values and the temporaries of its
encoding, about 3 x chunk_size x C x H x W x 4 bytes (150 MB at 256 px RGB), independent of N
(tests/data/store/test_store_streaming.py). Disk: N x C x H x W x (1, 2 or 4) bytes, plus the uint8 part
once more while "auto" widens.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medsyn.data.store.array_writer import NpyWriter, fsync_path, widened
from medsyn.data.store.build_lock import LOCK_SUFFIX, store_build_lock
from medsyn.data.store.build_options import canonical_json, canonical_options
from medsyn.data.store.fingerprint import FileChanges, SourceFiles, compare_files, fingerprint_files
from medsyn.data.store.image_store import ImageStore, open_store
from medsyn.data.store.location import check_kind, resolve_cache_dir, store_folder_name, store_key
from medsyn.data.store.manifest import (
    IMAGES_NAME,
    LABELS_NAME,
    StoreFormatError,
    StoreManifest,
    read_manifest,
    write_manifest,
)
from medsyn.data.store.storage_dtype import WIDER, check_dtype_request, encode_values, first_storage_dtype

__all__ = ["DEFAULT_CHUNK_SIZE", "StoreBuild", "build_store"]

DEFAULT_CHUNK_SIZE = 64
_BUILD_TAG = ".medsyn-build-"
_RETIRED_TAG = ".medsyn-retired-"
# manifest fields a rebuild names when they differ (besides the files and the labels)
_COMPARED_FIELDS = (
    ("key", "store key"), ("kind", "kind"), ("options", "options"), ("requested_dtype", "dtype"),
    ("class_names", "class names"), ("image_shape", "image shape"), ("count", "item count"),
)

DecodeItem = Callable[[int], np.ndarray | torch.Tensor]


@dataclass(frozen=True)
class StoreBuild:
    """What build_store did.

    store: the store, opened read-only
    reused: True when nothing was decoded
    reason: why it was reused or (re)built; it may name current source files, so it is for the console,
        not for exported files
    changes: how the files differ from the replaced store's (None for a new store or another format)
    """

    store: ImageStore
    reused: bool
    reason: str
    changes: FileChanges | None = None


@dataclass(frozen=True)
class _Items:
    """The validated per-item inputs of a build."""

    labels: np.ndarray  # int64 [N]
    item_files: np.ndarray  # int64 [N], index into the source files
    image_shape: tuple[int, int, int]


def build_store(
    *,
    kind: str,
    root: str | os.PathLike,
    files: Sequence[str | os.PathLike],
    labels: Sequence[int] | np.ndarray | torch.Tensor,
    class_names: Sequence[str],
    image_shape: Sequence[int],
    decode: DecodeItem,
    options: Mapping[str, Any],
    item_files: Sequence[int] | np.ndarray | None = None,
    dtype: str = "auto",
    cache_dir: str | os.PathLike | None = None,
    content_hash: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    lock_timeout: float | None = None,
) -> StoreBuild:
    """Build the store of a source, or reuse it (module doc).

    kind: the reader ("image_folder", "dicom_folder"); root: the source folder, files lie under it.
    files: every file the items come from (fingerprinted: path relative to root, size, mtime_ns).
    labels: one class index per item (their number is the number of items); class_names: one per class.
    image_shape: (C, H, W) of every decoded item; decode: item index -> float32 [C, H, W] in [0, 1].
    options: JSON values deciding the pixels (medsyn.data.store.build_options); stored in the manifest,
        so no paths or names of the source.
    item_files: index into ``files`` of each item's file; None: item i comes from files[i].
    dtype: "auto" | "uint8" | "uint16" | "float32" (medsyn.data.store.storage_dtype).
    cache_dir: the folder holding the stores (medsyn.data.store.location; default MEDSYN_CACHE_DIR,
        then the user cache). content_hash: fingerprint by content instead of mtime.
    chunk_size: images decoded and written at a time. lock_timeout: seconds to wait for another build of
        the same store (None: as long as it runs).
    """
    kind = check_kind(kind)
    dtype = check_dtype_request(dtype)
    canonical = canonical_options(options)
    classes = _checked_class_names(class_names)
    if not callable(decode):
        raise TypeError(
            f"decode must be a callable item index -> float32 [C, H, W], got {type(decode).__name__}"
        )
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    source_files = fingerprint_files(root, files, scheme="content" if content_hash else "stat")
    items = _checked_items(labels, len(classes), image_shape, item_files, len(source_files.digests))
    key = store_key(kind=kind, root=root, options=canonical, dtype=dtype)
    wanted = StoreManifest(
        key=key, build_id=secrets.token_hex(16), kind=kind, options=canonical, requested_dtype=dtype,
        storage_dtype=first_storage_dtype(dtype), max_abs_error=0.0, count=len(items.labels),
        image_shape=items.image_shape, class_names=classes, fingerprint_scheme=source_files.scheme,
        file_digests=tuple(source_files.sorted_digests()), items_digest=_items_digest(source_files, items),
    )
    cache = _checked_cache_dir(resolve_cache_dir(cache_dir))
    name = store_folder_name(kind, key)
    target = cache / name
    with store_build_lock(cache / f".{name}{LOCK_SUFFIX}", timeout=lock_timeout, store=target):
        _remove_leftovers(cache, name)
        recorded, reason, changes = _reusable_store(target, wanted, source_files)
        if recorded is not None:
            return StoreBuild(recorded, reused=True, reason=reason)
        temp = Path(tempfile.mkdtemp(prefix=f".{name}{_BUILD_TAG}", dir=cache))
        try:
            item_name = _item_namer(root, source_files, items)
            storage, max_error = _write_arrays(temp, items, decode, dtype, chunk_size, item_name)
            write_manifest(temp, dataclasses.replace(wanted, storage_dtype=storage, max_abs_error=max_error))
            fsync_path(temp)
            _install(temp, target, cache, name)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        return StoreBuild(open_store(target), reused=False, reason=reason, changes=changes)


def _reusable_store(
    target: Path, wanted: StoreManifest, source_files: SourceFiles
) -> tuple[ImageStore | None, str, FileChanges | None]:
    """(the store to reuse or None, why, the file changes). ForeignStoreFolderError for a foreign folder."""
    try:
        recorded = read_manifest(target)
    except FileNotFoundError:
        return None, "new store", None
    except StoreFormatError as error:
        return None, f"rebuilt: {error}", None
    if recorded.same_build_inputs(wanted):
        try:
            return open_store(target), "reused: same files, labels, item order and options", None
        except (OSError, ValueError) as error:
            return None, f"rebuilt: the recorded store cannot be read ({error})", None
    changes = None
    differences = []
    if recorded.fingerprint_scheme != wanted.fingerprint_scheme:
        differences.append(
            f"files are fingerprinted by {wanted.fingerprint_scheme}, "
            f"the store by {recorded.fingerprint_scheme}"
        )
    else:
        changes = compare_files(recorded.file_digests, source_files)
        if changes.changed:
            differences.append(changes.describe())
    for field, what in _COMPARED_FIELDS:
        old, new = getattr(recorded, field), getattr(wanted, field)
        if old != new:
            differences.append(f"{what} {old} -> {new}")
    if not differences and recorded.items_digest != wanted.items_digest:
        differences.append("labels or item order changed")
    return None, "rebuilt: " + "; ".join(differences), changes


def _write_arrays(
    folder: Path, items: _Items, decode: DecodeItem, dtype: str, chunk_size: int,
    item_name: Callable[[int], str],
) -> tuple[str, float]:
    """images.npy and labels.npy in ``folder``; returns (storage dtype, largest |read back - decoded|)."""
    count, shape = len(items.labels), items.image_shape
    writer = NpyWriter(folder / IMAGES_NAME, first_storage_dtype(dtype), (count, *shape))
    chunk = np.empty((min(chunk_size, count), *shape), dtype=np.float32)
    max_error = 0.0
    try:
        for start in range(0, count, chunk_size):
            block = chunk[: min(start + chunk_size, count) - start]
            for offset in range(len(block)):
                block[offset] = _checked_image(decode(start + offset), shape, start + offset, item_name)
            stored, errors = encode_values(block, writer.dtype.name)
            if dtype == "uint8" and errors.any():
                first = int(np.flatnonzero(errors)[0])
                raise ValueError(
                    f"{item_name(start + first)} is not on the 1/255 grid of 8-bit images (a value "
                    f"moves by {float(errors[first]):.3g} as uint8), so dtype='uint8' would change it; "
                    "use dtype='auto' (exact, in a wider dtype) or 'uint16' (rounded to 1/65535)"
                )
            while dtype == "auto" and errors.any():  # the narrowest exact dtype; float32 always is
                writer = widened(writer, WIDER[writer.dtype.name], chunk_rows=chunk_size)
                stored, errors = encode_values(block, writer.dtype.name)
            writer.append(stored)
            max_error = max(max_error, float(errors.max()))
        writer.close()
    except BaseException:
        writer.discard()
        raise
    labels_path = folder / LABELS_NAME
    np.save(labels_path, items.labels, allow_pickle=False)
    fsync_path(labels_path)
    return writer.dtype.name, max_error


def _checked_image(
    value: Any, shape: tuple[int, int, int], index: int, item_name: Callable[[int], str]
) -> np.ndarray:
    """``value`` (numpy array or tensor) if it is float32 of ``shape``, finite, in [0, 1]; else an error
    naming ``item_name(index)`` (made only then: it joins paths)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise TypeError(
            f"{item_name(index)}: decode returned {type(value).__name__}, expected a float32 array [C, H, W]"
        )
    if value.dtype != np.float32:
        raise TypeError(
            f"{item_name(index)}: decode returned {value.dtype} values, expected float32 in [0, 1]"
        )
    if value.shape != shape:
        raise ValueError(
            f"{item_name(index)}: decoded image has shape {value.shape}, the store's image_shape is {shape}"
        )
    if not np.isfinite(value).all():
        raise ValueError(f"{item_name(index)}: decoded image contains NaN or inf")
    low, high = float(value.min()), float(value.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{item_name(index)}: decoded image has values in [{low:.4g}, {high:.4g}], expected [0, 1]"
        )
    return value


def _install(temp: Path, target: Path, cache: Path, name: str) -> None:
    """Rename the built ``temp`` to ``target``, retiring (then deleting) the store there, if any."""
    retired = None
    if target.exists():
        retired = cache / f".{name}{_RETIRED_TAG}{secrets.token_hex(8)}"
        os.rename(target, retired)
    os.rename(temp, target)
    fsync_path(cache)
    if retired is not None:
        shutil.rmtree(retired)


def _remove_leftovers(cache: Path, name: str) -> None:
    """Temporary folders of this store left by a killed build (only this store's: another store's build
    may be running now; under this store's lock, no build of this one is)."""
    prefixes = (f".{name}{_BUILD_TAG}", f".{name}{_RETIRED_TAG}")
    for entry in os.listdir(cache):
        path = cache / entry
        if entry.startswith(prefixes) and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)


def _checked_cache_dir(cache: Path) -> Path:
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(
            f"cache_dir {cache}: expected a folder for image stores, found a file"
        ) from None
    return cache


def _checked_class_names(class_names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(class_names)
    if not names or not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
        raise ValueError(f"class_names must be distinct strings, at least one, got {list(names)!r}")
    return names


def _checked_items(
    labels: Sequence[int] | np.ndarray | torch.Tensor,
    num_classes: int,
    image_shape: Sequence[int],
    item_files: Sequence[int] | np.ndarray | None,
    num_files: int,
) -> _Items:
    label_array = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if label_array.ndim != 1 or label_array.dtype.kind not in "iu" or len(label_array) == 0:
        raise ValueError(
            "labels must be one class index per item, at least one, "
            f"got {label_array.dtype} {label_array.shape}"
        )
    if label_array.min() < 0 or label_array.max() >= num_classes:
        raise ValueError(
            f"labels must lie in [0, {num_classes}) (one per class name), "
            f"got [{int(label_array.min())}, {int(label_array.max())}]"
        )
    shape = tuple(image_shape)
    positive = all(isinstance(size, int) and not isinstance(size, bool) and size >= 1 for size in shape)
    if len(shape) != 3 or not positive:
        raise ValueError(f"image_shape must be (C, H, W) of positive integers, got {image_shape!r}")
    count = len(label_array)
    if item_files is None:
        if num_files != count:
            raise ValueError(
                f"{count} labels but {num_files} files: give item_files (the index in files of each "
                "item's file) when items do not map one to one onto files"
            )
        file_index = np.arange(count, dtype=np.int64)
    else:
        file_index = np.asarray(item_files)
        if file_index.shape != (count,) or file_index.dtype.kind not in "iu":
            raise ValueError(
                f"item_files must be {count} integers (one per label), "
                f"got {file_index.dtype} {file_index.shape}"
            )
        file_index = file_index.astype(np.int64)
        if file_index.min() < 0 or file_index.max() >= num_files:
            raise ValueError(
                f"item_files must index the {num_files} files, got [{file_index.min()}, {file_index.max()}]"
            )
    return _Items(label_array.astype(np.int64), file_index, shape)  # type: ignore[arg-type]


def _items_digest(source_files: SourceFiles, items: _Items) -> str:
    """sha256 of the file digests in the caller's order, each item's file index and the labels."""
    digest = hashlib.sha256(canonical_json(list(source_files.digests)).encode("ascii"))
    digest.update(b"\0")
    digest.update(items.item_files.astype("<i8").tobytes())
    digest.update(b"\0")
    digest.update(items.labels.astype("<i8").tobytes())
    return digest.hexdigest()


def _item_namer(root: str | os.PathLike, source_files: SourceFiles, items: _Items) -> Callable[[int], str]:
    """item index -> "item 17 (<root>/<its file>)" for error messages (local: it names the file)."""
    base = Path(os.path.abspath(root))

    def name(index: int) -> str:
        return f"item {index} ({base / source_files.relpaths[items.item_files[index]]})"

    return name
