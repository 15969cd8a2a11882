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


# ---- issue 11 item 7: the n x m dual form for d >> n, float64 beyond float32's range ------------------------


def mpmath_fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID at 40 significant digits: the means, tr S = ||A||_F^2, and tr (S_a S_b)^(1/2) as the sum of the
    square roots of the eigenvalues of C C^T, C = A B^T (exact identity, see medsyn.metrics.fid)."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40

    def centred(x: np.ndarray) -> tuple[object, list]:
        rows = [[mpmath.mpf(float(v)) for v in row] for row in x]
        mean = [sum(col) / len(rows) for col in zip(*rows)]
        scale = mpmath.sqrt(len(rows) - 1)
        return mpmath.matrix([[(v - mu) / scale for v, mu in zip(row, mean)] for row in rows]), mean

    (ca, mean_a), (cb, mean_b) = centred(a), centred(b)
    cross = ca * cb.T
    eigenvalues = mpmath.eigsy(cross * cross.T)[0]
    trace_sqrt = sum(mpmath.sqrt(max(value, 0)) for value in eigenvalues)
    trace_a = sum(v**2 for v in ca)
    trace_b = sum(v**2 for v in cb)
    mean_gap = sum((x - y) ** 2 for x, y in zip(mean_a, mean_b))
    return float(mean_gap + trace_a + trace_b - 2 * trace_sqrt)


@pytest.mark.parametrize("n, m, d", [(10, 12, 80), (5, 7, 150), (3, 30, 60)])
def test_dual_form_matches_scipy_sqrtm_of_the_full_d_by_d_product(n, m, d):
    rng = np.random.default_rng(n + m + d)
    a = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) / d**0.5
    b = rng.normal(0.3, 1.2, size=(m, d))
    dual = fid(a, b, form="dual")
    assert dual == pytest.approx(mpmath_fid(a, b), rel=1e-12)  # float64 rounding only
    # sqrtm of the singular d x d product and the primal eigen form both take square roots of rounding-noise
    # eigenvalues (~1e-16 -> ~1e-8 each): they agree to ~1e-8 of the value
    assert dual == pytest.approx(oracle_fid(a, b), rel=1e-6)
    assert dual == pytest.approx(fid(a, b, form="primal"), rel=1e-6)
    assert fid(a, b) == dual  # auto takes the dual form when d >> n, m


@pytest.mark.parametrize("n, m, d", [(200, 150, 8), (40, 50, 30)])
def test_dual_and_primal_forms_agree_when_samples_outnumber_dimensions(n, m, d):
    rng = np.random.default_rng(d)
    a, b = rng.normal(size=(n, d)), rng.normal(0.2, 0.9, size=(m, d))
    assert fid(a, b, form="dual") == pytest.approx(fid(a, b, form="primal"), rel=1e-9)
    assert fid(a, b) == fid(a, b, form="primal")  # auto keeps the d x d form here


def test_four_images_of_12288_features_use_the_dual_form_and_give_the_closed_form_value():
    # The case (before: minutes, d^3 eigen-decompositions of 12288 x 12288 matrices). A shifted
    # copy has the same covariance, so FID = ||shift||^2 exactly: tr S + tr S - 2 tr (S S)^(1/2) = 0.
    rng = np.random.default_rng(12288)
    a = rng.normal(size=(4, 12288))
    shift = rng.normal(scale=0.1, size=12288)
    expected = float((shift**2).sum())
    trace = float(a.var(axis=0, ddof=1).sum())  # tr S, without forming S
    value = fid(a, a + shift)
    # cancellation of 2 tr S ~ 2.5e4 against 2 tr S: float64 rounding is ~1e-16 of that
    assert value == pytest.approx(expected, abs=1e-9 * trace)


def test_float64_features_beyond_float32_range_are_not_reported_as_inf():
    rng = np.random.default_rng(39)
    a, b = rng.normal(size=(30, 4)), rng.normal(0.5, 1.0, size=(25, 4))
    scale = 2.0**130  # ~1.4e39: inf in float32
    assert fid(a * scale, b * scale) == pytest.approx(fid(a, b) * scale**2, rel=1e-12)  # FID ~ length^2


@pytest.mark.parametrize(
    "a, kwargs, match",
    [
        (np.ones((5, 3), dtype=np.complex128), {}, "real_features must be real"),
        (np.full((5, 3), 2**60, dtype=np.int64), {}, "real_features holds integers"),
        (np.zeros((5, 3)), {"form": "svd"}, "form must be one of"),
    ],
)
def test_complex_huge_integers_and_unknown_forms_are_refused(a, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fid(a, np.zeros((5, 3)), **kwargs)
