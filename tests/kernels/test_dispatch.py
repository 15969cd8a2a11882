"""Backend selection: auto picks the compiled kernel, missing backends fail loudly, torch always works."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsyn.kernels import dispatch
from medsyn.kernels.dispatch import BackendUnavailableError, resolve_backend
from medsyn.metrics import ssim_max


def test_auto_uses_the_compiled_cpu_kernel():
    assert dispatch.has_cpu_kernels(), "medsyn._kernels is not built: run make install"
    assert resolve_backend("auto", torch.device("cpu")) == "cpp"
    images = np.random.default_rng(0).random((2, 12, 12))
    assert ssim_max(images, images).backend == "cpp"


def test_explicit_backends():
    assert resolve_backend("torch", torch.device("cpu")) == "torch"
    assert resolve_backend("cpp", torch.device("cpu")) == "cpp"
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("CPP", torch.device("cpu"))


def test_cuda_backend_without_gpu_raises():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: this checks the no-GPU error")
    with pytest.raises(BackendUnavailableError, match="cuda"):
        resolve_backend("cuda", torch.device("cpu"))


def test_auto_picks_cuda_for_cuda_tensors_when_built(monkeypatch):
    # Decided from the device and the module alone, so it is testable without a GPU.
    monkeypatch.setattr(dispatch, "has_cuda_kernels", lambda: True)
    assert resolve_backend("auto", torch.device("cuda", 0)) == "cuda"
    monkeypatch.setattr(dispatch, "has_cuda_kernels", lambda: False)
    assert resolve_backend("auto", torch.device("cuda", 0)) == "torch"


def test_cuda_module_is_built_when_nvcc_exists():
    import shutil

    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not found: medsyn._kernels_cuda is not built on this machine")
    module = dispatch.cuda_kernels()
    assert hasattr(module, "ssim_max")


def test_missing_extension_falls_back_with_warning_or_fails_when_requested(monkeypatch):
    real_load = dispatch._load

    def load(name):
        if name == "medsyn._kernels":
            return None, "ImportError: pretend it is not built"
        return real_load(name)

    monkeypatch.setattr(dispatch, "_load", load)
    with pytest.warns(RuntimeWarning, match="pure-torch"):
        assert resolve_backend("auto", torch.device("cpu")) == "torch"
    with pytest.raises(BackendUnavailableError, match="make install"):
        resolve_backend("cpp", torch.device("cpu"))
    images = np.random.default_rng(1).random((2, 12, 12))
    with pytest.warns(RuntimeWarning):
        assert ssim_max(images, images).backend == "torch"
