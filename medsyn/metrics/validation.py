"""Input checks shared by every public metric: one place that turns arrays into the tensors the kernels
expect and raises ``ValueError`` naming the argument for anything that would give a silently wrong number.

Accepted: torch tensors or numpy arrays, any real float/int/bool dtype, any memory layout (non-contiguous and
channels-last inputs are copied once into a contiguous tensor on their device).
Refused (ValueError naming the argument): complex dtypes (casting would drop the imaginary part), integers
beyond 2^53 in magnitude (not exactly representable in float64; above float32's 2^24 the float32 metrics
round them like any float64 input), NaN/inf. Finiteness is judged in the input's own dtype: float64 values
beyond float32's range (e.g. 1e39) are finite, and the checkers that convert to float32 say so instead of
reporting inf.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = [
    "MAX_EXACT_INTEGER",
    "as_image_batch",
    "as_feature_matrix",
    "as_sample_vector",
    "check_same_image_size",
    "check_same_dim",
    "float_resolution",
]

MAX_EXACT_INTEGER = 2**53  # every integer of magnitude <= 2^53 is exactly a float64


def _check_integer_range(low: int, high: int, name: str) -> None:
    if low < -MAX_EXACT_INTEGER or high > MAX_EXACT_INTEGER:
        raise ValueError(
            f"{name} holds integers in [{low}, {high}], beyond +-2^53: they have no exact float64 value; "
            "convert them to float yourself if rounding is acceptable"
        )


def _as_tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
        if tensor.is_complex():
            raise ValueError(f"{name} must be real, got complex dtype {tensor.dtype}")
        if not tensor.dtype.is_floating_point and tensor.dtype != torch.bool and tensor.numel():
            low, high = torch.aminmax(tensor)
            _check_integer_range(int(low), int(high), name)
        return tensor
    if isinstance(value, np.ndarray):
        if value.dtype == object or not (np.issubdtype(value.dtype, np.number) or value.dtype == np.bool_):
            raise ValueError(f"{name} must hold numbers, got numpy dtype {value.dtype}")
        if np.issubdtype(value.dtype, np.complexfloating):
            raise ValueError(f"{name} must be real, got complex numpy dtype {value.dtype}")
        if np.issubdtype(value.dtype, np.integer) and value.size:
            _check_integer_range(int(value.min()), int(value.max()), name)  # before torch: uint64 > 2^63
        return torch.from_numpy(np.ascontiguousarray(value))
    raise ValueError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(value).__name__}")


def float_resolution(value: Any) -> float:
    """Machine epsilon of the dtype ``value`` arrived in (float16: 2^-10; integers and bool: float32's)."""
    dtype = value.dtype if isinstance(value, (torch.Tensor, np.ndarray)) else None
    if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
        return float(torch.finfo(dtype).eps)
    if isinstance(dtype, np.dtype) and np.issubdtype(dtype, np.floating):
        return float(np.finfo(dtype).eps)
    return float(torch.finfo(torch.float32).eps)


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
    original = tensor
    tensor = tensor.to(torch.float32).contiguous()
    # one pass finds the range and any NaN/inf (both propagate into aminmax); the slower element-wise
    # count runs only on the error path
    low_t, high_t = torch.aminmax(tensor)
    low, high = float(low_t), float(high_t)
    if not (math.isfinite(low) and math.isfinite(high)):
        if original.dtype.is_floating_point:
            _check_finite(original, name)  # NaN/inf of the input itself, in its own dtype
        low_t, high_t = torch.aminmax(original.double())  # finite float64 beyond float32's range
        low, high = float(low_t), float(high_t)
    slack = tolerance * data_range
    if low < -slack or high > data_range + slack:
        raise ValueError(
            f"{name} must lie in [0, data_range={data_range}], got values in [{low:.6g}, {high:.6g}]"
        )
    if low < 0 or high > data_range:
        # out-of-place: the caller's tensor must never change
        tensor = tensor.clamp(0.0, data_range)
    return tensor


def as_feature_matrix(
    value: Any, name: str, *, min_rows: int = 1, dtype: torch.dtype | None = torch.float32
) -> torch.Tensor:
    """features [N, D] -> contiguous [N, D] of ``dtype`` (same device).

    dtype: torch.float32, torch.float64, or None (float32 and float64 inputs kept as they are, anything
    else -> float64, which holds every float16/bfloat16 value and every accepted integer exactly).
    Finite float64 values beyond float32's range asked for as float32 are a ValueError saying so.
    """
    if dtype not in (torch.float32, torch.float64, None):
        raise ValueError(f"dtype must be torch.float32, torch.float64 or None, got {dtype!r}")
    tensor = _as_tensor(value, name)
    if tensor.ndim != 2:
        raise ValueError(f"{name} must be a feature matrix [N, D], got shape {tuple(tensor.shape)}")
    if tensor.shape[1] == 0:
        raise ValueError(f"{name} has feature dimension 0")
    if tensor.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} row(s), got {tensor.shape[0]}")
    if dtype is None:
        dtype = tensor.dtype if tensor.dtype in (torch.float32, torch.float64) else torch.float64
    if tensor.dtype.is_floating_point:
        _check_finite(tensor, name)  # in the input's own dtype: 1e39 in float64 is finite
    converted = tensor.to(dtype).contiguous()
    if dtype == torch.float32 and tensor.dtype == torch.float64 and not torch.isfinite(converted).all():
        peak = float(tensor.abs().max())
        raise ValueError(
            f"{name} has values up to {peak:.4g} in magnitude, beyond float32's range "
            f"({torch.finfo(torch.float32).max:.4g}); this computation converts its inputs to float32"
        )
    return converted


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
