"""Frechet distance between Gaussians fitted to two feature sets (Heusel et al. 2017), in float64.

    f = fid(real_features, synthetic_features)

FID = ||mu_r - mu_s||^2 + tr(S_r) + tr(S_s) - 2 tr((S_r S_s)^(1/2)).

The trace of the matrix square root is computed from a symmetric eigen-decomposition instead of
``scipy.linalg.sqrtm`` of the non-symmetric product: tr((S_r S_s)^(1/2)) = tr((A S_s A)^(1/2)) with
A = S_r^(1/2) (both products have the same eigenvalues, and A S_s A is symmetric PSD), so it is
sum_i sqrt(max(lambda_i, 0)) over the eigenvalues of A S_s A. This stays real and stable for singular
covariances (fewer samples than dimensions) where sqrtm returns complex noise.
Covariances are unbiased (ddof=1), hence at least 2 rows per set. The extractor is not part of this
function: name the result after it (``fid_effnet_lite0`` is not comparable to Inception FID).
"""

from __future__ import annotations

from typing import Any

import torch

from medsyn.metrics.validation import as_feature_matrix, check_same_dim

__all__ = ["fid", "float64_features", "frechet_distance", "gaussian_statistics"]


def gaussian_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """features [n, d] -> (mean float64 [d], unbiased covariance float64 [d, d])."""
    x = features.double()
    mean = x.mean(0)
    centred = x - mean
    return mean, centred.T @ centred / (x.shape[0] - 1)


def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet_distance(
    mean_a: torch.Tensor, cov_a: torch.Tensor, mean_b: torch.Tensor, cov_b: torch.Tensor
) -> float:
    """Frechet distance of N(mean_a, cov_a) and N(mean_b, cov_b) (float64 inputs) -> float >= 0."""
    root_a = _sqrt_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    middle = (middle + middle.T) / 2  # symmetric up to rounding; eigvalsh reads one triangle
    trace_sqrt = torch.linalg.eigvalsh(middle).clamp_min(0).sqrt().sum()
    value = (mean_a - mean_b).square().sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * trace_sqrt
    return float(value)


def float64_features(value: Any, name: str) -> torch.Tensor:
    """Validated features [n >= 2, d] as float64 (float64 inputs kept exact, others converted)."""
    checked = as_feature_matrix(value, name, min_rows=2)  # validation (rank, rows, NaN/inf) and float32 view
    original = torch.as_tensor(value) if not isinstance(value, torch.Tensor) else value.detach()
    if original.dtype == torch.float64:  # keep float64 inputs exact instead of going through float32
        return original.to(checked.device)
    return checked.double()


def fid(real_features: Any, synthetic_features: Any) -> float:
    """real_features [n, d], synthetic_features [m, d] (n, m >= 2; torch or numpy) -> FID (float, >= ~0)."""
    real = float64_features(real_features, "real_features")
    synthetic = float64_features(synthetic_features, "synthetic_features")
    check_same_dim(real, "real_features", synthetic, "synthetic_features")
    return frechet_distance(*gaussian_statistics(real), *gaussian_statistics(synthetic.to(real.device)))
