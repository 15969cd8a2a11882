"""Precision, recall (Kynkaenniemi et al. 2019) and density, coverage (Naeem et al. 2020) in feature space.

    m = prdc(real_features, synthetic_features, k=3)   # {"precision","recall","density","coverage"}

Conventions:
* radius_i = Euclidean distance from a point to its k-th nearest neighbour in its own set, excluding
  itself (a duplicate of the point at another index counts as a neighbour at distance 0), as torch-fidelity
  (``kthvalue(k + 1)`` of the distances including the point itself) and the ``prdc`` package;
* membership: ``ball="closed"`` (default) uses ``d <= radius``, as torch-fidelity's precision/recall
  (``metric_prc.py``) and Kynkaenniemi et al.; ``ball="open"`` uses ``d < radius``, the convention of the
  reference ``prdc`` package of Naeem et al. (``compute_prdc``: strict ``<`` for all four numbers). They
  differ only on exact ties: duplicated points, a synthetic copy of a real point at a radius, and above all
  a zero radius (k duplicates of a point), whose open ball is empty;
* precision = fraction of synthetic points inside the real manifold (union of real balls);
* recall    = fraction of real points inside the synthetic manifold;
* density   = (1 / (k m)) sum_j sum_i 1[d(s_j, r_i) <= radius_i]   (m synthetic points; ``<`` when open);
* coverage  = fraction of real i whose nearest synthetic point lies within radius_i.

Any finite scale: features are multiplied by a common power of two when their magnitude would overflow
or underflow the float32 tiles (``medsyn.metrics.neighbors.float32_scaled_features``); PRDC is
scale-invariant and the scaling exact, so features near 1e20 or 1e-20 give the result of the same
features at unit scale.

Every decision is exact (exact recompute of anything within float32 rounding of a radius, exact radii);
memory stays O((n + m) d): the distance matrices are never formed (see ``medsyn.kernels.knn_torch``).
Features are converted once to float32; "exact" means exact squared distances of those float32 values,
rounded once to float64 (so exact ties, e.g. a synthetic copy of a real point, are decided as ties).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from medsyn.metrics.neighbors import float32_scaled_features, knn_backend
from medsyn.metrics.validation import as_feature_matrix, check_same_dim

__all__ = ["BALLS", "DEFAULT_K", "prdc", "prdc_from_radii"]

BALLS = ("closed", "open")  # d <= radius (default; torch-fidelity) | d < radius (the prdc package)
DEFAULT_K = (
    3  # Kynkaenniemi et al. 2019, Sec. 3 (k = 3 in all their experiments); also Naeem et al. 2020 default
)


def prdc_from_radii(
    points_in_real_balls: torch.Tensor,
    real_reached: torch.Tensor,
    real_in_synthetic_balls: torch.Tensor,
    k: int,
) -> dict[str, float]:
    """The four numbers from the per-point membership results of ``ball_membership``.

    points_in_real_balls int64 [m]: real balls containing synthetic j; real_reached bool [n]: some synthetic
    point inside real ball i; real_in_synthetic_balls bool [n]: real i inside some synthetic ball.
    """
    m = points_in_real_balls.shape[0]
    return {
        "precision": float((points_in_real_balls > 0).double().mean()),
        "recall": float(real_in_synthetic_balls.double().mean()),
        "density": float(points_in_real_balls.double().sum() / (k * m)),
        "coverage": float(real_reached.double().mean()),
    }


def validate_prdc_inputs(
    real_features: Any, synthetic_features: Any, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    real = as_feature_matrix(real_features, "real_features", dtype=None)
    synthetic = as_feature_matrix(synthetic_features, "synthetic_features", dtype=None)
    check_same_dim(real, "real_features", synthetic, "synthetic_features")
    if real.device != synthetic.device:
        raise ValueError(
            f"real_features and synthetic_features must be on the same device, got {real.device} and {synthetic.device}"
        )
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    for name, features in (("real_features", real), ("synthetic_features", synthetic)):
        if k >= features.shape[0]:
            raise ValueError(
                f"k={k} must be smaller than the number of rows of {name} ({features.shape[0]}): the radius is the "
                "distance to the k-th neighbour excluding the point itself"
            )
    (real, synthetic), _ = float32_scaled_features([(real, "real_features"), (synthetic, "synthetic_features")])
    return real, synthetic


def membership_radii_sq(radii_sq: torch.Tensor, ball: str) -> torch.Tensor:
    """Squared radii for the ``<=`` membership tests of the kernels: open balls (``d < r``) use the next
    float64 below r^2 (exact squared distances are float64 values, so d^2 < r^2 <=> d^2 <= nextafter(r^2, -inf);
    a zero radius becomes negative: an empty ball)."""
    if ball not in BALLS:
        raise ValueError(f"ball must be one of {BALLS}, got {ball!r}")
    if ball == "closed":
        return radii_sq
    return torch.nextafter(radii_sq, torch.full_like(radii_sq, -math.inf))


def prdc(
    real_features: Any,
    synthetic_features: Any,
    k: int = DEFAULT_K,
    *,
    backend: str = "auto",
    block: int | None = None,
    ball: str = "closed",
) -> dict[str, float]:
    """Precision, recall, density, coverage of synthetic features against real features.

    real_features [n, d], synthetic_features [m, d] (torch or numpy, any float dtype, any layout), k < n, m
    -> {"precision", "recall", "density", "coverage"}: floats; precision, recall, coverage in [0, 1],
    density >= 0 (1 on average when the sets match). ``block`` sets the tile size (results do not depend on it).
    ball: "closed" (``d <= radius``, default) or "open" (``d < radius``, the ``prdc`` package); see the module doc.
    """
    membership_radii_sq(torch.zeros(1, dtype=torch.float64), ball)  # refuse a bad ``ball`` before any work
    real, synthetic = validate_prdc_inputs(real_features, synthetic_features, k)
    scan = knn_backend(backend, real.device)
    real_radii_sq = membership_radii_sq(scan.knn_sq_distances_self(real, k, block=block)[0][:, k - 1], ball)
    synthetic_radii_sq = membership_radii_sq(
        scan.knn_sq_distances_self(synthetic, k, block=block)[0][:, k - 1], ball
    )
    points_in_real_balls, real_reached, real_in_synthetic_balls = scan.ball_membership(
        real, real_radii_sq, synthetic, synthetic_radii_sq, block_rows=block, block_cols=block
    )
    return prdc_from_radii(points_in_real_balls, real_reached, real_in_synthetic_balls, k)
