"""Data sources, splits and I/O. Every source returns an :class:`ImageSet`.

    from medsyn.data import load_source, prepare_splits, export_dicom
    splits = prepare_splits("dicom_folder", {"path": "scans/", "labels_csv": "labels.csv", "size": 64},
                            seed=0, per_class=50, manifest_path="runs/x/split_manifest.json")

Names other than ImageSet are resolved lazily, so importing the package does not import pydicom,
nibabel or Pillow. (No exported name equals a submodule name, so attribute lookup cannot return a module.)
"""

from __future__ import annotations

import importlib
from typing import Any

from medsyn.data.image_set import ImageSet

# public name -> module that defines it
_EXPORTS = {
    "load_source": "medsyn.data.sources",
    "prepare_splits": "medsyn.data.sources",
    "register_source": "medsyn.data.sources",
    "source_names": "medsyn.data.sources",
    "SplitManifest": "medsyn.data.split",
    "make_split_manifest": "medsyn.data.split",
    "save_split_manifest": "medsyn.data.split",
    "load_split_manifest": "medsyn.data.split",
    "apply_split": "medsyn.data.split",
    "load_digits_images": "medsyn.data.digits",
    "export_dicom": "medsyn.data.export",
    "export_png": "medsyn.data.export",
    "export_nifti": "medsyn.data.export",
    "decodable_transfer_syntaxes": "medsyn.data.dicom_pixels",
}

__all__ = ["ImageSet", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'medsyn.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
