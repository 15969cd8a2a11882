"""Backend selection for every compiled kernel: ``backend="auto" | "cpp" | "cuda" | "torch"``.

- ``"cpp"``: ``medsyn._kernels`` (C++/OpenMP, CPU). Inputs on another device are copied to the CPU.
- ``"cuda"``: ``medsyn._kernels_cuda`` (built only where nvcc was found); needs a visible GPU.
- ``"torch"``: the pure-torch twins in ``medsyn.kernels`` (any device, slowest, the test oracle).
- ``"auto"``: CUDA tensors -> ``"cuda"`` when that module is built, else ``"torch"`` on the GPU;
  CPU tensors -> ``"cpp"`` when the extension is built, else ``"torch"`` with a warning (``make install``
  builds it, so a missing extension means a broken install).

Requesting a compiled backend that is missing raises :class:`BackendUnavailableError` saying why.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from types import ModuleType

import torch

__all__ = ["BACKENDS", "BackendUnavailableError", "resolve_backend", "cpu_kernels", "cuda_kernels"]

BACKENDS = ("auto", "cpp", "cuda", "torch")


class BackendUnavailableError(RuntimeError):
    """A compiled backend was requested but its module is not built or cannot run here."""


@functools.cache
def _load(module_name: str) -> tuple[ModuleType | None, str]:
    try:
        return importlib.import_module(module_name), ""
    except ImportError as error:  # not built (no compiler / no nvcc) or built for another Python
        return None, f"{type(error).__name__}: {error}"


def cpu_kernels() -> ModuleType:
    """The compiled CPU module ``medsyn._kernels``; raises BackendUnavailableError if it is missing."""
    module, reason = _load("medsyn._kernels")
    if module is None:
        raise BackendUnavailableError(
            "backend='cpp' needs the compiled extension medsyn._kernels, which cannot be imported "
            f"({reason}). Build it with `make install` or `pip install --no-build-isolation --no-deps -e .`."
        )
    return module


def cuda_kernels() -> ModuleType:
    """The compiled CUDA module ``medsyn._kernels_cuda``; raises BackendUnavailableError if missing."""
    module, reason = _load("medsyn._kernels_cuda")
    if module is None:
        raise BackendUnavailableError(
            "backend='cuda' needs medsyn._kernels_cuda, which is built only when CMake finds nvcc "
            f"({reason}). Install the CUDA toolkit and rebuild with `make install`."
        )
    return module


def has_cpu_kernels() -> bool:
    return _load("medsyn._kernels")[0] is not None


def has_cuda_kernels() -> bool:
    return _load("medsyn._kernels_cuda")[0] is not None


def resolve_backend(backend: str, device: torch.device) -> str:
    """Map a requested backend and the inputs' device to "cpp", "cuda" or "torch" (see module doc)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return "torch"
    if backend == "cpp":
        cpu_kernels()
        return "cpp"
    if backend == "cuda":
        cuda_kernels()
        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                "backend='cuda' needs a CUDA GPU, but torch.cuda.is_available() is False"
            )
        return "cuda"
    if device.type == "cuda":
        return "cuda" if has_cuda_kernels() else "torch"
    if has_cpu_kernels():
        return "cpp"
    warnings.warn(
        "medsyn._kernels is not built; falling back to the (much slower) pure-torch kernels. "
        f"Reason: {_load('medsyn._kernels')[1]}",
        RuntimeWarning,
        stacklevel=3,
    )
    return "torch"
