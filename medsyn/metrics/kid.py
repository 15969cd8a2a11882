"""Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with a cubic polynomial kernel.

    mean, std = kid(real_features, synthetic_features)

k(x, y) = (gamma x.y + coef0)^degree with degree 3, gamma = 1/d, coef0 = 1 (paper Sec. 3 / torch-fidelity
defaults), averaged over ``subsets`` random subsets of ``subset_size`` rows drawn without replacement from
each set (torch-fidelity: 100 subsets of 1000). Computed in float64. Unlike FID it is unbiased, so it can be
compared across sample sizes; like FID it is only comparable for the same feature extractor.
"""

from __future__ import annotations

from typing import Any

import torch

from medsyn.metrics.fid import float64_features
from medsyn.metrics.validation import check_same_dim

__all__ = ["KID_DEFAULTS", "kid", "mmd2_unbiased"]

# Binkowski et al. 2018, Sec. 3 (cubic polynomial kernel); subset protocol as torch-fidelity's defaults
KID_DEFAULTS = {"subsets": 100, "subset_size": 1000, "degree": 3, "coef0": 1.0}


def _polynomial_kernel(
    x: torch.Tensor, y: torch.Tensor, degree: int, gamma: float, coef0: float
) -> torch.Tensor:
    return (gamma * (x @ y.T) + coef0) ** degree


def mmd2_unbiased(
    x: torch.Tensor, y: torch.Tensor, *, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> float:
    """Unbiased MMD^2 between samples x [m, d] and y [m', d] (float64) with the polynomial kernel."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    k_xx = _polynomial_kernel(x, x, degree, gamma, coef0)
    k_yy = _polynomial_kernel(y, y, degree, gamma, coef0)
    k_xy = _polynomial_kernel(x, y, degree, gamma, coef0)
    m, n = x.shape[0], y.shape[0]
    within_x = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    within_y = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return float(within_x + within_y - 2 * k_xy.mean())


def kid(
    real_features: Any,
    synthetic_features: Any,
    *,
    subsets: int = KID_DEFAULTS["subsets"],
    subset_size: int = KID_DEFAULTS["subset_size"],
    degree: int = KID_DEFAULTS["degree"],
    gamma: float | None = None,
    coef0: float = KID_DEFAULTS["coef0"],
    seed: int = 0,
) -> tuple[float, float]:
    """real_features [n, d], synthetic_features [m, d] (n, m >= 2) -> (mean, std) of MMD^2 over the subsets.

    subset_size is capped at min(n, m); std is the population std over subsets (0 for one subset).
    """
    real = float64_features(real_features, "real_features")
    synthetic = float64_features(synthetic_features, "synthetic_features").to(real.device)
    check_same_dim(real, "real_features", synthetic, "synthetic_features")
    if isinstance(subsets, bool) or not isinstance(subsets, int) or subsets < 1:
        raise ValueError(f"subsets must be a positive integer, got {subsets!r}")
    if isinstance(subset_size, bool) or not isinstance(subset_size, int) or subset_size < 2:
        raise ValueError(f"subset_size must be an integer >= 2, got {subset_size!r}")
    size = min(subset_size, real.shape[0], synthetic.shape[0])
    generator = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        real_rows = torch.randperm(real.shape[0], generator=generator)[:size].to(real.device)
        synthetic_rows = torch.randperm(synthetic.shape[0], generator=generator)[:size].to(real.device)
        values.append(
            mmd2_unbiased(real[real_rows], synthetic[synthetic_rows], degree=degree, gamma=gamma, coef0=coef0)
        )
    scores = torch.tensor(values, dtype=torch.float64)
    return float(scores.mean()), float(scores.std(unbiased=False))
