"""Distances between two empirical distributions of scalars (e.g. per-image statistics, DCR values).

    ks, area = ecdf_distance(a, b)

* ``ks``: the exact two-sample Kolmogorov-Smirnov statistic sup_x |F_a(x) - F_b(x)| over the right-continuous
  ECDFs, evaluated at every pooled sample (ties included) == ``scipy.stats.ks_2samp(a, b).statistic``;
* ``area``: integral over x of |F_a(x) - F_b(x)| == the 1-Wasserstein distance
  ``scipy.stats.wasserstein_distance(a, b)``.

Both come from one merge walk over the two sorted samples in float64 (C++ kernel ``ecdf_distance`` in
``medsyn._kernels``, or the torch twin below).
"""

from __future__ import annotations

from typing import Any

import torch

from medsyn.kernels.dispatch import BackendUnavailableError, cpu_kernels, resolve_backend
from medsyn.metrics.validation import as_sample_vector

__all__ = ["ecdf_distance", "ecdf_distance_torch"]


def ecdf_distance_torch(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """Torch twin: a float64 [n], b float64 [m] -> (ks, area)."""
    a_sorted, b_sorted = torch.sort(a).values, torch.sort(b).values
    pooled = torch.sort(torch.cat([a_sorted, b_sorted])).values
    cdf_a = torch.searchsorted(a_sorted, pooled, right=True).double() / a.shape[0]
    cdf_b = torch.searchsorted(b_sorted, pooled, right=True).double() / b.shape[0]
    gap = (cdf_a - cdf_b).abs()
    # between consecutive pooled values both ECDFs are constant at their value at the left end
    area = float((gap[:-1] * torch.diff(pooled)).sum())
    return float(gap.max()), area


def ecdf_distance(a: Any, b: Any, *, backend: str = "auto") -> tuple[float, float]:
    """a [n], b [m] samples (torch or numpy, any real dtype; n, m >= 1) -> (ks in [0, 1], area >= 0)."""
    a_t = as_sample_vector(a, "a")
    b_t = as_sample_vector(b, "b")
    resolved = resolve_backend(backend, a_t.device)  # samples live on the CPU: "auto" -> "cpp" when built
    if resolved == "cpp":
        kernels = cpu_kernels()
        if not hasattr(kernels, "ecdf_distance"):
            raise BackendUnavailableError(
                "medsyn._kernels was built without ecdf_distance (stale build); `make install`"
            )
        ks, area = kernels.ecdf_distance(a_t.numpy(), b_t.numpy())
        return float(ks), float(area)
    if resolved == "cuda":  # an O(n log n) walk has no dedicated kernel: the torch twin runs on the GPU
        return ecdf_distance_torch(a_t.cuda(), b_t.cuda())
    return ecdf_distance_torch(a_t, b_t)
