"""Run metadata recorded with every result: package versions, machine, threads."""

from __future__ import annotations

import platform
from importlib import metadata as importlib_metadata

__all__ = ["package_versions", "machine_description"]

_PACKAGES = ("medsyn", "torch", "monai", "numpy", "scipy", "scikit-image", "scikit-learn", "opacus", "torchattacks")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine_description() -> dict[str, object]:
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
    }
