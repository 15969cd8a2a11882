"""fid against an independent scipy.linalg.sqrtm formula, plus edge cases and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from medsyn.metrics import fid


def oracle_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean).real)


@pytest.mark.parametrize("n, m, d", [(200, 150, 8), (500, 400, 32), (50, 60, 3)])
def test_matches_scipy_sqrtm(n, m, d):
    rng = np.random.default_rng(d)
    mix = rng.normal(size=(d, d))
    a = rng.normal(size=(n, d)) @ mix
    b = rng.normal(0.5, 1.0, size=(m, d)) @ (mix + 0.3 * rng.normal(size=(d, d)))
    assert fid(a, b) == pytest.approx(oracle_fid(a, b), rel=1e-9)


def test_known_value_for_shifted_gaussians_in_closed_form():
    # exact Gaussians with equal covariance: FID = ||mu_a - mu_b||^2; build samples with exactly that moment
    base = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    assert fid(base, base + [3.0, 4.0]) == pytest.approx(25.0, abs=1e-12)


def test_identical_sets_give_zero_and_order_does_not_matter():
    x = np.random.default_rng(1).normal(size=(100, 16))
    assert abs(fid(x, x[::-1].copy())) < 1e-9


def test_singular_covariances_fewer_rows_than_dims():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(10, 40)), rng.normal(size=(12, 40)) + 0.2
    value = fid(a, b)
    assert np.isfinite(value) and value > 0
    assert value == pytest.approx(oracle_fid(a, b), rel=1e-6)


def test_torch_float32_input():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(80, 5)).astype(np.float32), rng.normal(size=(90, 5)).astype(np.float32)
    assert fid(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(
        oracle_fid(a.astype(np.float64), b.astype(np.float64)), rel=1e-9
    )


@pytest.mark.parametrize(
    "a, b, match",
    [
        (np.zeros((1, 3)), np.zeros((5, 3)), "real_features needs at least 2"),
        (np.zeros((5, 3)), np.zeros((1, 3)), "synthetic_features needs at least 2"),
        (np.zeros((5, 3)), np.zeros((5, 2)), "feature dimension"),
        (np.zeros(5), np.zeros((5, 3)), "real_features must be"),
        (np.full((5, 3), np.nan), np.zeros((5, 3)), "real_features contains"),
    ],
)
def test_bad_input(a, b, match):
    with pytest.raises(ValueError, match=match):
        fid(a, b)
