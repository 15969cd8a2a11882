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

Few samples in many dimensions (the dual form). With A = (X_r - mu_r) / sqrt(n - 1) [n, d] and
B = (X_s - mu_s) / sqrt(m - 1) [m, d], S_r = A^T A and S_s = B^T B. The nonzero eigenvalues of
S_r S_s = A^T (A B^T B) are those of (A B^T B) A^T = C C^T with C = A B^T [n, m] (XY and YX share their
nonzero eigenvalues), i.e. the squared singular values of C, so

    tr((S_r S_s)^(1/2)) = sum_i sigma_i(A B^T)   (the nuclear norm of the n x m cross-Gram matrix),
    tr(S_r) = ||A||_F^2,  tr(S_s) = ||B||_F^2.

That costs O(n m d + min(n,m)^2 max(n,m)) instead of O(d^2 (n + m) + d^3): 4 x 12288 features take
milliseconds instead of minutes. ``fid`` picks the form with the smaller operation count
(``form="auto"``); both are the same number up to float64 rounding (tested against each other and
against scipy's sqrtm of the d x d product).
"""

from __future__ import annotations

from typing import Any

import torch

from medsyn.metrics.validation import as_feature_matrix, check_same_dim

__all__ = ["FID_FORMS", "fid", "float64_features", "frechet_distance", "frechet_distance_dual", "gaussian_statistics"]

FID_FORMS = ("auto", "primal", "dual")  # auto: the cheaper of d x d covariances and the n x m cross-Gram form


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


def frechet_distance_dual(real: torch.Tensor, synthetic: torch.Tensor) -> float:
    """Frechet distance of the Gaussians fitted to real [n, d] and synthetic [m, d] (float64), through the
    n x m cross-Gram matrix (module docstring); never forms a d x d matrix."""
    mean_a, mean_b = real.mean(0), synthetic.mean(0)
    a = (real - mean_a) / (real.shape[0] - 1) ** 0.5
    b = (synthetic - mean_b) / (synthetic.shape[0] - 1) ** 0.5
    trace_sqrt = torch.linalg.svdvals(a @ b.T).sum()
    value = (mean_a - mean_b).square().sum() + a.square().sum() + b.square().sum() - 2 * trace_sqrt
    return float(value)


def _dual_is_cheaper(n: int, m: int, d: int) -> bool:
    # operation counts: covariances + two symmetric eigen-decompositions and two d x d products (~10 d^3)
    # against the cross-Gram product + its SVD (~10 min^2 max)
    primal = d * d * (n + m) + 10 * d**3
    dual = n * m * d + 10 * min(n, m) ** 2 * max(n, m)
    return dual < primal


def float64_features(value: Any, name: str) -> torch.Tensor:
    """Validated features [n >= 2, d] as float64 (float64 inputs kept exact, others converted exactly;
    finite float64 values beyond float32's range, e.g. 1e39, are kept as they are)."""
    return as_feature_matrix(value, name, min_rows=2, dtype=torch.float64)


def fid(real_features: Any, synthetic_features: Any, *, form: str = "auto") -> float:
    """real_features [n, d], synthetic_features [m, d] (n, m >= 2; torch or numpy) -> FID (float, >= ~0).

    form: "primal" (d x d covariances), "dual" (n x m cross-Gram matrix, for d >> n, m) or "auto" (the one
    with fewer operations; the result does not depend on the choice beyond float64 rounding).
    """
    if form not in FID_FORMS:
        raise ValueError(f"form must be one of {FID_FORMS}, got {form!r}")
    real = float64_features(real_features, "real_features")
    synthetic = float64_features(synthetic_features, "synthetic_features")
    check_same_dim(real, "real_features", synthetic, "synthetic_features")
    synthetic = synthetic.to(real.device)
    if form == "dual" or (form == "auto" and _dual_is_cheaper(real.shape[0], synthetic.shape[0], real.shape[1])):
        return frechet_distance_dual(real, synthetic)
    return frechet_distance(*gaussian_statistics(real), *gaussian_statistics(synthetic))
