"""k-nearest-neighbour density estimate (Loftsgaarden & Quesenberry 1965; Mack & Rosenblatt 1979):

    p_hat(x) = k / (n * V_d * r_k(x)^d),   V_d = pi^(d/2) / Gamma(d/2 + 1)  (volume of the unit d-ball)

where r_k(x) is the distance from x to its k-th nearest neighbour among n samples in R^d. The
ball of radius r_k(x) holds k of the n samples, so its probability mass k/n divided by its volume
V_d r_k^d estimates the density. The exponent d matters: a density RATIO between two sample sets is
(n_a / n_v) * (r_a / r_v)^d; the paper-001 code reports ln(r_a / r_v) (no d, no n), which is that log
ratio divided by d when n_a = n_v (``medsyn.metrics.privacy.empirical_epsilon`` reports both).

Computed in log space (float64) so that small radii in high d neither underflow nor overflow.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import gammaln

__all__ = ["log_unit_ball_volume", "knn_log_density", "knn_radius"]


def log_unit_ball_volume(dim: int) -> float:
    """log V_d, V_d = pi^(d/2) / Gamma(d/2 + 1)."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    return 0.5 * dim * math.log(math.pi) - float(gammaln(0.5 * dim + 1.0))


def _as_points(value: Any, name: str) -> np.ndarray:
    array = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value, dtype=np.float64)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must be points [n, d] with n, d >= 1, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf")
    return array


def knn_radius(queries: Any, samples: Any, k: int) -> np.ndarray:
    """r_k: the distance from each query to its k-th nearest sample.

    queries: [q, d] (or [d]); samples: [n, d]; k: 1 <= k <= n
    returns: float64 [q], > 0. The queries are not removed from the samples (they are different sets here:
    a query is a real image, the samples are synthetic). A zero k-th distance (k samples identical to the
    query) has no finite density: ValueError asking for a larger k.
    """
    query_points = _as_points(queries, "queries")
    sample_points = _as_points(samples, "samples")
    if query_points.shape[1] != sample_points.shape[1]:
        raise ValueError(f"queries have dimension {query_points.shape[1]} but samples have {sample_points.shape[1]}")
    n = sample_points.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(f"k must be an integer in [1, {n}] (the number of samples), got {k!r}")
    distances, _ = cKDTree(sample_points).query(query_points, k=[int(k)])
    radius = distances[:, 0]
    if (radius <= 0).any():
        raise ValueError(
            f"{int((radius <= 0).sum())} query point(s) have {k} or more samples at distance 0: "
            "the kNN density is unbounded there; use a larger k"
        )
    return radius


def knn_log_density(queries: Any, samples: Any, k: int, dim: int | None = None) -> np.ndarray:
    """log p_hat at each query.

    queries: [q, d] (or [d]); samples: [n, d]; k: 1 <= k <= n; dim: d (checked against the data; the
    estimator's exponent and ball volume use it)
    returns: float64 [q] (the radius conditions of :func:`knn_radius`)
    """
    sample_points = _as_points(samples, "samples")
    n, d = sample_points.shape
    if dim is not None and dim != d:
        raise ValueError(f"dim={dim} does not match the dimension of the points ({d})")
    radius = knn_radius(queries, sample_points, k)
    return math.log(k) - math.log(n) - log_unit_ball_volume(d) - d * np.log(radius)
