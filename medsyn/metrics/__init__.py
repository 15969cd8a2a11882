"""Public metric API (stable names, see shared/DESIGN.md).

    from medsyn.metrics import ssim_max, prdc, nearest_neighbors, ecdf_distance, fid

Names are resolved lazily so that importing one metric does not import every other's dependencies.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it
_EXPORTS = {
    "ssim_max": "medsyn.metrics.ssim",
    "SSIMMaxResult": "medsyn.metrics.ssim",
    "prdc": "medsyn.metrics.prdc",
    "nearest_neighbors": "medsyn.metrics.neighbors",
    "ecdf_distance": "medsyn.metrics.ecdf",
    "fid": "medsyn.metrics.fid",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'medsyn.metrics' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
