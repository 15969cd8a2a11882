"""On-disk image stores: a source's images decoded, windowed and resized once, then memory-mapped.

The papers' data sets (8,000 to 54,309 RGB images at 256 px) do not fit in memory as float32 ImageSets
(0.8 MB an image). A store keeps them on disk at 1 or 2 bytes a value and reads batches on demand:

    from medsyn.data.store import StoreView, build_store, to_image_set

    build = build_store(kind="image_folder", root=root, files=paths, labels=labels, class_names=classes,
                        image_shape=(3, 256, 256), decode=decode_item, options={"size": 256, "channels": 3})
    view = StoreView(build.store)                 # a torch Dataset of (image, label)
    small = to_image_set(view.subset(range(500)))  # an ImageSet for the stages that take one

Modules, one concept each:
    build            build_store: decode once (streaming, chunk by chunk), reuse, rebuild, locking
    storage_dtype    the dtype rule: uint8 where exact, else uint16; float32 on request
    manifest         the store folder's files and its manifest (the format, and why .npy)
    fingerprint      per-file digests: reuse decisions without keeping a file name
    build_options    the caller's options as canonical JSON
    location         the cache folder (cache_dir, MEDSYN_CACHE_DIR, XDG) and store folder names
    build_lock       one build at a time per store
    array_writer     images.npy written sequentially
    image_store      ImageStore: read-only memory map, batch reads
    dataset_view     StoreView (torch Dataset) and to_image_set
"""

from __future__ import annotations

from medsyn.data.store.build import StoreBuild, build_store
from medsyn.data.store.build_lock import StoreBusyError
from medsyn.data.store.dataset_view import StoreView, to_image_set
from medsyn.data.store.fingerprint import FileChanges
from medsyn.data.store.image_store import ImageStore, StoreChangedError, open_store
from medsyn.data.store.location import CACHE_ENV, resolve_cache_dir
from medsyn.data.store.manifest import STORE_FORMAT, ForeignStoreFolderError, StoreFormatError

__all__ = [
    "CACHE_ENV", "STORE_FORMAT", "FileChanges", "ForeignStoreFolderError", "ImageStore", "StoreBuild",
    "StoreBusyError", "StoreChangedError", "StoreFormatError", "StoreView", "build_store", "open_store",
    "resolve_cache_dir", "to_image_set",
]
