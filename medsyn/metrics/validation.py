"""Input checks shared by every public metric: one place that turns arrays into the tensors the kernels
expect and raises ``ValueError`` naming the argument for anything that would give a silently wrong number.

Accepted: torch tensors or numpy arrays, any float/int dtype, any memory layout (non-contiguous and
channels-last inputs are copied once into a contiguous float32 tensor on their device).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = ["as_image_batch", "as_feature_matrix", "as_sample_vector", "check_same_image_size", "check_same_dim"]


def _as_tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        if value.dtype == object or not (np.issubdtype(value.dtype, np.number) or value.dtype == np.bool_):
            raise ValueError(f"{name} must hold numbers, got numpy dtype {value.dtype}")
        return torch.from_numpy(np.ascontiguousarray(value))
    raise ValueError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(value).__name__}")


def _check_finite(tensor: torch.Tensor, name: str) -> None:
    if tensor.dtype.is_floating_point and not torch.isfinite(tensor).all():
        bad = int((~torch.isfinite(tensor)).sum())
        raise ValueError(f"{name} contains {bad} NaN or inf value(s)")


def as_image_batch(value: Any, name: str, *, data_range: float = 1.0, tolerance: float = 1e-4) -> torch.Tensor:
    """images [N,H,W] or [N,C,H,W] in [0, data_range] -> contiguous float32 [N,C,H,W] (same device).

    Values outside [0, data_range] by more than ``tolerance * data_range`` are an error (a wrong
    data_range silently changes SSIM); values within rounding are clamped.
    """
    tensor = _as_tensor(value, name)
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(1)
    if tensor.ndim != 4:
        raise ValueError(f"{name} must be images [N,H,W] or [N,C,H,W], got shape {tuple(tensor.shape)}")
    if tensor.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 images)")
    if min(tensor.shape[1:]) == 0:
        raise ValueError(f"{name} has an empty dimension: shape {tuple(tensor.shape)}")
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    tensor = tensor.to(torch.float32).contiguous()
    # one pass finds the range and any NaN/inf (both propagate into aminmax); the slower element-wise
    # count runs only on the error path
    low_t, high_t = torch.aminmax(tensor)
    low, high = float(low_t), float(high_t)
    if not (math.isfinite(low) and math.isfinite(high)):
        _check_finite(tensor, name)
    slack = tolerance * data_range
    if low < -slack or high > data_range + slack:
        raise ValueError(
            f"{name} must lie in [0, data_range={data_range}], got values in [{low:.6g}, {high:.6g}]"
        )
    if low < 0 or high > data_range:
        # out-of-place: the caller's tensor must never change
        tensor = tensor.clamp(0.0, data_range)
    return tensor


def as_feature_matrix(value: Any, name: str, *, min_rows: int = 1) -> torch.Tensor:
    """features [N, D] -> contiguous float32 [N, D] (same device)."""
    tensor = _as_tensor(value, name)
    if tensor.ndim != 2:
        raise ValueError(f"{name} must be a feature matrix [N, D], got shape {tuple(tensor.shape)}")
    if tensor.shape[1] == 0:
        raise ValueError(f"{name} has feature dimension 0")
    if tensor.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} row(s), got {tensor.shape[0]}")
    tensor = tensor.to(torch.float32).contiguous()
    _check_finite(tensor, name)
    return tensor


def as_sample_vector(value: Any, name: str) -> torch.Tensor:
    """1-d samples [N] -> float64 [N] on the CPU."""
    tensor = _as_tensor(value, name)
    if tensor.ndim != 1:
        raise ValueError(f"{name} must be a 1-d array of samples, got shape {tuple(tensor.shape)}")
    if tensor.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    tensor = tensor.to(device="cpu", dtype=torch.float64).contiguous()
    _check_finite(tensor, name)
    return tensor


def check_same_image_size(a: torch.Tensor, a_name: str, b: torch.Tensor, b_name: str) -> None:
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(
            f"{a_name} and {b_name} must have the same [C,H,W], got {tuple(a.shape[1:])} and {tuple(b.shape[1:])}"
        )


def check_same_dim(a: torch.Tensor, a_name: str, b: torch.Tensor, b_name: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{a_name} and {b_name} must have the same feature dimension, got {a.shape[1]} and {b.shape[1]}")
